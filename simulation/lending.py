"""Aave-V3-shaped lending math in exact integers, bit-for-bit with the devnet's ``LendingPool``.

What a liquidation keeper needs without an RPC round trip: account data (the six numbers of
``getUserAccountData``), the health factor, how much debt may be covered, and what a
``liquidationCall`` would repay and seize. The formulas are Aave V3.0-3.2's ``GenericLogic`` and
``LiquidationLogic`` with half-up ``percentMul`` / ``percentDiv`` / ``wadDiv``; the contract
(``anvil/contracts/lending/LendingPool.sol``) uses the same ones, with no interest accrual, no
e-mode and no protocol fee.

Units: amounts in the asset's smallest unit, prices in the base currency (USD with 8 decimals,
as the price feeds answer), ratios in basis points, the health factor in wad. Where the contract
reverts, :class:`LendingRevert` carries the same reason code (``"45"``, ``"46"``, ``"47"``...).
Results equal the contract's whenever every intermediate product fits in a uint256 (the contract
reverts on overflow instead).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

PERCENTAGE_FACTOR = 10_000
HALF_PERCENTAGE_FACTOR = 5_000
WAD = 10**18
MAX_UINT256 = 2**256 - 1
HEALTH_FACTOR_LIQUIDATION_THRESHOLD = WAD
CLOSE_FACTOR_HF_THRESHOLD = 95 * 10**16
DEFAULT_LIQUIDATION_CLOSE_FACTOR = 5_000
MAX_LIQUIDATION_CLOSE_FACTOR = 10_000

RESERVE_INACTIVE = "27"
HEALTH_FACTOR_NOT_BELOW_THRESHOLD = "45"
COLLATERAL_CANNOT_BE_LIQUIDATED = "46"
SPECIFIED_CURRENCY_NOT_BORROWED_BY_USER = "47"
INVALID_PRICE = "LendingPool: invalid price"


class LendingRevert(ValueError):
    """The pool would revert; ``code`` is its revert reason (an Aave error code or message)."""

    def __init__(self, code: str, detail: str = "") -> None:
        super().__init__(f"{code}: {detail}" if detail else code)
        self.code = code


def percent_mul(value: int, percentage: int) -> int:
    """Aave ``PercentageMath.percentMul``: value x bps / 10000, rounded half up."""
    return (value * percentage + HALF_PERCENTAGE_FACTOR) // PERCENTAGE_FACTOR


def percent_div(value: int, percentage: int) -> int:
    """Aave ``PercentageMath.percentDiv``: value x 10000 / bps, rounded half up."""
    return (value * PERCENTAGE_FACTOR + percentage // 2) // percentage


def wad_div(a: int, b: int) -> int:
    """Aave ``WadRayMath.wadDiv``: a / b in wad, rounded half up."""
    return (a * WAD + b // 2) // b


@dataclass(frozen=True, slots=True)
class ReserveConfig:
    """A listed reserve: ratios in bps (``liquidation_bonus`` >= 10000, e.g. 10500 = 5%)."""

    asset: str
    decimals: int
    ltv: int
    liquidation_threshold: int
    liquidation_bonus: int

    @property
    def unit(self) -> int:
        return 10**self.decimals


def _frozen(amounts: Mapping[str, int]) -> Mapping[str, int]:
    return MappingProxyType({asset: amount for asset, amount in amounts.items() if amount})


@dataclass(frozen=True, slots=True)
class Position:
    """One user's supplied (``collateral``) and borrowed (``debt``) amounts per asset.

    The mappings are copied read-only at construction, with zero amounts dropped.
    """

    collateral: Mapping[str, int] = field(default_factory=dict)
    debt: Mapping[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "collateral", _frozen(self.collateral))
        object.__setattr__(self, "debt", _frozen(self.debt))


@dataclass(frozen=True, slots=True)
class AccountData:
    """The six values of ``getUserAccountData`` (base = USD, 8 decimals; HF in wad)."""

    total_collateral_base: int
    total_debt_base: int
    available_borrows_base: int
    current_liquidation_threshold: int
    ltv: int
    health_factor: int


@dataclass(frozen=True, slots=True)
class LiquidationAmounts:
    """What ``liquidationCall`` takes from the liquidator and gives it (asset units)."""

    debt_repaid: int
    collateral_seized: int


def _config(configs: Mapping[str, ReserveConfig], asset: str) -> ReserveConfig:
    config = configs.get(asset)
    if config is None:
        raise LendingRevert(RESERVE_INACTIVE, f"reserve {asset} is not listed")
    return config


def _price(prices: Mapping[str, int], asset: str) -> int:
    price = prices.get(asset, 0)
    if price <= 0:
        raise LendingRevert(INVALID_PRICE, f"no positive price for {asset}")
    return price


def account_data(
    position: Position, configs: Mapping[str, ReserveConfig], prices: Mapping[str, int]
) -> AccountData:
    """``getUserAccountData`` (Aave ``GenericLogic.calculateUserAccountData``)."""
    total_collateral = weighted_ltv = weighted_threshold = 0
    for asset, amount in position.collateral.items():
        config = _config(configs, asset)
        if config.liquidation_threshold == 0:
            continue  # such a supply is not collateral at all
        value = amount * _price(prices, asset) // config.unit
        total_collateral += value
        weighted_ltv += value * config.ltv
        weighted_threshold += value * config.liquidation_threshold
    total_debt = sum(
        _price(prices, asset) * amount // _config(configs, asset).unit
        for asset, amount in position.debt.items()
    )
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
    position: Position, configs: Mapping[str, ReserveConfig], prices: Mapping[str, int]
) -> int:
    """Health factor in wad; ``MAX_UINT256`` with no debt; liquidatable below ``WAD``."""
    return account_data(position, configs, prices).health_factor


def _close_factor(health: int) -> int:
    if health > CLOSE_FACTOR_HF_THRESHOLD:
        return DEFAULT_LIQUIDATION_CLOSE_FACTOR
    return MAX_LIQUIDATION_CLOSE_FACTOR


def max_liquidatable_debt(
    position: Position,
    debt_asset: str,
    configs: Mapping[str, ReserveConfig],
    prices: Mapping[str, int],
) -> int:
    """Most of ``debt_asset`` one liquidation may cover now (0 while HF >= 1).

    50% of the user's debt in that asset, 100% once HF <= 0.95 (``_calculateDebt``). The
    collateral cap of :func:`liquidation_amounts` may lower what is actually repaid.
    """
    health = health_factor(position, configs, prices)
    if health >= HEALTH_FACTOR_LIQUIDATION_THRESHOLD:
        return 0
    return percent_mul(position.debt.get(debt_asset, 0), _close_factor(health))


def liquidation_amounts(
    position: Position,
    collateral: str,
    debt: str,
    debt_to_cover: int,
    configs: Mapping[str, ReserveConfig],
    prices: Mapping[str, int],
) -> LiquidationAmounts:
    """What ``liquidationCall(collateral, debt, user, debt_to_cover, …)`` repays and seizes.

    Raises :class:`LendingRevert` with the contract's code when it would revert: ``"45"`` healthy,
    ``"46"`` collateral not supplied or not collateral, ``"47"`` nothing of ``debt`` borrowed.
    ``debt_to_cover`` above the close-factor limit (``MAX_UINT256`` included) is clamped; when
    the bonus-inclusive collateral exceeds the user's balance, the whole balance is seized and
    the debt recomputed as ``LiquidationLogic._calculateAvailableCollateralToLiquidate`` does.
    """
    collateral_config = _config(configs, collateral)
    debt_config = _config(configs, debt)
    health = health_factor(position, configs, prices)
    user_debt = position.debt.get(debt, 0)
    user_collateral = position.collateral.get(collateral, 0)
    if health >= HEALTH_FACTOR_LIQUIDATION_THRESHOLD:
        raise LendingRevert(HEALTH_FACTOR_NOT_BELOW_THRESHOLD, f"health factor {health}")
    if collateral_config.liquidation_threshold == 0 or user_collateral == 0:
        raise LendingRevert(COLLATERAL_CANNOT_BE_LIQUIDATED, f"no {collateral} collateral")
    if user_debt == 0:
        raise LendingRevert(SPECIFIED_CURRENCY_NOT_BORROWED_BY_USER, f"no {debt} debt")

    debt_to_liquidate = min(debt_to_cover, percent_mul(user_debt, _close_factor(health)))
    collateral_price = _price(prices, collateral)
    debt_price = _price(prices, debt)
    bonus = collateral_config.liquidation_bonus
    base_collateral = (debt_price * debt_to_liquidate * collateral_config.unit) // (
        collateral_price * debt_config.unit
    )
    max_collateral = percent_mul(base_collateral, bonus)
    if max_collateral <= user_collateral:
        return LiquidationAmounts(debt_repaid=debt_to_liquidate, collateral_seized=max_collateral)
    debt_needed = percent_div(
        (collateral_price * user_collateral * debt_config.unit)
        // (debt_price * collateral_config.unit),
        bonus,
    )
    return LiquidationAmounts(debt_repaid=debt_needed, collateral_seized=user_collateral)
