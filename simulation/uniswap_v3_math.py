"""Uniswap V3's pool math in exact integers, result for result with v3-core's libraries.

TickMath (tick <-> sqrt price), FullMath (``mul_div`` with uint256 results), SqrtPriceMath
(next price from an amount, amount between two prices, each with the contract's rounding),
SwapMath (``compute_swap_step``) and TickBitmap (``next_initialized_tick_within_one_word``), after
v3-core ``contracts/libraries/*.sol`` at d8b1c63 (GPL-2.0-or-later / BUSL-1.1 since relicensed;
facts in ``../shared/reference/builders-oracles-2026.md`` §3.1). Values are Python ints that keep
the contracts' ranges: where a contract reverts (a result that does not fit 256 bits, a division
by zero, a tick or price out of range), these functions raise :class:`V3Revert` carrying the
contract's revert reason when it has one.
"""

from __future__ import annotations

import math
from functools import lru_cache

MIN_TICK = -887272
MAX_TICK = 887272
# TickMath.sol: getSqrtRatioAtTick(MIN_TICK) and getSqrtRatioAtTick(MAX_TICK).
MIN_SQRT_RATIO = 4295128739
MAX_SQRT_RATIO = 1461446703485210103287273052203988822378723970342
Q96 = 1 << 96
Q128 = 1 << 128
MAX_UINT128 = (1 << 128) - 1
MAX_UINT160 = (1 << 160) - 1
MAX_UINT256 = (1 << 256) - 1
FEE_DENOMINATOR = 1_000_000
"""Fees are in hundredths of a bip: 3000 is 0.3 %."""

# TickMath.sol getSqrtRatioAtTick: 2^128 / sqrt(1.0001)^(2^i), as Q128.128, for bits i = 0..19
# of |tick| (the first is used as the starting ratio for odd ticks).
_TICK_FACTORS = (
    0xFFFCB933BD6FAD37AA2D162D1A594001,
    0xFFF97272373D413259A46990580E213A,
    0xFFF2E50F5F656932EF12357CF3C7FDCC,
    0xFFE5CACA7E10E4E61C3624EAA0941CD0,
    0xFFCB9843D60F6159C9DB58835C926644,
    0xFF973B41FA98C081472E6896DFB254C0,
    0xFF2EA16466C96A3843EC78B326B52861,
    0xFE5DEE046A99A2A811C461F1969C3053,
    0xFCBE86C7900A88AEDCFFC83B479AA3A4,
    0xF987A7253AC413176F2B074CF7815E54,
    0xF3392B0822B70005940C7A398E4B70F3,
    0xE7159475A2C29B7443B29C7FA6E889D9,
    0xD097F3BDFD2022B8845AD8F792AA5825,
    0xA9F746462D870FDF8A65DC1F90E061E5,
    0x70D869A156D2A1B890BB3DF62BAF32F7,
    0x31BE135F97D08FD981231505542FCFA6,
    0x9AA508B5B7A84E1C677DE54F3E99BC9,
    0x5D6AF8DEDB81196699C329225EE604,
    0x2216E584F5FA1EA926041BEDFE98,
    0x48A170391F7DC42444E8FA2,
)
_LOG_SQRT_TICK = math.log(1.0001) / 2


class V3Revert(ArithmeticError):
    """Where the contract would revert: the reason is its revert string ('T', 'R', 'LS', ...)
    or a description of the overflow."""


# ------------------------------------------------------------------ FullMath


def mul_div(a: int, b: int, denominator: int) -> int:
    """``floor(a·b / denominator)`` with a full-width product; the result must fit 256 bits."""
    if denominator <= 0:
        raise V3Revert("mulDiv by zero")
    result = a * b // denominator
    if result > MAX_UINT256:
        raise V3Revert("mulDiv overflows uint256")
    return result


def mul_div_rounding_up(a: int, b: int, denominator: int) -> int:
    """``ceil(a·b / denominator)``; the result must fit 256 bits."""
    if denominator <= 0:
        raise V3Revert("mulDiv by zero")
    result = -(-a * b // denominator)
    if result > MAX_UINT256:
        raise V3Revert("mulDivRoundingUp overflows uint256")
    return result


def _div_rounding_up(x: int, y: int) -> int:
    return -(-x // y)


# ------------------------------------------------------------------ TickMath


@lru_cache(maxsize=1 << 16)
def get_sqrt_ratio_at_tick(tick: int) -> int:
    """``sqrt(1.0001^tick) · 2^96`` as the contract computes it (rounded up from Q128.128)."""
    abs_tick = -tick if tick < 0 else tick
    if abs_tick > MAX_TICK:
        raise V3Revert("T")
    ratio = _TICK_FACTORS[0] if abs_tick & 1 else Q128
    bit, index = 2, 1
    while bit <= abs_tick:
        if abs_tick & bit:
            ratio = (ratio * _TICK_FACTORS[index]) >> 128
        bit <<= 1
        index += 1
    if tick > 0:
        ratio = MAX_UINT256 // ratio
    return (ratio >> 32) + (1 if ratio & 0xFFFFFFFF else 0)


def get_tick_at_sqrt_ratio(sqrt_price_x96: int) -> int:
    """The greatest tick whose sqrt ratio is at most ``sqrt_price_x96`` (the contract's
    definition of its result). The price must lie in ``[MIN_SQRT_RATIO, MAX_SQRT_RATIO)``.

    The contract approximates log2 with bit tricks and then picks between two candidates; this
    estimates the tick in floating point and settles it against :func:`get_sqrt_ratio_at_tick`,
    which is strictly increasing, so the answer is the same integer.
    """
    if not MIN_SQRT_RATIO <= sqrt_price_x96 < MAX_SQRT_RATIO:
        raise V3Revert("R")
    estimate = (math.log(sqrt_price_x96) - 96 * math.log(2)) / _LOG_SQRT_TICK
    tick = min(max(math.floor(estimate), MIN_TICK), MAX_TICK - 1)
    while get_sqrt_ratio_at_tick(tick) > sqrt_price_x96:
        tick -= 1
    while tick < MAX_TICK and get_sqrt_ratio_at_tick(tick + 1) <= sqrt_price_x96:
        tick += 1
    return tick


# ------------------------------------------------------------------ SqrtPriceMath


def get_next_sqrt_price_from_amount0_rounding_up(
    sqrt_price_x96: int, liquidity: int, amount: int, add: bool
) -> int:
    """The price after adding (or removing) ``amount`` of token0, rounded up."""
    if amount == 0:
        return sqrt_price_x96
    numerator1 = liquidity << 96
    product = amount * sqrt_price_x96
    if add:
        # The contract takes the exact formula when amount·sqrtP and L·2^96 + amount·sqrtP both
        # fit 256 bits, else the rearranged one (which can round differently).
        if product <= MAX_UINT256 and numerator1 + product <= MAX_UINT256:
            return mul_div_rounding_up(numerator1, sqrt_price_x96, numerator1 + product)
        denominator = numerator1 // sqrt_price_x96 + amount
        if denominator > MAX_UINT256:
            raise V3Revert("amount0 overflows the price")
        return _div_rounding_up(numerator1, denominator)
    if product > MAX_UINT256 or numerator1 <= product:
        raise V3Revert("amount0 out exceeds the virtual reserve")
    result = mul_div_rounding_up(numerator1, sqrt_price_x96, numerator1 - product)
    if result > MAX_UINT160:
        raise V3Revert("price overflows uint160")
    return result


def get_next_sqrt_price_from_amount1_rounding_down(
    sqrt_price_x96: int, liquidity: int, amount: int, add: bool
) -> int:
    """The price after adding (or removing) ``amount`` of token1, rounded down."""
    if add:
        result = sqrt_price_x96 + mul_div(amount, Q96, liquidity)
        if result > MAX_UINT160:
            raise V3Revert("price overflows uint160")
        return result
    quotient = mul_div_rounding_up(amount, Q96, liquidity)
    if sqrt_price_x96 <= quotient:
        raise V3Revert("amount1 out exceeds the virtual reserve")
    return sqrt_price_x96 - quotient


def _next_sqrt_price(
    sqrt_price_x96: int, liquidity: int, amount: int, zero_for_one: bool, add: bool
) -> int:
    if sqrt_price_x96 <= 0 or liquidity <= 0:
        raise V3Revert("no price or no liquidity")
    # Token0 moves the price when it comes in selling token0 or goes out buying it.
    if zero_for_one == add:
        return get_next_sqrt_price_from_amount0_rounding_up(sqrt_price_x96, liquidity, amount, add)
    return get_next_sqrt_price_from_amount1_rounding_down(sqrt_price_x96, liquidity, amount, add)


def get_next_sqrt_price_from_input(
    sqrt_price_x96: int, liquidity: int, amount_in: int, zero_for_one: bool
) -> int:
    """The price after ``amount_in`` comes in; it never passes the true price."""
    return _next_sqrt_price(sqrt_price_x96, liquidity, amount_in, zero_for_one, True)


def get_next_sqrt_price_from_output(
    sqrt_price_x96: int, liquidity: int, amount_out: int, zero_for_one: bool
) -> int:
    """The price after ``amount_out`` goes out; it always reaches past the true price."""
    return _next_sqrt_price(sqrt_price_x96, liquidity, amount_out, zero_for_one, False)


def get_amount0_delta(sqrt_ratio_a: int, sqrt_ratio_b: int, liquidity: int, round_up: bool) -> int:
    """Token0 between two prices for ``liquidity``: ``L·2^96·(b − a) / (b·a)``."""
    if sqrt_ratio_a > sqrt_ratio_b:
        sqrt_ratio_a, sqrt_ratio_b = sqrt_ratio_b, sqrt_ratio_a
    if sqrt_ratio_a <= 0:
        raise V3Revert("price zero")
    numerator1 = liquidity << 96
    numerator2 = sqrt_ratio_b - sqrt_ratio_a
    if round_up:
        return _div_rounding_up(
            mul_div_rounding_up(numerator1, numerator2, sqrt_ratio_b), sqrt_ratio_a
        )
    return mul_div(numerator1, numerator2, sqrt_ratio_b) // sqrt_ratio_a


def get_amount1_delta(sqrt_ratio_a: int, sqrt_ratio_b: int, liquidity: int, round_up: bool) -> int:
    """Token1 between two prices for ``liquidity``: ``L·(b − a) / 2^96``."""
    difference = abs(sqrt_ratio_b - sqrt_ratio_a)
    if round_up:
        return mul_div_rounding_up(liquidity, difference, Q96)
    return mul_div(liquidity, difference, Q96)


# ------------------------------------------------------------------ SwapMath


def compute_swap_step(
    sqrt_price_x96: int,
    sqrt_target_x96: int,
    liquidity: int,
    amount_remaining: int,
    fee_pips: int,
) -> tuple[int, int, int, int]:
    """One step of a swap within a price range: ``(next price, amount in, amount out, fee)``.

    ``amount_remaining`` >= 0 is exact input (the fee comes out of it), < 0 exact output. The
    direction is from the prices: a target at or below the current price sells token0.
    """
    zero_for_one = sqrt_price_x96 >= sqrt_target_x96
    # Both deltas take their two prices in either order.
    delta_in, delta_out = (
        (get_amount0_delta, get_amount1_delta)
        if zero_for_one
        else (get_amount1_delta, get_amount0_delta)
    )
    if amount_remaining >= 0:
        less_fee = mul_div(amount_remaining, FEE_DENOMINATOR - fee_pips, FEE_DENOMINATOR)
        amount_in = delta_in(sqrt_target_x96, sqrt_price_x96, liquidity, True)
        if less_fee >= amount_in:
            sqrt_next = sqrt_target_x96
        else:
            sqrt_next = get_next_sqrt_price_from_input(
                sqrt_price_x96, liquidity, less_fee, zero_for_one
            )
            amount_in = delta_in(sqrt_next, sqrt_price_x96, liquidity, True)
        amount_out = delta_out(sqrt_next, sqrt_price_x96, liquidity, False)
        if sqrt_next != sqrt_target_x96:
            # The target was not reached: everything not swapped is the fee.
            return sqrt_next, amount_in, amount_out, amount_remaining - amount_in
    else:
        wanted = -amount_remaining
        amount_out = delta_out(sqrt_target_x96, sqrt_price_x96, liquidity, False)
        if wanted >= amount_out:
            sqrt_next = sqrt_target_x96
        else:
            sqrt_next = get_next_sqrt_price_from_output(
                sqrt_price_x96, liquidity, wanted, zero_for_one
            )
            amount_out = delta_out(sqrt_next, sqrt_price_x96, liquidity, False)
        amount_in = delta_in(sqrt_next, sqrt_price_x96, liquidity, True)
        amount_out = min(amount_out, wanted)
    fee = mul_div_rounding_up(amount_in, fee_pips, FEE_DENOMINATOR - fee_pips)
    return sqrt_next, amount_in, amount_out, fee


# ------------------------------------------------------------------ LiquidityMath


def add_delta(liquidity: int, delta: int) -> int:
    """``liquidity + delta`` as a uint128: 'LS' when it would go below zero, 'LA' above 2^128−1."""
    result = liquidity + delta
    if result < 0:
        raise V3Revert("LS")
    if result > MAX_UINT128:
        raise V3Revert("LA")
    return result


# ------------------------------------------------------------------ TickBitmap


def position(compressed_tick: int) -> tuple[int, int]:
    """``(word index, bit)`` of a tick divided by the spacing (TickBitmap.position)."""
    return compressed_tick >> 8, compressed_tick & 0xFF


def next_initialized_tick_within_one_word(
    word: int, tick: int, tick_spacing: int, lte: bool
) -> tuple[int, bool]:
    """The next initialized tick at or left of ``tick`` (``lte``) or right of it, looking only in
    its bitmap word ``word`` (the one :func:`word_for_search` names); else the word's edge.

    Returns ``(tick, initialized)``, as TickBitmap.nextInitializedTickWithinOneWord.
    """
    compressed = tick // tick_spacing
    if lte:
        bit = compressed & 0xFF
        masked = word & ((2 << bit) - 1)
        if masked:
            return (compressed - bit + masked.bit_length() - 1) * tick_spacing, True
        return (compressed - bit) * tick_spacing, False
    compressed += 1
    bit = compressed & 0xFF
    masked = word >> bit
    if masked:
        return (compressed + (masked & -masked).bit_length() - 1) * tick_spacing, True
    return (compressed + 255 - bit) * tick_spacing, False


def word_for_search(tick: int, tick_spacing: int, lte: bool) -> int:
    """The index of the bitmap word :func:`next_initialized_tick_within_one_word` reads."""
    compressed = tick // tick_spacing
    return compressed >> 8 if lte else (compressed + 1) >> 8


def flip_tick(words: dict[int, int], tick: int, tick_spacing: int) -> None:
    """Toggle ``tick``'s bit in ``words`` (TickBitmap.flipTick); the tick must be spaced."""
    if tick % tick_spacing:
        raise V3Revert(f"tick {tick} is not a multiple of the spacing {tick_spacing}")
    index, bit = position(tick // tick_spacing)
    words[index] = words.get(index, 0) ^ (1 << bit)
