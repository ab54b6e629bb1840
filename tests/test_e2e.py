"""End to end on the devnet: pending victim -> bot -> relay -> builder -> landed, exact profit."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest
from devnet_txs import transmit
from eth_account import Account
from eth_utils import to_checksum_address
from fault_support import landed_in

from anvil import artifacts
from anvil.stack import DevnetStack
from anvil.traffic import Traffic
from chain.abi import load_artifact
from chain.rpc import connect
from mevbot.config import load_config
from mevbot.deployment import deployment_from_world, devnet_keys
from mevbot.runtime import Bot
from mevbot.submitter import Verdict
from simulation.simulator import ETH

ERC20 = load_artifact("ERC20Token").abi


async def _until(predicate: Callable[[], object], timeout: float = 15.0, what: str = "") -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


@pytest.fixture
async def stack_and_bot(devnet_cache, tmp_path) -> AsyncIterator[tuple[DevnetStack, Bot]]:
    async with DevnetStack(block_time=None, state_dir=devnet_cache) as stack:
        config = load_config(
            network="devnet",
            environ={
                "MEVBOT_STORE__LEDGER_PATH": str(tmp_path / "ledger.sqlite"),
                "MEVBOT_STRATEGIES__TARGET_BLOCKS": "1",
                "MEVBOT_METRICS__PORT": "0",
            },
        )
        bot = Bot(
            config, deployment_from_world(stack.world, stack.relay_url), devnet_keys(stack.world)
        )
        await bot.start()
        try:
            yield stack, bot
        finally:
            await bot.stop()


async def _mine(stack: DevnetStack, bot: Bot):
    report = await stack.builder.build_block()
    await _until(
        lambda: bot.engine.processed_block >= report.number, what=f"bot at block {report.number}"
    )
    return report


async def _balances(rpc, holder: str, tokens: list[str]) -> dict[str, int]:
    out = {ETH: int(await rpc.call("eth_getBalance", [holder, "latest"]), 16)}
    fn = ERC20.function("balanceOf")
    for token in tokens:
        raw = await rpc.call(
            "eth_call", [{"to": token, "data": "0x" + fn.encode(holder).hex()}, "latest"]
        )
        out[token] = fn.decode_output(bytes.fromhex(raw[2:]))[0]
    return out


def _sent_for(bot: Bot, trigger: str) -> list[Verdict]:
    return [
        v
        for c, v in bot.engine.submitter.verdicts
        if c.trigger_hash == trigger and v.outcome == "sent"
    ]


async def _block_tx_hashes(rpc, number: int) -> list[str]:
    block = await rpc.call("eth_getBlockByNumber", [hex(number), False])
    return block["transactions"]


async def test_a_pending_swap_is_backrun_in_the_next_block_for_exactly_the_simulated_profit(
    stack_and_bot,
):
    stack, bot = stack_and_bot
    world = stack.world
    weth = world.tokens["WETH"]["address"]
    async with connect(world.rpc["ws"]) as rpc:
        await _mine(stack, bot)  # the bot sees a head; block-state arbitrage may go out
        await _mine(stack, bot)  # ... and land here, so the next trade starts from level prices
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
        await _until(lambda: _sent_for(bot, victim.hash), what="a backrun bundle for the victim")
        (verdict,) = _sent_for(bot, victim.hash)
        simulated = verdict.simulation
        assert simulated is not None and simulated.success
        before = await _balances(rpc, world.executor, [weth])

        report = await _mine(stack, bot)
        assert landed_in(report, verdict.plan), "our backrun landed right behind its victim"
        txs = await _block_tx_hashes(rpc, report.number)
        ours = verdict.plan.our_tx.hash
        assert txs.index(ours) == txs.index(victim.hash) + 1, "right after the victim"
        after = await _balances(rpc, world.executor, [weth])
        gained = {k: after[k] - before[k] for k in before}
        assert gained == {k: simulated.balance_diffs[world.executor].get(k, 0) for k in gained}
        assert (
            gained[weth] + gained[ETH]
            == verdict.plan.bid.net_profit_wei + verdict.plan.bid.gas_cost_wei
        )
        assert gained[weth] + gained[ETH] > 0
        await _until(
            lambda: bot.engine.counts.bundles["backrun", "landed"] >= 1,
            what="the ledger to settle it",
        )


async def test_a_pending_feed_update_is_backrun_by_a_liquidation(stack_and_bot):
    stack, bot = stack_and_bot
    world = stack.world
    usdc = world.tokens["USDC"]["address"]
    async with connect(world.rpc["ws"]) as rpc:
        await _mine(stack, bot)
        await _mine(stack, bot)
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
        await _until(
            lambda: _sent_for(bot, update_hash), what="a liquidation bundle behind the update"
        )
        verdict = _sent_for(bot, update_hash)[0]
        before = await _balances(rpc, world.executor, [usdc])
        report = await _mine(stack, bot)
        txs = await _block_tx_hashes(rpc, report.number)
        assert txs.index(verdict.plan.our_tx.hash) == txs.index(update_hash) + 1
        after = await _balances(rpc, world.executor, [usdc])
        simulated = verdict.simulation.balance_diffs[world.executor]
        assert after[usdc] - before[usdc] == simulated[usdc] > 0
        assert after[ETH] - before[ETH] == simulated.get(ETH, 0) == -verdict.plan.bid.coinbase_wei


async def test_losing_and_reverting_candidates_are_never_sent(stack_and_bot):
    stack, bot = stack_and_bot
    await _mine(stack, bot)
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
    await _mine(stack, bot)
    await _mine(stack, bot)
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
    report = await _mine(stack, bot)
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
