"""`--role` on Redis: one watcher, two workers, one keeper share the work; one bundle per effect."""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

from fault_support import bot_config, until
from redis_fixture import RedisServer, redis_server  # noqa: F401 (a fixture)

from anvil import artifacts
from anvil.stack import DevnetStack
from anvil.traffic import Traffic
from mevbot.deployment import deployment_from_world, devnet_keys
from mevbot.runtime import Bot


@contextlib.asynccontextmanager
async def _bot(
    stack: DevnetStack, workdir: Path, role: str, name: str, redis: str
) -> AsyncIterator[Bot]:
    bot = Bot(
        bot_config(workdir / f"{name}.sqlite"),
        deployment_from_world(stack.world, stack.relay_url),
        devnet_keys(stack.world),
        role=role,
        redis_url=redis,
        name=name,
    )
    await bot.start()
    try:
        yield bot
    finally:
        await bot.stop()


async def test_a_watcher_and_two_workers_send_each_backrun_once_and_it_lands(
    devnet_cache,
    tmp_path,
    redis_server: RedisServer,  # noqa: F811
):
    async with (
        DevnetStack(block_time=None, state_dir=devnet_cache) as stack,
        contextlib.AsyncExitStack() as bots,
    ):
        world = stack.world
        watcher = await bots.enter_async_context(
            _bot(stack, tmp_path, "watcher", "watcher-1", redis_server.url)
        )
        workers = [
            await bots.enter_async_context(
                _bot(stack, tmp_path, "worker", f"worker-{i}", redis_server.url)
            )
            for i in (1, 2)
        ]
        keeper = await bots.enter_async_context(
            _bot(stack, tmp_path, "keeper", "keeper-1", redis_server.url)
        )
        assert {t.name for t in watcher.supervisor.status()} == {"watcher", "publish"}
        assert "bus-pending" in {t.name for t in workers[0].supervisor.status()}

        async def mine() -> int:
            report = await stack.builder.build_block()
            await until(
                lambda: all(b.engine.processed_block >= report.number for b in (*workers, keeper)),
                20,
                "every worker and the keeper to apply the block",
            )
            return report.number

        await mine()
        await mine()  # block-state arbitrage, if any, is sent once and lands here
        traffic = Traffic(world, seed=21)
        await traffic.sync_nonces(stack.rpc)
        weth, usdc = world.tokens["WETH"]["address"], world.tokens["USDC"]["address"]
        pool = workers[0].state.pools[world.dexes["uniswap"]["pairs"]["WETH/USDC"]["address"]]
        amount = pool.reserves_for(weth)[0] * 3 // 100
        trader = world.traders[0].address
        swap = artifacts.load("UniswapV2Router02").abi.function("swapExactTokensForTokens")
        data = swap.encode(amount, 0, [weth, usdc], trader, 2**40)
        victim = traffic.sign(
            trader, world.dexes["uniswap"]["router"], data, workers[0].engine.head.base_fee
        )
        await stack.rpc.call("eth_sendRawTransaction", [victim.raw_hex])

        def sent_for_victim() -> list:
            return [
                (b.instance, c.key)
                for b in workers
                for c, v in b.engine.submitter.verdicts
                if c.trigger_hash == victim.hash and v.outcome == "sent"
            ]

        await until(lambda: sent_for_victim(), 20, "a worker to send the backrun")
        await asyncio.sleep(0.5)  # give the other worker every chance to send it again
        assert len(sent_for_victim()) == 1, "exactly one worker sent the backrun"
        handled = sum(b.engine.counts.pending for b in workers)
        assert handled >= 1
        number = await mine()
        block = await stack.rpc.call("eth_getBlockByNumber", [hex(number), False])
        assert victim.hash in block["transactions"]
        index = block["transactions"].index(victim.hash)
        ours = next(
            v.plan.our_tx.hash
            for b in workers
            for c, v in b.engine.submitter.verdicts
            if c.trigger_hash == victim.hash and v.outcome == "sent"
        )
        assert block["transactions"][index + 1] == ours, "the backrun landed right after the victim"
        for bot in (watcher, *workers, keeper):
            assert all(t.restarts == 0 for t in bot.supervisor.status()), bot.instance
        assert keeper.keeper_rows(), "the keeper role runs the keeper jobs"
        await mine()  # the inclusion trackers settle it; the shared view adds up every instance
        from mevbot.redis_store import connect_redis, read_shared_ledger

        client = connect_redis(redis_server.url)
        try:
            summary = await read_shared_ledger(client)
        finally:
            await client.aclose()
        assert summary.counts.get("landed", 0) >= 1 and summary.realized_profit_wei > 0
        assert {i.instance for i in summary.instances} <= {"worker-1", "worker-2", "keeper-1"}
        shown = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "mevbot.cli", "status", "--json", "--redis", redis_server.url],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        assert json.loads(shown.stdout)["counts"]["landed"] == summary.counts["landed"]
        status = watcher.snapshot()
        assert status.intake.pending_seen >= 1 and status.opportunities == ()
