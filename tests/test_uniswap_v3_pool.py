"""The V3 pool value: v3-core's published swap snapshots, its logs, JSON snapshots, properties.

``v3core_swap_snapshots.json`` holds the 240 expectations of v3-core's
``test/__snapshots__/UniswapV3Pool.swaps.spec.ts.snap`` (Uniswap/v3-core@d8b1c63, GPL-2.0-or-later):
per pool configuration of ``TEST_POOLS`` and swap of ``DEFAULT_POOL_SWAP_TESTS`` in
``test/UniswapV3Pool.swaps.spec.ts`` (reproduced below as tables), the pool's balances after the
mints, its balance deltas, fee growth, ticks and prices, or the revert. Our pool, built from the
same positions, must give every one exactly.
"""

from __future__ import annotations

import json
from decimal import ROUND_HALF_UP, Decimal, localcontext
from pathlib import Path

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from v3_fixtures import (
    POOL,
    TOKEN0,
    TOKEN1,
    encode_price_sqrt,
    max_liquidity_per_tick,
    max_tick,
    min_tick,
    pool_with_positions,
)

from chain.topics import V3_BURN, V3_INITIALIZE, V3_MINT, V3_POOL_CREATED, V3_SWAP, event_topic
from chain.types import Log
from simulation.uniswap_v3_math import (
    MAX_SQRT_RATIO,
    MIN_SQRT_RATIO,
    V3Revert,
    get_amount0_delta,
    get_amount1_delta,
    get_sqrt_ratio_at_tick,
)
from simulation.uniswap_v3_pool import MissingTickWordError, V3Pool

E18 = 10**18
INT256_MAX = (1 << 255) - 1

# TEST_POOLS: description -> (fee, starting sqrt price, positions (lower, upper, liquidity)).
_M = 60  # TICK_SPACINGS[FeeAmount.MEDIUM]
TEST_POOLS: dict[str, tuple[int, int, list[tuple[int, int, int]]]] = {
    "low fee, 1:1 price, 2e18 max range liquidity": (
        500,
        encode_price_sqrt(1, 1),
        [(min_tick(10), max_tick(10), 2 * E18)],
    ),
    "medium fee, 1:1 price, 2e18 max range liquidity": (
        3000,
        encode_price_sqrt(1, 1),
        [(min_tick(_M), max_tick(_M), 2 * E18)],
    ),
    "high fee, 1:1 price, 2e18 max range liquidity": (
        10000,
        encode_price_sqrt(1, 1),
        [(min_tick(200), max_tick(200), 2 * E18)],
    ),
    "medium fee, 10:1 price, 2e18 max range liquidity": (
        3000,
        encode_price_sqrt(10, 1),
        [(min_tick(_M), max_tick(_M), 2 * E18)],
    ),
    "medium fee, 1:10 price, 2e18 max range liquidity": (
        3000,
        encode_price_sqrt(1, 10),
        [(min_tick(_M), max_tick(_M), 2 * E18)],
    ),
    "medium fee, 1:1 price, 0 liquidity, all liquidity around current price": (
        3000,
        encode_price_sqrt(1, 1),
        [(min_tick(_M), -_M, 2 * E18), (_M, max_tick(_M), 2 * E18)],
    ),
    "medium fee, 1:1 price, additional liquidity around current price": (
        3000,
        encode_price_sqrt(1, 1),
        [
            (min_tick(_M), max_tick(_M), 2 * E18),
            (min_tick(_M), -_M, 2 * E18),
            (_M, max_tick(_M), 2 * E18),
        ],
    ),
    "low fee, large liquidity around current price (stable swap)": (
        500,
        encode_price_sqrt(1, 1),
        [(-10, 10, 2 * E18)],
    ),
    "medium fee, token0 liquidity only": (3000, encode_price_sqrt(1, 1), [(0, 2000 * _M, 2 * E18)]),
    "medium fee, token1 liquidity only": (
        3000,
        encode_price_sqrt(1, 1),
        [(-2000 * _M, 0, 2 * E18)],
    ),
    "close to max price": (
        3000,
        encode_price_sqrt(2**127, 1),
        [(min_tick(_M), max_tick(_M), 2 * E18)],
    ),
    "close to min price": (
        3000,
        encode_price_sqrt(1, 2**127),
        [(min_tick(_M), max_tick(_M), 2 * E18)],
    ),
    "max full range liquidity at 1:1 price with default fee": (
        3000,
        encode_price_sqrt(1, 1),
        [(min_tick(_M), max_tick(_M), max_liquidity_per_tick(_M))],
    ),
    "initialized at the max ratio": (
        3000,
        MAX_SQRT_RATIO - 1,
        [(min_tick(_M), max_tick(_M), 2 * E18)],
    ),
    "initialized at the min ratio": (
        3000,
        MIN_SQRT_RATIO,
        [(min_tick(_M), max_tick(_M), 2 * E18)],
    ),
}

# DEFAULT_POOL_SWAP_TESTS: description -> (zeroForOne, amountSpecified, sqrtPriceLimit or None).
_ONE, _WEI = "1.0000", "0.0000000000000010000"
_HALF, _TWO = encode_price_sqrt(50, 100), encode_price_sqrt(200, 100)
SWAPS: dict[str, tuple[bool, int, int | None]] = {
    f"swap exactly {_ONE} token0 for token1": (True, E18, None),
    f"swap exactly {_ONE} token1 for token0": (False, E18, None),
    f"swap token0 for exactly {_ONE} token1": (True, -E18, None),
    f"swap token1 for exactly {_ONE} token0": (False, -E18, None),
    f"swap exactly {_ONE} token0 for token1 to price 0.50000": (True, E18, _HALF),
    f"swap exactly {_ONE} token1 for token0 to price 2.0000": (False, E18, _TWO),
    f"swap token0 for exactly {_ONE} token1 to price 0.50000": (True, -E18, _HALF),
    f"swap token1 for exactly {_ONE} token0 to price 2.0000": (False, -E18, _TWO),
    f"swap exactly {_WEI} token0 for token1": (True, 1000, None),
    f"swap exactly {_WEI} token1 for token0": (False, 1000, None),
    f"swap token0 for exactly {_WEI} token1": (True, -1000, None),
    f"swap token1 for exactly {_WEI} token0": (False, -1000, None),
    "swap token1 for token0 to price 2.5000": (False, INT256_MAX, encode_price_sqrt(5, 2)),
    "swap token0 for token1 to price 0.40000": (True, INT256_MAX, encode_price_sqrt(2, 5)),
    "swap token0 for token1 to price 2.5000": (True, INT256_MAX, encode_price_sqrt(5, 2)),
    "swap token1 for token0 to price 0.40000": (False, INT256_MAX, encode_price_sqrt(2, 5)),
}
SNAPSHOTS = json.loads((Path(__file__).parent / "v3core_swap_snapshots.json").read_text())


def format_price(sqrt_price_x96: int) -> str:
    """``formatPrice``: ``(sqrtP / 2^96)^2`` to 5 significant digits, as decimal.js prints it."""
    with localcontext() as context:
        context.prec = 120
        price = (Decimal(sqrt_price_x96) / (1 << 96)) ** 2
        exponent = price.adjusted()
        rounded = price.quantize(Decimal(10) ** (exponent - 4), ROUND_HALF_UP)
        if rounded.adjusted() != exponent:  # 9.99995 -> 10.000
            exponent = rounded.adjusted()
            rounded = price.quantize(Decimal(10) ** (exponent - 4), ROUND_HALF_UP)
        if exponent >= 5:
            digits = str(rounded.scaleb(-exponent).quantize(Decimal("0.0001")))
            return f"{digits}e+{exponent}"
        return f"{rounded:f}"


def test_the_tables_cover_every_published_snapshot():
    assert len(SNAPSHOTS) == len(TEST_POOLS) * len(SWAPS) == 240
    assert {(row["pool"], row["swap"]) for row in SNAPSHOTS} == {
        (pool, swap) for pool in TEST_POOLS for swap in SWAPS
    }


@pytest.mark.parametrize(
    "expected", SNAPSHOTS, ids=[f"{row['pool']} | {row['swap']}" for row in SNAPSHOTS]
)
def test_swaps_match_v3_core_snapshots(expected):
    fee, start_price, positions = TEST_POOLS[expected["pool"]]
    pool, paid0, paid1 = pool_with_positions(fee, start_price, positions)
    zero_for_one, amount, limit = SWAPS[expected["swap"]]
    if "swapError" in expected:
        assert (str(paid0), str(paid1)) == (expected["poolBalance0"], expected["poolBalance1"])
        with pytest.raises(V3Revert, match=expected["swapError"]):
            pool.simulate(zero_for_one, amount, limit)
        return
    result = pool.simulate(zero_for_one, amount, limit)
    growth0, growth1 = (result.fee_growth_x128, 0) if zero_for_one else (0, result.fee_growth_x128)
    assert {
        "amount0Before": str(paid0),
        "amount1Before": str(paid1),
        "amount0Delta": str(result.amount0),
        "amount1Delta": str(result.amount1),
        "feeGrowthGlobal0X128Delta": str(growth0),
        "feeGrowthGlobal1X128Delta": str(growth1),
        "tickBefore": pool.tick,
        "tickAfter": result.tick,
        "poolPriceBefore": format_price(pool.sqrt_price_x96),
        "poolPriceAfter": format_price(result.sqrt_price_x96),
    } == {key: value for key, value in expected.items() if key not in ("pool", "swap")}


# ---------------------------------------------------------------- logs


def _word(value: int) -> bytes:
    return (value % (1 << 256)).to_bytes(32, "big")


def _log(topics: tuple[bytes, ...], *words: int) -> Log:
    data = b"".join(_word(w) for w in words)
    return Log(POOL, topics, data, 7, "0x" + "07" * 32, "0x" + "00" * 32, 0, 0)


def _mint(lower: int, upper: int, liquidity: int) -> Log:
    owner = _word(0xABC)
    return _log((V3_MINT, owner, _word(lower), _word(upper)), 0xABC, liquidity, 5, 6)


def _burn(lower: int, upper: int, liquidity: int) -> Log:
    owner = _word(0xABC)
    return _log((V3_BURN, owner, _word(lower), _word(upper)), liquidity, 5, 6)


def test_event_topics_are_the_mainnet_ones():
    # Swap and PoolCreated: ../shared/reference/relay-keepers-uniswap.md §4.4; Mint, Burn and
    # Initialize: the events' signatures in v3-core IUniswapV3PoolEvents.sol @d8b1c63.
    assert V3_SWAP.hex() == "c42079f94a6350d7e6235f29174924f928cc2ac818eb64fed8004e115fbcca67"
    assert V3_POOL_CREATED.hex() == (
        "783cca1c0412dd0d695e784568c96da2e9c22ff989357a2e8b1d9b2b4e6b7118"
    )
    assert event_topic("Mint(address,address,int24,int24,uint128,uint256,uint256)") == V3_MINT
    assert V3_MINT.hex().startswith("7a53080b")
    assert V3_BURN.hex().startswith("0c396cd9")
    assert V3_INITIALIZE.hex().startswith("98636036")


def test_mint_and_burn_logs_keep_ticks_bitmap_and_liquidity():
    positions = [(min_tick(60), max_tick(60), 2 * E18)]
    pool, _, _ = pool_with_positions(3000, encode_price_sqrt(1, 1), positions)
    # A position around the price (in range) and one above it (out of range).
    minted = pool.apply_log(_mint(-120, 180, 5 * E18))
    minted = minted.apply_log(_mint(600, 1200, 3 * E18))
    built, _, _ = pool_with_positions(
        3000, encode_price_sqrt(1, 1), [*positions, (-120, 180, 5 * E18), (600, 1200, 3 * E18)]
    )
    assert minted == built and minted.words == built.words and minted.ticks == built.ticks
    assert minted.liquidity == 7 * E18 and minted.ticks[180] == (5 * E18, -5 * E18)
    assert minted.simulate(False, 5 * E18) == built.simulate(False, 5 * E18)
    # Burning both brings back the original ticks, bits and liquidity.
    burnt = minted.apply_log(_burn(600, 1200, 3 * E18)).apply_log(_burn(-120, 180, 5 * E18))
    assert (burnt.words, burnt.ticks, burnt.liquidity) == (
        pool.words,
        pool.ticks,
        pool.liquidity,
    )
    assert minted.apply_log(_burn(-120, 180, 0)) is None, "a poke changes nothing"


def test_a_burn_of_more_than_the_tick_holds_is_a_malformed_log():
    pool, _, _ = pool_with_positions(3000, encode_price_sqrt(1, 1), [(-60, 60, E18)])
    with pytest.raises(ValueError, match="LS"):
        pool.apply_log(_burn(-60, 60, E18 + 1))
    with pytest.raises(ValueError, match="bad tick range"):
        pool.apply_log(_mint(-61, 60, E18))


def test_swap_and_initialize_logs_set_slot0_exactly():
    created = V3Pool(POOL, TOKEN0, TOKEN1, 500, 10, bitmap_complete=True)
    assert created.amount_out(TOKEN0, 10**18) == 0 and created.amount_in(TOKEN0, 1) is None
    price = encode_price_sqrt(4, 1)
    initialized = created.apply_log(_log((V3_INITIALIZE,), price, 13863))
    assert (initialized.sqrt_price_x96, initialized.tick) == (price, 13863)
    pool = initialized.apply_log(_mint(min_tick(10), max_tick(10), 3 * E18))
    result = pool.simulate(True, 10**17)
    sender = recipient = _word(0x1234)
    event = _log(
        (V3_SWAP, sender, recipient),
        result.amount0,
        result.amount1,
        result.sqrt_price_x96,
        result.liquidity,
        result.tick,
    )
    assert pool.apply_log(event) == pool.after(result) == pool.swap(TOKEN0, 10**17)[1]
    assert (
        pool.apply_log(_log((event_topic("Collect(address,address,int24,int24,uint128,uint128)"),)))
        is None
    )
    with pytest.raises(ValueError, match="5 data words"):
        pool.apply_log(_log((V3_SWAP, sender, recipient), 1, 2))


def test_liquidity_running_out_fills_part_of_an_exact_in_and_none_of_an_exact_out():
    liquidity = 10**20
    pool, _, paid1 = pool_with_positions(500, encode_price_sqrt(1, 1), [(-600, 600, liquidity)])
    # Everything between the price and the range's lower tick, in one step.
    available = get_amount1_delta(
        get_sqrt_ratio_at_tick(-600), pool.sqrt_price_x96, liquidity, False
    )
    assert available == paid1 - 1, "the mint rounded up, the swap rounds down"
    result = pool.simulate(True, 10**30)
    assert result.amount1 == -available and 0 < result.amount0 < 10**30
    assert (result.sqrt_price_x96, result.tick, result.liquidity) == (
        MIN_SQRT_RATIO + 1,
        -887272,
        0,
    )
    assert pool.amount_out(TOKEN0, 10**30) == available
    assert pool.amount_in(TOKEN0, available) is not None
    assert pool.amount_in(TOKEN0, available + 1) is None
    # A price limit stops the swap there, with input left over.
    limit = get_sqrt_ratio_at_tick(-300)
    limited = pool.simulate(True, 10**30, limit)
    assert (
        limited.sqrt_price_x96 == limit and limited.tick == -300 and limited.liquidity == liquidity
    )
    with pytest.raises(V3Revert, match="SPL"):
        pool.simulate(False, 10**18, limit)
    with pytest.raises(V3Revert, match="AS"):
        pool.simulate(True, 0)


# ---------------------------------------------------------------- bitmap words


def test_a_swap_needing_an_unknown_word_names_it_and_resumes_once_it_is_fetched():
    spacing = 10
    # Liquidity in ranges spread over several bitmap words (a word spans 2,560 ticks here).
    positions = [(-30_000 + 2_000 * i, -26_000 + 2_000 * i, E18 * (i + 1)) for i in range(30)]
    full, _, _ = pool_with_positions(500, encode_price_sqrt(1, 1), positions)
    here = full.tick // spacing >> 8
    near = {i: w for i, w in full.words.items() if here - 1 <= i <= here + 1}
    ticks = {t: v for t, v in full.ticks.items() if (t // spacing >> 8) in near}
    partial = V3Pool(
        POOL,
        TOKEN0,
        TOKEN1,
        500,
        spacing,
        full.sqrt_price_x96,
        full.tick,
        full.liquidity,
        near,
        ticks,
    )
    small = 10**15
    assert partial.simulate(True, small) == full.simulate(True, small)
    with pytest.raises(MissingTickWordError) as missing:
        partial.amount_out(TOKEN0, 30 * E18)
    assert missing.value.word == here - 2 and missing.value.pool == POOL
    fetched = partial
    while True:
        try:
            result = fetched.simulate(True, 30 * E18)
            break
        except MissingTickWordError as error:
            word = full.words.get(error.word, 0)
            word_ticks = {t: v for t, v in full.ticks.items() if t // spacing >> 8 == error.word}
            fetched = fetched.with_words({error.word: word}, word_ticks)
    assert result == full.simulate(True, 30 * E18) and result.ticks_crossed > 2


# ---------------------------------------------------------------- snapshots


def test_a_pool_snapshot_round_trips_through_json():
    fee, price, positions = TEST_POOLS[
        "medium fee, 1:1 price, additional liquidity around current price"
    ]
    pool, _, _ = pool_with_positions(fee, price, positions)
    pool = pool.swap(TOKEN1, 3 * E18)[1]
    text = json.dumps(pool.to_json())
    loaded = V3Pool.from_json(json.loads(text))
    assert loaded == pool and loaded.words == pool.words and loaded.ticks == pool.ticks
    assert loaded.amount_out(TOKEN0, E18) == pool.amount_out(TOKEN0, E18)
    assert json.loads(text)["ticks"][str(-60)] == {
        "liquidity_gross": str(2 * E18),
        "liquidity_net": str(-2 * E18),
    }


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda s: s.pop("liquidity"), "KeyError"),
        (lambda s: s.update(kind="uniswap-v2"), "kind"),
        (lambda s: s.update(tick="x"), "invalid literal"),
        (lambda s: s["ticks"].pop("-60"), "tick -60 is set but not given"),
        (lambda s: s.update(sqrt_price_x96="1"), "out of range"),
    ],
)
def test_a_bad_snapshot_is_one_clear_line(change, message):
    fee, price, positions = TEST_POOLS[
        "medium fee, 1:1 price, 0 liquidity, all liquidity around current price"
    ]
    snapshot = pool_with_positions(fee, price, positions)[0].to_json()
    change(snapshot)
    with pytest.raises(ValueError, match=message) as error:
        V3Pool.from_json(snapshot)
    assert "\n" not in str(error.value) and str(error.value).startswith("not a V3 pool snapshot")


# ---------------------------------------------------------------- properties

_FEES = st.sampled_from([100, 500, 3000, 10000])


@st.composite
def pools(draw: st.DrawFn) -> tuple[V3Pool, int, int, list[tuple[int, int, int]]]:
    fee = draw(_FEES)
    spacing = {100: 1, 500: 10, 3000: 60, 10000: 200}[fee]
    positions = []
    for _ in range(draw(st.integers(1, 4))):
        lower = draw(st.integers(-40, 39)) * spacing
        upper = lower + draw(st.integers(1, 30)) * spacing
        positions.append((lower, upper, draw(st.integers(10**12, 10**22))))
    if draw(st.booleans()):
        positions.append((min_tick(spacing), max_tick(spacing), draw(st.integers(10**12, 10**20))))
    tick = draw(st.integers(-45 * spacing, 45 * spacing))
    pool, paid0, paid1 = pool_with_positions(fee, get_sqrt_ratio_at_tick(tick), positions)
    return pool, paid0, paid1, positions


def _burn_value(pool: V3Pool, positions: list[tuple[int, int, int]]) -> tuple[int, int]:
    """What burning every position would pay out at the pool's price (rounded down)."""
    owed0 = owed1 = 0
    price = pool.sqrt_price_x96
    for lower, upper, liquidity in positions:
        at_lower, at_upper = get_sqrt_ratio_at_tick(lower), get_sqrt_ratio_at_tick(upper)
        if pool.tick < lower:
            owed0 += get_amount0_delta(at_lower, at_upper, liquidity, False)
        elif pool.tick < upper:
            owed0 += get_amount0_delta(price, at_upper, liquidity, False)
            owed1 += get_amount1_delta(at_lower, price, liquidity, False)
        else:
            owed1 += get_amount1_delta(at_lower, at_upper, liquidity, False)
    return owed0, owed1


@settings(max_examples=150, deadline=None)
@given(setup=pools(), amount=st.integers(1, 10**24), zero_for_one=st.booleans())
def test_swaps_across_ticks_keep_the_pool_solvent(setup, amount, zero_for_one):
    """Whatever ticks a swap crosses, the pool's balances after it cover every position."""
    pool, paid0, paid1, positions = setup
    token_in = TOKEN0 if zero_for_one else TOKEN1
    out, after = pool.swap(token_in, amount)
    result = pool.simulate(zero_for_one, amount)
    assert out == -(result.amount1 if zero_for_one else result.amount0) >= 0
    assert 0 <= (result.amount0 if zero_for_one else result.amount1) <= amount
    balance0, balance1 = paid0 + result.amount0, paid1 + result.amount1
    owed0, owed1 = _burn_value(after, positions)
    assert balance0 >= owed0 and balance1 >= owed1
    # Selling the output straight back never returns more than went in.
    if out:
        assert after.amount_out(pool.token_out(token_in), out) <= amount


@settings(max_examples=150, deadline=None)
@given(setup=pools(), amount=st.integers(1, 10**22), zero_for_one=st.booleans())
def test_exact_in_and_exact_out_agree(setup, amount, zero_for_one):
    pool = setup[0]
    token_in = TOKEN0 if zero_for_one else TOKEN1
    out = pool.amount_out(token_in, amount)
    assume(out > 0)
    needed = pool.amount_in(token_in, out)
    if needed is None:  # only when liquidity ran out: the exact-in swap filled partly
        result = pool.simulate(zero_for_one, amount)
        assert (result.amount0 if zero_for_one else result.amount1) < amount
        return
    assert needed <= amount, "exact out never charges more than exact in spent for it"
    assert pool.amount_out(token_in, needed) >= out
    # One wei more output costs at least as much, or the pool cannot pay it.
    more = pool.amount_in(token_in, out + 1)
    assert more is None or more >= needed
