"""Fault injection on the devnet with real processes: the node WebSocket cut, the fork process
killed, relays that fail, the bot SIGKILLed and restarted, a chain reorg.

Each scenario records what it injected and what survived (``record_property``), which
``make reliability`` prints as a table (tests/reliability_report.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import sqlite3
import sys
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest
from bad_relays import BadRelay
from fault_support import (
    bot_on,
    descendants,
    kill_pids,
    landed_in,
    mine,
    pool_kept,
    pool_on_chain,
    push_victim,
    send_raw,
    sent_for,
    sign_transfer,
    token_balance,
    until,
    with_relays,
)
from tcp_proxy import TcpProxy

from anvil.stack import DevnetStack
from anvil.traffic import Traffic
from chain.node import free_port
from execution.ledger import Ledger
from mevbot.counters import Tally
from mevbot.deployment import deployment_from_world
from mevbot.endpoint import status_from_json
from watcher.journal import read_journal

pytestmark = pytest.mark.faults

CLI = [sys.executable, "-m", "mevbot.cli"]


@pytest.fixture
async def stack(devnet_cache: Path) -> AsyncIterator[DevnetStack]:
    async with DevnetStack(block_time=None, state_dir=devnet_cache) as stack:
        yield stack


def _reserves(bot) -> dict[str, tuple[int, int]]:
    pools = bot.state.pools.items()
    return {a: (p.reserve0, p.reserve1) for a, p in pools if p.kind == "uniswap-v2"}


def _tasks(bot) -> dict[str, str]:
    return {t.name: t.state for t in bot.supervisor.status()}


async def _traffic(stack: DevnetStack) -> Traffic:
    traffic = Traffic(stack.world, seed=11)
    await traffic.sync_nonces(stack.rpc)
    return traffic


# --------------------------------------------------------------------- node WebSocket cut


async def test_node_websocket_cut_at_random_loses_no_pending_tx(stack, tmp_path, record_property):
    rng = random.Random(2024)
    ws = urlsplit(stack.world.rpc["ws"])
    journal = tmp_path / "journal.jsonl"
    cuts = 4
    record_property("injected", f"{cuts} TCP resets of every node WebSocket at random times")
    async with TcpProxy(ws.port, ws.hostname) as proxy:
        deployment = replace(
            deployment_from_world(stack.world, stack.relay_url),
            node_ws=f"ws://127.0.0.1:{proxy.port}",
        )
        async with bot_on(stack, tmp_path, deployment=deployment, journal_path=journal) as bot:
            await mine(stack, bot)
            traffic = await _traffic(stack)
            spender = stack.world.roles["keeper"].private_key
            nonce = int(
                await stack.rpc.call(
                    "eth_getTransactionCount", [stack.world.roles["keeper"].address, "pending"]
                ),
                16,
            )
            base_fee = bot.engine.head.base_fee
            sent: set[str] = set()

            async def cut_at_random() -> None:
                for _ in range(cuts):
                    await asyncio.sleep(rng.uniform(0.15, 0.6))
                    await proxy.cut()

            cutter = asyncio.create_task(cut_at_random())
            while not cutter.done():
                swap, _ = traffic.swap(_reserves(bot), base_fee)
                transfer = sign_transfer(spender, nonce, "0x" + "ee" * 20, base_fee)
                nonce += 1
                for tx in (swap, transfer):
                    sent.add(await send_raw(stack.rpc, tx))
                await asyncio.sleep(rng.uniform(0.0, 0.03))
            await cutter
            pool = await stack.rpc.call("txpool_status", [])
            assert int(pool["pending"], 16) + int(pool["queued"], 16) == len(sent), "none mined"
            await until(
                lambda: bot.engine.counts.pending >= len(sent),
                timeout=30,
                what=f"the bot to see and process all {len(sent)} pending txs after the cuts",
            )
            assert bot.merger.coverage().unique == len(sent)
            source = bot.merger.coverage().sources[0]
            assert source.health.reconnects >= cuts
            assert set(_tasks(bot).values()) == {"running"}
            assert bot.supervisor.total_restarts == 0, bot.supervisor.status()
            assert bot.engine.counts.pending == len(sent)
        seen = {event.hash for event in read_journal(journal) if hasattr(event, "input")}
        assert seen == sent
        record_property(
            "survived",
            f"{len(seen)}/{len(sent)} pending txs seen, {source.health.reconnects} "
            f"resubscriptions, 0 task restarts",
        )


async def test_after_a_node_websocket_cut_new_blocks_are_processed(
    stack, tmp_path, record_property
):
    ws = urlsplit(stack.world.rpc["ws"])
    record_property("injected", "1 TCP reset of every node WebSocket, then a new block")
    async with TcpProxy(ws.port, ws.hostname) as proxy:
        deployment = replace(
            deployment_from_world(stack.world, stack.relay_url),
            node_ws=f"ws://127.0.0.1:{proxy.port}",
        )
        async with bot_on(stack, tmp_path, deployment=deployment) as bot:
            await mine(stack, bot)
            await proxy.cut()
            report = await mine(stack, bot, timeout=10)
            assert bot.engine.processed_block == report.number
            assert bot.supervisor.total_restarts == 0, bot.supervisor.status()
            record_property("survived", f"block {report.number} processed after the cut")


# --------------------------------------------------------------------- fork process killed


async def _backrun_lands_after_each_kill(
    stack, tmp_path, record_property, backend: str, what: str, kill
) -> None:
    """With the bot on ``backend``, ``kill(simulator)`` twice, a victim after each: the backrun
    of each is verified, sent and lands right behind it; the part killed (``what``) is running
    again and every supervised task too."""
    kills = 2
    record_property("injected", f"{what} SIGKILLed {kills} times (once per block)")
    async with bot_on(stack, tmp_path, MEVBOT_SIMULATION__BACKEND=backend) as bot:
        await mine(stack, bot)
        await mine(stack, bot)
        traffic = await _traffic(stack)
        simulator = bot.engine.simulator
        for _ in range(kills):
            await kill(simulator)
            victim = await push_victim(stack, traffic)
            await until(lambda v=victim: sent_for(bot, v.hash), 30, "a verified backrun bundle")
            (verdict,) = sent_for(bot, victim.hash)
            assert verdict.simulation is not None and verdict.simulation.success
            report = await mine(stack, bot)
            assert landed_in(report, verdict.plan), "our backrun landed right behind its victim"
        assert simulator.restarts == kills
        assert set(_tasks(bot).values()) == {"running"}
        record_property(
            "survived", f"{simulator.restarts} restarts; {kills} later backruns verified and landed"
        )


async def test_killed_fork_simulator_is_restarted_and_simulations_resume(
    stack, tmp_path, record_property
):
    async def kill(simulator) -> None:
        simulator.node.kill()
        assert not simulator.node.alive()

    await _backrun_lands_after_each_kill(
        stack, tmp_path, record_property, "anvil", "the fork anvil", kill
    )


async def test_killed_revm_fetch_guard_is_replaced_and_simulations_resume(
    stack, tmp_path, record_property
):
    async def kill(simulator) -> None:
        simulator._guard.process.kill()
        await simulator._guard.process.wait()

    await _backrun_lands_after_each_kill(
        stack, tmp_path, record_property, "revm", "revm's fetch guard", kill
    )


# --------------------------------------------------------------------- failing relays


async def test_failing_relays_are_counted_and_the_healthy_relay_gets_every_bundle(
    stack, tmp_path, record_property
):
    record_property(
        "injected", "3 extra relays: HTTP 500 always, never answers, 200 with random bytes"
    )
    async with (
        BadRelay("http500") as broken,
        BadRelay("timeout") as silent,
        BadRelay("garbage", seed=5) as garbage,
    ):
        bad = {"broken": broken.url, "silent": silent.url, "garbage": garbage.url}
        async with bot_on(stack, tmp_path, deployment=with_relays(stack, bad)) as bot:
            await mine(stack, bot)
            await mine(stack, bot)
            traffic = await _traffic(stack)
            weth = stack.world.tokens["WETH"]["address"]
            before = await token_balance(stack.rpc, weth, stack.world.executor)
            victim = await push_victim(stack, traffic)
            await until(lambda: sent_for(bot, victim.hash), 30, "a backrun bundle")
            report = await mine(stack, bot)
            received = stack.stats().bundles_received
            (verdict,) = sent_for(bot, victim.hash)
            assert landed_in(report, verdict.plan), "our backrun landed right behind its victim"
            after = await token_balance(stack.rpc, weth, stack.world.executor)
            assert after > before, "the bundle landed and paid"

            stats = {s.relay: s for s in bot.relays.stats()}
            healthy = stats["devnet"]
            # Sends to the relay are its bundles plus the cancels of bundles gone stale.
            assert healthy.sent == healthy.ok >= received >= 1 and not healthy.errors
            # Every request to a bad relay failed, each its own way (bundles and cancels alike).
            for name, kind in (("broken", "server_error"), ("silent", "timeout")):
                assert dict(stats[name].errors) == {kind: stats[name].sent} and stats[name].sent
            assert dict(stats["garbage"].errors) == {"bad_response": stats["garbage"].sent}
            shown = {row.name: row for row in bot.snapshot().relays}
            assert shown["devnet"].ok == healthy.sent and shown["devnet"].errors == 0
            for name in bad:
                assert shown[name].errors == stats[name].sent >= received and shown[name].ok == 0
            assert set(_tasks(bot).values()) == {"running"}
    record_property(
        "survived",
        f"devnet relay {healthy.ok}/{healthy.sent} ok; broken/silent/garbage counted "
        f"server_error/timeout/bad_response x{healthy.sent}; the backrun landed",
    )


# --------------------------------------------------------------------- SIGKILL and restart


class BotProcess:
    """``mevbot run --config FILE --no-tui`` as a child process, its output collected."""

    def __init__(self, config: Path, metrics_port: int) -> None:
        self.config = config
        self.metrics_port = metrics_port
        self.lines: list[str] = []
        self.process: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None

    async def start(self, ready_marker: str = "metrics and status at") -> None:
        self.process = await asyncio.create_subprocess_exec(
            *CLI,
            "run",
            "--config",
            str(self.config),
            "--no-tui",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=os.environ | {"PYTHONUNBUFFERED": "1"},
        )
        self._reader = asyncio.create_task(self._read())
        await until(
            lambda: any(ready_marker in line for line in self.lines) or self.process.returncode,
            60,
            "the bot process to start",
        )
        assert self.process.returncode is None, "".join(self.lines)[-3000:]

    async def _read(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        async for raw in self.process.stdout:
            self.lines.append(raw.decode(errors="replace"))

    async def status(self) -> dict:
        url = f"http://127.0.0.1:{self.metrics_port}/status"
        async with (
            aiohttp.ClientSession() as session,
            session.get(url, timeout=aiohttp.ClientTimeout(total=5)) as response,
        ):
            return await response.json()

    async def sigkill(self) -> None:
        """SIGKILL the bot; its fork anvil (own session) is orphaned, so kill that too."""
        assert self.process is not None
        orphans = descendants(self.process.pid)
        self.process.send_signal(signal.SIGKILL)
        await self.process.wait()
        kill_pids(orphans)
        if self._reader is not None:
            await self._reader

    async def terminate(self) -> None:
        if self.process is None or self.process.returncode is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.process.wait(), 30)
        except TimeoutError:
            await self.sigkill()
        if self._reader is not None:
            await self._reader


def _tally(status: dict[str, Any]) -> Tally:
    """The counts in a ``/status`` answer."""
    return status_from_json(status).tally


@contextlib.asynccontextmanager
async def bot_process(config: Path, port: int) -> AsyncIterator[BotProcess]:
    process = BotProcess(config, port)
    try:
        await process.start()
        yield process
    finally:
        await process.terminate()


async def test_sigkilled_bot_restarts_with_the_ledger_intact_and_no_duplicate_bundle(
    stack, tmp_path, record_property
):
    record_property("injected", "SIGKILL of `mevbot run` right after it sent bundles; restart")
    world = stack.world
    world_json = tmp_path / "devnet.json"
    world_json.write_text(json.dumps(world.to_json() | {"extra": {"relay": stack.relay_url}}))
    ledger = tmp_path / "ledger.sqlite"
    port = free_port()
    config = tmp_path / "mevbot.toml"
    config.write_text(
        f'network = "devnet"\ndevnet_json = "{world_json}"\n'
        f'[store]\nledger_path = "{ledger}"\n[strategies]\ntarget_blocks = 1\n'
        f"[metrics]\nport = {port}\n"
    )
    first = BotProcess(config, port)
    try:
        await first.start()
        # A swap mined in a block leaves the pools apart (a block-state arbitrage at that head);
        # a pending swap the same way widens the gap (a backrun): both go to the relay.
        traffic = await _traffic(stack)
        await push_victim(stack, traffic)
        report = await stack.builder.build_block()
        await _wait_status(
            first,
            lambda s: s["head_block"] >= report.number and _tally(s).candidates("sent"),
            "the first bot to send the block's arbitrage",
        )
        victim = await push_victim(stack, traffic)
        await _wait_status(
            first,
            lambda s: any(
                o["trigger"] == victim.hash and o["verdict"] == "sent" for o in s["opportunities"]
            ),
            "the first bot to send the victim's backrun",
        )
        received = stack.stats().bundles_received
        assert received >= 1
        await first.sigkill()
    finally:
        await first.terminate()

    with sqlite3.connect(ledger) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        before = dict(db.execute("SELECT key, status FROM candidates").fetchall())
    assert any(key.endswith(victim.hash) for key in before), before

    async with bot_process(config, port) as second:
        await _wait_status(
            second,
            lambda s: _tally(s).blocks >= 1 and _tally(s).pending >= 1,
            "the restarted bot to process the head and the still-pending victim",
        )
        await asyncio.sleep(1.0)  # time for any (wrong) resend to reach the relay
        status = await second.status()
        assert stack.stats().bundles_received == received, "a bundle was sent twice"
        assert _tally(status).candidates("sent") == 0
        duplicates = _tally(status).candidates("duplicate")
        assert duplicates >= 1
        assert {t["name"]: t["state"] for t in status["tasks"]} == dict.fromkeys(
            ("watcher", "engine", "keepers", "refunds", "v3-words", "v3-retry", "verifier"),
            "running",
        )
    with Ledger.open(ledger) as reopened:
        for key in before:
            assert reopened.candidate_known(key), key
    record_property(
        "survived",
        f"integrity_check ok; {len(before)} candidate keys kept; restart refused "
        f"{duplicates} duplicates; relay received {received} bundles, no more",
    )


async def _wait_status(process: BotProcess, predicate, what: str, timeout: float = 30) -> None:
    latest: dict = {}

    async def poll() -> bool:
        nonlocal latest
        with contextlib.suppress(aiohttp.ClientError, TimeoutError):
            latest = await process.status()
        return bool(latest) and predicate(latest)

    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await poll():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}: {json.dumps(latest)[-1500:]}")
        await asyncio.sleep(0.2)


# --------------------------------------------------------------------- reorg


async def test_a_chain_reorg_rolls_the_bot_state_back_and_reapplies_the_new_branch(
    stack, tmp_path, record_property
):
    depth = 2
    record_property("injected", f"anvil_reorg of depth {depth} replacing blocks holding swaps")
    async with bot_on(stack, tmp_path) as bot:
        await mine(stack, bot)
        traffic = await _traffic(stack)
        for _ in range(3):  # three blocks, each moving a pool
            swap, _ = traffic.swap(_reserves(bot), bot.engine.head.base_fee)
            await send_raw(stack.rpc, swap)
            await mine(stack, bot)
        replaced = bot.state.block_hash
        ancestor = bot.state.block_number - depth
        # The new branch holds other swaps, signed with the traders' nonces at the ancestor.
        branch_traffic = Traffic(stack.world, seed=99)
        branch_traffic.nonces = {
            trader.address: int(
                await stack.rpc.call("eth_getTransactionCount", [trader.address, hex(ancestor)]),
                16,
            )
            for trader in stack.world.traders
        }
        branch = []
        for offset in range(depth):
            swap, _ = branch_traffic.swap(_reserves(bot), bot.engine.head.base_fee)
            branch.append([swap.raw_hex, offset])
        await stack.rpc.call("anvil_reorg", [depth, branch])
        report = await mine(stack, bot)
        assert bot.engine.counts.reorgs >= 1
        assert bot.state.block_number == report.number
        assert bot.state.block_hash != replaced
        mismatched = {}
        for address, pool in bot.state.pools.items():
            on_chain = await pool_on_chain(stack.rpc, pool)
            if on_chain != pool_kept(pool):
                mismatched[address] = (on_chain, pool_kept(pool))
        assert not mismatched
        assert set(_tasks(bot).values()) == {"running"}
        record_property(
            "survived",
            f"{bot.engine.counts.reorgs} reorg(s) handled; all {len(bot.state.pools)} pools' "
            "states (V2 reserves, V3 price, tick and liquidity) equal the new chain's",
        )
