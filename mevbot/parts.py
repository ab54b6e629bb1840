"""The parts a bot's role is made of (:data:`ROLE_PARTS`), each started in order after the core.

Every role shares the core (the node connection, the local state loaded from it, the decoder,
Redis when given); the ``pipeline`` part adds the simulator, ledger, relays and the engine (with
or without strategies); ``watch`` reads the node's pending txs through the bounded intake and its
heads; ``feed`` takes the intake to the engine, ``publish`` to Redis Streams for workers,
``bus-heads`` and ``bus-pending`` read them back; ``keepers`` runs the keeper jobs; ``refunds``
reconciles the refunds builders owe the searcher key; ``mevshare`` backruns the hints of a
MEV-Share node's stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import astuple
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import aiohttp

from chain.abi import Abi
from chain.intents import Intent
from chain.types import BlockHeader, PendingTx
from execution.ledger import Ledger
from execution.nonces import NonceManager
from execution.refunds import RefundTracker
from execution.relay import MultiRelay, RelayClient, RelayFailure
from execution.sender import FeePolicy, TxSender
from execution.signer import LocalSigner
from keepers.liquidation import LiquidationKeeper
from keepers.oracle import OracleKeeper
from keepers.scheduler import Scheduler
from keepers.store import KeeperStore, SqliteKeeperStore
from mevbot.engine import Engine
from mevbot.mevshare import MevShareDesk
from mevbot.pipeline import bid_policies, build_engine, build_strategies
from mevbot.status import (
    KeeperRow,
    PoolUpkeep,
)
from simulation.backends import choose_backend, open_simulator
from simulation.candidates import Candidate
from simulation.checked import CheckedSimulator
from simulation.fork_warm import WarmFork
from simulation.simulator import Simulator
from simulation.state import ChainState
from simulation.v3_words import WordFetcher
from simulation.verifier import StateVerifier
from strategies.backrun import BackrunArbitrage
from strategies.liquidation import LiquidationBackrun
from strategies.mevshare import HintBackrun
from watcher.events import MevShareHint, NewHead, Reorg
from watcher.heads import HeadSource
from watcher.intake import Admitted, Intake
from watcher.journal import JournalWriter
from watcher.merge import Merger
from watcher.mevshare import MevShareSource
from watcher.pending import PendingSource

if TYPE_CHECKING:
    from mevbot.runtime import Bot

log = logging.getLogger("mevbot.parts")
PENDING_STALE_AFTER_S = 2.0
# Pending txs whose candidates may wait to join the block's bundle (those that arrive while it
# is simulated or sent join together next): the intake keeps draining meanwhile, and a burst
# queues here, bounded, instead of being shed. A waiting candidate is a few hundred bytes; a node
# that stalls for seconds under a 10x burst (30 candidates/s) must not stop the intake. Each tx
# is still considered (state after it, strategies) in arrival order.
PENDING_IN_FLIGHT = 256
PNL_BLOCKS = 120  # the dashboard's PnL sparkline looks back this many blocks
# Builders report refunds hours late and in batches: reading them every few blocks is plenty.
REFUND_EVERY_BLOCKS = 10
REFUNDING = frozenset({"flashbots", "buildernet"})  # dialects with refund-tracking methods
CLAIM_TTL_S = 86_400.0  # an effect's key stays claimed for a day: far longer than it can matter
BALANCE_OF = Abi.from_signatures("function balanceOf(address) returns (uint256)")
# Hints wait here for the hint strategy; past this many the oldest is shed (counted): a hint
# is worth something only while its tx is pending.
HINT_QUEUE = 256
# Pending txs whose missing V3 words arrived, waiting to be considered again.
RETRY_QUEUE = 256

HeadHandler = Callable[[NewHead | Reorg], Awaitable[None]]


class Part(Protocol):
    """One piece of a role: started in order after the core, given the bot to attach to."""

    async def start(self, bot: Bot) -> None: ...


class PipelinePart:
    """Simulator, ledger, relays and the engine; heads go to the engine."""

    def __init__(self, *, with_strategies: bool) -> None:
        self.with_strategies = with_strategies

    async def start(self, bot: Bot) -> None:
        d, config = bot.deployment, bot.config
        final_check = config.simulation.final_check
        backend = config.simulation.backend
        if backend == "auto":
            choice = bot.simulator_choice or await choose_backend(d.node_http, avoid=final_check)
            backend = choice.backend
            log.info("simulator: %s (auto: %s)", backend, choice.reason)
        bot.simulator_backend = backend
        opened = [
            open_simulator(name, d.node_http, stream_url=d.node_ws)
            for name in (backend, final_check)
            if name
        ]
        for fork in opened:
            if isinstance(fork, WarmFork):
                fork.warmup = warmup_calls(bot.state, d.executor)
        simulator: Simulator = opened[0] if len(opened) == 1 else CheckedSimulator(*opened)
        await simulator.start()
        bot.closers.append(simulator.close)
        bot.ledger = Ledger.open(config.store.ledger_path)
        bot.closers.append(bot.ledger.close)
        session = aiohttp.ClientSession()
        bot.closers.append(session.close)
        if not config.dry_run and d.relays:
            bot.relays = MultiRelay(
                [
                    RelayClient(
                        url,
                        bot.keys.searcher,
                        name=name,
                        session=session,
                        dialect=d.relay_dialects.get(name, "generic"),
                    )
                    for name, url in d.relays
                ]
            )
        strategies = build_strategies(config, d, bot.state) if self.with_strategies else []
        engine = bot.engine = build_engine(
            config,
            d,
            state=bot.state,
            decoder=bot.decoder,
            strategies=strategies,
            simulator=simulator,
            signer=bot.keys.executor,
            relays=bot.relays,
            ledger=bot.ledger,
            rpc=bot.rpc,
            latency=bot.latency,
            claim=bot.claim if bot.shared_store is not None else None,
            shared=bot.shared_ledger,
        )

        async def apply(event: NewHead | Reorg) -> None:
            if isinstance(event, Reorg):
                engine.on_reorg(event)
            else:
                await engine.on_head(event)
                bot.pnl_by_block.append((event.number, engine.counts.tally().net_profit_wei))

        bot.head_handlers.append(apply)


class WatchPart:
    """The node's pending txs (two subscriptions, merged, into the bounded intake) and heads,
    read on a thread of their own."""

    async def start(self, bot: Bot) -> None:
        d = bot.deployment
        # Full tx objects arrive without a lookup; the hash stream (with batched lookups and
        # txpool reconciliation) covers what the full stream drops under bursts.
        # A node that keeps making blocks while a subscription stays quiet has dropped it
        # (anvil does under bursts): notice within seconds, resubscribe, backfill from the pool.
        sources = [
            PendingSource(d.node_ws, mode="full", stale_after=PENDING_STALE_AFTER_S),
            PendingSource(d.node_ws, mode="hashes", stale_after=PENDING_STALE_AFTER_S),
        ]
        bot.merger = Merger(sources)
        bot.intake = Intake(10_000, bot.decoder, relevant=bot.relevant)
        self.heads = HeadSource(d.node_ws, topics=bot.state.log_topics)
        self.journal = JournalWriter(bot.journal_path) if bot.journal_path else None
        if self.journal is not None:
            bot.closers.append(self.journal.close)
        self.bot = bot
        bot.supervisor.spawn("watcher", self._run_thread)

    async def _run_thread(self) -> None:
        """Read the node on a thread with its own event loop: however busy the engine keeps
        this loop, the node's streams are drained at once (a lagging subscriber gets dropped
        by the node: anvil does it under bursts). Pending txs go to the thread-safe intake;
        heads are handed to this loop one at a time, in order."""
        main = asyncio.get_running_loop()
        handle: dict[str, Any] = {}
        started = threading.Event()

        async def watch() -> None:
            handle["loop"], handle["task"] = asyncio.get_running_loop(), asyncio.current_task()
            started.set()
            await asyncio.gather(self._pump_pending(), self._follow_heads(main))

        thread = main.run_in_executor(None, asyncio.run, watch())
        try:
            await asyncio.shield(thread)
        except asyncio.CancelledError:
            await asyncio.to_thread(started.wait, 5)
            if "loop" in handle:
                handle["loop"].call_soon_threadsafe(handle["task"].cancel)
            with contextlib.suppress(BaseException):
                await thread
            raise

    async def _pump_pending(self) -> None:
        assert self.bot.merger is not None and self.bot.intake is not None
        async for event in self.bot.merger:
            if self.journal is not None:
                self.journal.write(event)
            self.bot.intake.offer(event)

    async def _follow_heads(self, main: asyncio.AbstractEventLoop) -> None:
        async for event in self.heads:
            if self.journal is not None:
                self.journal.write(event)
            handled = asyncio.run_coroutine_threadsafe(self.bot.on_head_event(event), main)
            await asyncio.wrap_future(handled)


class FeedPart:
    """The intake to the engine: each tx considered in arrival order, heads included (the txs
    that reached the intake before a head are considered on the state they were pending on,
    before the head moves it); their candidates, which wait on the node and the relays,
    submitted for up to PENDING_IN_FLIGHT txs at once."""

    async def start(self, bot: Bot) -> None:
        self.bot = bot
        self.slots = asyncio.Semaphore(PENDING_IN_FLIGHT)
        self.group: asyncio.TaskGroup | None = None
        bot.head_handlers.insert(0, self._before_head)
        bot.supervisor.spawn("engine", self._work)

    async def _work(self) -> None:
        """A failure in one tx's submission ends this task (the supervisor restarts it)."""
        intake = self.bot.intake
        assert intake is not None
        try:
            async with asyncio.TaskGroup() as self.group:
                while True:
                    await self._consider(await intake.get())
        finally:
            self.group = None

    async def _before_head(self, event: NewHead | Reorg) -> None:
        intake = self.bot.intake
        assert intake is not None
        while self.group is not None and (admitted := intake.get_nowait()) is not None:
            await self._consider(admitted)

    async def _consider(self, admitted: Admitted) -> None:
        engine, group = self.bot.engine, self.group
        assert engine is not None and group is not None
        if not isinstance(admitted.event, PendingTx):
            return
        if admitted.relevant and admitted.event.received_at:
            latency, now = self.bot.latency, time.monotonic_ns()
            latency.record_ns("intake", admitted.event.received_at, admitted.at)
            latency.record_ns("handover", admitted.at, now)
        # The intake decoded every tx already (intent None: not a call it knows).
        candidates = engine.candidates_for(
            admitted.event, admitted.intent, decode_ms=admitted.decode_ms
        )
        if candidates:
            await self.slots.acquire()
            if self.group is not group:  # the task group ended meanwhile (its task restarts)
                self.slots.release()
                return
            task = group.create_task(self._submit_all(engine, candidates))
            task.add_done_callback(lambda _: self.slots.release())

    @staticmethod
    async def _submit_all(engine: Engine, candidates: list[Candidate]) -> None:
        for candidate in candidates:
            await engine.submitter.submit(candidate)


class PublishPart:
    """The watcher role's output: admitted pending txs and every head to Redis Streams."""

    async def start(self, bot: Bot) -> None:
        bus = bot.require_bus("publish")
        self.bot = bot
        bot.head_handlers.append(bus.publish)
        bot.supervisor.spawn("publish", self._publish)

    async def _publish(self) -> None:
        bus, intake = self.bot.require_bus("publish"), self.bot.intake
        assert intake is not None
        while True:
            admitted = await intake.get()
            await bus.publish(admitted.event)


class BusHeadsPart:
    """Every head, in order, from the shared heads stream. It is read from its start (a head
    published while this reader starts must not be missed); what the state loaded at start-up
    already holds is skipped."""

    async def start(self, bot: Bot) -> None:
        self.bot = bot
        bot.require_bus("bus-heads")
        bot.supervisor.spawn("bus-heads", self._follow)

    async def _follow(self) -> None:
        caught_up = False
        async for event in self.bot.require_bus("bus-heads").heads(start_id="0"):
            if not caught_up:
                if not isinstance(event, NewHead) or event.number <= self.bot.state.block_number:
                    continue
                caught_up = True
            await self.bot.on_head_event(event)


class BusPendingPart:
    """Workers share the pending stream through a consumer group."""

    async def start(self, bot: Bot) -> None:
        engine = bot.engine
        assert engine is not None

        async def handle(event: Any) -> None:
            if isinstance(event, PendingTx):
                await engine.on_pending(event)

        consumer = bot.require_bus("bus-pending").worker("workers", bot.instance, handle)
        bot.supervisor.spawn("bus-pending", consumer.run)


class LatestHead:
    """A slot holding only the newest head: a slow consumer skips heads, never delays the
    engine that offers them."""

    def __init__(self) -> None:
        self._slot: asyncio.Queue[BlockHeader] = asyncio.Queue(maxsize=1)

    def offer(self, head: NewHead, changes: object) -> None:
        if self._slot.full():
            self._slot.get_nowait()
        self._slot.put_nowait(head.header)

    async def get(self) -> BlockHeader:
        return await self._slot.get()


class RefundsPart:
    """Refunds the builders owe the searcher key, read every :data:`REFUND_EVERY_BLOCKS` blocks
    from the relays whose dialect has refund-tracking methods (Flashbots, BuilderNet) and
    reconciled into the ledger; the latest totals are the bot's ``refunds``."""

    async def start(self, bot: Bot) -> None:
        engine, relays, ledger = bot.engine, bot.relays, bot.ledger
        assert engine is not None and ledger is not None
        clients = [c for c in (relays.clients if relays else ()) if c.dialect.name in REFUNDING]
        if not clients:
            return
        self.bot = bot
        self.trackers = [RefundTracker(c, ledger, bot.keys.searcher.address) for c in clients]
        self.heads = LatestHead()
        engine.on_block_hooks.append(self.heads.offer)
        bot.supervisor.spawn("refunds", self._run)

    async def _run(self) -> None:
        while True:
            header = await self.heads.get()
            if header.number % REFUND_EVERY_BLOCKS:
                continue
            for tracker in self.trackers:
                try:
                    self.bot.refunds = await tracker.reconcile()
                except RelayFailure as failure:  # counted by the relay client; try next time
                    log.warning("refunds from %s: %s", tracker.client.name, failure)


class KeepersPart:
    """Keeper jobs on their own task: they see the latest head, never delay the pipeline."""

    async def start(self, bot: Bot) -> None:
        d, cfg = bot.deployment, bot.config.keepers
        engine = bot.engine
        assert engine is not None and bot.ledger is not None
        if bot.shared_store is not None:
            store: KeeperStore = bot.shared_store
        else:
            store_path = Path(bot.config.store.ledger_path).with_suffix(".keepers.sqlite")
            sqlite_store = SqliteKeeperStore.open(store_path)
            bot.closers.append(sqlite_store.close)
            store = sqlite_store
        self.scheduler = Scheduler(store, bot.instance)
        self.heads = LatestHead()
        fees = FeePolicy(
            priority_fee_wei=10**9,
            max_fee_cap_wei=int(cfg.fee_cap_gwei * 10**9),
            bump_after_blocks=cfg.replace_after_blocks,
        )

        def sender(key: LocalSigner) -> TxSender:
            nonces = NonceManager(key.address)
            return TxSender(bot.rpc, key, nonces, bot.ledger, chain_id=d.chain_id, policy=fees)

        if cfg.liquidation and d.lending_pool is not None:
            self.scheduler.add(
                LiquidationKeeper(
                    "liquidation-keeper",
                    state=bot.state,
                    rpc=bot.rpc,
                    simulator=engine.simulator,
                    store=store,
                    owner=bot.instance,
                    executor=d.executor,
                    executor_owner=bot.keys.executor.address,
                    weth=d.weth,
                    mode=cfg.liquidation_mode,
                    submit=engine.submitter.submit,
                    sender=sender(bot.keys.executor) if cfg.liquidation_mode == "public" else None,
                    factories=d.factories,
                )
            )
        if bot.oracle_feeds and bot.keys.keeper is not None:
            self.scheduler.add(
                OracleKeeper(
                    "oracle-keeper",
                    rpc=bot.rpc,
                    sender=sender(bot.keys.keeper),
                    store=store,
                    owner=bot.instance,
                    feeds=bot.oracle_feeds,
                )
            )
        engine.on_block_hooks.append(self.heads.offer)
        bot.keeper_rows = lambda: [KeeperRow(*astuple(s)) for s in self.scheduler.status()]
        bot.supervisor.spawn("keepers", self._run)

    async def _run(self) -> None:
        try:
            while True:
                await self.scheduler.on_block(await self.heads.get())
        finally:
            await self.scheduler.release()


class PoolUpkeepPart:
    """The tracked pools' upkeep on tasks of their own: the V3 bitmap words pending swaps found
    missing, and those next to a price a block moved, are fetched (:mod:`simulation.v3_words`);
    a pending tx that left no effect for want of a word waits for it and, once it is merged at
    the block the tx missed at, goes through the engine's pending path again (up to
    :data:`RETRY_QUEUE` wait there; past it the oldest is shed); and every
    ``state.verify_every_blocks`` blocks the state verifier re-reads the next
    ``state.verify_sample`` pools from the node and reloads the ones that drifted
    (:mod:`simulation.verifier`)."""

    async def start(self, bot: Bot) -> None:
        engine, config = bot.engine, bot.config.state
        assert engine is not None
        self.bot = bot
        self.words = WordFetcher(bot.rpc, bot.state)
        self.words.attach()
        engine.on_block_hooks.append(lambda _, changes: self.words.follow(changes.pools))
        self.retry: asyncio.Queue[tuple[PendingTx, Intent | None]] = asyncio.Queue(RETRY_QUEUE)
        self.retry_shed = 0
        self.words.on_ready = self._ready
        engine.on_missed_hooks.append(
            lambda tx, intent, missing: self.words.wait(missing, (tx, intent))
        )
        bot.supervisor.spawn("v3-words", self.words.run)
        bot.supervisor.spawn("v3-retry", self._retry)
        self.verifier = StateVerifier(bot.rpc, bot.state, config.verify_sample)
        self.every = config.verify_every_blocks
        if self.every:
            self.heads = LatestHead()
            engine.on_block_hooks.append(self.heads.offer)
            bot.supervisor.spawn("verifier", self._verify)
        bot.pool_upkeep = self.status

    def _ready(self, waited: tuple[PendingTx, Intent | None]) -> None:
        if self.retry.full():
            self.retry.get_nowait()
            self.retry_shed += 1
        self.retry.put_nowait(waited)

    async def _retry(self) -> None:
        engine = self.bot.engine
        assert engine is not None
        while True:
            tx, intent = await self.retry.get()
            await engine.on_pending(tx, intent, retried=True)

    async def _verify(self) -> None:
        last = 0
        while True:
            header = await self.heads.get()
            if header.number - last >= self.every:
                last = header.number
                await self.verifier.verify()

    def status(self) -> PoolUpkeep:
        words, checks = self.words.counts, self.verifier.counts
        return PoolUpkeep(
            words_asked=words.asked,
            words_fetched=words.fetched,
            words_dropped=words.dropped,
            pending_retried=words.ready - self.retry_shed,
            pending_unretried=words.expired + words.waiting_dropped + self.retry_shed,
            pools_checked=checks.checked,
            pools_drifted=checks.drifted,
            last_drift=checks.last_drift,
        )


class MevSharePart:
    """Hints from the deployment's MEV-Share stream (:mod:`watcher.mevshare`, supervised) through
    a bounded queue to the hint strategy; its backruns go to the node as ``mev_sendBundle`` and
    are followed to the chain (:mod:`mevbot.mevshare`). Off without a node or in a dry run."""

    async def start(self, bot: Bot) -> None:
        d, engine, ledger = bot.deployment, bot.engine, bot.ledger
        if d.mevshare_stream is None or d.mevshare_rpc is None or bot.config.dry_run:
            return
        assert engine is not None and ledger is not None
        cfg = bot.config.strategies
        session = aiohttp.ClientSession()
        bot.closers.append(session.close)
        source = MevShareSource(d.mevshare_stream, name="mevshare")
        liquidation = None
        if d.lending_pool is not None:
            liquidation = LiquidationBackrun(
                "mevshare", weth=d.weth, min_expected_profit_wei=cfg.liquidation.min_profit_wei
            )
        strategy = HintBackrun(
            "mevshare",
            BackrunArbitrage.for_state(
                "mevshare",
                bot.state,
                start_token=d.weth,
                min_expected_profit_wei=max(1, cfg.backrun.min_profit_wei),
            ),
            liquidation=liquidation,
            svr_aggregators=d.svr_aggregators,
            decode=bot.decoder.decode,
        )
        self.desk = bot.mevshare = MevShareDesk(
            strategy=strategy,
            state=bot.state,
            node=RelayClient(d.mevshare_rpc, bot.keys.searcher, name="mevshare", session=session),
            signer=bot.keys.executor,
            rpc=bot.rpc,
            ledger=ledger,
            policy=bid_policies(bot.config)["backrun"],
            executor=d.executor,
            weth=d.weth,
            chain_id=d.chain_id,
            source=source.stats,
        )
        self.hints: asyncio.Queue[MevShareHint] = asyncio.Queue(HINT_QUEUE)
        self.heads = LatestHead()

        def on_block(head: NewHead, changes: object) -> None:
            self.desk.head = head.header
            self.heads.offer(head, changes)

        engine.on_block_hooks.append(on_block)
        bot.supervisor.spawn("mevshare-stream", lambda: source.run(self._offer))
        bot.supervisor.spawn("mevshare", self._work)
        bot.supervisor.spawn("mevshare-heads", self._follow)

    async def _offer(self, hint: object) -> None:
        if not isinstance(hint, MevShareHint):
            return
        if self.hints.full():
            self.hints.get_nowait()
            self.desk.counts["shed"] += 1
        self.hints.put_nowait(hint)

    async def _work(self) -> None:
        while True:
            await self.desk.on_hint(await self.hints.get())

    async def _follow(self) -> None:
        while True:
            await self.desk.on_head(await self.heads.get())


def _all() -> tuple[Part, ...]:
    return (
        PipelinePart(with_strategies=True),
        KeepersPart(),
        RefundsPart(),
        WatchPart(),
        FeedPart(),
        PoolUpkeepPart(),
        MevSharePart(),
    )


def _watcher() -> tuple[Part, ...]:
    return (WatchPart(), PublishPart())


def _worker() -> tuple[Part, ...]:
    return (
        PipelinePart(with_strategies=True),
        BusHeadsPart(),
        BusPendingPart(),
        PoolUpkeepPart(),
    )


def _keeper() -> tuple[Part, ...]:
    return (
        PipelinePart(with_strategies=False),
        KeepersPart(),
        RefundsPart(),
        BusHeadsPart(),
        PoolUpkeepPart(),
    )


# The parts of each role, started in this order after the core.
ROLE_PARTS: dict[str, Callable[[], tuple[Part, ...]]] = {
    "all": _all,
    "watcher": _watcher,
    "worker": _worker,
    "keeper": _keeper,
}
ROLES = tuple(ROLE_PARTS)


def warmup_calls(state: ChainState, executor: str) -> list[tuple[str, bytes]]:
    """Reads that pull what bundles touch into a fresh fork: what each pool's kind names for
    its pools, and the executor's token balances."""
    calls: list[tuple[str, bytes]] = []
    for address, pool in state.pools.items():
        kind = state.factories.get(state.pool_factory.get(address, ""))
        if kind is not None:
            calls += kind.warmup(pool)
    balance = BALANCE_OF.function("balanceOf")
    tokens = sorted({t for pool in state.pools.values() for t in (pool.token0, pool.token1)})
    return calls + [(t, balance.encode(executor)) for t in tokens]
