"""Aave V3 on the devnet: the code is @aave/core-v3's, the pool revision is read, reserves carry
their configured parameters, the oracle reads our OCR feeds, borrowers sit at their target
health factors, a transmit moves them, and debt grows with time."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from typing import TypeVar

import pytest
from devnet_txs import transmit
from hypothesis import HealthCheck, given, settings
from hypothesis import event as hypothesis_event
from hypothesis import strategies as st
from official_code import differences

from anvil import artifacts
from anvil.aave import AAVE_RESERVES
from anvil.deployer import Deployer, DeployError, encode
from anvil.world import World
from chain.rpc import Rpc, connect
from chain.types import Log
from simulation.aave_v3 import (
    AaveRevert,
    AccountData,
    UnsupportedRevision,
    account_data,
    check_revision,
    liquidation,
    ray_mul,
)
from simulation.loader import load_aave, load_feeds, load_lending
from simulation.state import ChainState

# EIP-1967's implementation slot: where the provider's InitializableImmutableAdminUpgradeability
# proxies keep their implementation.
IMPLEMENTATION_SLOT = "0x360894a13ba1a3210667c828492db98dca3e2076cc3735a920a3ca505d382bbc"
WAD = 10**18
POOL = artifacts.load("Pool").abi
T = TypeVar("T")


@pytest.fixture
def world(devnet_factory) -> World:
    return devnet_factory(block_time=None).world


@pytest.fixture
def read_chain(world: World) -> Iterator[Callable[[Callable[[Rpc], Awaitable[T]]], T]]:
    """``read_chain(read)`` runs ``read(rpc)`` on one event loop and one connection kept for all
    of a property test's examples (a loop and a session per example cost more than the reads)."""

    async def open_rpc() -> Rpc:
        return await connect(world.rpc["http"])

    with asyncio.Runner() as runner:
        rpc = runner.run(open_rpc())
        try:
            yield lambda read: runner.run(read(rpc))
        finally:
            runner.run(rpc.close())


def _code(d: Deployer, address: str) -> bytes:
    return bytes.fromhex(d.rpc("eth_getCode", address, "latest")[2:])


def test_every_aave_contract_runs_the_packages_code(world: World):
    d, aave = Deployer(world.rpc["http"]), world.aave
    libraries = aave["libraries"]
    contracts = [
        ("PoolAddressesProvider", aave["addresses_provider"], None),
        ("ACLManager", aave["acl_manager"], None),
        ("Pool", aave["pool_implementation"], libraries),
        ("PoolConfigurator", aave["pool_configurator_implementation"], libraries),
        ("AaveOracle", aave["oracle"], None),
        ("AaveProtocolDataProvider", aave["data_provider"], None),
        *((name, address, None) for name, address in aave["token_implementations"].items()),
        *(
            ("DefaultReserveInterestRateStrategy", r["interest_rate_strategy"], None)
            for r in aave["reserves"].values()
        ),
        *((name, address, libraries) for name, address in libraries.items()),
    ]
    assert len(contracts) == 6 + 3 + 4 + 8  # + token impls, rate strategies, libraries
    assert [n for n, a, libs in contracts if differences(n, _code(d, a), libs)] == []
    for proxy, implementation in (
        (aave["pool"], aave["pool_implementation"]),
        (aave["pool_configurator"], aave["pool_configurator_implementation"]),
    ):
        slot = d.rpc("eth_getStorageAt", proxy, IMPLEMENTATION_SLOT, "latest")
        assert "0x" + slot[-40:] == implementation


def test_the_pool_revision_and_the_reserves_are_as_configured(world: World):
    d, aave = Deployer(world.rpc["http"]), world.aave
    assert d.call("Pool", aave["pool"], "POOL_REVISION") == (1,)
    (listed,) = d.call("Pool", aave["pool"], "getReservesList")
    assert [a.lower() for a in listed] == [world.tokens[r.symbol]["address"] for r in AAVE_RESERVES]
    for reserve in AAVE_RESERVES:
        asset = world.tokens[reserve.symbol]["address"]
        config = d.call(
            "AaveProtocolDataProvider", aave["data_provider"], "getReserveConfigurationData", asset
        )
        decimals, ltv, threshold, bonus, factor, collateral, borrowing, stable, active, frozen = (
            config
        )
        assert (decimals, ltv, threshold, bonus, factor) == (
            world.tokens[reserve.symbol]["decimals"],
            reserve.ltv_bps,
            reserve.liquidation_threshold_bps,
            reserve.liquidation_bonus_bps,
            reserve.reserve_factor_bps,
        )
        assert (collateral, borrowing, stable, active, frozen) == (True, True, False, True, False)
        assert d.call(
            "AaveProtocolDataProvider", aave["data_provider"], "getLiquidationProtocolFee", asset
        ) == (reserve.liquidation_protocol_fee_bps,)
        # The Aave oracle prices every asset by our OCR feed, read through its proxy.
        assert d.call("AaveOracle", aave["oracle"], "getAssetPrice", asset) == (
            world.feeds[reserve.symbol]["answer"],
        )


def test_borrowers_sit_at_their_targets_and_a_transmit_puts_the_edge_one_under(world: World):
    d, pool = Deployer(world.rpc["http"]), world.aave["pool"]

    def health(user: str) -> int:
        return d.call("Pool", pool, "getUserAccountData", user)[5]

    for borrower in world.aave["borrowers"]:
        target = round(borrower["target_health_factor"] * WAD)
        assert abs(health(borrower["address"]) - target) * 10**6 < target  # rounding of amounts
    edge, second = world.aave["borrowers"][0]["address"], world.aave["borrowers"][1]["address"]
    aggregator, data = transmit(world, "WETH", world.feeds["WETH"]["answer"] * 96 // 100)
    d.send(world.roles["oracle_updater"].address, aggregator, data)
    assert health(edge) < WAD < health(second)


def test_variable_debt_grows_with_time(world: World):
    d, borrower = Deployer(world.rpc["http"]), world.aave["borrowers"][0]
    debt_token = world.aave["reserves"][borrower["debt"]]["variable_debt_token"]

    def debt() -> int:
        return d.call("VariableDebtToken", debt_token, "balanceOf", borrower["address"])[0]

    before = debt()
    assert before >= borrower["debt_amount"]
    d.rpc("evm_increaseTime", 30 * 86_400)
    d.rpc("evm_mine")
    assert debt() > before


# ------------------------------------------------- local account math equals the pool's, to the wei


def _transmit_next(d: Deployer, world: World, symbol: str, answer: int) -> None:
    aggregator = world.feeds[symbol]["aggregator"]
    epoch = d.call("OffchainAggregator", aggregator, "latestTransmissionDetails")[1]
    _, data = transmit(world, symbol, answer, epoch + 1)
    d.send(world.roles["oracle_updater"].address, aggregator, data)


async def _loaded(rpc: Rpc, world: World, start: int) -> ChainState:
    """The pool's state loaded at block ``start``, the head then (as the bot loads it: anvil
    answers for an older block slowly, once it no longer holds that block's state)."""
    state = ChainState(lending_pool=world.aave["pool"])
    await load_lending(rpc, state, 0, start)
    await load_feeds(rpc, state, state.feed_assets, hex(start))
    return state


async def _followed(rpc: Rpc, state: ChainState, start: int) -> ChainState:
    """``state`` (loaded at block ``start``) after every later block's logs to the head."""
    head = int(await rpc.call("eth_blockNumber", []), 16)
    topics = [["0x" + t.hex() for t in state.log_topics]]
    for number in range(start + 1, head + 1):
        block = await rpc.call("eth_getBlockByNumber", [hex(number), False])
        raw = await rpc.call("eth_getLogs", [{"blockHash": block["hash"], "topics": topics}])
        logs = [Log.from_rpc(entry) for entry in raw]
        state.apply_block(number, block["hash"], logs, int(block["timestamp"], 16))
    return state


async def _local_and_chain(
    rpc: Rpc, world: World, users: list[str], loaded: ChainState, start: int
):
    """Account data three ways: from a fresh snapshot of the pool, from ``loaded`` (loaded at
    block ``start``) after the pool's events since, and the pool's own getUserAccountData."""
    snapshot = await load_aave(rpc, world.aave["pool"], world.aave["oracle"], users)
    block = await rpc.call("eth_getBlockByNumber", ["latest", False])
    now = int(block["timestamp"], 16)
    fn = POOL.function("getUserAccountData")
    chain = []
    for user in users:
        raw = await rpc.call(
            "eth_call",
            [{"to": world.aave["pool"], "data": "0x" + fn.encode(user).hex()}, "latest"],
        )
        chain.append(AccountData(*fn.decode_output(bytes.fromhex(raw[2:]))))
    state = await _followed(rpc, loaded, start)
    local = [
        account_data(snapshot.positions[u], snapshot.reserves, snapshot.prices, now) for u in users
    ]
    indexed = [
        account_data(state.positions[u], state.reserves, state.prices, state.timestamp)
        for u in users
    ]
    assert state.timestamp == now
    return local, indexed, chain


def _give(d: Deployer, world: World, symbol: str, holder: str, amount: int) -> None:
    asset = world.tokens[symbol]["address"]
    if symbol == "WETH":
        d.rpc("anvil_setBalance", holder, hex(10**30))
        d.send(holder, asset, encode("WETH9", "deposit"), amount)
    else:
        d.send(world.roles["deployer"].address, asset, encode("ERC20Token", "mint", holder, amount))


def _step(d: Deployer, world: World, borrower: dict, action: str, percent: int) -> None:
    """One random action on the pool; an action the pool refuses (a withdrawal that would
    leave the user unhealthy, a liquidation of a healthy user) changes nothing."""
    pool, user = world.aave["pool"], borrower["address"]
    collateral = world.tokens[borrower["collateral"]]["address"]
    debt = world.tokens[borrower["debt"]]["address"]
    reserves = world.aave["reserves"]
    if action in ("crash", "liquidate"):  # ETH down by 0-25% (liquidate: 10-35%) of its start
        drop = percent // 4 + (10 if action == "liquidate" else 0)
        _transmit_next(d, world, "WETH", world.feeds["WETH"]["answer"] * (100 - drop) // 100)
        if action == "crash":
            return
    sender = world.roles["keeper"].address if action == "liquidate" else user
    d.rpc("anvil_impersonateAccount", sender)
    try:
        if action == "supply":
            amount = max(1, borrower["collateral_amount"] * percent // 100)
            _give(d, world, borrower["collateral"], user, amount)
            d.transact("Pool", pool, "supply", collateral, amount, user, 0, sender=user, gas=10**6)
        elif action == "borrow":
            available = d.call("Pool", pool, "getUserAccountData", user)[2]
            price = d.call("AaveOracle", world.aave["oracle"], "getAssetPrice", debt)[0]
            units = 10 ** world.tokens[borrower["debt"]]["decimals"]
            amount = available * min(percent, 60) // 100 * units // price
            if amount:
                d.transact("Pool", pool, "borrow", debt, amount, 2, 0, user, sender=user, gas=10**6)
        elif action == "repay":
            token = reserves[borrower["debt"]]["variable_debt_token"]
            owed = d.call("VariableDebtToken", token, "balanceOf", user)[0]
            _give(d, world, borrower["debt"], user, owed * 2 + 1)
            amount = 2**256 - 1 if percent > 60 else max(1, owed * percent // 100)
            d.transact("Pool", pool, "repay", debt, amount, 2, user, sender=user, gas=10**6)
        elif action == "withdraw":
            token = reserves[borrower["collateral"]]["a_token"]
            held = d.call("AToken", token, "balanceOf", user)[0]
            amount = 2**256 - 1 if percent > 90 else held * percent // 100
            d.transact("Pool", pool, "withdraw", collateral, amount, user, sender=user, gas=10**6)
        else:
            _give(d, world, borrower["debt"], sender, 10**30)
            d.transact("ERC20Token", debt, "approve", pool, 2**256 - 1, sender=sender)
            receive_a_token = percent % 2 == 0
            args = (collateral, debt, user, 2**256 - 1, receive_a_token)
            d.transact("Pool", pool, "liquidationCall", *args, sender=sender, gas=2_000_000)
        hypothesis_event(f"{action} done")
    except DeployError:
        hypothesis_event(f"{action} refused")  # nothing moved
    finally:
        d.rpc("anvil_stopImpersonatingAccount", sender)


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    steps=st.lists(
        st.tuples(
            st.integers(0, 5),  # borrower
            st.sampled_from(["supply", "borrow", "repay", "withdraw", "crash", "liquidate"]),
            st.integers(1, 100),  # percent of the borrower's collateral / available borrows...
            st.integers(0, 400 * 86_400),  # seconds before the step
        ),
        max_size=4,
    ),
    eth_move=st.integers(-20, 20),
    btc_move=st.integers(-20, 20),
    elapsed=st.integers(0, 3 * 365 * 86_400),
)
def test_local_account_data_equals_get_user_account_data(
    world, read_chain, steps, eth_move, btc_move, elapsed
):
    """Random supplies, borrows, repayments (in full too), withdrawals, price crashes and
    liquidations (receiving the underlying or aTokens), price moves and time: account data from
    a snapshot of the pool, and from a state kept from the pool's events since before the
    steps, equal the pool's getUserAccountData to the wei."""
    d = Deployer(world.rpc["http"])
    snapshot = d.rpc("evm_snapshot")
    start = int(d.rpc("eth_blockNumber"), 16)
    loaded = read_chain(lambda rpc: _loaded(rpc, world, start))
    try:
        borrowers = world.aave["borrowers"]
        for index, action, percent, wait in steps:
            d.rpc("evm_increaseTime", wait)
            _step(d, world, borrowers[index], action, percent)
        _transmit_next(d, world, "WETH", world.feeds["WETH"]["answer"] * (100 + eth_move) // 100)
        _transmit_next(d, world, "WBTC", world.feeds["WBTC"]["answer"] * (100 + btc_move) // 100)
        d.rpc("evm_increaseTime", elapsed)
        d.rpc("evm_mine")
        users = [b["address"] for b in borrowers]
        local, indexed, chain = read_chain(
            lambda rpc: _local_and_chain(rpc, world, users, loaded, start)
        )
        assert local == chain
        assert indexed == chain
        hypothesis_event(f"under water: {sum(c.health_factor < WAD for c in chain)}")
    finally:
        d.rpc("evm_revert", snapshot)


def test_an_unknown_pool_revision_is_refused_with_one_clear_line():
    check_revision(1)
    with pytest.raises(UnsupportedRevision, match=r"^Aave pool revision 3 is not supported"):
        check_revision(3)


def _balance(d: Deployer, token: str, holder: str) -> int:
    return d.call("ERC20Token", token, "balanceOf", holder)[0]


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    index=st.integers(0, 5),
    eth_drop=st.integers(0, 30),
    btc_drop=st.integers(0, 30),
    elapsed=st.integers(1, 2 * 365 * 86_400),
    cover_percent=st.sampled_from([1, 10, 30, 50, 70, 100, None]),  # None: type(uint256).max
)
def test_liquidation_sizing_equals_what_liquidation_call_moves(
    world, read_chain, index, eth_drop, btc_drop, elapsed, cover_percent
):
    """Close factor, per-reserve bonus and protocol fee, against the pool's own liquidationCall
    at a fixed block time: repaid debt, collateral received and the treasury's fee, to the wei;
    where the pool reverts, the local sizing raises the same code."""
    d = Deployer(world.rpc["http"])
    snapshot = d.rpc("evm_snapshot")
    try:
        aave, borrower = world.aave, world.aave["borrowers"][index]
        liquidator, treasury = world.roles["keeper"].address, world.roles["deployer"].address
        collateral = world.tokens[borrower["collateral"]]["address"]
        debt = world.tokens[borrower["debt"]]["address"]
        _transmit_next(d, world, "WETH", world.feeds["WETH"]["answer"] * (100 - eth_drop) // 100)
        _transmit_next(d, world, "WBTC", world.feeds["WBTC"]["answer"] * (100 - btc_drop) // 100)
        d.rpc("evm_mine")
        block = d.rpc("eth_getBlockByNumber", "latest", False)
        at = int(block["timestamp"], 16) + elapsed
        local_snapshot = read_chain(
            lambda rpc: load_aave(rpc, aave["pool"], aave["oracle"], [borrower["address"]])
        )
        position = local_snapshot.positions[borrower["address"]]
        owed = d.call(
            "VariableDebtToken",
            aave["reserves"][borrower["debt"]]["variable_debt_token"],
            "balanceOf",
            borrower["address"],
        )[0]
        cover = 2**256 - 1 if cover_percent is None else max(1, owed * cover_percent // 100)
        args = (collateral, debt, borrower["address"], cover, False)
        try:
            expected = liquidation(
                position,
                local_snapshot.reserves,
                local_snapshot.prices,
                at,
                collateral,
                debt,
                cover,
            )
        except AaveRevert as revert:
            d.rpc("evm_setNextBlockTimestamp", at)
            d.rpc("evm_mine")
            data = encode("Pool", "liquidationCall", *args)
            with pytest.raises(
                DeployError, match=rf"^eth_call: execution reverted: {revert.code} "
            ):
                d.rpc(
                    "eth_call",
                    {"from": liquidator, "to": aave["pool"], "data": "0x" + data.hex()},
                    "latest",
                )
            hypothesis_event(f"revert {revert.code}")
            return
        d.send(treasury, debt, encode("ERC20Token", "mint", liquidator, 10**30))
        d.transact("ERC20Token", debt, "approve", aave["pool"], 2**256 - 1, sender=liquidator)
        a_collateral = aave["reserves"][borrower["collateral"]]["a_token"]
        before = (_balance(d, debt, liquidator), _balance(d, collateral, liquidator))
        treasury_before = d.call("AToken", a_collateral, "scaledBalanceOf", treasury)[0]
        d.rpc("evm_setNextBlockTimestamp", at)
        d.transact("Pool", aave["pool"], "liquidationCall", *args, sender=liquidator, gas=2_000_000)
        after = (_balance(d, debt, liquidator), _balance(d, collateral, liquidator))
        assert before[0] - after[0] == expected.debt_repaid
        assert after[1] - before[1] == expected.collateral_to_liquidator
        # The fee moves as aTokens: its scaled amount at the collateral reserve's index then.
        reserve = local_snapshot.reserves[collateral]
        fee_scaled = (
            d.call("AToken", a_collateral, "scaledBalanceOf", treasury)[0] - treasury_before
        )
        index_then = reserve.normalized_income(at)
        assert abs(ray_mul(fee_scaled, index_then) - expected.protocol_fee) <= 1
        hypothesis_event("liquidated")
    finally:
        d.rpc("evm_revert", snapshot)
