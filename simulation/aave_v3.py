"""Aave V3.0 account math (Pool revision 1, @aave/core-v3 1.19), exact to the wei.

Positions are scaled balances (the aToken's and the variable-debt token's ``scaledBalanceOf``);
a balance is its scaled amount times the reserve's normalized income or debt at a timestamp:
the liquidity index grown by linear interest, the variable-borrow index by the three-term
binomial approximation of compounding (MathUtils.calculateLinearInterest /
calculateCompoundedInterest). Account data and liquidation sizing are then
:mod:`simulation.lending`'s GenericLogic and LiquidationLogic formulas over those balances,
plus the liquidation protocol fee. WadRayMath and PercentageMath of this revision round half up
(v3.5 moved to directional rounding, v3.7 to floor/ceil in the liquidation: other revisions,
other rules, refused by :func:`check_revision`). E-mode and stable debt are not used on the
devnet and are not modelled.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from simulation import lending
from simulation.lending import AccountData, Position, ReserveConfig, percent_div, percent_mul

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


def current_position(
    position: AavePosition, reserves: Mapping[str, ReserveState], now: int
) -> Position:
    """The balances at block time ``now`` (aToken and variable-debt ``balanceOf``) of the
    reserves the user uses as collateral and borrows, as :mod:`simulation.lending` takes them."""
    collateral, debt = {}, {}
    for asset, reserve in reserves.items():
        if position.uses_as_collateral(reserve):
            scaled = position.scaled_collateral.get(asset, 0)
            collateral[asset] = ray_mul(scaled, reserve.normalized_income(now))
        if position.is_borrowing(reserve):
            scaled = position.scaled_debt.get(asset, 0)
            debt[asset] = ray_mul(scaled, reserve.normalized_debt(now)) if scaled else 0
    return Position(collateral, debt)


def reserve_configs(reserves: Mapping[str, ReserveState]) -> dict[str, ReserveConfig]:
    return {
        asset: ReserveConfig(asset, r.decimals, r.ltv, r.liquidation_threshold, r.liquidation_bonus)
        for asset, r in reserves.items()
    }


def account_data(
    position: AavePosition,
    reserves: Mapping[str, ReserveState],
    prices: Mapping[str, int],
    now: int,
) -> AccountData:
    """What ``getUserAccountData`` returns at block time ``now`` (GenericLogic over the
    balances at ``now``: the same formulas as :func:`simulation.lending.account_data`)."""
    return lending.account_data(
        current_position(position, reserves, now), reserve_configs(reserves), prices
    )


@dataclass(frozen=True, slots=True)
class AaveLiquidation:
    """What a ``liquidationCall`` (receiveAToken false) moves: the debt the liquidator repays,
    the collateral it receives, and the protocol's fee (collateral, to the treasury as aTokens)."""

    debt_repaid: int
    collateral_to_liquidator: int
    protocol_fee: int


def liquidation(
    position: AavePosition,
    reserves: Mapping[str, ReserveState],
    prices: Mapping[str, int],
    now: int,
    collateral: str,
    debt: str,
    debt_to_cover: int,
) -> AaveLiquidation:
    """LiquidationLogic.executeLiquidationCall of this revision at block time ``now``: the
    close factor is 50% above HF 0.95 and 100% at or below, the collateral reserve's own bonus
    applies, and the protocol fee is its share of the bonus part of the seized collateral.
    Raises :class:`~simulation.lending.LendingRevert` with the pool's code where it reverts."""
    amounts = lending.liquidation_amounts(
        current_position(position, reserves, now),
        collateral,
        debt,
        debt_to_cover,
        reserve_configs(reserves),
        prices,
    )
    seized, reserve = amounts.collateral_seized, reserves[collateral]
    fee = 0
    if reserve.liquidation_protocol_fee:
        bonus_part = seized - percent_div(seized, reserve.liquidation_bonus)
        fee = percent_mul(bonus_part, reserve.liquidation_protocol_fee)
    return AaveLiquidation(amounts.debt_repaid, seized - fee, fee)


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
