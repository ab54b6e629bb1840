"""The exact search against brute force over V2/V3 mixes whose best trade crosses V3 ticks."""

from __future__ import annotations

from functools import partial

from hypothesis import given, settings
from hypothesis import strategies as st

from simulation.amm import Pool
from simulation.arbitrage import search_path_input
from simulation.pools import PoolState
from simulation.uniswap_v3_math import get_sqrt_ratio_at_tick
from simulation.uniswap_v3_pool import V3Pool

TKN, WETH = "0x" + "11" * 20, "0x" + "ee" * 20  # sorted: TKN is token0


@st.composite
def v3_pools(
    draw: st.DrawFn, address: str, centre: int = 0, spread: int = 400, scale: int = 1
) -> V3Pool:
    """A small V3 TKN/WETH pool within ``spread`` ticks of ``centre`` (price 1 at 0) whose
    in-range liquidity (``scale`` times 300..3000 a range) changes every few ticks: trades
    worth brute-forcing cross several initialized ticks."""
    spacing = draw(st.sampled_from([10, 60]))
    tick = centre + draw(st.integers(-spread, spread))
    pool = V3Pool(
        address,
        TKN,
        WETH,
        draw(st.sampled_from([100, 500, 3000, 10000])),
        spacing,
        get_sqrt_ratio_at_tick(tick),
        tick,
        bitmap_complete=True,
    )
    base = tick // spacing * spacing
    liquidity = st.integers(300 * scale, 3000 * scale)
    ranges = [(base - 400 * spacing, base + 400 * spacing, draw(liquidity))]
    for _ in range(draw(st.integers(1, 4))):
        lower = base - spacing * draw(st.integers(0, 40))
        upper = base + spacing * draw(st.integers(1, 40))
        ranges.append((lower, upper, draw(liquidity)))
    for lower, upper, liquidity in ranges:
        changed = pool.with_position_change(lower, upper, liquidity)
        assert changed is not None
        pool = changed
    return pool


def v2_pools(address: str) -> st.SearchStrategy[Pool]:
    reserve = st.integers(1_000, 8_000)
    fee = st.sampled_from([5, 30, 100])
    return st.builds(Pool, st.just(address), st.just(TKN), st.just(WETH), reserve, reserve, fee)


def any_pool(address: str) -> st.SearchStrategy[PoolState]:
    return st.one_of(v3_pools(address), v2_pools(address))


def _brute_force(pools: list[PoolState], limit: int) -> int:
    best = 0
    for amount in range(1, limit):
        best = max(best, pools[1].amount_out(TKN, pools[0].amount_out(WETH, amount)) - amount)
    return best


@settings(max_examples=10, deadline=None)
@given(first=any_pool("0x" + "a1" * 20), second=any_pool("0x" + "b1" * 20))
def test_the_search_finds_the_brute_force_maximum_across_ticks(first, second):
    """WETH into one pool, TKN back through the other: the profit found is within 3 wei of the
    most any input up to 8,000 wei makes (more than these pools hold near their price; the
    search's bound is a few units of what flooring costs), and it is what the pools pay."""
    pools: list[PoolState] = [first, second]
    steps = [partial(first.amount_out, WETH), partial(second.amount_out, TKN)]
    amount_in, profit = search_path_input(steps, first.rate(WETH) * second.rate(TKN))
    brute = _brute_force(pools, 8_000)
    assert brute - 3 <= profit <= brute
    if profit:
        assert second.amount_out(TKN, first.amount_out(WETH, amount_in)) - amount_in == profit


UNIT = 10**6
"""What one unit of a coarse TKN is worth in WETH's smallest units (as a USDC unit is worth
~3e8 wei and a WBTC unit ~2e11): tick 138162 is price 1e6."""
COARSE_TICK = 138_162


@st.composite
def coarse_v2_pools(draw: st.DrawFn, address: str) -> Pool:
    units = draw(st.integers(300, 3000))
    weth = units * UNIT * draw(st.integers(80, 125)) // 100
    return Pool(address, TKN, WETH, units, weth, draw(st.sampled_from([5, 30, 100])))


def coarse_pool(address: str) -> st.SearchStrategy[PoolState]:
    return st.one_of(
        v3_pools(address, centre=COARSE_TICK, spread=2000, scale=1000), coarse_v2_pools(address)
    )


def _least_inputs(pool: PoolState, most: int) -> list[int]:
    """For each TKN amount 1..``most``, the least WETH input ``pool`` turns into at least that
    much: a bisection between the previous amount's least input and the exact-output quote
    (which can be far above it: the quote's price move is rounded up, the output floored)."""
    least, lower = [], 0
    for amount_out in range(1, most + 1):
        upper = pool.amount_in(WETH, amount_out)
        assert upper is not None and pool.amount_out(WETH, upper) >= amount_out
        while upper - lower > 1:
            middle = (lower + upper) // 2
            if pool.amount_out(WETH, middle) >= amount_out:
                upper = middle
            else:
                lower = middle
        least.append(upper)
        lower = upper - 1
    return least


@settings(max_examples=20, deadline=None)
@given(first=coarse_pool("0x" + "a1" * 20), second=coarse_pool("0x" + "b1" * 20))
def test_the_search_finds_the_trade_through_a_coarse_token(first, second):
    """WETH into one pool, a coarse TKN back through the other: the best input makes the same
    TKN as the cheapest input that makes that much, so the maximum over every input up to
    2**34 wei (past what either pool holds) is a maximum over TKN amounts. The search is
    within two TKN units' worth of it (what flooring at the TKN hop can hide) and never
    misses a trade worth more."""
    steps = [partial(first.amount_out, WETH), partial(second.amount_out, TKN)]
    amount_in, profit = search_path_input(steps, first.rate(WETH) * second.rate(TKN))
    least = _least_inputs(first, first.amount_out(WETH, 2**34))
    brute = max([0] + [second.amount_out(TKN, tkn) - cost for tkn, cost in enumerate(least, 1)])
    assert brute - 2 * UNIT <= profit <= brute
    if profit:
        assert second.amount_out(TKN, first.amount_out(WETH, amount_in)) - amount_in == profit
