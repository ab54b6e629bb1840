"""Building V3 pools the way v3-core's tests do: prices from ratios, pools from positions.

``encode_price_sqrt`` reproduces v3-core's ``test/shared/utilities.ts`` helper, including its
bignumber.js rounding (40 decimal places, half up, then floor): its starting prices are what
the published snapshots were taken from (``1 / 2^127`` becomes ``5.9e-39`` there).
"""

from __future__ import annotations

from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal, localcontext

from simulation.uniswap_v3_math import (
    MAX_TICK,
    get_amount0_delta,
    get_amount1_delta,
    get_sqrt_ratio_at_tick,
    get_tick_at_sqrt_ratio,
)
from simulation.uniswap_v3_pool import V3Pool

TOKEN0, TOKEN1 = "0x" + "00" * 19 + "a0", "0x" + "00" * 19 + "b1"
POOL = "0x" + "33" * 20
SPACINGS = {100: 1, 500: 10, 3000: 60, 10000: 200}
_PLACES = Decimal(10) ** -40


def encode_price_sqrt(reserve1: int, reserve0: int) -> int:
    """``encodePriceSqrt(reserve1, reserve0)``: ``sqrt(reserve1 / reserve0) · 2^96``."""
    with localcontext() as context:
        context.prec = 200
        ratio = (Decimal(reserve1) / Decimal(reserve0)).quantize(_PLACES, ROUND_HALF_UP)
        root = ratio.sqrt().quantize(_PLACES, ROUND_HALF_UP)
        return int((root * (1 << 96)).to_integral_value(ROUND_FLOOR))


def min_tick(spacing: int) -> int:
    """``getMinTick``: the lowest usable tick for a spacing."""
    return -(MAX_TICK // spacing) * spacing


def max_tick(spacing: int) -> int:
    """``getMaxTick``: the highest usable tick for a spacing."""
    return MAX_TICK // spacing * spacing


def max_liquidity_per_tick(spacing: int) -> int:
    """``getMaxLiquidityPerTick`` (``Tick.tickSpacingToMaxLiquidityPerTick``)."""
    return ((1 << 128) - 1) // ((max_tick(spacing) - min_tick(spacing)) // spacing + 1)


def pool_with_positions(
    fee: int, sqrt_price_x96: int, positions: list[tuple[int, int, int]]
) -> tuple[V3Pool, int, int]:
    """A pool initialized at ``sqrt_price_x96`` and followed since, with ``(lower, upper,
    liquidity)`` positions minted; returns it with the token0 and token1 the mints paid in
    (``Position`` amounts round up, as ``_modifyPosition`` charges them)."""
    tick = get_tick_at_sqrt_ratio(sqrt_price_x96)
    pool = V3Pool(
        POOL, TOKEN0, TOKEN1, fee, SPACINGS[fee], sqrt_price_x96, tick, bitmap_complete=True
    )
    paid0 = paid1 = 0
    for lower, upper, liquidity in positions:
        changed = pool.with_position_change(lower, upper, liquidity)
        assert changed is not None
        pool = changed
        at_lower, at_upper = get_sqrt_ratio_at_tick(lower), get_sqrt_ratio_at_tick(upper)
        if tick < lower:
            paid0 += get_amount0_delta(at_lower, at_upper, liquidity, True)
        elif tick < upper:
            paid0 += get_amount0_delta(sqrt_price_x96, at_upper, liquidity, True)
            paid1 += get_amount1_delta(at_lower, sqrt_price_x96, liquidity, True)
        else:
            paid1 += get_amount1_delta(at_lower, at_upper, liquidity, True)
    return pool, paid0, paid1
