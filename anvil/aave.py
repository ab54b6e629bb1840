"""Aave V3 on the devnet, deployed from the compiled artifacts ``@aave/core-v3`` ships.

The order follows Aave's own deployment (aave-v3-deploy): the addresses provider and its ACL
manager; the logic libraries, linked into the Pool and the PoolConfigurator implementations,
which the provider puts behind its proxies; the AaveOracle reading our feed proxies (USD, 8
decimals); the protocol data provider; the aToken and debt-token implementations and one
interest-rate strategy per reserve; then each reserve is initialised and configured (LTV,
liquidation threshold and bonus, reserve factor, liquidation protocol fee, flash loans on) through
the configurator, liquidity is supplied and borrowers open positions near their thresholds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

RAY = 10**27
GAS = 1_000_000
ZERO = "0x" + "00" * 20
LIBRARIES = (
    "SupplyLogic",
    "BorrowLogic",
    "LiquidationLogic",
    "EModeLogic",
    "BridgeLogic",
    "PoolLogic",
    "ConfiguratorLogic",
)


@dataclass(frozen=True, slots=True)
class RateSpec:
    """DefaultReserveInterestRateStrategy's variable-rate curve, in percent (stable rates off)."""

    optimal_usage: float
    base: float
    slope1: float
    slope2: float


@dataclass(frozen=True, slots=True)
class AaveReserveSpec:
    symbol: str
    ltv_bps: int
    liquidation_threshold_bps: int
    liquidation_bonus_bps: int
    reserve_factor_bps: int
    liquidation_protocol_fee_bps: int
    rates: RateSpec
    liquidity_usd: float = 0.0  # supplied by the deployer so that borrowers can borrow


# Parameters in the range of Aave's Ethereum market (governance-set values vary over time).
AAVE_RESERVES: tuple[AaveReserveSpec, ...] = (
    AaveReserveSpec("WETH", 8000, 8250, 10500, 1500, 1000, RateSpec(80, 0, 3.8, 80)),
    AaveReserveSpec("WBTC", 7000, 7500, 10650, 2000, 1000, RateSpec(45, 0, 4, 300)),
    AaveReserveSpec("USDC", 7700, 8000, 10450, 1000, 1000, RateSpec(90, 0, 4, 60), 5_000_000),
    AaveReserveSpec("DAI", 7500, 8000, 10500, 1000, 1000, RateSpec(90, 0, 4, 75), 5_000_000),
)


def _ray(percent: float) -> int:
    return round(percent * 10**4) * RAY // 10**6


def deploy_aave(builder: Any, feeds: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Deploy Aave V3 with ``builder`` (:class:`anvil.world._Builder`: its deployer, token
    addresses and helpers), priced by ``feeds`` (symbol -> {"address": proxy}); returns the
    addresses and the borrowers, as the world JSON's ``aave``."""
    d, owner = builder.d, builder.owner
    provider = d.deploy("PoolAddressesProvider", "mevbot devnet", owner, sender=owner)
    d.transact("PoolAddressesProvider", provider, "setACLAdmin", owner, sender=owner)
    acl = d.deploy("ACLManager", provider, sender=owner)
    d.transact("PoolAddressesProvider", provider, "setACLManager", acl, sender=owner)
    d.transact("ACLManager", acl, "addPoolAdmin", owner, sender=owner)
    libraries = {name: d.deploy(name, sender=owner) for name in LIBRARIES}
    libraries["FlashLoanLogic"] = d.deploy(
        "FlashLoanLogic", sender=owner, libraries={"BorrowLogic": libraries["BorrowLogic"]}
    )
    pool_impl = d.deploy("Pool", provider, sender=owner, libraries=libraries)
    d.transact("Pool", pool_impl, "initialize", provider, sender=owner)
    d.transact("PoolAddressesProvider", provider, "setPoolImpl", pool_impl, sender=owner)
    configurator_impl = d.deploy("PoolConfigurator", sender=owner, libraries=libraries)
    d.transact("PoolConfigurator", configurator_impl, "initialize", provider, sender=owner)
    d.transact(
        "PoolAddressesProvider",
        provider,
        "setPoolConfiguratorImpl",
        configurator_impl,
        sender=owner,
    )
    (pool,) = d.call("PoolAddressesProvider", provider, "getPool")
    (configurator,) = d.call("PoolAddressesProvider", provider, "getPoolConfigurator")
    pool, configurator = pool.lower(), configurator.lower()

    symbols = [r.symbol for r in AAVE_RESERVES]
    oracle = d.deploy(
        "AaveOracle",
        provider,
        [builder.addresses[s] for s in symbols],
        [feeds[s]["address"] for s in symbols],
        ZERO,
        ZERO,  # USD as the base currency, as Aave's Ethereum market
        10**8,
        sender=owner,
    )
    d.transact("PoolAddressesProvider", provider, "setPriceOracle", oracle, sender=owner)
    data_provider = d.deploy("AaveProtocolDataProvider", provider, sender=owner)
    d.transact(
        "PoolAddressesProvider", provider, "setPoolDataProvider", data_provider, sender=owner
    )
    implementations = {
        name: d.deploy(name, pool, sender=owner)
        for name in ("AToken", "StableDebtToken", "VariableDebtToken")
    }

    reserves: dict[str, dict[str, Any]] = {}
    inputs = []
    for reserve in AAVE_RESERVES:
        rates = reserve.rates
        strategy = d.deploy(
            "DefaultReserveInterestRateStrategy",
            provider,
            _ray(rates.optimal_usage),
            _ray(rates.base),
            _ray(rates.slope1),
            _ray(rates.slope2),
            0,
            0,
            0,
            0,
            _ray(20),
            sender=owner,
        )
        token = builder.tokens[reserve.symbol]
        inputs.append(
            (
                implementations["AToken"],
                implementations["StableDebtToken"],
                implementations["VariableDebtToken"],
                token.decimals,
                strategy,
                builder.addresses[reserve.symbol],
                owner,  # treasury
                ZERO,  # no incentives controller
                f"Aave Devnet {reserve.symbol}",
                f"aDev{reserve.symbol}",
                f"Aave Devnet Variable Debt {reserve.symbol}",
                f"variableDebtDev{reserve.symbol}",
                f"Aave Devnet Stable Debt {reserve.symbol}",
                f"stableDebtDev{reserve.symbol}",
                b"",
            )
        )
        reserves[reserve.symbol] = {
            "asset": builder.addresses[reserve.symbol],
            "interest_rate_strategy": strategy,
            "ltv_bps": reserve.ltv_bps,
            "liquidation_threshold_bps": reserve.liquidation_threshold_bps,
            "liquidation_bonus_bps": reserve.liquidation_bonus_bps,
            "reserve_factor_bps": reserve.reserve_factor_bps,
            "liquidation_protocol_fee_bps": reserve.liquidation_protocol_fee_bps,
        }
    d.transact("PoolConfigurator", configurator, "initReserves", inputs, sender=owner)
    for reserve in AAVE_RESERVES:
        asset = builder.addresses[reserve.symbol]
        for function, *args in (
            (
                "configureReserveAsCollateral",
                reserve.ltv_bps,
                reserve.liquidation_threshold_bps,
                reserve.liquidation_bonus_bps,
            ),
            ("setReserveBorrowing", True),
            ("setReserveFlashLoaning", True),  # as Aave's markets: liquidators borrow here
            ("setReserveFactor", reserve.reserve_factor_bps),
            ("setLiquidationProtocolFee", reserve.liquidation_protocol_fee_bps),
        ):
            d.transact("PoolConfigurator", configurator, function, asset, *args, sender=owner)
        a_token, stable, variable = d.call(
            "AaveProtocolDataProvider", data_provider, "getReserveTokensAddresses", asset
        )
        reserves[reserve.symbol] |= {
            "a_token": a_token.lower(),
            "stable_debt_token": stable.lower(),
            "variable_debt_token": variable.lower(),
        }

    builder.approve_all(owner, pool)
    for reserve in AAVE_RESERVES:
        if reserve.liquidity_usd:
            amount = builder.usd_amount(reserve.symbol, reserve.liquidity_usd)
            builder.give(reserve.symbol, owner, amount)
            asset = builder.addresses[reserve.symbol]
            d.transact("Pool", pool, "supply", asset, amount, owner, 0, sender=owner)
    return {
        "addresses_provider": provider,
        "acl_manager": acl,
        "pool": pool,
        "pool_implementation": pool_impl,
        "pool_configurator": configurator,
        "pool_configurator_implementation": configurator_impl,
        "oracle": oracle,
        "data_provider": data_provider,
        "libraries": libraries,
        "token_implementations": implementations,
        "reserves": reserves,
        "borrowers": _open_borrowers(builder, pool),
    }


def _open_borrowers(builder: Any, pool: str) -> list[dict[str, Any]]:
    """The world's borrower specs, on Aave: collateral supplied, variable debt borrowed up to
    the target health factor at the start prices."""
    d = builder.d
    thresholds = {r.symbol: r.liquidation_threshold_bps for r in AAVE_RESERVES}
    borrowers = []
    for index, wanted in enumerate(builder.spec.borrowers):
        account = builder.account(f"aave-borrower-{index}")
        d.rpc("anvil_setBalance", account.address, hex(10**21))
        d.rpc("anvil_impersonateAccount", account.address)
        collateral = builder.amount(wanted.collateral, wanted.collateral_amount)
        builder.give(wanted.collateral, account.address, collateral)
        builder.approve_all(account.address, pool)
        collateral_usd = wanted.collateral_amount * builder.tokens[wanted.collateral].usd_price
        debt_usd = collateral_usd * thresholds[wanted.collateral] / 10_000 / wanted.health_factor
        debt = builder.usd_amount(wanted.debt, debt_usd)
        collateral_asset = builder.addresses[wanted.collateral]
        sender = account.address
        # Explicit gas: anvil's estimate for a first borrow falls short (the index updates).
        d.transact(
            "Pool", pool, "supply", collateral_asset, collateral, sender, 0, sender=sender, gas=GAS
        )
        debt_asset = builder.addresses[wanted.debt]
        d.transact("Pool", pool, "borrow", debt_asset, debt, 2, 0, sender, sender=sender, gas=GAS)
        d.rpc("anvil_stopImpersonatingAccount", account.address)
        borrowers.append(
            {
                "address": account.address,
                "private_key": account.private_key,
                "collateral": wanted.collateral,
                "collateral_amount": collateral,
                "debt": wanted.debt,
                "debt_amount": debt,
                "target_health_factor": wanted.health_factor,
            }
        )
    return borrowers
