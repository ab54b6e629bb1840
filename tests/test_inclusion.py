"""Inclusion tracking on a real devnet: a bundle sent in order and mined is landed with the
executor's real balance change as its profit; one whose target passes is missed; a reverted one
failed; a block not served yet is not declared missed."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from anvil import artifacts
from anvil.devnet import Devnet
from chain.abi import Abi
from chain.rpc import Rpc, connect
from chain.types import PendingTx, hex_to_bytes, hex_to_int
from execution.bids import Bid, BidPolicy
from execution.bundler import BundlePlan, build_bundles
from execution.executor_calls import executor_call, gas_limit_for
from execution.inclusion import InclusionTracker
from execution.ledger import Ledger, OutcomeStatus
from execution.nonces import NonceManager
from execution.signer import LocalSigner
from simulation.actions import HopArbitrageAction, SwapHop
from simulation.candidates import Candidate

GWEI = 10**9
ERC20 = artifacts.load("WETH9").abi
PAIR = artifacts.load("UniswapV2Pair").abi


def amount_out(amount_in: int, reserve_in: int, reserve_out: int) -> int:
    with_fee = amount_in * 997
    return with_fee * reserve_out // (reserve_in * 1000 + with_fee)


@dataclass
class Chain:
    """The devnet seen through the bot's own RPC client."""

    rpc: Rpc
    devnet: Devnet

    @property
    def world(self) -> Any:
        return self.devnet.world

    async def call(self, abi: Abi, to: str, name: str, *args: Any) -> tuple[Any, ...]:
        function = abi.function(name)
        data = function.encode(*args)
        result = await self.rpc.call("eth_call", ({"to": to, "data": "0x" + data.hex()}, "latest"))
        return function.decode_output(hex_to_bytes(result))

    async def holdings(self, weth: str) -> int:
        """Executor contract WETH + ETH, plus its owner's ETH (which pays the gas)."""
        executor = self.world.executor
        owner = self.world.roles["executor"].address
        (weth_balance,) = await self.call(ERC20, weth, "balanceOf", executor)
        eth = 0
        for account in (executor, owner):
            eth += hex_to_int(await self.rpc.call("eth_getBalance", (account, "latest")))
        return weth_balance + eth

    async def head(self) -> dict[str, Any]:
        return await self.rpc.call("eth_getBlockByNumber", ("latest", False))

    async def mine(self) -> None:
        await self.rpc.call("evm_mine")


async def arbitrage_candidate(chain: Chain, key: str, target_block: int) -> Candidate:
    """WETH -> USDC on the dearer sushiswap pair, USDC -> WETH on uniswap, behind a trader's
    WETH transfer (the tx we backrun)."""
    world = chain.world
    weth = world.tokens["WETH"]["address"]
    sushi = world.dexes["sushiswap"]["pairs"]["WETH/USDC"]
    uni = world.dexes["uniswap"]["pairs"]["WETH/USDC"]

    async def reserves(pair: dict[str, Any]) -> tuple[int, int]:
        r0, r1, _ = await chain.call(PAIR, pair["address"], "getReserves")
        return (r0, r1) if pair["token0"] == weth else (r1, r0)

    sushi_weth, sushi_usdc = await reserves(sushi)
    uni_weth, uni_usdc = await reserves(uni)

    def profit(amount: int) -> int:
        usdc = amount_out(amount, sushi_weth, sushi_usdc)
        return amount_out(usdc, uni_usdc, uni_weth) - amount

    low, high = 10**15, 50 * 10**18
    while high - low > 10**12:
        third = (high - low) // 3
        if profit(low + third) < profit(high - third):
            low += third
        else:
            high -= third
    amount = low

    trader = world.traders[0]
    trader_signer = LocalSigner(trader.private_key)
    trader_nonce = hex_to_int(
        await chain.rpc.call("eth_getTransactionCount", (trader.address, "pending"))
    )
    data = ERC20.function("transfer").encode(world.traders[1].address, 10**15)
    signed = trader_signer.sign_eip1559(
        chain_id=world.chain_id,
        nonce=trader_nonce,
        to=weth,
        data=data,
        value=0,
        gas=100_000,
        max_fee_per_gas=100 * GWEI,
        max_priority_fee_per_gas=2 * GWEI,
    )
    trigger = PendingTx(
        hash=signed.hash,
        sender=signed.sender,
        to=weth,
        value=0,
        input=data,
        nonce=trader_nonce,
        gas=100_000,
        raw=signed.raw,
    )
    return Candidate(
        strategy="backrun_arbitrage",
        key=key,
        action=HopArbitrageAction(
            (
                SwapHop(sushi["address"], "uniswap-v2", sushi["token0"] == weth),
                SwapHop(uni["address"], "uniswap-v2", uni["token0"] != weth),
            ),
            weth,
            amount,
            flash=False,
        ),
        backrun=(trigger,),
        target_block=target_block,
        profit_token=weth,
        expected_profit=profit(amount),
        expected_profit_wei=profit(amount),
    )


MEASURED_ARBITRAGE_GAS = 260_891
FIXED_BID = Bid(
    coinbase_wei=10**15,
    max_fee_per_gas=10 * GWEI,
    max_priority_fee_per_gas=0,
    gas_cost_wei=MEASURED_ARBITRAGE_GAS * 10 * GWEI,
    net_profit_wei=0,
    min_profit_arg=MEASURED_ARBITRAGE_GAS * 10 * GWEI,
)


async def plan_bundle(
    chain: Chain, ledger: Ledger, nonces: NonceManager, item: Candidate, *, priced: bool = True
) -> BundlePlan:
    """Price ``item`` with a 50% coinbase share on its estimated gas, or (``priced=False``, once
    the opportunity is gone) with a fixed bid, then sign, bundle and record it."""
    world = chain.world
    weth = world.tokens["WETH"]["address"]
    signer = LocalSigner(world.roles["executor"].private_key)
    if priced:
        call_data = "0x" + item.action.calldata(0, 0).hex()
        gas_used = hex_to_int(
            await chain.rpc.call(
                "eth_estimateGas",
                ({"from": signer.address, "to": world.executor, "data": call_data},),
            )
        )
        base_fee = hex_to_int((await chain.head())["baseFeePerGas"])
        policy = BidPolicy(coinbase_share_bps=5_000)
        bid = policy.price(item.expected_profit_wei, gas_used, base_fee, 1)
        assert isinstance(bid, Bid), bid
    else:
        gas_used, bid = MEASURED_ARBITRAGE_GAS, FIXED_BID
    call = executor_call(world.executor, item, bid, gas_limit_for(gas_used), weth)
    nonce = await nonces.reserve(item.target_block, item.target_block, item.key)
    plan = build_bundles(item, call, bid, signer, nonce, world.chain_id)
    assert ledger.record_candidate(item)
    ledger.record_bundles(plan)
    return plan


async def send_in_order(chain: Chain, plan: BundlePlan) -> None:
    for tx in plan.bundles[0].txs:
        await chain.rpc.call("eth_sendRawTransaction", (tx.raw_hex,))


async def test_landed_missed_failed_on_a_devnet(
    devnet_factory: Callable[..., Devnet], tmp_path: Path
) -> None:
    devnet = devnet_factory(block_time=None)
    world = devnet.world
    weth = world.tokens["WETH"]["address"]
    async with connect(devnet.node.http_url) as rpc:
        chain = Chain(rpc, devnet)
        ledger = Ledger.open(tmp_path / "ledger.sqlite")
        tracker = InclusionTracker(ledger, world.executor, weth, retry_delay=0.01)
        nonces = NonceManager(world.roles["executor"].address)
        sync = await nonces.sync(rpc)
        head = sync.block

        # Landed: the trader's tx then ours, mined together.
        landed_item = await arbitrage_candidate(chain, "arb:landed", head + 1)
        assert landed_item.expected_profit > 10**15
        plan = await plan_bundle(chain, ledger, nonces, landed_item)
        before = await chain.holdings(weth)
        await send_in_order(chain, plan)
        await chain.mine()
        block = await chain.head()
        assert block["miner"] not in (world.executor, world.roles["executor"].address)
        assert block["transactions"] == [tx.hash for tx in plan.bundles[0].txs]
        report = await tracker.on_block(rpc, head + 1)
        ((settled),) = report.settled
        outcome = settled.settlement
        assert outcome.status is OutcomeStatus.LANDED
        change = await chain.holdings(weth) - before
        assert outcome.realized_profit_wei == change
        receipt = await rpc.call("eth_getTransactionReceipt", (plan.our_tx.hash,))
        gas_cost = hex_to_int(receipt["gasUsed"]) * hex_to_int(receipt["effectiveGasPrice"])
        assert change == landed_item.expected_profit - plan.bid.coinbase_wei - gas_cost
        assert (await nonces.on_block(head + 1, sync.chain_nonce + 1)).confirmed[0].key == (
            "arb:landed"
        )

        # Missed: planned for the next block, never sent.
        missed_item = await arbitrage_candidate(chain, "arb:missed", head + 2)
        missed = await plan_bundle(chain, ledger, nonces, missed_item, priced=False)
        await chain.mine()
        report = await tracker.on_block(rpc, head + 2)
        assert [s.settlement.status for s in report.settled] == [OutcomeStatus.MISSED]
        assert (await nonces.on_block(head + 2, sync.chain_nonce + 1)).released[0].nonce == (
            missed.our_tx.nonce
        )

        # Failed: the opportunity is gone, so the executor reverts; the gas is lost.
        failed_item = await arbitrage_candidate(chain, "arb:failed", head + 3)
        assert failed_item.expected_profit <= 0
        failed = await plan_bundle(chain, ledger, nonces, failed_item, priced=False)
        before = await chain.holdings(weth)
        await send_in_order(chain, failed)
        await chain.mine()
        (settled,) = (await tracker.on_block(rpc, head + 3)).settled
        assert settled.settlement.status is OutcomeStatus.FAILED
        assert settled.settlement.realized_profit_wei == await chain.holdings(weth) - before < 0

        # Not served yet: the target block does not exist, so nothing is declared missed.
        late_item = await arbitrage_candidate(chain, "arb:late", head + 4)
        await plan_bundle(chain, ledger, nonces, late_item, priced=False)
        report = await tracker.on_block(rpc, head + 4)
        assert report.settled == () and report.deferred_blocks == (head + 4,)
        assert ledger.counts_by_status()["pending"] == 1
        await chain.mine()
        report = await tracker.on_block(rpc, head + 4)
        assert [s.settlement.status for s in report.settled] == [OutcomeStatus.MISSED]

        assert ledger.counts_by_status() == {
            "pending": 0,
            "landed": 1,
            "missed": 2,
            "failed": 1,
            "unbundled": 0,
            "superseded": 0,
        }
        assert ledger.realized_profit_total() == (
            outcome.realized_profit_wei + settled.settlement.realized_profit_wei
        )
        ledger.close()
