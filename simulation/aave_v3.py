"""Aave V3.0 account and liquidation math (Pool revision 1, @aave/core-v3 1.19.3), exact to the wei.

Positions are scaled balances (the aToken's and the variable-debt token's ``scaledBalanceOf``);
a balance is its scaled amount times the reserve's normalized income or debt at a timestamp:
the liquidity index grown by linear interest, the variable-borrow index by the three-term
binomial approximation of compounding (MathUtils.calculateLinearInterest /
calculateCompoundedInterest). Account data are GenericLogic.calculateUserAccountData over those
balances; liquidation sizing is LiquidationLogic of this revision: the close factor is 50% above
HF 0.95 and 100% at or below (DEFAULT_LIQUIDATION_CLOSE_FACTOR, CLOSE_FACTOR_HF_THRESHOLD), the
collateral reserve's own bonus applies, the protocol fee is its share of the bonus part of the
seized collateral, and this revision has no dust rule (v3.3 added MUST_NOT_LEAVE_DUST). WadRayMath
and PercentageMath round half up here (v3.5 moved to directional rounding, v3.7 to floor/ceil in
the liquidation: other revisions, other rules, refused by :func:`check_revision`). E-mode and
stable debt are not used on the devnet and are not modelled.

Units: amounts in the asset's smallest unit, prices in the oracle's base currency (USD with 8
decimals), ratios in basis points, the health factor in wad. Where the pool reverts,
:class:`AaveRevert` carries the same code (``"45"``, ``"46"``, ``"47"``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType

from chain.aave_errors import CODES
from simulation.calls import LoadError

RAY = 10**27
HALF_RAY = RAY // 2
WAD = 10**18
PERCENTAGE_FACTOR = 10_000
HALF_PERCENTAGE_FACTOR = 5_000
MAX_UINT256 = 2**256 - 1
SECONDS_PER_YEAR = 365 * 86_400
HEALTH_FACTOR_LIQUIDATION_THRESHOLD = WAD
CLOSE_FACTOR_HF_THRESHOLD = 95 * 10**16
DEFAULT_LIQUIDATION_CLOSE_FACTOR = 5_000
MAX_LIQUIDATION_CLOSE_FACTOR = 10_000
SUPPORTED_POOL_REVISIONS = frozenset({1})

RESERVE_INACTIVE = "27"
HEALTH_FACTOR_NOT_BELOW_THRESHOLD = "45"
COLLATERAL_CANNOT_BE_LIQUIDATED = "46"
SPECIFIED_CURRENCY_NOT_BORROWED_BY_USER = "47"
NO_PRICE = "no price"


class AaveRevert(ValueError):
    """The pool would revert; ``code`` is its Errors.sol code, ``name`` the constant's name."""

    def __init__(self, code: str, detail: str = "") -> None:
        self.code = code
        self.name = CODES.get(code, code)
        super().__init__(f"{self.name} ({code}): {detail}" if detail else f"{self.name} ({code})")


def percent_mul(value: int, percentage: int) -> int:
    """PercentageMath.percentMul: value x bps / 10000, rounded half up."""
    return (value * percentage + HALF_PERCENTAGE_FACTOR) // PERCENTAGE_FACTOR


def percent_div(value: int, percentage: int) -> int:
    """PercentageMath.percentDiv: value x 10000 / bps, rounded half up."""
    return (value * PERCENTAGE_FACTOR + percentage // 2) // percentage


def wad_div(a: int, b: int) -> int:
    """WadRayMath.wadDiv: a / b in wad, rounded half up."""
    return (a * WAD + b // 2) // b


def ray_mul(a: int, b: int) -> int:
    """WadRayMath.rayMul of this revision: rounded half up."""
    return (a * b + HALF_RAY) // RAY


def ray_div(a: int, b: int) -> int:
    """WadRayMath.rayDiv of this revision: rounded half up (how amounts become scaled)."""
    return (a * RAY + b // 2) // b


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
    a_token: str = ""
    variable_debt_token: str = ""

    # ReserveConfiguration's bit layout (DataTypes.ReserveConfigurationMap).
    ltv = _field(0)
    liquidation_threshold = _field(16)
    liquidation_bonus = _field(32)
    decimals = _field(48, 8)
    reserve_factor = _field(64)
    liquidation_protocol_fee = _field(152)

    @property
    def unit(self) -> int:
        return 10**self.decimals

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

    def updated(
        self,
        liquidity_rate: int,
        borrow_rate: int,
        liquidity_index: int,
        borrow_index: int,
        now: int,
    ) -> ReserveState:
        """The reserve after a ``ReserveDataUpdated`` at block time ``now``."""
        return replace(
            self,
            liquidity_rate=liquidity_rate,
            variable_borrow_rate=borrow_rate,
            liquidity_index=liquidity_index,
            variable_borrow_index=borrow_index,
            last_update=now,
        )


def _frozen(amounts: Mapping[str, int]) -> Mapping[str, int]:
    return MappingProxyType({asset: amount for asset, amount in amounts.items() if amount})


@dataclass(frozen=True, slots=True)
class AavePosition:
    """A user's scaled balances per asset and the user-configuration bitmap (for reserve id
    ``i``: bit ``2i`` borrowing, bit ``2i + 1`` using as collateral). Zero balances are dropped
    and the mappings are read-only."""

    scaled_collateral: Mapping[str, int] = field(default_factory=dict)
    scaled_debt: Mapping[str, int] = field(default_factory=dict)
    configuration: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "scaled_collateral", _frozen(self.scaled_collateral))
        object.__setattr__(self, "scaled_debt", _frozen(self.scaled_debt))

    def uses_as_collateral(self, reserve: ReserveState) -> bool:
        return bool(self.configuration >> (2 * reserve.reserve_id + 1) & 1)

    def is_borrowing(self, reserve: ReserveState) -> bool:
        return bool(self.configuration >> (2 * reserve.reserve_id) & 1)

    @property
    def has_debt(self) -> bool:
        return bool(self.scaled_debt)

    @property
    def assets(self) -> frozenset[str]:
        return frozenset(self.scaled_collateral) | frozenset(self.scaled_debt)

    def moved(self, asset: str, scaled_collateral: int = 0, scaled_debt: int = 0) -> AavePosition:
        """The position with scaled deltas applied to ``asset`` (floored at zero)."""
        collateral, debt = dict(self.scaled_collateral), dict(self.scaled_debt)
        collateral[asset] = max(0, collateral.get(asset, 0) + scaled_collateral)
        debt[asset] = max(0, debt.get(asset, 0) + scaled_debt)
        return AavePosition(collateral, debt, self.configuration)

    def flagged(
        self, reserve_id: int, *, collateral: bool | None = None, borrowing: bool | None = None
    ) -> AavePosition:
        """The position with the reserve's collateral or borrowing bit set or cleared."""
        configuration = self.configuration
        for bit, on in ((2 * reserve_id + 1, collateral), (2 * reserve_id, borrowing)):
            if on is not None:
                configuration = configuration | (1 << bit) if on else configuration & ~(1 << bit)
        return AavePosition(self.scaled_collateral, self.scaled_debt, configuration)


def collateral_balance(position: AavePosition, reserve: ReserveState, now: int) -> int:
    """The aToken ``balanceOf`` at block time ``now``."""
    return ray_mul(position.scaled_collateral.get(reserve.asset, 0), reserve.normalized_income(now))


def debt_balance(position: AavePosition, reserve: ReserveState, now: int) -> int:
    """The variable-debt token ``balanceOf`` at block time ``now``."""
    scaled = position.scaled_debt.get(reserve.asset, 0)
    return ray_mul(scaled, reserve.normalized_debt(now)) if scaled else 0


@dataclass(frozen=True, slots=True)
class AccountData:
    """The six values of ``getUserAccountData`` (base currency units; HF in wad)."""

    total_collateral_base: int
    total_debt_base: int
    available_borrows_base: int
    current_liquidation_threshold: int
    ltv: int
    health_factor: int


def _price(prices: Mapping[str, int], asset: str) -> int:
    price = prices.get(asset, 0)
    if price <= 0:
        raise AaveRevert(NO_PRICE, f"no positive price for {asset}")
    return price


def account_data(
    position: AavePosition,
    reserves: Mapping[str, ReserveState],
    prices: Mapping[str, int],
    now: int,
) -> AccountData:
    """What ``getUserAccountData`` returns at block time ``now``."""
    total_collateral = weighted_ltv = weighted_threshold = total_debt = 0
    for asset, reserve in reserves.items():
        if reserve.liquidation_threshold and position.uses_as_collateral(reserve):
            value = collateral_balance(position, reserve, now) * _price(prices, asset)
            value //= reserve.unit
            total_collateral += value
            weighted_ltv += value * reserve.ltv
            weighted_threshold += value * reserve.liquidation_threshold
        if position.is_borrowing(reserve):
            debt = debt_balance(position, reserve, now)
            total_debt += _price(prices, asset) * debt // reserve.unit
    ltv = weighted_ltv // total_collateral if total_collateral else 0
    threshold = weighted_threshold // total_collateral if total_collateral else 0
    health = (
        wad_div(percent_mul(total_collateral, threshold), total_debt) if total_debt else MAX_UINT256
    )
    borrowable = percent_mul(total_collateral, ltv)
    return AccountData(
        total_collateral_base=total_collateral,
        total_debt_base=total_debt,
        available_borrows_base=max(borrowable - total_debt, 0),
        current_liquidation_threshold=threshold,
        ltv=ltv,
        health_factor=health,
    )


def health_factor(
    position: AavePosition,
    reserves: Mapping[str, ReserveState],
    prices: Mapping[str, int],
    now: int,
) -> int:
    """Health factor in wad; ``MAX_UINT256`` with no debt; liquidatable below ``WAD``."""
    return account_data(position, reserves, prices, now).health_factor


def close_factor(health: int) -> int:
    if health > CLOSE_FACTOR_HF_THRESHOLD:
        return DEFAULT_LIQUIDATION_CLOSE_FACTOR
    return MAX_LIQUIDATION_CLOSE_FACTOR


def max_liquidatable_debt(
    position: AavePosition,
    reserves: Mapping[str, ReserveState],
    prices: Mapping[str, int],
    now: int,
    debt_asset: str,
) -> int:
    """Most of ``debt_asset`` one liquidation may cover at ``now`` (0 while HF >= 1): the close
    factor's share of the user's debt in it. The collateral cap of :func:`liquidation` may
    lower what is actually repaid."""
    health = health_factor(position, reserves, prices, now)
    reserve = reserves.get(debt_asset)
    if health >= HEALTH_FACTOR_LIQUIDATION_THRESHOLD or reserve is None:
        return 0
    return percent_mul(debt_balance(position, reserve, now), close_factor(health))


@dataclass(frozen=True, slots=True)
class AaveLiquidation:
    """What a ``liquidationCall`` (receiveAToken false) moves: the debt the liquidator repays,
    the collateral it receives, and the protocol's fee (collateral, to the treasury as aTokens)."""

    debt_repaid: int
    collateral_to_liquidator: int
    protocol_fee: int


def _reserve(reserves: Mapping[str, ReserveState], asset: str) -> ReserveState:
    reserve = reserves.get(asset)
    if reserve is None:
        raise AaveRevert(RESERVE_INACTIVE, f"reserve {asset} is not listed")
    return reserve


def liquidation(
    position: AavePosition,
    reserves: Mapping[str, ReserveState],
    prices: Mapping[str, int],
    now: int,
    collateral: str,
    debt: str,
    debt_to_cover: int,
) -> AaveLiquidation:
    """LiquidationLogic.executeLiquidationCall of this revision at block time ``now``.

    ``debt_to_cover`` above the close-factor limit (``MAX_UINT256`` included) is clamped; when
    the bonus-inclusive collateral exceeds the user's balance the whole balance is seized and the
    debt recomputed (``_calculateAvailableCollateralToLiquidate``). Raises :class:`AaveRevert`
    where the pool reverts: ``"45"`` healthy, ``"46"`` collateral not enabled, ``"47"`` no debt.
    """
    collateral_reserve = _reserve(reserves, collateral)
    debt_reserve = _reserve(reserves, debt)
    health = health_factor(position, reserves, prices, now)
    if health >= HEALTH_FACTOR_LIQUIDATION_THRESHOLD:
        raise AaveRevert(HEALTH_FACTOR_NOT_BELOW_THRESHOLD, f"health factor {health}")
    enabled = collateral_reserve.liquidation_threshold and position.uses_as_collateral(
        collateral_reserve
    )
    if not enabled:
        raise AaveRevert(COLLATERAL_CANNOT_BE_LIQUIDATED, f"no {collateral} collateral")
    user_debt = debt_balance(position, debt_reserve, now)
    if user_debt == 0:
        raise AaveRevert(SPECIFIED_CURRENCY_NOT_BORROWED_BY_USER, f"no {debt} debt")
    user_collateral = collateral_balance(position, collateral_reserve, now)
    debt_to_liquidate = min(debt_to_cover, percent_mul(user_debt, close_factor(health)))
    collateral_price, debt_price = _price(prices, collateral), _price(prices, debt)
    bonus = collateral_reserve.liquidation_bonus
    c_unit, d_unit = collateral_reserve.unit, debt_reserve.unit
    base_collateral = (debt_price * debt_to_liquidate * c_unit) // (collateral_price * d_unit)
    seized = percent_mul(base_collateral, bonus)
    repaid = debt_to_liquidate
    if seized > user_collateral:
        seized = user_collateral
        repaid = percent_div((collateral_price * seized * d_unit) // (debt_price * c_unit), bonus)
    fee = 0
    if collateral_reserve.liquidation_protocol_fee:
        bonus_part = seized - percent_div(seized, bonus)
        fee = percent_mul(bonus_part, collateral_reserve.liquidation_protocol_fee)
    return AaveLiquidation(repaid, seized - fee, fee)


class UnsupportedRevision(LoadError):
    """The pool runs a revision whose rules this module does not implement."""


def check_revision(revision: int) -> None:
    """Refuse, with one clear line, a pool revision whose math is not this module's."""
    if revision not in SUPPORTED_POOL_REVISIONS:
        supported = ", ".join(str(r) for r in sorted(SUPPORTED_POOL_REVISIONS))
        raise UnsupportedRevision(
            f"Aave pool revision {revision} is not supported (known: {supported}): its"
            " liquidation and rounding rules differ; refusing rather than mis-sizing"
        )
