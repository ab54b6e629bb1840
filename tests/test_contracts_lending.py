"""LendingPool (priced by OCR feeds) on a real anvil, and simulation/lending.py against it.

The pure-math properties run without a node; the on-chain tests share one anvil per module and
roll it back with evm_snapshot/evm_revert around every test (and every hypothesis example), so
each starts from the same freshly deployed market.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from eth_utils import keccak
from hypothesis import event as hypothesis_event
from hypothesis import given, settings
from hypothesis import strategies as st
from web3 import Web3
from web3.contract import Contract
from web3.exceptions import ContractLogicError
from web3.logs import DISCARD

from anvil import artifacts
from chain.node import AnvilProcess
from chain.ocr import transmit_answer
from simulation.lending import (
    MAX_UINT256,
    WAD,
    AccountData,
    LendingRevert,
    Position,
    ReserveConfig,
    account_data,
    health_factor,
    liquidation_amounts,
    max_liquidatable_debt,
    percent_div,
    percent_mul,
)

LIQUIDATION_CALL_TOPIC = "e413a321e8681d831f4dbccbca790d2952b56f977908e45be37335533e005286"
USD = 10**8


# ---------------------------------------------------------------- devnet helpers (shared)


@dataclass
class Devnet:
    """web3 over one anvil: deploy artifacts, send from unlocked dev accounts, read reverts."""

    w3: Web3
    accounts: list[str] = field(default_factory=list)

    @classmethod
    def connect(cls, url: str) -> Devnet:
        w3 = Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": 10}))
        return cls(w3=w3, accounts=list(w3.eth.accounts))

    def deploy(self, name: str, *args: Any, sender: str | None = None) -> Contract:
        artifact = artifacts.artifact_json(name)
        factory = self.w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
        receipt = self.send(factory.constructor(*args), sender or self.accounts[0])
        return self.w3.eth.contract(address=receipt["contractAddress"], abi=artifact["abi"])

    def at(self, name: str, address: str) -> Contract:
        artifact = artifacts.artifact_json(name)
        return self.w3.eth.contract(address=Web3.to_checksum_address(address), abi=artifact["abi"])

    def send(self, call: Any, sender: str, **tx: Any) -> Any:
        tx_hash = call.transact({"from": sender, **tx})
        receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=10)
        assert receipt["status"] == 1, f"transaction reverted: {receipt}"
        return receipt

    def revert_reason(self, call: Any, sender: str) -> str:
        """The revert reason of ``call`` from ``sender`` (fails the test if it does not revert)."""
        with pytest.raises(ContractLogicError) as caught:
            call.call({"from": sender})
        return str(caught.value.message).removeprefix("execution reverted: ")

    def snapshot(self) -> str:
        return self.w3.provider.make_request("evm_snapshot", [])["result"]

    def revert(self, snapshot_id: str) -> None:
        assert self.w3.provider.make_request("evm_revert", [snapshot_id])["result"] is True


@dataclass(frozen=True)
class AssetSpec:
    symbol: str
    decimals: int
    price: int
    ltv: int
    liquidation_threshold: int
    liquidation_bonus: int


@dataclass
class Feed:
    """An OCR aggregator behind its proxy; ``transmitter`` may transmit under ``digest``."""

    devnet: Devnet
    proxy: Contract
    aggregator: Contract
    digest: bytes
    transmitter: str
    epochs: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def transmit(self, answer: int) -> Any:
        """Transmit ``answer`` in the next epoch; the receipt."""
        data = transmit_answer(answer, self.digest, next(self.epochs))
        return self.devnet.w3.eth.wait_for_transaction_receipt(
            self.devnet.w3.eth.send_transaction(
                {"from": self.transmitter, "to": self.aggregator.address, "data": data}
            )
        )


def deploy_feed(devnet: Devnet, description: str, answer: int, transmitter: str) -> Feed:
    """Aggregator (4 oracles, f = 1, ``transmitter`` the first) answering ``answer``, and its
    proxy."""
    owner = devnet.accounts[0]
    aggregator = devnet.deploy("OffchainAggregator", 1, 2**191 - 1, 8, description)
    oracles = [transmitter, *devnet.accounts[6:9]]
    devnet.send(aggregator.functions.setConfig(oracles, oracles, 1, 1, b""), owner)
    digest = aggregator.functions.latestConfigDetails().call()[2]
    proxy = devnet.deploy("AggregatorProxy", aggregator.address, "0x" + "00" * 20)
    feed = Feed(devnet, proxy, aggregator, digest, transmitter)
    feed.transmit(answer)
    return feed


@dataclass
class Market:
    """A LendingPool with one token + feed per reserve; ``updater`` posts prices."""

    devnet: Devnet
    pool: Contract
    updater: str
    tokens: dict[str, Contract]
    feeds: dict[str, Feed]
    configs: dict[str, ReserveConfig]

    def address(self, symbol: str) -> str:
        return self.tokens[symbol].address.lower()

    def set_price(self, symbol: str, price: int) -> None:
        self.feeds[symbol].transmit(price)

    def prices(self) -> dict[str, int]:
        return {
            self.address(symbol): feed.proxy.functions.latestAnswer().call()
            for symbol, feed in self.feeds.items()
        }

    def fund(self, symbol: str, holder: str, amount: int) -> None:
        """Give ``holder`` tokens and approve the pool for them."""
        token = self.tokens[symbol]
        if "mint" in {f["name"] for f in token.abi if f.get("type") == "function"}:
            self.devnet.send(token.functions.mint(holder, amount), self.devnet.accounts[0])
        else:  # WETH9: wrap ether
            self.devnet.send(token.functions.deposit(), holder, value=amount)
        self.devnet.send(token.functions.approve(self.pool.address, MAX_UINT256), holder)

    def supply(self, symbol: str, holder: str, amount: int) -> None:
        self.fund(symbol, holder, amount)
        self.devnet.send(
            self.pool.functions.supply(self.tokens[symbol].address, amount, holder, 0), holder
        )

    def borrow(self, symbol: str, holder: str, amount: int) -> None:
        self.devnet.send(
            self.pool.functions.borrow(self.tokens[symbol].address, amount, 2, 0, holder), holder
        )

    def position(self, user: str) -> Position:
        assets, collateral, debt = self.pool.functions.getUserPosition(user).call()
        return Position(
            collateral={a.lower(): c for a, c in zip(assets, collateral, strict=True)},
            debt={a.lower(): d for a, d in zip(assets, debt, strict=True)},
        )

    def account(self, user: str) -> AccountData:
        return AccountData(*self.pool.functions.getUserAccountData(user).call())


def deploy_market(
    devnet: Devnet, specs: list[AssetSpec], existing: dict[str, Contract] | None = None
) -> Market:
    """Deploy a pool listing ``specs``; tokens named in ``existing`` are reused (e.g. WETH9)."""
    owner, updater = devnet.accounts[0], devnet.accounts[1]
    pool = devnet.deploy("LendingPool")
    tokens: dict[str, Contract] = {}
    feeds: dict[str, Feed] = {}
    configs: dict[str, ReserveConfig] = {}
    for spec in specs:
        token = (existing or {}).get(spec.symbol) or devnet.deploy(
            "ERC20Token", spec.symbol, spec.symbol, spec.decimals
        )
        feed = deploy_feed(devnet, f"{spec.symbol} / USD", spec.price, updater)
        devnet.send(
            pool.functions.configureReserve(
                token.address,
                feed.proxy.address,
                spec.ltv,
                spec.liquidation_threshold,
                spec.liquidation_bonus,
            ),
            owner,
        )
        tokens[spec.symbol], feeds[spec.symbol] = token, feed
        configs[token.address.lower()] = ReserveConfig(
            asset=token.address.lower(),
            decimals=spec.decimals,
            ltv=spec.ltv,
            liquidation_threshold=spec.liquidation_threshold,
            liquidation_bonus=spec.liquidation_bonus,
        )
    return Market(devnet, pool, updater, tokens, feeds, configs)


def event_args(contract: Contract, receipt: Any, event: str) -> list[dict[str, Any]]:
    return [
        dict(e["args"])
        for e in getattr(contract.events, event)().process_receipt(receipt, errors=DISCARD)
    ]


# ---------------------------------------------------------------- fixtures

SPECS = [
    AssetSpec("WETH", 18, 2000 * USD, 8000, 8250, 10500),
    AssetSpec("USDC", 6, 1 * USD, 7700, 8000, 10450),
    AssetSpec("WBTC", 8, 60000 * USD, 7000, 7500, 10650),
]


@pytest.fixture(scope="module")
def chain_market() -> Iterator[Market]:
    with AnvilProcess() as node:
        devnet = Devnet.connect(node.http_url)
        market = deploy_market(devnet, SPECS)
        lender = devnet.accounts[2]
        market.supply("USDC", lender, 10_000_000 * 10**6)
        market.supply("WETH", lender, 10_000 * 10**18)
        yield market


@pytest.fixture
def market(chain_market: Market) -> Iterator[Market]:
    snapshot = chain_market.devnet.snapshot()
    yield chain_market
    chain_market.devnet.revert(snapshot)


def borrower_at_12000_usdc(market: Market) -> str:
    """accounts[3]: 10 WETH supplied, 12000 USDC borrowed (HF 1.375 at $2000)."""
    borrower = market.devnet.accounts[3]
    market.supply("WETH", borrower, 10 * 10**18)
    market.borrow("USDC", borrower, 12_000 * 10**6)
    return borrower


# ---------------------------------------------------------------- lending pool


def test_supply_borrow_account_data_is_exact(market: Market) -> None:
    devnet, pool = market.devnet, market.pool
    borrower = devnet.accounts[3]
    market.fund("WETH", borrower, 10 * 10**18)
    supply = devnet.send(
        pool.functions.supply(market.tokens["WETH"].address, 10 * 10**18, borrower, 7), borrower
    )
    assert supply["logs"][-1]["topics"][0] == keccak(
        text="Supply(address,address,address,uint256,uint16)"
    )
    assert event_args(pool, supply, "Supply") == [
        {
            "reserve": market.tokens["WETH"].address,
            "user": borrower,
            "onBehalfOf": borrower,
            "amount": 10 * 10**18,
            "referralCode": 7,
        }
    ]
    # 10 WETH at $2000 with LTV 80%: $16000 borrowable, so $16000.01 is one cent too many.
    too_much = pool.functions.borrow(market.tokens["USDC"].address, 16_000_010_000, 2, 0, borrower)
    assert devnet.revert_reason(too_much, borrower) == "36"
    borrow = devnet.send(
        pool.functions.borrow(market.tokens["USDC"].address, 12_000 * 10**6, 2, 0, borrower),
        borrower,
    )
    assert borrow["logs"][-1]["topics"][0] == keccak(
        text="Borrow(address,address,address,uint256,uint8,uint256,uint16)"
    )
    assert event_args(pool, borrow, "Borrow")[0]["amount"] == 12_000 * 10**6
    assert market.tokens["USDC"].functions.balanceOf(borrower).call() == 12_000 * 10**6

    expected = AccountData(
        total_collateral_base=20_000 * USD,
        total_debt_base=12_000 * USD,
        available_borrows_base=4_000 * USD,
        current_liquidation_threshold=8250,
        ltv=8000,
        health_factor=1_375 * 10**15,
    )
    assert market.account(borrower) == expected
    assert account_data(market.position(borrower), market.configs, market.prices()) == expected
    assert market.account(devnet.accounts[7]) == AccountData(0, 0, 0, 0, 0, MAX_UINT256)


def test_withdraw_keeps_health_and_repay_clears_debt(market: Market) -> None:
    devnet, pool = market.devnet, market.pool
    borrower = borrower_at_12000_usdc(market)
    weth, usdc = market.tokens["WETH"].address, market.tokens["USDC"].address
    # HF = x * 2000 * 0.825 / 12000 < 1 for x < 7.27 WETH: leaving 7 fails, leaving 8 does not.
    assert devnet.revert_reason(pool.functions.withdraw(weth, 3 * 10**18, borrower), borrower) == (
        "35"
    )
    withdrawal = devnet.send(pool.functions.withdraw(weth, 2 * 10**18, borrower), borrower)
    assert withdrawal["logs"][-1]["topics"][0] == keccak(
        text="Withdraw(address,address,address,uint256)"
    )
    assert pool.functions.getUserCollateral(borrower, weth).call() == 8 * 10**18
    devnet.send(market.tokens["USDC"].functions.approve(pool.address, MAX_UINT256), borrower)
    receipt = devnet.send(pool.functions.repay(usdc, 5_000 * 10**6, 2, borrower), borrower)
    assert receipt["logs"][-1]["topics"][0] == keccak(
        text="Repay(address,address,address,uint256,bool)"
    )
    assert event_args(pool, receipt, "Repay")[0]["amount"] == 5_000 * 10**6
    assert pool.functions.getUserDebt(borrower, usdc).call() == 7_000 * 10**6
    devnet.send(pool.functions.repay(usdc, MAX_UINT256, 2, borrower), borrower)
    assert pool.functions.getUserDebt(borrower, usdc).call() == 0
    assert market.account(borrower).health_factor == MAX_UINT256


def test_healthy_position_reverts_45_and_wrong_assets_46_47(market: Market) -> None:
    devnet, pool = market.devnet, market.pool
    borrower = borrower_at_12000_usdc(market)
    liquidator = devnet.accounts[4]
    weth, usdc, wbtc = (market.tokens[s].address for s in ("WETH", "USDC", "WBTC"))
    assert devnet.revert_reason(
        pool.functions.liquidationCall(weth, usdc, borrower, MAX_UINT256, False), liquidator
    ) == ("45")
    market.set_price("WETH", 1400 * USD)
    assert devnet.revert_reason(
        pool.functions.liquidationCall(wbtc, usdc, borrower, MAX_UINT256, False), liquidator
    ) == ("46")
    assert devnet.revert_reason(
        pool.functions.liquidationCall(weth, wbtc, borrower, MAX_UINT256, False), liquidator
    ) == ("47")


def test_price_drop_makes_borrower_liquidatable_with_exact_bonus_and_half_close(
    market: Market,
) -> None:
    devnet, pool = market.devnet, market.pool
    borrower = borrower_at_12000_usdc(market)
    liquidator = devnet.accounts[4]
    weth, usdc = market.tokens["WETH"], market.tokens["USDC"]
    market.set_price("WETH", 1400 * USD)
    # $14000 x 0.825 / $12000 = 0.9625: below 1, above 0.95, so at most half the debt.
    assert market.account(borrower).health_factor == 9625 * 10**14
    market.fund("USDC", liquidator, 20_000 * 10**6)

    receipt = devnet.send(
        pool.functions.liquidationCall(weth.address, usdc.address, borrower, MAX_UINT256, False),
        liquidator,
    )
    repaid = 6_000 * 10**6
    seized = percent_mul(1 * USD * repaid * 10**18 // (1400 * USD * 10**6), 10500)
    assert seized == 4_500_000_000_000_000_000  # 6000/1400 WETH + 5%
    assert weth.functions.balanceOf(liquidator).call() == seized
    assert usdc.functions.balanceOf(liquidator).call() == 20_000 * 10**6 - repaid
    assert pool.functions.getUserDebt(borrower, usdc.address).call() == 12_000 * 10**6 - repaid
    assert pool.functions.getUserCollateral(borrower, weth.address).call() == 10 * 10**18 - seized
    [log] = [log for log in receipt["logs"] if log["topics"][0].hex() == LIQUIDATION_CALL_TOPIC]
    assert log["address"] == pool.address
    assert event_args(pool, receipt, "LiquidationCall") == [
        {
            "collateralAsset": weth.address,
            "debtAsset": usdc.address,
            "user": borrower,
            "debtToCover": repaid,
            "liquidatedCollateralAmount": seized,
            "liquidator": liquidator,
            "receiveAToken": False,
        }
    ]


def test_below_095_closes_everything_and_receive_atoken_credits_supply(market: Market) -> None:
    devnet, pool = market.devnet, market.pool
    borrower = borrower_at_12000_usdc(market)
    liquidator = devnet.accounts[4]
    weth, usdc = market.tokens["WETH"], market.tokens["USDC"]
    market.set_price("WETH", 1300 * USD)  # HF 0.89375
    market.fund("USDC", liquidator, 20_000 * 10**6)
    devnet.send(
        pool.functions.liquidationCall(weth.address, usdc.address, borrower, MAX_UINT256, True),
        liquidator,
    )
    seized = percent_mul(12_000 * 10**6 * USD * 10**18 // (1300 * USD * 10**6), 10500)
    assert pool.functions.getUserDebt(borrower, usdc.address).call() == 0
    assert pool.functions.getUserCollateral(liquidator, weth.address).call() == seized
    assert weth.functions.balanceOf(liquidator).call() == 0


def test_collateral_cap_recomputes_the_debt(market: Market) -> None:
    devnet, pool = market.devnet, market.pool
    borrower = borrower_at_12000_usdc(market)
    liquidator = devnet.accounts[4]
    weth, usdc = market.tokens["WETH"], market.tokens["USDC"]
    market.set_price("WETH", 1100 * USD)  # 12000/1100 x 1.05 > 10 WETH: everything is seized
    market.fund("USDC", liquidator, 20_000 * 10**6)
    devnet.send(
        pool.functions.liquidationCall(weth.address, usdc.address, borrower, MAX_UINT256, False),
        liquidator,
    )
    repaid = percent_div(1100 * USD * 10 * 10**18 * 10**6 // (USD * 10**18), 10500)
    assert repaid == 10_476_190_476
    assert usdc.functions.balanceOf(liquidator).call() == 20_000 * 10**6 - repaid
    assert weth.functions.balanceOf(liquidator).call() == 10 * 10**18
    assert pool.functions.getUserDebt(borrower, usdc.address).call() == 12_000 * 10**6 - repaid


# ---------------------------------------------------------------- python == contract


@settings(
    max_examples=10,
    deadline=None,
    derandomize=True,
)
@given(
    weth_supplied=st.integers(10**15, 50 * 10**18),
    wbtc_supplied=st.integers(0, 3 * 10**8),
    borrow_fraction_bps=st.integers(5000, 9900),
    weth_crash_bps=st.integers(3000, 9000),
    debt_to_cover_bps=st.integers(1, 12000),
    receive_atoken=st.booleans(),
)
def test_contract_matches_python_exactly(
    chain_market: Market,
    weth_supplied: int,
    wbtc_supplied: int,
    borrow_fraction_bps: int,
    weth_crash_bps: int,
    debt_to_cover_bps: int,
    receive_atoken: bool,
) -> None:
    market, devnet = chain_market, chain_market.devnet
    snapshot = devnet.snapshot()
    try:
        _check_one_market_state(
            market,
            weth_supplied,
            wbtc_supplied,
            borrow_fraction_bps,
            weth_crash_bps,
            debt_to_cover_bps,
            receive_atoken,
        )
    finally:
        devnet.revert(snapshot)


def _check_one_market_state(
    market: Market,
    weth_supplied: int,
    wbtc_supplied: int,
    borrow_fraction_bps: int,
    weth_crash_bps: int,
    debt_to_cover_bps: int,
    receive_atoken: bool,
) -> None:
    devnet, pool = market.devnet, market.pool
    borrower, liquidator = devnet.accounts[3], devnet.accounts[4]
    market.supply("WETH", borrower, weth_supplied)
    if wbtc_supplied:
        market.supply("WBTC", borrower, wbtc_supplied)
    available = market.account(borrower).available_borrows_base
    usdc_borrow = available * borrow_fraction_bps // 10_000 * 10**6 // USD
    if usdc_borrow:
        market.borrow("USDC", borrower, usdc_borrow)
    market.set_price("WETH", 2000 * USD * weth_crash_bps // 10_000)

    position, prices = market.position(borrower), market.prices()
    assert market.account(borrower) == account_data(position, market.configs, prices)
    weth, usdc = market.address("WETH"), market.address("USDC")
    debt_to_cover = usdc_borrow * debt_to_cover_bps // 10_000
    call = pool.functions.liquidationCall(
        market.tokens["WETH"].address,
        market.tokens["USDC"].address,
        borrower,
        debt_to_cover,
        receive_atoken,
    )
    try:
        expected = liquidation_amounts(position, weth, usdc, debt_to_cover, market.configs, prices)
    except LendingRevert as error:
        hypothesis_event(f"liquidation reverts {error.code}")
        assert devnet.revert_reason(call, liquidator) == error.code
        return
    hypothesis_event(
        "liquidated" + (" everything" if expected.collateral_seized == weth_supplied else "")
    )
    market.fund("USDC", liquidator, expected.debt_repaid)
    receipt = devnet.send(call, liquidator)
    [event] = event_args(pool, receipt, "LiquidationCall")
    assert (event["debtToCover"], event["liquidatedCollateralAmount"]) == (
        expected.debt_repaid,
        expected.collateral_seized,
    )
    assert market.position(borrower) == Position(
        collateral={
            **position.collateral,
            weth: position.collateral[weth] - expected.collateral_seized,
        },
        debt={usdc: position.debt[usdc] - expected.debt_repaid},
    )
    assert market.account(borrower) == account_data(
        market.position(borrower), market.configs, prices
    )


# ---------------------------------------------------------------- pure math properties

ASSETS = ("a", "b")
bps = st.integers(0, 10_000)


@st.composite
def markets(draw: Callable[..., Any]) -> tuple[Position, dict[str, ReserveConfig], dict[str, int]]:
    configs = {}
    for asset in ASSETS:
        threshold = draw(st.integers(1, 9500))
        bonus = draw(st.integers(10_000, 10_000 * 10_000 // threshold))
        configs[asset] = ReserveConfig(
            asset=asset,
            decimals=draw(st.sampled_from([6, 8, 18])),
            ltv=draw(st.integers(0, threshold)),
            liquidation_threshold=threshold,
            liquidation_bonus=bonus,
        )
    prices = {asset: draw(st.integers(1, 10**14)) for asset in ASSETS}
    amounts = st.integers(0, 10**30)
    position = Position(
        collateral={asset: draw(amounts) for asset in ASSETS},
        debt={asset: draw(amounts) for asset in ASSETS},
    )
    return position, configs, prices


@given(markets(), st.integers(1, 10**24), st.integers(1, 10**6), st.integers(1, 10**6))
def test_health_factor_is_monotonic(
    market_state: tuple[Position, dict[str, ReserveConfig], dict[str, int]],
    extra: int,
    collateral_bump: int,
    debt_bump: int,
) -> None:
    position, configs, prices = market_state
    # One collateral asset keeps the average threshold exact; with several, Aave's floor of the
    # weighted average can move the health factor by a rounding step either way.
    position = Position({"a": position.collateral.get("a", 0)}, position.debt)
    base = health_factor(position, configs, prices)
    more_debt = Position(
        position.collateral, {**position.debt, "b": position.debt.get("b", 0) + extra}
    )
    more_collateral = Position({"a": position.collateral.get("a", 0) + extra}, position.debt)
    assert health_factor(more_debt, configs, prices) <= base
    assert health_factor(more_collateral, configs, prices) >= base
    dearer_debt = {**prices, "b": prices["b"] + debt_bump}
    dearer_collateral = {**prices, "a": prices["a"] + collateral_bump}
    # "b" is never collateral here, so a dearer "b" can only weigh on health; a dearer "a" helps
    # only while "a" is not also borrowed.
    assert health_factor(position, configs, dearer_debt) <= base
    if "a" not in position.debt:
        assert health_factor(position, configs, dearer_collateral) >= base


@given(markets(), st.integers(0, MAX_UINT256), st.integers(0, MAX_UINT256))
def test_liquidation_respects_close_factor_and_collateral(
    market_state: tuple[Position, dict[str, ReserveConfig], dict[str, int]],
    cover: int,
    more_cover: int,
) -> None:
    position, configs, prices = market_state
    try:
        result = liquidation_amounts(position, "a", "b", cover, configs, prices)
    except LendingRevert as error:
        hypothesis_event(f"reverts {error.code}")
        assert error.code in {"45", "46", "47"}
        assert error.code != "45" or health_factor(position, configs, prices) >= WAD
        return
    health = health_factor(position, configs, prices)
    hypothesis_event(
        "capped by collateral"
        if result.collateral_seized == position.collateral["a"]
        else "liquidated"
    )
    debt = position.debt["b"]
    assert health < WAD
    limit = max_liquidatable_debt(position, "b", configs, prices)
    assert limit == (debt if health <= 95 * 10**16 else percent_mul(debt, 5000))
    assert result.debt_repaid <= min(cover, limit)
    assert result.collateral_seized <= position.collateral["a"]
    larger = liquidation_amounts(position, "a", "b", max(cover, more_cover), configs, prices)
    assert larger.collateral_seized >= result.collateral_seized
