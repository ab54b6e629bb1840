"""Aave V3.0 account math (Pool revision 1, @aave/core-v3 1.19), exact to the wei.

Positions are scaled balances (the aToken's and the variable-debt token's ``scaledBalanceOf``);
a balance is its scaled amount times the reserve's normalized income or debt at a timestamp:
the liquidity index grown by linear interest, the variable-borrow index by the three-term
binomial approximation of compounding (MathUtils.calculateLinearInterest /
calculateCompoundedInterest). :func:`account_data` then follows
GenericLogic.calculateUserAccountData: per reserve, balance times price divided by the asset's
unit (rounding down), LTV and liquidation threshold averaged by collateral value, and the health
factor ``percentMul(collateral, threshold).wadDiv(debt)``. WadRayMath and PercentageMath of this
revision round half up (v3.5 moved to directional rounding: another revision, other rules).
E-mode and stable debt are not used on the devnet and are not modelled.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from simulation.lending import MAX_UINT256, percent_mul, wad_div

RAY = 10**27
HALF_RAY = RAY // 2
SECONDS_PER_YEAR = 365 * 86_400
SUPPORTED_POOL_REVISIONS = frozenset({1})


def ray_mul(a: int, b: int) -> int:
    """WadRayMath.rayMul of this revision: rounded half up."""
    return (a * b + HALF_RAY) // RAY


def linear_interest(rate: int, last_update: int, now: int) -> int:
    return RAY + rate * (now - last_update) // SECONDS_PER_YEAR


def compounded_interest(rate: int, last_update: int, now: int) -> int:
    exp = now - last_update
    if exp == 0:
        return RAY
    exp_minus_two = exp - 2 if exp > 2 else 0
    base_power_two = ray_mul(rate, rate) // (SECONDS_PER_YEAR * SECONDS_PER_YEAR)
    base_power_three = ray_mul(base_power_two, rate) // SECONDS_PER_YEAR
    second_term = exp * (exp - 1) * base_power_two // 2
    third_term = exp * (exp - 1) * exp_minus_two * base_power_three // 6
    return RAY + rate * exp // SECONDS_PER_YEAR + second_term + third_term


def _field(offset: int, width: int = 16) -> property:
    mask = (1 << width) - 1
    return property(lambda reserve: (reserve.configuration >> offset) & mask)


@dataclass(frozen=True, slots=True)
class ReserveState:
    """A reserve as ``getReserveData`` gives it: its configuration and last-update indexes."""

    asset: str
    reserve_id: int
    configuration: int
    liquidity_index: int
    liquidity_rate: int
    variable_borrow_index: int
    variable_borrow_rate: int
    last_update: int

    # ReserveConfiguration's bit layout (DataTypes.ReserveConfigurationMap).
    ltv = _field(0)
    liquidation_threshold = _field(16)
    liquidation_bonus = _field(32)
    decimals = _field(48, 8)
    reserve_factor = _field(64)
    liquidation_protocol_fee = _field(152)

    def normalized_income(self, now: int) -> int:
        if now == self.last_update:
            return self.liquidity_index
        return ray_mul(
            linear_interest(self.liquidity_rate, self.last_update, now), self.liquidity_index
        )

    def normalized_debt(self, now: int) -> int:
        if now == self.last_update:
            return self.variable_borrow_index
        growth = compounded_interest(self.variable_borrow_rate, self.last_update, now)
        return ray_mul(growth, self.variable_borrow_index)


@dataclass(frozen=True, slots=True)
class AavePosition:
    """A user's scaled balances per asset and the user-configuration bitmap (for reserve id
    ``i``: bit ``2i`` borrowing, bit ``2i + 1`` using as collateral)."""

    scaled_collateral: Mapping[str, int]
    scaled_debt: Mapping[str, int]
    configuration: int

    def uses_as_collateral(self, reserve: ReserveState) -> bool:
        return bool(self.configuration >> (2 * reserve.reserve_id + 1) & 1)

    def is_borrowing(self, reserve: ReserveState) -> bool:
        return bool(self.configuration >> (2 * reserve.reserve_id) & 1)


@dataclass(frozen=True, slots=True)
class AaveAccountData:
    """``getUserAccountData``'s six values, in the oracle's base currency (USD, 8 decimals)."""

    total_collateral_base: int
    total_debt_base: int
    available_borrows_base: int
    current_liquidation_threshold: int
    ltv: int
    health_factor: int


def account_data(
    position: AavePosition,
    reserves: Mapping[str, ReserveState],
    prices: Mapping[str, int],
    now: int,
) -> AaveAccountData:
    """What ``getUserAccountData`` returns at block time ``now``."""
    collateral = debt = weighted_ltv = weighted_threshold = 0
    for reserve in sorted(reserves.values(), key=lambda r: r.reserve_id):
        unit = 10**reserve.decimals
        price = prices[reserve.asset]
        if reserve.liquidation_threshold and position.uses_as_collateral(reserve):
            scaled = position.scaled_collateral.get(reserve.asset, 0)
            value = ray_mul(scaled, reserve.normalized_income(now)) * price // unit
            collateral += value
            weighted_ltv += value * reserve.ltv
            weighted_threshold += value * reserve.liquidation_threshold
        if position.is_borrowing(reserve):
            scaled = position.scaled_debt.get(reserve.asset, 0)
            amount = ray_mul(scaled, reserve.normalized_debt(now)) if scaled else 0
            debt += price * amount // unit
    ltv = weighted_ltv // collateral if collateral else 0
    threshold = weighted_threshold // collateral if collateral else 0
    health = MAX_UINT256 if debt == 0 else wad_div(percent_mul(collateral, threshold), debt)
    borrowable = percent_mul(collateral, ltv)
    return AaveAccountData(collateral, debt, max(0, borrowable - debt), threshold, ltv, health)


class UnsupportedRevision(ValueError):
    """The pool runs a revision whose rules this module does not implement."""


def check_revision(revision: int) -> None:
    """Refuse, with one clear line, a pool revision whose math is not this module's."""
    if revision not in SUPPORTED_POOL_REVISIONS:
        supported = ", ".join(str(r) for r in sorted(SUPPORTED_POOL_REVISIONS))
        raise UnsupportedRevision(
            f"Aave pool revision {revision} is not supported (known: {supported}): its"
            " liquidation and rounding rules differ; refusing rather than mis-sizing"
        )
