"""End to end on the devnet: pending victim -> bot -> relay -> builder -> landed, exact profit;
and a private swap -> the MEV-Share node's hint -> the bot's backrun -> landed behind it, with
the user's refund measured on chain in that same block."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from devnet_txs import transmit
from e2e_support import (
    balances,
    block_tx_hashes,
    level,
    mine,
    sent_for,
    stack_with_bot,
    until,
)
from eth_account import Account
from eth_utils import to_checksum_address
from fault_support import landed_in

from anvil import artifacts
from anvil.builder import PAYOUT_GAS
from anvil.private_flow import EXACT_HINTS
from anvil.stack import DevnetStack
from anvil.svr import SVR_OPERATOR_KEY, forward_secondary
from anvil.traffic import Traffic
from chain.rpc import connect
from chain.topics import LIQUIDATION_CALL
from execution.relay import RelayClient
from mevbot.runtime import Bot
from simulation.simulator import ETH


@pytest.fixture
async def stack_and_bot(devnet_cache, tmp_path) -> AsyncIterator[tuple[DevnetStack, Bot]]:
    async with stack_with_bot(devnet_cache, tmp_path) as running:
        yield running


async def test_a_pending_swap_is_backrun_in_the_next_block_for_exactly_the_simulated_profit(
    stack_and_bot,
):
    stack, bot = stack_and_bot
    world = stack.world
    weth = world.tokens["WETH"]["address"]
    async with connect(world.rpc["ws"]) as rpc:
        # Block-state arbitrage goes out and lands until prices are level: the block below
        # then holds only the victim's bundle, and the executor's gain over it is the backrun's.
        await level(stack, bot)
        traffic = Traffic(world, seed=3)
        await traffic.sync_nonces(rpc)
        # A trader sells 3% of the uniswap WETH/USDC pool's WETH: prices move apart by ~6%.
        pair = world.dexes["uniswap"]["pairs"]["WETH/USDC"]
        pool = bot.state.pools[pair["address"]]
        amount = pool.reserves_for(weth)[0] * 3 // 100
        trader = world.traders[0].address
        swap = artifacts.load("UniswapV2Router02").abi.function("swapExactTokensForTokens")
        data = swap.encode(amount, 0, [weth, world.tokens["USDC"]["address"]], trader, 2**40)
        victim = traffic.sign(
            trader, world.dexes["uniswap"]["router"], data, bot.engine.head.base_fee
        )
        await rpc.call("eth_sendRawTransaction", [victim.raw_hex])
        await until(lambda: sent_for(bot, victim.hash), what="a backrun bundle for the victim")
        (verdict,) = sent_for(bot, victim.hash)
        simulated = verdict.simulation
        assert simulated is not None and simulated.success
        before = await balances(rpc, world.executor, [weth])

        report = await mine(stack, bot)
        assert landed_in(report, verdict.plan), "our backrun landed right behind its victim"
        txs = await block_tx_hashes(rpc, report.number)
        ours = verdict.plan.our_tx.hash
        assert txs.index(ours) == txs.index(victim.hash) + 1, "right after the victim"
        after = await balances(rpc, world.executor, [weth])
        gained = {k: after[k] - before[k] for k in before}
        assert gained == {k: simulated.balance_diffs[world.executor].get(k, 0) for k in gained}
        assert (
            gained[weth] + gained[ETH]
            == verdict.plan.bid.net_profit_wei + verdict.plan.bid.gas_cost_wei
        )
        assert gained[weth] + gained[ETH] > 0
        await until(
            lambda: bot.engine.counts.bundles["backrun", "landed"] >= 1,
            what="the ledger to settle it",
        )


async def test_a_pending_feed_update_is_backrun_by_a_liquidation(stack_and_bot):
    stack, bot = stack_and_bot
    world = stack.world
    usdc = world.tokens["USDC"]["address"]
    async with connect(world.rpc["ws"]) as rpc:
        await level(stack, bot)  # the liquidation is then the block's only bundle of ours
        updater = Account.from_key(world.roles["oracle_updater"].private_key)
        lower = world.feeds["WETH"]["answer"] * 96 // 100  # the HF 1.035 borrower goes under 1
        aggregator, data = transmit(world, "WETH", lower)
        nonce = int(await rpc.call("eth_getTransactionCount", [updater.address, "pending"]), 16)
        update = updater.sign_transaction(
            {
                "type": 2,
                "chainId": world.chain_id,
                "nonce": nonce,
                "to": to_checksum_address(aggregator),
                "data": data,
                "gas": 300_000,
                "maxFeePerGas": 2 * bot.engine.head.base_fee + 10**9,
                "maxPriorityFeePerGas": 10**9,
                "value": 0,
            }
        )
        update_hash = await rpc.call(
            "eth_sendRawTransaction", ["0x" + bytes(update.raw_transaction).hex()]
        )
        await until(
            lambda: sent_for(bot, update_hash), what="a liquidation bundle behind the update"
        )
        verdict = sent_for(bot, update_hash)[0]
        before = await balances(rpc, world.executor, [usdc])
        report = await mine(stack, bot)
        txs = await block_tx_hashes(rpc, report.number)
        assert txs.index(verdict.plan.our_tx.hash) == txs.index(update_hash) + 1
        after = await balances(rpc, world.executor, [usdc])
        simulated = verdict.simulation.balance_diffs[world.executor]
        assert after[usdc] - before[usdc] == simulated[usdc] > 0
        assert after[ETH] - before[ETH] == simulated.get(ETH, 0) == -verdict.plan.bid.coinbase_wei


async def test_losing_and_reverting_candidates_are_never_sent(stack_and_bot):
    stack, bot = stack_and_bot
    await mine(stack, bot)
    received_before = stack.stats().bundles_received
    sent_before = bot.engine.counts.tally().candidates("sent")
    from dataclasses import replace

    from simulation.actions import HopArbitrageAction, SwapHop
    from simulation.candidates import Candidate

    world = stack.world
    weth = world.tokens["WETH"]["address"]
    pairs = (
        world.dexes["uniswap"]["pairs"]["WETH/USDC"],
        world.dexes["sushiswap"]["pairs"]["WETH/USDC"],
    )
    # Claims a fat profit, but the trade loses (wrong direction): the executor reverts on the fork.
    fake = Candidate(
        "backrun",
        "test:losing",
        HopArbitrageAction(
            tuple(
                SwapHop(p["address"], "uniswap-v2", (p["token0"] == weth) == (i == 0))
                for i, p in enumerate(pairs[::-1])
            ),
            weth,
            10**18,
        ),
        (),
        bot.state.block_number + 1,
        weth,
        10**18,
        10**18,
    )
    verdict = await bot.engine.submitter.submit(fake)
    assert verdict.outcome == "dropped" and verdict.reason.startswith("reverts: ours")
    tiny = replace(fake, key="test:tiny", expected_profit=10**9, expected_profit_wei=10**9)
    verdict = await bot.engine.submitter.submit(tiny)
    assert verdict.outcome == "dropped" and verdict.reason.startswith("below_minimum")
    dust = replace(fake, key="test:dust", expected_profit=10, expected_profit_wei=10)
    verdict = await bot.engine.submitter.submit(dust)
    assert verdict.outcome == "dropped" and verdict.reason.startswith("unprofitable_after_gas")
    again = await bot.engine.submitter.submit(fake)
    assert again.outcome == "duplicate", "an idempotency key acts once"
    assert stack.stats().bundles_received == received_before
    assert bot.engine.counts.tally().candidates("sent") == sent_before


async def test_the_dashboard_renders_the_running_bot(stack_and_bot):
    from rich.console import Console

    from mevbot.tui import render

    stack, bot = stack_and_bot
    await mine(stack, bot)
    await mine(stack, bot)
    status = bot.snapshot()
    assert status.head_block == bot.state.block_number and status.tasks
    console = Console(record=True, width=140, force_terminal=False)
    console.print(render(status))
    text = console.export_text()
    for title in ("Intake", "Opportunities", "Bundles", "Keepers", "Latency", "Tasks", "Log"):
        assert title.lower() in text.lower(), title
    assert "devnet" in text and str(status.head_block) in text
    assert "liquidation-k" in text, "the keeper's row"
    assert "started on devnet" in text, "the log tail"


async def test_a_head_announced_again_is_not_applied_twice(stack_and_bot):
    """A head stream announces the current head when it (re)connects: Aave events are deltas,
    so applying that block's logs again would double-count positions."""
    from chain.topics import STATE_TOPICS
    from chain.types import Log
    from watcher.events import NewHead

    stack, bot = stack_and_bot
    world = stack.world
    borrower = world.aave["borrowers"][0]["address"]
    pool = artifacts.load("Pool").abi
    usdc = world.tokens["USDC"]["address"]
    await stack.rpc.call("anvil_impersonateAccount", [borrower])
    await stack.rpc.call(
        "eth_sendTransaction",
        [
            {
                "from": borrower,
                "to": world.aave["pool"],
                "data": "0x" + pool.function("borrow").encode(usdc, 10**6, 2, 0, borrower).hex(),
                "gas": hex(10**6),  # anvil's estimate falls short of the index updates
            }
        ],
    )
    report = await mine(stack, bot)
    position = bot.state.positions[borrower]
    block = await stack.rpc.call("eth_getBlockByNumber", [hex(report.number), False])
    raw_logs = await stack.rpc.call(
        "eth_getLogs",
        [{"blockHash": block["hash"], "topics": [["0x" + t.hex() for t in STATE_TOPICS]]}],
    )
    logs = tuple(Log.from_rpc(r) for r in raw_logs)
    assert any(log.address == world.aave["pool"] for log in logs), "the block holds the borrow"
    from chain.types import BlockHeader

    again = NewHead(BlockHeader.from_rpc(block), logs, 0, "test")
    await bot.engine.on_head(again)
    assert bot.state.positions[borrower] == position


async def test_a_private_swap_is_backrun_through_the_node_and_its_user_refunded(stack_and_bot):
    stack, bot = stack_and_bot
    world, rpc = stack.world, stack.rpc
    await level(stack, bot)  # block-state arbitrage (public path) lands; prices level
    desk = bot.mevshare
    assert desk is not None
    await until(lambda: desk.source.connected, what="the bot on the node's stream")

    traffic = Traffic(world, seed=3)
    await traffic.sync_nonces(rpc)
    weth = world.tokens["WETH"]["address"]
    pool = bot.state.pools[world.dexes["uniswap"]["pairs"]["WETH/USDC"]["address"]]
    amount = pool.reserves_for(weth)[0] * 3 // 100
    trader = world.traders[0].address
    swap = artifacts.load("UniswapV2Router02").abi.function("swapExactTokensForTokens")
    data = swap.encode(amount, 0, [weth, world.tokens["USDC"]["address"]], trader, 2**40)
    victim = traffic.sign(trader, world.dexes["uniswap"]["router"], data, bot.engine.head.base_fee)
    async with aiohttp.ClientSession() as session:
        wallet = RelayClient(stack.matchmaker_url, Account.create(), session=session)
        await wallet.request(
            "eth_sendPrivateTransaction",
            [{"tx": victim.raw_hex, "preferences": {"privacy": {"hints": list(EXACT_HINTS)}}}],
        )
    await until(lambda: desk.counts["sent"] >= 1, what="a backrun of the hint")
    assert desk.counts["candidates_exact"] >= 1
    (row,) = [r for r in desk.rows if r.status == "pending"]

    report = await mine(stack, bot)
    block = await rpc.call("eth_getBlockByNumber", [hex(report.number), False])
    txs = [h.lower() for h in block["transactions"]]
    assert txs[txs.index(victim.hash) + 1] == row.tx_hash  # right behind the swap, same block
    await until(lambda: desk.counts["landed"] == 1, what="the desk to settle the backrun")
    (landed,) = [b for b in report.landed if row.tx_hash in b.tx_hashes]
    payment = landed.tx_payments[-1]
    assert payment >= row.coinbase_wei > 0  # the coinbase transfer inside our tx, plus tips
    assert desk.status().landed == 1 and desk.status().coinbase_paid_wei == row.coinbase_wei

    # The builder pays the user in that block, right behind our backrun: 90% of our payment
    # less the payout's 30,000 gas at the base fee. Measured on chain: the user's balance over
    # the block grew by the refund less its swap's fee.
    refund = payment * 90 // 100 - PAYOUT_GAS * int(block["baseFeePerGas"], 16)
    receipt = await rpc.call("eth_getTransactionReceipt", [victim.hash])
    fee = int(receipt["gasUsed"], 16) * int(receipt["effectiveGasPrice"], 16)
    before = int(await rpc.call("eth_getBalance", [trader, hex(report.number - 1)]), 16)
    after = int(await rpc.call("eth_getBalance", [trader, hex(report.number)]), 16)
    assert after - before == refund - fee
    assert stack.matchmaker.stats().refunds_wei == refund
    # The bot read the same refund from that block: in its status and its ledger.
    assert desk.status().user_refunds_wei == refund
    assert desk.ledger.user_refunds_wei() == refund


async def test_an_svr_update_sent_privately_is_backrun_with_a_liquidation(stack_and_bot):
    stack, bot = stack_and_bot
    world, rpc = stack.world, stack.rpc
    feed = world.feeds["WETH"]
    assert bot.deployment.svr_aggregators == (feed["svr_aggregator"],)
    await mine(stack, bot)
    await mine(stack, bot)
    desk = bot.mevshare
    assert desk is not None
    await until(lambda: desk.source.connected, what="the bot on the node's stream")
    operator = Account.from_key(SVR_OPERATOR_KEY)
    lower = feed["answer"] * 96 // 100  # the HF 1.035 borrower goes under 1
    data = forward_secondary(
        feed["svr_aggregator"], bytes.fromhex(feed["config_digest"][2:]), 1, lower, 1
    )
    nonce = int(await rpc.call("eth_getTransactionCount", [operator.address, "latest"]), 16)
    update = operator.sign_transaction(
        {
            "type": 2,
            "chainId": world.chain_id,
            "nonce": nonce,
            "to": to_checksum_address(feed["forwarder"]),
            "data": data,
            "gas": 400_000,
            "maxFeePerGas": 2 * bot.engine.head.base_fee + 10**9,
            "maxPriorityFeePerGas": 10**9,
            "value": 0,
        }
    )
    update_hash = "0x" + update.hash.hex()
    async with aiohttp.ClientSession() as session:
        operator_rpc = RelayClient(stack.matchmaker_url, operator, session=session)
        await operator_rpc.request(
            "eth_sendPrivateTransaction",
            [
                {
                    "tx": "0x" + bytes(update.raw_transaction).hex(),
                    "preferences": {"privacy": {"hints": ["calldata"]}},
                }
            ],
        )
    await until(lambda: desk.counts["sent"] >= 1, what="a liquidation of the SVR hint")
    assert desk.counts["candidates_oracle"] >= 1
    ours = [r.tx_hash for r in desk.rows if r.status == "pending"]

    report = await mine(stack, bot)
    txs = [h.lower() for h in await block_tx_hashes(rpc, report.number)]
    assert txs[txs.index(update_hash) + 1] in ours  # right behind the private update
    await until(lambda: desk.counts["landed"] == 1, what="the desk to settle the liquidation")
    logs = await rpc.call(
        "eth_getLogs",
        [
            {
                "address": world.aave["pool"],
                "topics": ["0x" + LIQUIDATION_CALL.hex()],
                "fromBlock": hex(report.number),
                "toBlock": hex(report.number),
            }
        ],
    )
    assert [log["transactionHash"] for log in logs] == [txs[txs.index(update_hash) + 1]]
