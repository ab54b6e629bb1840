"""V2 math and the arbitrage search, checked against the contract formulas and brute force.

Brute force means evaluating the exact integer profit ``out(x) − x`` of a path: every input when
reserves are small (there the search must hit the exact maximum), a ternary search on integers
when they are realistic. There the flat, floored profit curve can hide a better input a few
wei away that neither search is sure to find, so the search must match or beat the ternary
search to within what flooring can cost: one unit of each intermediate token (see
:func:`flooring_tolerance`) — a wei when every token on the path has 18 decimals.
"""

from __future__ import annotations

import itertools
from collections import ChainMap
from collections.abc import Sequence

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from simulation.amm import (
    InsufficientLiquidityError,
    Pool,
    amounts_out,
    get_amount_in,
    get_amount_out,
    min_amount_in,
    spot_price,
)
from simulation.arbitrage import (
    Cycle,
    CycleIndex,
    best_cycle_input,
    best_opportunity,
    best_path_input,
    find_cycles,
    optimal_two_pool,
)

UINT112 = 2**112 - 1
reserves = st.integers(1, UINT112)
fees = st.sampled_from([30, 25, 5, 100, 0])
small_reserves = st.integers(1, 1500)
# Pools a bot would trade: at least 10^9 raw units a side (1,000 units of a 6-decimal token).
deep_reserves = st.integers(10**9, 10**30)


def path_out(amount_in: int, hops: Sequence[tuple[int, int, int]]) -> int:
    for reserve_in, reserve_out, fee_bps in hops:
        amount_in = get_amount_out(amount_in, reserve_in, reserve_out, fee_bps)
    return amount_in


def profit(amount_in: int, hops: Sequence[tuple[int, int, int]]) -> int:
    return path_out(amount_in, hops) - amount_in


def exhaustive_max(hops: Sequence[tuple[int, int, int]]) -> int:
    """The exact maximum profit: beyond the last pool's out-reserve every input loses."""
    return max(profit(amount_in, hops) for amount_in in range(hops[-1][1] + 1))


def flooring_tolerance(amount_in: int, hops: Sequence[tuple[int, int, int]]) -> int:
    """1 wei of output plus two units of every intermediate amount, at what the rest of the
    path pays for a unit there (flooring loses less than one unit at each hop)."""
    tolerance, amount = 1, amount_in
    for position in range(1, len(hops)):
        amount = get_amount_out(amount, *hops[position - 1])
        rest = hops[position:]
        tolerance += 2 * (path_out(amount + 1, rest) - path_out(amount, rest))
    return tolerance


def ternary_max(hops: Sequence[tuple[int, int, int]]) -> int:
    """Ternary search on the exact integer profit over ``[0, last out-reserve]``."""
    low, high = 0, hops[-1][1]
    while high - low > 2:
        third = (high - low) // 3
        left, right = low + third, high - third
        if profit(left, hops) < profit(right, hops):
            low = left + 1
        else:
            high = right
    return max(profit(amount_in, hops) for amount_in in range(low, high + 1))


# --- V2 math ---------------------------------------------------------------------------------


@given(amount_in=reserves, reserve_in=reserves, reserve_out=reserves)
def test_get_amount_out_is_uniswap_v2_library_bit_for_bit(
    amount_in: int, reserve_in: int, reserve_out: int
) -> None:
    with_fee = amount_in * 997
    expected = with_fee * reserve_out // (reserve_in * 1000 + with_fee)
    assert get_amount_out(amount_in, reserve_in, reserve_out) == expected
    # A 25 bps fork (PancakeSwap V2: 9975/10000).
    with_fee = amount_in * 9975
    expected = with_fee * reserve_out // (reserve_in * 10000 + with_fee)
    assert get_amount_out(amount_in, reserve_in, reserve_out, 25) == expected


@given(reserve_in=reserves, reserve_out=st.integers(2, UINT112), data=st.data())
def test_get_amount_in_is_uniswap_v2_library_and_min_amount_in_is_minimal(
    reserve_in: int, reserve_out: int, data: st.DataObject
) -> None:
    amount_out = data.draw(st.integers(1, reserve_out - 1))
    fee_bps = data.draw(fees)
    if fee_bps == 30:
        expected = reserve_in * amount_out * 1000 // ((reserve_out - amount_out) * 997) + 1
        assert get_amount_in(amount_out, reserve_in, reserve_out) == expected
    charged = get_amount_in(amount_out, reserve_in, reserve_out, fee_bps)
    assert get_amount_out(charged, reserve_in, reserve_out, fee_bps) >= amount_out
    minimum = min_amount_in(amount_out, reserve_in, reserve_out, fee_bps)
    assert get_amount_out(minimum, reserve_in, reserve_out, fee_bps) >= amount_out
    assert get_amount_out(minimum - 1, reserve_in, reserve_out, fee_bps) < amount_out
    assert charged - minimum in (0, 1)


@given(
    amounts=st.tuples(reserves, reserves),
    reserve_in=reserves,
    reserve_out=reserves,
    more=st.integers(0, 10**30),
    fee_bps=fees,
)
def test_get_amount_out_is_monotonic_and_never_drains_the_pool(
    amounts: tuple[int, int], reserve_in: int, reserve_out: int, more: int, fee_bps: int
) -> None:
    small, large = sorted(amounts)
    out_small = get_amount_out(small, reserve_in, reserve_out, fee_bps)
    out_large = get_amount_out(large, reserve_in, reserve_out, fee_bps)
    assert out_small <= out_large < reserve_out
    assert get_amount_out(small, reserve_in + more, reserve_out, fee_bps) <= out_small
    assert get_amount_out(small, reserve_in, reserve_out + more, fee_bps) >= out_small
    assert get_amount_out(small, reserve_in, reserve_out, fee_bps + 1) <= out_small


def test_no_output_returns_zero_and_invalid_arguments_raise() -> None:
    assert get_amount_out(0, 10**18, 10**18) == 0
    assert get_amount_out(10**18, 0, 10**18) == 0
    assert get_amount_out(10**18, 10**18, 0) == 0
    assert get_amount_in(0, 10**18, 10**18) == 0
    assert min_amount_in(0, 10**18, 10**18) == 0
    for bad in ((-1, 10, 10, 30), (1, -10, 10, 30), (1, 10, -10, 30), (1, 10, 10, 10_000)):
        with pytest.raises(ValueError):
            get_amount_out(*bad)
    with pytest.raises(ValueError, match="fee_bps"):
        get_amount_out(1, 10, 10, -1)
    for impossible in ((10, 1000, 10), (11, 1000, 10), (1, 0, 10)):
        with pytest.raises(InsufficientLiquidityError):
            get_amount_in(*impossible)
        with pytest.raises(InsufficientLiquidityError):
            min_amount_in(*impossible)
    with pytest.raises(ValueError):
        get_amount_in(-1, 10, 10)


@given(amount_in=reserves, hops=st.lists(st.tuples(reserves, reserves), min_size=1, max_size=4))
def test_amounts_out_chains_get_amount_out(amount_in: int, hops: list[tuple[int, int]]) -> None:
    amounts = amounts_out(amount_in, hops)
    assert amounts[0] == amount_in and len(amounts) == len(hops) + 1
    for (reserve_in, reserve_out), before, after in zip(
        hops, amounts[:-1], amounts[1:], strict=True
    ):
        assert after == get_amount_out(before, reserve_in, reserve_out)


@given(reserve0=reserves, reserve1=reserves, amount_in=st.integers(0, 10**34), zero=st.booleans())
def test_pool_swap_pays_get_amount_out_and_keeps_the_fee_in_the_pool(
    reserve0: int, reserve1: int, amount_in: int, zero: bool
) -> None:
    pool = Pool("0xp", "0xa", "0xb", reserve0, reserve1, 30)
    token_in = "0xa" if zero else "0xb"
    amount_out, after = pool.swap(token_in, amount_in)
    reserve_in, reserve_out = pool.reserves_for(token_in)
    assert amount_out == get_amount_out(amount_in, reserve_in, reserve_out)
    assert after.reserves_for(token_in) == (reserve_in + amount_in, reserve_out - amount_out)
    assert after.reserve0 * after.reserve1 >= pool.reserve0 * pool.reserve1
    assert (after.address, after.token0, after.token1, after.fee_bps) == ("0xp", "0xa", "0xb", 30)
    assert pool.spot_price(token_in) == spot_price(reserve_in, reserve_out)
    assert pool.price0 * pool.price1 == 1


def test_pool_rejects_foreign_tokens_and_invalid_state() -> None:
    pool = Pool("0xp", "0xa", "0xb", 10, 20)
    assert pool.reserves_for("0xb") == (20, 10) and pool.token_out("0xb") == "0xa"
    with pytest.raises(ValueError, match="not in pool"):
        pool.reserves_for("0xc")
    with pytest.raises(ValueError):
        Pool("0xp", "0xa", "0xa", 10, 20)
    with pytest.raises(ValueError):
        Pool("0xp", "0xa", "0xb", -1, 20)
    with pytest.raises(ValueError):
        Pool("0xp", "0xa", "0xb", 1, 20, 10_000)
    with pytest.raises(InsufficientLiquidityError):
        Pool("0xp", "0xa", "0xb", 0, 20).spot_price("0xa")


# --- two pools -------------------------------------------------------------------------------


def test_worked_example_from_the_reference_report() -> None:
    # §4.3 of relay-keepers-uniswap.md prints Ra_out as 2.1e27, but its own figures
    # (x* ≈ 1.05948e19, profit 229070957482988274) come from 2.1e24: 2,100 Y per X on pool A
    # against 2,000 on pool B. With 2.1e27 the gap is 1,000x and the optimum ~3e19.
    ra, rb = (1000 * 10**18, 21 * 10**23), (2 * 10**24, 1000 * 10**18)
    hops = [(*ra, 30), (*rb, 30)]
    amount_in = optimal_two_pool(*ra, *rb)
    assert 10_594 * 10**15 <= amount_in < 10_595 * 10**15
    assert profit(amount_in, hops) == 229070957482988274
    assert ternary_max(hops) == 229070957482988274


@settings(max_examples=150, deadline=None)
@given(
    ra=st.tuples(small_reserves, small_reserves),
    rb=st.tuples(small_reserves, small_reserves),
    fee_bps=fees,
)
def test_two_pool_optimum_is_the_exact_integer_maximum(
    ra: tuple[int, int], rb: tuple[int, int], fee_bps: int
) -> None:
    hops = [(*ra, fee_bps), (*rb, fee_bps)]
    amount_in = optimal_two_pool(*ra, *rb, fee_bps)
    best = exhaustive_max(hops)
    if best == 0:
        assert amount_in == 0
    else:
        assert profit(amount_in, hops) == best


@settings(max_examples=150, deadline=None)
@given(
    ra=st.tuples(deep_reserves, deep_reserves),
    rb=st.tuples(deep_reserves, deep_reserves),
    fee_bps=fees,
    others=st.lists(st.integers(0, 10**30), max_size=20),
)
def test_two_pool_optimum_beats_ternary_search_and_every_other_input(
    ra: tuple[int, int], rb: tuple[int, int], fee_bps: int, others: list[int]
) -> None:
    hops = [(*ra, fee_bps), (*rb, fee_bps)]
    amount_in = optimal_two_pool(*ra, *rb, fee_bps)
    best = profit(amount_in, hops) + flooring_tolerance(amount_in, hops)
    assert best >= ternary_max(hops)
    assert all(best >= profit(other, hops) for other in others)


@given(ra=st.tuples(reserves, reserves), rb_in=reserves, fee_bps=fees, data=st.data())
def test_no_arbitrage_gives_zero(
    ra: tuple[int, int], rb_in: int, fee_bps: int, data: st.DataObject
) -> None:
    # No arbitrage iff γ²·Ra_out·Rb_out <= Ra_in·Rb_in: draw Rb_out on the losing side.
    fee = 10_000 - fee_bps
    ceiling = ra[0] * rb_in * 10_000**2 // (fee * fee * ra[1])
    assume(ceiling >= 1)
    rb_out = data.draw(st.integers(1, min(ceiling, UINT112)))
    hops = [(*ra, fee_bps), (rb_in, rb_out, fee_bps)]
    assert optimal_two_pool(*ra, rb_in, rb_out, fee_bps) == 0
    assert best_path_input(hops) == (0, 0)
    assert ternary_max(hops) <= 0


def test_invalid_path_arguments_raise() -> None:
    with pytest.raises(ValueError):
        optimal_two_pool(-1, 10, 10, 10)
    with pytest.raises(ValueError):
        optimal_two_pool(10, 10, 10, 10, fee_bps=10_000)
    assert optimal_two_pool(0, 10, 10, 10) == 0
    assert optimal_two_pool(10, 0, 10, 10) == 0


# --- n hops ----------------------------------------------------------------------------------


@settings(max_examples=100, deadline=None)
@given(hops=st.lists(st.tuples(small_reserves, small_reserves, fees), min_size=3, max_size=3))
def test_three_hop_best_input_is_the_exact_integer_maximum(
    hops: list[tuple[int, int, int]],
) -> None:
    amount_in, gain = best_path_input(hops)
    assert gain == profit(amount_in, hops) == max(0, exhaustive_max(hops))
    assert amount_in == 0 or gain > 0


@settings(max_examples=150, deadline=None)
@given(
    hops=st.lists(st.tuples(deep_reserves, deep_reserves, fees), min_size=3, max_size=4),
    others=st.lists(st.integers(0, 10**30), max_size=20),
)
def test_n_hop_best_input_beats_ternary_search_and_every_other_input(
    hops: list[tuple[int, int, int]], others: list[int]
) -> None:
    amount_in, gain = best_path_input(hops)
    assert gain == profit(amount_in, hops) >= 0
    assert gain + flooring_tolerance(amount_in, hops) >= ternary_max(hops)
    assert all(gain + flooring_tolerance(amount_in, hops) >= profit(o, hops) for o in others)


# --- cycles ----------------------------------------------------------------------------------

TOKENS = ("0xa", "0xb", "0xc")


def two_dex_pools() -> list[Pool]:
    """Both DEXes list every pair of three tokens; DEX 2 prices B a little higher."""
    pools = []
    for dex, (first, second) in itertools.product((1, 2), itertools.combinations(TOKENS, 2)):
        skew = 1_010 if dex == 2 and "0xb" in (first, second) else 1_000
        reserve_b_side = 10**21 * skew // 1_000
        reserve0, reserve1 = (
            (10**21, reserve_b_side) if first != "0xb" else (reserve_b_side, 10**21)
        )
        pools.append(Pool(f"0x{dex}{first[-1]}{second[-1]}", first, second, reserve0, reserve1))
    return pools


def expected_cycles(pools: list[Pool], start: str) -> set[tuple[tuple[str, ...], tuple[str, ...]]]:
    """Every (tokens, pools) closed walk through distinct pools and intermediate tokens."""
    between = {
        frozenset(pair): [p.address for p in pools if {p.token0, p.token1} == set(pair)]
        for pair in itertools.combinations(TOKENS, 2)
    }
    others = [token for token in TOKENS if token != start]
    found = set()
    for middle in others:
        legs = between[frozenset((start, middle))]
        found |= {((start, middle), (a, b)) for a, b in itertools.permutations(legs, 2)}
    for first, second in itertools.permutations(others, 2):
        route = (start, first, second)
        closed = (*route, start)
        options = [between[frozenset(closed[i : i + 2])] for i in range(3)]
        found |= {(route, chosen) for chosen in itertools.product(*options)}
    return found


def test_find_cycles_lists_each_cycle_once_both_directions_included() -> None:
    pools = two_dex_pools()
    cycles = find_cycles(pools, ["0xa"], max_hops=3)
    found = [(cycle.tokens, cycle.pools) for cycle in cycles]
    assert len(found) == len(set(found)) == 20  # 2 pairs × 2 orders + 2 routes × 2³ pool picks
    assert set(found) == expected_cycles(pools, "0xa")
    # A cycle and its reverse are both listed: they are different trades.
    assert (("0xa", "0xb"), ("0x1ab", "0x2ab")) in found
    assert (("0xa", "0xb"), ("0x2ab", "0x1ab")) in found
    assert (("0xa", "0xb", "0xc"), ("0x1ab", "0x1bc", "0x1ac")) in found
    assert (("0xa", "0xc", "0xb"), ("0x1ac", "0x1bc", "0x1ab")) in found
    assert all(cycle.start_token == "0xa" for cycle in cycles)
    by_address = {pool.address: pool for pool in pools}
    for cycle in cycles:
        assert cycle == Cycle.through([by_address[a] for a in cycle.pools], "0xa")
    assert len(find_cycles(pools, ["0xa"], max_hops=2)) == 4
    # Rotations that start at another start token borrow a different asset: listed again.
    assert len(find_cycles(pools, ["0xa", "0xb"], max_hops=3)) == 40
    with pytest.raises(ValueError):
        find_cycles(pools, ["0xa"], max_hops=1)


def test_cycle_index_answers_which_cycles_a_moved_pool_affects() -> None:
    pools = two_dex_pools()
    index = CycleIndex.build(pools, ["0xa"])
    assert len(index.cycles) == 20
    touching = index.cycles_touching("0x1bc")
    assert len(touching) == 8 and all("0x1bc" in cycle.pools for cycle in touching)
    assert {c for c in index.cycles if "0x1ab" in c.pools} == set(index.cycles_touching("0x1ab"))
    selling_b = index.cycles_touching("0x1bc", token_in="0xb")
    assert len(selling_b) == 4
    assert all(cycle.tokens[cycle.pools.index("0x1bc")] == "0xb" for cycle in selling_b)
    assert index.cycles_touching("0xdead") == ()
    with pytest.raises(ValueError, match="lead back"):
        Cycle.through([pools[0]], "0xa")


def execute(cycle: Cycle, pools: dict[str, Pool] | ChainMap[str, Pool], amount_in: int) -> int:
    """Swap ``amount_in`` around ``cycle`` pool by pool with :meth:`Pool.swap`."""
    amount = amount_in
    for address, token_in in zip(cycle.pools, cycle.tokens, strict=True):
        amount, _ = pools[address].swap(token_in, amount)
    return amount


def test_best_opportunity_after_a_pending_swap_matches_execution() -> None:
    pools = {pool.address: pool for pool in two_dex_pools()}
    index = CycleIndex.build(pools.values(), ["0xa"])
    # The skewed DEX 2 already pays: buy B on DEX 2 (more B per A), sell it on DEX 1.
    before = best_opportunity(index.cycles, pools)
    assert before is not None and before.profit > 0
    # A pending trade sells 5% of pool 0x1ab's B for A: B gets cheaper there still.
    sold = pools["0x1ab"].reserves_for("0xb")[0] // 20
    after_swap = ChainMap({"0x1ab": pools["0x1ab"].swap("0xb", sold)[1]}, pools)
    opportunity = best_opportunity(index.cycles_touching("0x1ab", token_in="0xa"), after_swap)
    assert opportunity is not None
    best_everywhere = best_opportunity(index.cycles, after_swap)
    assert best_everywhere == opportunity
    assert opportunity.amount_out == execute(opportunity.cycle, after_swap, opportunity.amount_in)
    assert opportunity.profit == opportunity.amount_out - opportunity.amount_in > before.profit
    assert opportunity.amounts[0] == opportunity.amount_in
    assert opportunity.amounts[-1] == opportunity.amount_out
    assert len(opportunity.amounts) == len(opportunity.cycle.pools) + 1
    assert best_cycle_input(opportunity.cycle, after_swap) == (
        opportunity.amount_in,
        opportunity.amount_out,
        opportunity.profit,
    )
    assert best_opportunity(index.cycles, after_swap, min_profit=opportunity.profit) is None


@settings(max_examples=60, deadline=None)
@given(reserve_pairs=st.lists(st.tuples(deep_reserves, deep_reserves), min_size=6, max_size=6))
def test_best_opportunity_is_the_best_cycle_and_none_without_profit(
    reserve_pairs: list[tuple[int, int]],
) -> None:
    shape = two_dex_pools()
    pools = {
        p.address: Pool(p.address, p.token0, p.token1, *reserve_pairs[i], p.fee_bps)
        for i, p in enumerate(shape)
    }
    cycles = find_cycles(pools.values(), ["0xa"])
    results = [best_cycle_input(cycle, pools) for cycle in cycles]
    best_profit = max(result[2] for result in results)
    opportunity = best_opportunity(cycles, pools)
    if best_profit <= 0:
        assert opportunity is None
        return
    assert opportunity is not None and opportunity.profit == best_profit
    assert results[cycles.index(opportunity.cycle)] == (
        opportunity.amount_in,
        opportunity.amount_out,
        opportunity.profit,
    )
    assert opportunity.amount_out == execute(opportunity.cycle, pools, opportunity.amount_in)
    assert best_opportunity(cycles, pools, min_profit=best_profit) is None


def test_best_opportunity_finds_nothing_in_a_market_at_one_price() -> None:
    pools = {
        p.address: Pool(p.address, p.token0, p.token1, 10**21, 10**21, p.fee_bps)
        for p in two_dex_pools()
    }
    assert best_opportunity(find_cycles(pools.values(), TOKENS), pools) is None


def test_best_opportunity_looks_past_a_small_pool_with_a_wild_price() -> None:
    # Cycle A: a 10,000x mispricing between two tiny pools — a large upper bound, little profit.
    # Cycle B: a 5 % gap between deep pools — a tight bound below A's, but more profit.
    weth, tiny, deep = "0x1", "0x2", "0x3"
    pools = {
        pool.address: pool
        for pool in (
            Pool("0xa1", weth, tiny, 10**13, 10**13),
            Pool("0xa2", weth, tiny, 10**17, 10**13),
            Pool("0xb1", weth, deep, 10**21, 10**21),
            Pool("0xb2", weth, deep, 105 * 10**19, 10**21),
        )
    }
    cycles = find_cycles(pools.values(), [weth], max_hops=2)
    by_pools = {cycle.pools: best_cycle_input(cycle, pools) for cycle in cycles}
    assert 0 < by_pools["0xa1", "0xa2"][2] < by_pools["0xb1", "0xb2"][2]
    opportunity = best_opportunity(cycles, pools)
    assert opportunity is not None and opportunity.cycle.pools == ("0xb1", "0xb2")
    assert opportunity.profit == by_pools["0xb1", "0xb2"][2]
