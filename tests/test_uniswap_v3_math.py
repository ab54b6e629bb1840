"""V3 exact math against v3-core's own published expectations, plus round-trip properties.

Expectations are ported from Uniswap/v3-core@d8b1c63 (GPL-2.0-or-later): ``test/TickMath.spec.ts``
and ``test/__snapshots__/TickMath.spec.ts.snap``, ``test/SqrtPriceMath.spec.ts``,
``test/SwapMath.spec.ts``, ``test/FullMath.spec.ts`` and ``test/TickBitmap.spec.ts``. Where the
contract reverts, our function raises :class:`V3Revert`.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from v3_fixtures import encode_price_sqrt

from simulation.uniswap_v3_math import (
    MAX_SQRT_RATIO,
    MAX_TICK,
    MAX_UINT128,
    MAX_UINT256,
    MIN_SQRT_RATIO,
    MIN_TICK,
    V3Revert,
    add_delta,
    compute_swap_step,
    flip_tick,
    get_amount0_delta,
    get_amount1_delta,
    get_next_sqrt_price_from_input,
    get_next_sqrt_price_from_output,
    get_sqrt_ratio_at_tick,
    get_tick_at_sqrt_ratio,
    mul_div,
    mul_div_rounding_up,
    next_initialized_tick_within_one_word,
    word_for_search,
)

E18 = 10**18
Q128 = 1 << 128

# TickMath.spec.ts.snap: getSqrtRatioAtTick(tick) for +-50 ... +-738203.
SQRT_RATIO_AT_TICK = {
    -50: 79030349367926598376800521322,
    -100: 78833030112140176575862854579,
    -250: 78244023372248365697264290337,
    -500: 77272108795590369356373805297,
    -1000: 75364347830767020784054125655,
    -2500: 69919044979842180277688105136,
    -3000: 68192822843687888778582228483,
    -4000: 64867181785621769311890333195,
    -5000: 61703726247759831737814779831,
    -50000: 6504256538020985011912221507,
    -150000: 43836292794701720435367485,
    -250000: 295440463448801648376846,
    -500000: 1101692437043807371,
    -738203: 7409801140451,
    50: 79426470787362580746886972461,
    100: 79625275426524748796330556128,
    250: 80224679980005306637834519095,
    500: 81233731461783161732293370115,
    1000: 83290069058676223003182343270,
    2500: 89776708723587163891445672585,
    3000: 92049301871182272007977902845,
    4000: 96768528593268422080558758223,
    5000: 101729702841318637793976746270,
    50000: 965075977353221155028623082916,
    150000: 143194173941309278083010301478497,
    250000: 21246587762933397357449903968194344,
    500000: 5697689776495288729098254600827762987878,
    738203: 847134979253254120489401328389043031315994541,
    MIN_TICK: 4295128739,
    MIN_TICK + 1: 4295343490,
    MAX_TICK - 1: 1461373636630004318706518188784493106690254656249,
    MAX_TICK: 1461446703485210103287273052203988822378723970342,
}

# TickMath.spec.ts.snap: getTickAtSqrtRatio(ratio).
TICK_AT_SQRT_RATIO = {
    MIN_SQRT_RATIO: -887272,
    79228162514264337593543: -276325,
    79228162514264337593543950: -138163,
    9903520314283042199192993792: -41591,
    28011385487393069959365969113: -20796,
    56022770974786139918731938227: -6932,
    79228162514264337593543950336: 0,
    112045541949572279837463876454: 6931,
    224091083899144559674927752909: 20795,
    633825300114114700748351602688: 41590,
    79228162514264337593543950336000: 138162,
    79228162514264337593543950336000000: 276324,
    4295343490: MIN_TICK + 1,
    1461373636630004318706518188784493106690254656249: MAX_TICK - 1,
    MAX_SQRT_RATIO - 1: 887271,
}


@pytest.mark.parametrize(("tick", "expected"), SQRT_RATIO_AT_TICK.items())
def test_sqrt_ratio_at_tick(tick, expected):
    assert get_sqrt_ratio_at_tick(tick) == expected


@pytest.mark.parametrize(("ratio", "expected"), TICK_AT_SQRT_RATIO.items())
def test_tick_at_sqrt_ratio(ratio, expected):
    assert get_tick_at_sqrt_ratio(ratio) == expected


def test_tick_math_reverts_outside_its_range():
    with pytest.raises(V3Revert, match="T"):
        get_sqrt_ratio_at_tick(MIN_TICK - 1)
    with pytest.raises(V3Revert, match="T"):
        get_sqrt_ratio_at_tick(MAX_TICK + 1)
    with pytest.raises(V3Revert, match="R"):
        get_tick_at_sqrt_ratio(MIN_SQRT_RATIO - 1)
    with pytest.raises(V3Revert, match="R"):
        get_tick_at_sqrt_ratio(MAX_SQRT_RATIO)


def test_encoded_ratios_map_to_the_published_ticks():
    """The spec's ratios are ``encodePriceSqrt`` values: our port of that helper agrees."""
    assert encode_price_sqrt(1, 10**12) == 79228162514264337593543
    assert encode_price_sqrt(64, 1) == 633825300114114700748351602688
    assert encode_price_sqrt(121, 100) == 87150978765690771352898345369


@given(st.integers(MIN_TICK, MAX_TICK))
def test_tick_to_sqrt_ratio_and_back(tick):
    ratio = get_sqrt_ratio_at_tick(tick)
    if tick < MAX_TICK:
        assert get_tick_at_sqrt_ratio(ratio) == tick
        assert get_tick_at_sqrt_ratio(get_sqrt_ratio_at_tick(tick + 1) - 1) == tick
    assert tick == MIN_TICK or get_sqrt_ratio_at_tick(tick - 1) < ratio


@given(st.integers(MIN_SQRT_RATIO, MAX_SQRT_RATIO - 1))
def test_sqrt_ratio_lies_between_its_tick_and_the_next(ratio):
    tick = get_tick_at_sqrt_ratio(ratio)
    assert get_sqrt_ratio_at_tick(tick) <= ratio < get_sqrt_ratio_at_tick(tick + 1)


# ---------------------------------------------------------------- FullMath


def test_mul_div():
    with pytest.raises(V3Revert):
        mul_div(Q128, 5, 0)
    with pytest.raises(V3Revert):
        mul_div(Q128, Q128, 1)
    with pytest.raises(V3Revert):
        mul_div(MAX_UINT256, MAX_UINT256, MAX_UINT256 - 1)
    assert mul_div(MAX_UINT256, MAX_UINT256, MAX_UINT256) == MAX_UINT256
    assert mul_div(Q128, 50 * Q128 // 100, 150 * Q128 // 100) == Q128 // 3
    assert mul_div(Q128, 35 * Q128, 8 * Q128) == 4375 * Q128 // 1000
    assert mul_div(Q128, 1000 * Q128, 3000 * Q128) == Q128 // 3


def test_mul_div_rounding_up():
    with pytest.raises(V3Revert):
        mul_div_rounding_up(Q128, 5, 0)
    with pytest.raises(V3Revert):
        mul_div_rounding_up(MAX_UINT256, MAX_UINT256, MAX_UINT256 - 1)
    with pytest.raises(V3Revert):
        mul_div_rounding_up(
            535006138814359, 432862656469423142931042426214547535783388063929571229938474969, 2
        )
    with pytest.raises(V3Revert):
        mul_div_rounding_up(
            115792089237316195423570985008687907853269984659341747863450311749907997002549,
            115792089237316195423570985008687907853269984659341747863450311749907997002550,
            115792089237316195423570985008687907853269984653042931687443039491902864365164,
        )
    assert mul_div_rounding_up(MAX_UINT256, MAX_UINT256, MAX_UINT256) == MAX_UINT256
    assert mul_div_rounding_up(Q128, 50 * Q128 // 100, 150 * Q128 // 100) == Q128 // 3 + 1
    assert mul_div_rounding_up(Q128, 35 * Q128, 8 * Q128) == 4375 * Q128 // 1000
    assert mul_div_rounding_up(Q128, 1000 * Q128, 3000 * Q128) == Q128 // 3 + 1


def test_liquidity_add_delta():
    assert add_delta(1, -1) == 0 and add_delta(MAX_UINT128 - 1, 1) == MAX_UINT128
    with pytest.raises(V3Revert, match="LS"):
        add_delta(0, -1)
    with pytest.raises(V3Revert, match="LA"):
        add_delta(MAX_UINT128, 1)


# ---------------------------------------------------------------- SqrtPriceMath

ONE = encode_price_sqrt(1, 1)


def test_next_sqrt_price_from_input():
    with pytest.raises(V3Revert):
        get_next_sqrt_price_from_input(0, 0, E18 // 10, False)
    with pytest.raises(V3Revert):
        get_next_sqrt_price_from_input(1, 0, E18 // 10, True)
    with pytest.raises(V3Revert):  # the input overflows the price
        get_next_sqrt_price_from_input(2**160 - 1, 1024, 1024, False)
    assert get_next_sqrt_price_from_input(1, 1, 2**255, True) == 1
    assert get_next_sqrt_price_from_input(ONE, E18 // 10, 0, True) == ONE
    assert get_next_sqrt_price_from_input(ONE, E18 // 10, 0, False) == ONE
    # The overflow fallback: the minimum price for the largest input that does not overflow.
    sqrt_p, liquidity = 2**160 - 1, MAX_UINT128
    amount = MAX_UINT256 - (liquidity << 96) // sqrt_p
    assert get_next_sqrt_price_from_input(sqrt_p, liquidity, amount, True) == 1
    assert get_next_sqrt_price_from_input(ONE, E18, E18 // 10, False) == (
        87150978765690771352898345369
    )
    assert get_next_sqrt_price_from_input(ONE, E18, E18 // 10, True) == (
        72025602285694852357767227579
    )
    assert get_next_sqrt_price_from_input(ONE, 10 * E18, 2**100, True) == 624999999995069620
    assert get_next_sqrt_price_from_input(ONE, 1, MAX_UINT256 // 2, True) == 1


def test_next_sqrt_price_from_output():
    price = 20282409603651670423947251286016
    with pytest.raises(V3Revert):
        get_next_sqrt_price_from_output(0, 0, E18 // 10, False)
    with pytest.raises(V3Revert):
        get_next_sqrt_price_from_output(1, 0, E18 // 10, True)
    for amount_out, zero_for_one in ((4, False), (5, False), (262145, True), (262144, True)):
        with pytest.raises(V3Revert):  # at or past the virtual reserves
            get_next_sqrt_price_from_output(price, 1024, amount_out, zero_for_one)
    assert get_next_sqrt_price_from_output(price, 1024, 262143, True) == 77371252455336267181195264
    assert get_next_sqrt_price_from_output(ONE, E18 // 10, 0, True) == ONE
    assert get_next_sqrt_price_from_output(ONE, E18 // 10, 0, False) == ONE
    assert get_next_sqrt_price_from_output(ONE, E18, E18 // 10, False) == (
        88031291682515930659493278152
    )
    assert get_next_sqrt_price_from_output(ONE, E18, E18 // 10, True) == (
        71305346262837903834189555302
    )
    for zero_for_one in (True, False):
        with pytest.raises(V3Revert):
            get_next_sqrt_price_from_output(ONE, 1, MAX_UINT256, zero_for_one)


def test_amount_deltas():
    assert get_amount0_delta(ONE, encode_price_sqrt(2, 1), 0, True) == 0
    assert get_amount0_delta(ONE, ONE, 0, True) == 0
    assert get_amount1_delta(ONE, encode_price_sqrt(2, 1), 0, True) == 0
    up = get_amount0_delta(ONE, encode_price_sqrt(121, 100), E18, True)
    assert up == 90909090909090910
    assert get_amount0_delta(ONE, encode_price_sqrt(121, 100), E18, False) == up - 1
    up = get_amount1_delta(ONE, encode_price_sqrt(121, 100), E18, True)
    assert up == 100000000000000000
    assert get_amount1_delta(ONE, encode_price_sqrt(121, 100), E18, False) == up - 1
    # Prices whose product overflows 256 bits.
    low, high = encode_price_sqrt(2**90, 1), encode_price_sqrt(2**96, 1)
    assert get_amount0_delta(low, high, E18, True) == get_amount0_delta(low, high, E18, False) + 1


def test_swap_computation_where_sqrt_p_times_sqrt_q_overflows():
    sqrt_p = 1025574284609383690408304870162715216695788925244
    liquidity = 50015962439936049619261659728067971248
    sqrt_q = get_next_sqrt_price_from_input(sqrt_p, liquidity, 406, True)
    assert sqrt_q == 1025574284609383582644711336373707553698163132913
    assert get_amount0_delta(sqrt_q, sqrt_p, liquidity, True) == 406


# ---------------------------------------------------------------- SwapMath


def test_exact_in_capped_at_the_target_one_for_zero():
    target = encode_price_sqrt(101, 100)
    sqrt_q, amount_in, amount_out, fee = compute_swap_step(ONE, target, 2 * E18, E18, 600)
    assert (amount_in, fee, amount_out) == (9975124224178055, 5988667735148, 9925619580021728)
    assert amount_in + fee < E18 and sqrt_q == target
    assert sqrt_q < get_next_sqrt_price_from_input(ONE, 2 * E18, E18, False)


def test_exact_out_capped_at_the_target_one_for_zero():
    target = encode_price_sqrt(101, 100)
    sqrt_q, amount_in, amount_out, fee = compute_swap_step(ONE, target, 2 * E18, -E18, 600)
    assert (amount_in, fee, amount_out) == (9975124224178055, 5988667735148, 9925619580021728)
    assert amount_out < E18 and sqrt_q == target
    assert sqrt_q < get_next_sqrt_price_from_output(ONE, 2 * E18, E18, False)


def test_exact_in_fully_spent_one_for_zero():
    target = encode_price_sqrt(1000, 100)
    sqrt_q, amount_in, amount_out, fee = compute_swap_step(ONE, target, 2 * E18, E18, 600)
    assert (amount_in, fee, amount_out) == (999400000000000000, 600000000000000, 666399946655997866)
    assert amount_in + fee == E18 and sqrt_q < target
    assert sqrt_q == get_next_sqrt_price_from_input(ONE, 2 * E18, E18 - fee, False)


def test_exact_out_fully_received_one_for_zero():
    target = encode_price_sqrt(10000, 100)
    sqrt_q, amount_in, amount_out, fee = compute_swap_step(ONE, target, 2 * E18, -E18, 600)
    assert (amount_in, fee, amount_out) == (2 * E18, 1200720432259356, E18)
    assert sqrt_q < target
    assert sqrt_q == get_next_sqrt_price_from_output(ONE, 2 * E18, E18, False)


def test_swap_step_edge_cases():
    # Amount out capped at the desired amount out (it would be 2).
    assert compute_swap_step(
        417332158212080721273783715441582,
        1452870262520218020823638996,
        159344665391607089467575320103,
        -1,
        1,
    ) == (417332158212080721273783715441581, 1, 1, 1)
    # A target price of 1 uses part of the input.
    sqrt_q, amount_in, amount_out, fee = compute_swap_step(
        2, 1, 1, 3915081100057732413702495386755767, 1
    )
    assert (sqrt_q, amount_in, amount_out) == (1, 39614081257132168796771975168, 0)
    assert fee == 39614120871253040049813
    # The entire input taken as fee.
    assert compute_swap_step(
        2413, 79887613182836312, 1985041575832132834610021537970, 10, 1872
    ) == (
        2413,
        0,
        0,
        10,
    )


def test_swap_step_with_insufficient_intermediate_liquidity():
    price = 20282409603651670423947251286016
    target = price * 11 // 10
    assert compute_swap_step(price, target, 1024, -4, 3000) == (target, 26215, 0, 79)
    target = price * 9 // 10
    assert compute_swap_step(price, target, 1024, -263000, 3000) == (target, 1, 26214, 1)


# ---------------------------------------------------------------- TickBitmap


def _bitmap(ticks: list[int]) -> dict[int, int]:
    words: dict[int, int] = {}
    for tick in ticks:
        flip_tick(words, tick, 1)
    return words


def _next(words: dict[int, int], tick: int, lte: bool) -> tuple[int, bool]:
    word = words.get(word_for_search(tick, 1, lte), 0)
    return next_initialized_tick_within_one_word(word, tick, 1, lte)


def test_flip_tick_flips_only_its_bit():
    words = _bitmap([-230])
    assert _next(words, -230, True) == (-230, True)
    assert _next(words, -231, True) == (-256, False)
    assert _next(words, -229, True) == (-230, True)
    words = _bitmap([-230, -259, -229, 500, -259, -229, -259])
    assert _next(words, -259, True) == (-259, True)
    assert _next(words, -229, True) == (-230, True), "-229 was flipped back off"


SET = [-200, -55, -4, 70, 78, 84, 139, 240, 535]


@pytest.mark.parametrize(
    ("extra", "tick", "expected"),
    [
        (None, 78, (84, True)),
        (None, -55, (-4, True)),
        (None, 77, (78, True)),
        (None, -56, (-55, True)),
        (None, 255, (511, False)),
        (None, -257, (-200, True)),
        (340, 328, (340, True)),
        (None, 508, (511, False)),
        (None, 383, (511, False)),
    ],
)
def test_next_initialized_tick_to_the_right(extra, tick, expected):
    words = _bitmap(SET + ([extra] if extra is not None else []))
    assert _next(words, tick, False) == expected


@pytest.mark.parametrize(
    ("extra", "tick", "expected"),
    [
        (None, 78, (78, True)),
        (None, 79, (78, True)),
        (None, 258, (256, False)),
        (None, 256, (256, False)),
        (None, 72, (70, True)),
        (None, -257, (-512, False)),
        (None, 1023, (768, False)),
        (None, 900, (768, False)),
        (329, 456, (329, True)),
    ],
)
def test_next_initialized_tick_at_or_to_the_left(extra, tick, expected):
    words = _bitmap(SET + ([extra] if extra is not None else []))
    assert _next(words, tick, True) == expected


@given(
    ticks=st.lists(st.integers(-3000, 3000), max_size=30, unique=True),
    tick=st.integers(-3000, 3000),
    spacing=st.sampled_from([1, 10, 60, 200]),
    lte=st.booleans(),
)
def test_next_initialized_tick_is_the_nearest_within_the_word(ticks, tick, spacing, lte):
    spaced = sorted({t * spacing for t in ticks})
    words: dict[int, int] = {}
    for t in spaced:
        flip_tick(words, t, spacing)
    word = words.get(word_for_search(tick, spacing, lte), 0)
    found, initialized = next_initialized_tick_within_one_word(word, tick, spacing, lte)
    if lte:
        assert found <= tick
        between = [t for t in spaced if found < t <= tick]
    else:
        assert found > tick
        between = [t for t in spaced if tick < t < found]
    assert not between and initialized == (found in spaced)
    assert word_for_search(found if lte else found - spacing, spacing, lte) == word_for_search(
        tick, spacing, lte
    ), "the search stays in its word"
