"""End to end on the devnet: a pending swap's WebSocket frame -> the relay's answer to our bundle.

``python -m bench.e2e [--blocks 100] [--victims-per-block 1] [--baseline]`` prints JSON.

A :class:`~anvil.stack.DevnetStack` (anvil + the devnet relay + the builder, blocks built on
demand) and the full :class:`~mevbot.runtime.Bot` (not a dry run; its relay is the devnet's).
Each block, victims sell 2.5% of a WETH pool's reserve through a router (one pool per victim,
pools, DEXes and directions alternating so prices move both ways); each victim is sent alone
and the next one only after the bot's verdict. Then the builder mines the block and the bot
processes the head (its fork moves with ``anvil_reset``) before the next victim.

Reference times, all ``time.monotonic_ns()`` in this process:

* the headline ``wire_to_relay`` is the bot's own metric: from ``PendingTx.received_at``, which
  the watcher stamps when the hash notification's WebSocket frame reached its stream task, to
  the relay's answer to the first bundle POST (taken from the bot's
  :class:`~mevbot.latency.LatencyBook` through its observer, with the time it was recorded).
  The baseline is measured the same way: from when web3.py handed it the hash notification.
* ``shared_frame_to_relay``: from when this benchmark's own ``newPendingTransactions``
  subscription (a third connection, TCP quick-ACK on) saw the hash: one reference for both
  pipelines, which shows how late each client's own connection delivered the same frame.
* ``send_to_relay``: from this benchmark's ``eth_sendRawTransaction`` of the victim.

``relay_post_floor_ms``, after the blocks, with the pipeline idle: the last bundle the bot sent,
sent again for a block the builder never reaches, through the bot's own relay client, and as a
bare aiohttp POST of a prebuilt body and signature on a kept-alive session (what any client
pays for the devnet relay's answer, which runs in this process).

With ``--baseline``, blocks alternate between mevbot and the web3.py bot of
:mod:`bench.baseline` (mevbot's strategies are switched off during the baseline's blocks, the
baseline is unsubscribed during mevbot's). The landed/submitted ratio counts mevbot's bundles as
its inclusion tracker settled them; the candidates of one block go out as one bundle (each
member on the next nonce), and ``blocks_landed_share`` is the share of blocks we sent a bundle
for in which it landed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from eth_account import Account

from anvil import artifacts
from anvil.stack import DevnetStack
from anvil.traffic import Traffic
from bench.baseline import (
    BaselineOutcome,
    BaselineSetup,
    Web3Backrunner,
    best_backrun,
    reserves_after_swap,
    weth_cycles,
)
from bench.stats import timing
from chain.rpc import Rpc, StreamRpc, connect
from execution.dialects import Submission
from execution.signature import HEADER, FlashbotsSigner
from mevbot.config import load_config
from mevbot.counters import Count, Tally
from mevbot.deployment import deployment_from_world, devnet_keys
from mevbot.latency import STAGES
from mevbot.runtime import Bot
from mevbot.submitter import Verdict
from simulation.candidates import Candidate
from simulation.fork_warm import WarmFork
from strategies.backrun import BackrunArbitrage

WETH_PAIRS = ("WETH/USDC", "WETH/DAI", "WBTC/WETH")
DEXES = ("uniswap", "sushiswap")
VICTIM_BPS = 250  # of the pool's reserve of the token sold: prices move ~5%
SWAP = artifacts.load("UniswapV2Router02").abi.function("swapExactTokensForTokens")
VERDICT_TIMEOUT_S = 10.0
VERDICT_POLL_S = 0.05
FLOOR_POSTS = 100
FLOOR_BLOCKS_AHEAD = 1_000  # the floor's bundles target a block the builder never reaches
# The bot's stages from the frame to the relay's answer, in order (decode is the intake's, and
# timed here on its own).
ENGINE_STAGES = tuple(s for s in STAGES if s not in ("decode", "wire_to_relay"))


class StageLog:
    """The bot's :class:`LatencyBook` observer: every stage sample with the time it was taken."""

    def __init__(self) -> None:
        self.records: list[tuple[str, float, int]] = []
        self.wake = asyncio.Event()

    def __call__(self, stage: str, milliseconds: float) -> None:
        self.records.append((stage, milliseconds, time.monotonic_ns()))
        self.wake.set()

    def since(self, index: int) -> list[tuple[str, float, int]]:
        return self.records[index:]


class FrameClock:
    """When each pending hash notification reached this process (its own subscription)."""

    def __init__(self) -> None:
        self.frames: dict[str, int] = {}
        self._arrived = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self, rpc: StreamRpc) -> None:
        subscription = await rpc.subscribe("newPendingTransactions")

        async def listen() -> None:
            async for tx_hash in subscription:
                self.frames[str(tx_hash).lower()] = time.monotonic_ns()
                self._arrived.set()

        self._task = asyncio.create_task(listen())

    async def frame_of(self, tx_hash: str, timeout: float = 5.0) -> int:
        async with asyncio.timeout(timeout):
            while tx_hash not in self.frames:
                self._arrived.clear()
                await self._arrived.wait()
        return self.frames[tx_hash]

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


@dataclass(frozen=True, slots=True)
class Victim:
    tx_hash: str
    raw_hex: str
    pair: str
    token_in: str
    amount_in: int
    reserves: dict[str, tuple[int, int]]  # every pool's reserves in the bot's state before it


@dataclass
class Samples:
    """Per-victim figures of one pipeline, in milliseconds, by name."""

    values: dict[str, list[float]] = field(default_factory=dict)
    outcomes: Counter[str] = field(default_factory=Counter)

    def add(self, name: str, milliseconds: float) -> None:
        self.values.setdefault(name, []).append(milliseconds)

    def timing(self, name: str) -> dict[str, float | int]:
        return timing(self.values.get(name, []))


def _ms(start_ns: int, end_ns: int) -> float:
    return (end_ns - start_ns) / 1e6


class EndToEnd:
    """One devnet stack, the bot, optionally the baseline; :meth:`block` runs one block."""

    def __init__(self, stack: DevnetStack, bot: Bot, rpc: Rpc, baseline: Web3Backrunner | None):
        self.stack, self.bot, self.rpc, self.baseline = stack, bot, rpc, baseline
        world = stack.world
        self.world = world
        self.weth = world.tokens["WETH"]["address"]
        self.setup = BaselineSetup.from_world(world, stack.relay_url)
        self.cycles = weth_cycles(self.setup.pairs, self.weth)
        self.traffic = Traffic(world, seed=1, chain_id=world.chain_id)
        self.frames = FrameClock()
        self.stages = StageLog()
        bot.latency.observer = self.stages
        self.ours = Samples()
        self.theirs = Samples()
        self.agreement: Counter[str] = Counter()
        self._baseline_waiters: dict[str, asyncio.Future[BaselineOutcome]] = {}
        self._strategies = list(bot.engine.strategies)
        (self._backrun,) = (s for s in self._strategies if isinstance(s, BackrunArbitrage))

    async def start(self) -> None:
        assert isinstance(self.rpc, StreamRpc)
        await self.frames.start(self.rpc)
        await self.traffic.sync_nonces(self.rpc)

    # ------------------------------------------------------------------ victims

    def victim(self, block_index: int, slot: int) -> Victim:
        pair_name = WETH_PAIRS[slot % len(WETH_PAIRS)]
        dex = DEXES[(block_index // 4 + slot) % 2]
        pair = self.world.dexes[dex]["pairs"][pair_name]["address"]
        pools = self.bot.state.pools
        pool = pools[pair]
        other = pool.token_out(self.weth)
        token_in = self.weth if (block_index // 2 + slot) % 2 == 0 else other
        amount = pool.reserves_for(token_in)[0] * VICTIM_BPS // 10_000
        trader = self.world.traders[slot % len(self.world.traders)].address
        data = SWAP.encode(amount, 0, [token_in, pool.token_out(token_in)], trader, 2**40)
        head = self.bot.engine.head
        assert head is not None
        signed = self.traffic.sign(trader, self.world.dexes[dex]["router"], data, head.base_fee)
        reserves = {a: (pools[a].reserve0, pools[a].reserve1) for a in self.world.pool_addresses()}
        return Victim(signed.hash, signed.raw_hex, pair, token_in, amount, reserves)

    async def _send(self, victim: Victim) -> int:
        sent_ns = time.monotonic_ns()
        await self.rpc.call("eth_sendRawTransaction", [victim.raw_hex])
        return sent_ns

    async def ours_victim(self, victim: Victim, first_after_head: bool) -> None:
        mark = len(self.stages.records)
        candidates_before = self._backrun.stats.candidates
        sent_ns = await self._send(victim)
        found = await self._verdict(victim.tx_hash, mark, candidates_before)
        frame_ns = await self.frames.frame_of(victim.tx_hash)
        if found is None:
            self.ours.outcomes["no_candidate"] += 1
            return
        candidate, verdict = found
        self.ours.outcomes[verdict.reason.split(":")[0] or verdict.outcome] += 1
        self._check_agreement(victim, candidate)
        records = self.stages.since(mark)
        relay = [at for stage, _, at in records if stage == "wire_to_relay"]
        if verdict.outcome != "sent" or not relay:
            return
        answered_ns = relay[0]
        kind = "first_after_head" if first_after_head else "later_in_block"
        wire_to_relay = _ms(candidate.detected_at, answered_ns)
        self.ours.add("wire_to_relay", wire_to_relay)
        self.ours.add(f"wire_to_relay_{kind}", wire_to_relay)
        self.ours.add("shared_frame_to_relay", _ms(frame_ns, answered_ns))
        self.ours.add("send_to_relay", _ms(sent_ns, answered_ns))
        state_start = next(at - int(ms * 1e6) for stage, ms, at in records if stage == "state")
        self.ours.add("frame_to_engine", _ms(candidate.detected_at, state_start))
        # The stages on the way to the first answer, summed per stage (a victim whose candidate
        # displaces a member runs sign and simulate twice before its POST).
        on_path: Counter[str] = Counter()
        for stage, ms, at in records:
            if stage in ENGINE_STAGES and at <= answered_ns:
                on_path[stage] += ms
        for stage, ms in on_path.items():
            self.ours.add(stage, ms)
        self.ours.add(f"simulate_{kind}", on_path["simulate"])
        self.ours.add("unattributed", wire_to_relay - sum(on_path.values()))
        tx = candidate.backrun[0]
        started = time.perf_counter_ns()
        self.bot.decoder.decode_tx(tx)
        self.ours.add("decode", (time.perf_counter_ns() - started) / 1e6)

    async def _verdict(
        self, tx_hash: str, mark: int, candidates_before: int
    ) -> tuple[Candidate, Verdict] | None:
        """The engine's verdict on the victim, or None once the strategy proposed nothing."""
        wake = self.stages.wake
        async with asyncio.timeout(VERDICT_TIMEOUT_S):
            while True:
                wake.clear()
                for candidate, verdict in reversed(self.bot.engine.submitter.verdicts):
                    if candidate.trigger_hash == tx_hash:
                        return candidate, verdict
                strategy_done = any(s == "strategy" for s, _, _ in self.stages.since(mark))
                if strategy_done and self._backrun.stats.candidates == candidates_before:
                    return None
                # A verdict reached without a stage after it (dropped while waiting for the
                # block's bundle) records nothing to wake on: look again shortly.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), VERDICT_POLL_S)

    def _check_agreement(self, victim: Victim, candidate: Candidate) -> None:
        """Would the baseline's two-pool math have found the bot's trade on the same state?"""
        action = candidate.action
        pair = next(p for p in self.setup.pairs if p.address == victim.pair)
        reserves = dict(victim.reserves)
        reserves[pair.address] = reserves_after_swap(
            pair, reserves[pair.address], victim.token_in, victim.amount_in
        )
        cycles = [c for c in self.cycles if any(hop.pair == pair.address for hop in c)]
        theirs = best_backrun(cycles, reserves)
        if theirs is None or tuple(hop.pair for hop in theirs.hops) != tuple(action.pools):
            self.agreement["different_trade"] += 1
        elif abs(theirs.profit - candidate.expected_profit) * 10_000 > candidate.expected_profit:
            self.agreement["profit_off_by_over_0.01%"] += 1
        else:
            self.agreement["same_trade"] += 1

    async def baseline_victim(self, victim: Victim) -> None:
        future = asyncio.get_running_loop().create_future()
        self._baseline_waiters[victim.tx_hash] = future
        sent_ns = await self._send(victim)
        async with asyncio.timeout(VERDICT_TIMEOUT_S):
            outcome = await future
        frame_ns = await self.frames.frame_of(victim.tx_hash)
        self.theirs.outcomes[outcome.outcome] += 1
        if outcome.outcome != "sent" or outcome.relay_answered_ns is None:
            return
        self.theirs.add("wire_to_relay", _ms(outcome.seen_ns, outcome.relay_answered_ns))
        self.theirs.add("shared_frame_to_relay", _ms(frame_ns, outcome.relay_answered_ns))
        self.theirs.add("send_to_relay", _ms(sent_ns, outcome.relay_answered_ns))
        for stage, ms in outcome.stages.items():
            self.theirs.add(stage, ms)

    def _on_baseline(self, outcome: BaselineOutcome) -> None:
        future = self._baseline_waiters.pop(outcome.tx_hash, None)
        if future is not None and not future.done():
            future.set_result(outcome)

    # ------------------------------------------------------------------ blocks

    async def mine(self) -> int:
        report = await self.stack.builder.build_block()
        async with asyncio.timeout(VERDICT_TIMEOUT_S):
            while self.bot.engine.processed_block < report.number:  # noqa: ASYNC110 (a counter)
                await asyncio.sleep(0.002)
        return report.number

    async def block(self, index: int, victims: int, baseline_turn: bool) -> None:
        """Victims one at a time through one pipeline, then the block is mined."""
        if baseline_turn:
            assert self.baseline is not None
            self.bot.engine.strategies = []
            task = asyncio.create_task(self.baseline.run(self._on_baseline))
            try:
                async with asyncio.timeout(VERDICT_TIMEOUT_S):
                    await self.baseline.subscribed.wait()
                for slot in range(victims):
                    await self.baseline_victim(self.victim(index, slot))
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
                self.bot.engine.strategies = list(self._strategies)
        else:
            for slot in range(victims):
                await self.ours_victim(self.victim(index, slot), first_after_head=slot == 0)
        await self.mine()

    async def settle(self) -> None:
        """Mine once more so that the last bundles' target block passes, and let the inclusion
        tracker settle every bundle sent (it may defer a block it cannot see yet)."""
        await self.mine()
        counts = self.bot.engine.counts
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(VERDICT_TIMEOUT_S):
                while counts.tally().bundles_settled() < counts.tally().candidates("sent"):  # noqa: ASYNC110
                    await asyncio.sleep(0.01)


def _by_label(counts: Iterable[Count], position: int) -> Counter[str]:
    totals: Counter[str] = Counter()
    for count in counts:
        totals[count.labels[position]] += count.value
    return totals


def _landing(before: Tally, after: Tally) -> dict[str, Any]:
    """mevbot's bundles over the measured blocks, as its inclusion tracker settled them."""
    bundles = _by_label(after.bundles, 1) - _by_label(before.bundles, 1)
    verdicts = _by_label(after.opportunities, 1) - _by_label(before.opportunities, 1)
    dropped = _by_label(after.dropped, 1) - _by_label(before.dropped, 1)
    submitted, landed = verdicts["sent"], bundles["landed"]
    # Candidates verified on the fork (sent or dropped); reverting = reverted or out of gas.
    verified = submitted + verdicts["dropped"]
    reverting = dropped["reverts"] + dropped["out_of_gas"]
    return {
        "submitted": submitted,
        "landed": landed,
        "landed_ratio": round(landed / submitted, 4) if submitted else None,
        "dropped_reverting": reverting,
        "dropped_reverting_share": round(reverting / verified, 4) if verified else None,
        "settled": {status: n for status, n in bundles.items() if status != "sent"},
        "engine_counters": {
            **{f"candidates_{verdict}": n for verdict, n in verdicts.items()},
            **{f"dropped_{reason}": n for reason, n in dropped.items()},
        },
    }


def _ratio(theirs: dict[str, Any], ours: dict[str, Any]) -> float | None:
    return round(theirs["p50"] / ours["p50"], 2) if ours.get("n") else None


def _summary(samples: Samples, names: Iterable[str]) -> dict[str, Any]:
    return {name: samples.timing(name) for name in names if samples.values.get(name)}


async def run(
    blocks: int = 100,
    victims_per_block: int = 1,
    baseline: bool = False,
    backend: str | None = None,
    keep_warm: bool = True,
) -> dict[str, Any]:
    """Run ``blocks`` measured blocks (alternating with the baseline when ``baseline``) with
    the bot's simulator on ``backend`` ("anvil", "node" or "revm"; None: the config's default);
    ``keep_warm`` False forks again at every head instead of writing the block's changes."""
    if not 1 <= victims_per_block <= len(WETH_PAIRS):
        raise ValueError(f"victims per block must be within 1..{len(WETH_PAIRS)}")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-e2e-") as scratch:
        async with DevnetStack(block_time=None) as stack:
            config = load_config(
                network="devnet",
                environ={
                    "MEVBOT_STORE__LEDGER_PATH": str(Path(scratch) / "ledger.sqlite"),
                    "MEVBOT_STRATEGIES__TARGET_BLOCKS": "1",
                    "MEVBOT_METRICS__PORT": "0",
                    **({"MEVBOT_SIMULATION__BACKEND": backend} if backend else {}),
                },
            )
            bot = Bot(
                config,
                deployment_from_world(stack.world, stack.relay_url),
                devnet_keys(stack.world),
            )
            await bot.start()
            simulator = bot.engine.simulator
            if isinstance(simulator, WarmFork):
                simulator.keep_warm = keep_warm
            theirs = None
            try:
                if baseline:
                    theirs = Web3Backrunner(BaselineSetup.from_world(stack.world, stack.relay_url))
                    await theirs.start()
                async with connect(stack.world.rpc["ws"]) as rpc:
                    bench = EndToEnd(stack, bot, rpc, theirs)
                    await bench.start()
                    try:
                        return await _measure(bench, blocks, victims_per_block, started)
                    finally:
                        await bench.frames.stop()
            finally:
                if theirs is not None:
                    await theirs.close()
                await bot.stop()


async def _measure(
    bench: EndToEnd, blocks: int, victims_per_block: int, started: float
) -> dict[str, Any]:
    # Two blocks first: the bot's first head closes the gap the world starts with (and its
    # bundle lands in the second), so measured victims start from level prices. One victim
    # through each pipeline warms caches (web3's ABI handling, the fork's first state fetch).
    await bench.mine()
    await bench.mine()
    await bench.ours_victim(bench.victim(0, 0), first_after_head=True)
    if bench.baseline is not None:
        await bench.block(1, 1, baseline_turn=True)
    else:
        await bench.mine()
    bench.ours, bench.theirs, bench.agreement = Samples(), Samples(), Counter()
    counts_before = bench.bot.engine.counts.tally()
    first_block = bench.bot.state.block_number + 1
    for index in range(blocks):
        await bench.block(index, victims_per_block, bench.baseline is not None and index % 2 == 1)
    await bench.settle()
    landing = _landing(counts_before, bench.bot.engine.counts.tally())
    assert bench.bot.ledger is not None
    last_block = bench.bot.state.block_number
    with_bundle, landed_in = bench.bot.ledger.blocks_landed(first_block, last_block)
    landing["blocks_with_our_bundle"] = with_bundle
    landing["blocks_landed"] = landed_in
    landing["blocks_landed_share"] = round(landed_in / with_bundle, 4) if with_bundle else None
    ours_blocks = blocks if bench.baseline is None else (blocks + 1) // 2
    result: dict[str, Any] = {
        "blocks": blocks,
        "victims_per_block": victims_per_block,
        "ours_blocks": ours_blocks,
        "simulation_backend": _backend_name(bench.bot),
        "e2e_ms": {
            **bench.ours.timing("wire_to_relay"),
            "from": "the hash notification frame (PendingTx.received_at) -> the relay's answer",
            "shared_frame_to_relay": bench.ours.timing("shared_frame_to_relay"),
            "send_to_relay": bench.ours.timing("send_to_relay"),
            "first_after_head": bench.ours.timing("wire_to_relay_first_after_head"),
            "later_in_block": bench.ours.timing("wire_to_relay_later_in_block"),
            "stages": _summary(
                bench.ours,
                (
                    "frame_to_engine",
                    "decode",
                    *ENGINE_STAGES,
                    "unattributed",
                    "simulate_first_after_head",
                    "simulate_later_in_block",
                ),
            ),
            "outcomes": dict(bench.ours.outcomes),
            "landing": landing,
            "baseline_math_agrees": dict(bench.agreement),
        },
        "seconds": round(time.perf_counter() - started, 1),
    }
    result["relay_post_floor_ms"] = await _relay_post_floor(bench)
    simulator = bench.bot.engine.simulator
    if isinstance(simulator, WarmFork):
        result["fork"] = simulator.warm.counts()
    if bench.baseline is not None:
        theirs = bench.theirs
        result["baseline_e2e_ms"] = {
            **theirs.timing("wire_to_relay"),
            "from": "web3.py handing over the hash notification -> the relay's answer",
            "shared_frame_to_relay": theirs.timing("shared_frame_to_relay"),
            "send_to_relay": theirs.timing("send_to_relay"),
            "stages": _summary(theirs, [k for k in theirs.values if not k.endswith("_to_relay")]),
            "outcomes": dict(theirs.outcomes),
        }
        result["speedup_vs_baseline_p50"] = _ratio(result["baseline_e2e_ms"], result["e2e_ms"])
        result["speedup_vs_baseline_p50_shared_frame"] = _ratio(
            result["baseline_e2e_ms"]["shared_frame_to_relay"],
            result["e2e_ms"]["shared_frame_to_relay"],
        )
    return result


async def _relay_post_floor(bench: EndToEnd, n: int = FLOOR_POSTS) -> dict[str, Any]:
    """The first POST's cost with nothing else running (see the module docstring)."""
    submitter = bench.bot.engine.submitter
    plans = [v.plan for _, v in submitter.verdicts if v.outcome == "sent" and v.plan is not None]
    if not plans or submitter.relays is None:
        return {}
    block = bench.bot.state.block_number + FLOOR_BLOCKS_AHEAD
    bundle = replace(plans[-1].bundles[0], block_number=block, replacement_uuid=None)
    relays = submitter.relays
    body = orjson.dumps(
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "eth_sendBundle",
            "params": [{"txs": [tx.raw_hex for tx in bundle.txs], "blockNumber": hex(block)}],
        }
    )
    searcher = Account.from_key(bench.world.roles["searcher"].private_key)
    headers = {"Content-Type": "application/json", HEADER: FlashbotsSigner(searcher).sign(body)}
    ours: list[float] = []
    bare: list[float] = []
    async with aiohttp.ClientSession() as session:

        async def post() -> None:
            async with session.post(bench.stack.relay_url, data=body, headers=headers) as answer:
                answer.raise_for_status()
                await answer.read()

        for index in range(n + 10):  # the first ten open the connections
            started = time.perf_counter_ns()
            await relays.send_bundle(Submission(bundle))
            middle = time.perf_counter_ns()
            await post()
            if index >= 10:
                ours.append(_ms(started, middle))
                bare.append(_ms(middle, time.perf_counter_ns()))
    return {"bot_relay_client": timing(ours), "bare_aiohttp_post": timing(bare)}


def _backend_name(bot: Bot) -> str:
    simulator, backend = bot.engine.simulator, bot.simulator_backend
    if bot.config.simulation.backend == "auto":
        backend = f"auto: {backend}"
    if isinstance(simulator, WarmFork):
        return f"{backend} ({'warm' if simulator.keep_warm else 'forked again at every head'})"
    return backend


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.e2e", description=__doc__)
    parser.add_argument("--blocks", type=int, default=100, help="measured blocks")
    parser.add_argument("--victims-per-block", type=int, default=1)
    parser.add_argument("--baseline", action="store_true", help="alternate with the web3.py bot")
    parser.add_argument(
        "--backend", choices=("anvil", "revm", "node"), help="default: the config's simulator"
    )
    parser.add_argument("--reset-fork", action="store_true", help="anvil_reset at every head")
    args = parser.parse_args(argv)
    result = asyncio.run(
        run(
            args.blocks,
            args.victims_per_block,
            args.baseline,
            args.backend,
            keep_warm=not args.reset_fork,
        )
    )
    json.dump(result, sys.stdout, indent=1)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
