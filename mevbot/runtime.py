"""The running bot: every component built from the config and run under one supervisor.

:class:`Deployment` is what the bot works with (node endpoints, relays, the executor, WETH,
routers, factories, the lending pool), resolved from the config file or from the devnet's JSON.
:class:`Bot` loads the local state, starts the fork simulator, the watcher (pending txs through
the bounded intake, heads and logs in order), the engine and the keepers, each as a supervised
task, and assembles the :class:`~mevbot.status.BotStatus` snapshot the UI renders. ``stop()``
cancels the tasks, lets in-flight work unwind, closes the ledger and stops the fork process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import astuple, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from eth_account import Account
from eth_account.signers.local import LocalAccount

from chain.abi import Abi
from chain.rpc import eth_get_block
from chain.rpc_reconnecting import ReconnectingRpc
from chain.topics import STATE_TOPICS
from chain.types import BlockHeader, PendingTx
from execution.bids import BidPolicy
from execution.candidates import Candidate
from execution.inclusion import InclusionTracker
from execution.ledger import Ledger
from execution.nonces import NonceManager
from execution.relay import MultiRelay, RelayClient
from execution.sender import FeePolicy, TxSender
from execution.signer import LocalSigner
from keepers.liquidation import LiquidationKeeper
from keepers.oracle import OracleFeed, OracleKeeper
from keepers.scheduler import Scheduler
from keepers.store import KeeperStore, SqliteKeeperStore
from mevbot.config import Config
from mevbot.endpoint import StatusServer
from mevbot.engine import Engine
from mevbot.latency import LatencyBook
from mevbot.logfmt import TailHandler
from mevbot.metrics import Metrics
from mevbot.redis_bus import RedisBus
from mevbot.redis_store import RedisKeeperStore, SharedLedger, connect_redis
from mevbot.status import (
    BotStatus,
    BundleRow,
    KeeperRow,
    RelayHealth,
    SourceRow,
    TaskRow,
)
from mevbot.status import (
    Intake as IntakeStatus,
)
from mevbot.supervisor import Supervisor
from simulation.backends import open_simulator
from simulation.fork import AnvilForkSimulator
from simulation.loader import load_feeds, load_lending, load_pools
from simulation.state import ChainState
from strategies.backrun import BackrunArbitrage
from strategies.base import Strategy
from strategies.liquidation import LiquidationBackrun
from watcher.decode import Decoder, RouterKind
from watcher.events import NewHead, Reorg
from watcher.heads import HeadSource
from watcher.intake import Intake
from watcher.journal import JournalWriter
from watcher.merge import Merger
from watcher.pending import PendingSource

log = logging.getLogger("mevbot.runtime")
ROLES = ("all", "watcher", "worker", "keeper")
PENDING_STALE_AFTER_S = 2.0
# Pending txs whose candidates are verified and sent at once: that work waits on the node and
# the relays, not on this process, so a burst drains in about one round trip instead of one per
# tx. Each tx is still considered (state after it, strategies) in arrival order.
PENDING_IN_FLIGHT = 4
CLAIM_TTL_S = 86_400.0  # an effect's key stays claimed for a day: far longer than it can matter
PAIR_READS = Abi.from_signatures(
    "function getReserves() returns (uint112, uint112, uint32)",
    "function balanceOf(address) returns (uint256)",
)

ROUTER_KINDS = {
    "uniswap-v2": RouterKind.UNISWAP_V2_ROUTER,
    "uniswap-v3": RouterKind.UNISWAP_V3_SWAP_ROUTER,
    "uniswap-v3-02": RouterKind.UNISWAP_V3_SWAP_ROUTER02,
}


@dataclass(frozen=True, slots=True)
class Deployment:
    """The chain-side facts the bot needs, wherever they came from."""

    network: str
    chain_id: int
    node_ws: str
    node_http: str
    relays: tuple[tuple[str, str], ...]
    executor: str
    weth: str
    routers: dict[str, RouterKind]
    router_factories: dict[str, str]
    lending_pool: str | None
    lending_from_block: int = 0
    relay_dialects: dict[str, str] = field(default_factory=dict)  # relay name -> dialect


@dataclass(frozen=True, slots=True)
class Keys:
    """The bot's keys: the executor owner signs bundles, the searcher key signs relay requests."""

    executor: LocalSigner
    searcher: LocalAccount
    keeper: LocalSigner | None = None  # signs the oracle keeper's public updates

    def __repr__(self) -> str:
        keeper = self.keeper.address if self.keeper else None
        return (
            f"Keys(executor={self.executor.address}, "
            f"searcher={self.searcher.address.lower()}, keeper={keeper})"
        )


@dataclass
class Bot:
    """Build with a config, a deployment and keys; ``await start()``, ``await stop()``."""

    config: Config
    deployment: Deployment
    keys: Keys
    journal_path: str | None = None
    extra_tasks: Sequence[tuple[str, Callable[[], Any]]] = ()
    oracle_feeds: Sequence[OracleFeed] = ()
    role: str = "all"
    redis_url: str | None = None
    name: str | None = None
    log_tail: TailHandler = field(default_factory=TailHandler)

    def __post_init__(self) -> None:
        self.supervisor = Supervisor()
        self.metrics = Metrics()
        self.latency = LatencyBook(observer=self.metrics.observe_stage)
        self.status_server: StatusServer | None = None
        self.started_at = time.time()
        # A stable name lets a restarted worker take back its own pending stream entries.
        self.instance = self.name or f"{socket.gethostname()}:{os.getpid()}"
        self.keeper_rows: Callable[[], Sequence[KeeperRow]] = tuple
        self._closers: list[Callable[[], Any]] = []

    # ------------------------------------------------------------------ start / stop

    async def start(self) -> None:
        d = self.deployment
        if self.role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}, not {self.role!r}")
        if self.role != "all" and not self.redis_url:
            raise ValueError(f"role {self.role!r} shares its work through Redis: give --redis URL")
        root = logging.getLogger("mevbot")
        if root.level == logging.NOTSET:
            root.setLevel(logging.INFO)  # the dashboard's log tail shows INFO and up
        root.addHandler(self.log_tail)
        self.rpc = ReconnectingRpc(d.node_ws, timeout=self.config.node.timeout_s)
        await self.rpc.__aenter__()
        self._closers.append(self.rpc.close)
        self.state = ChainState(
            routers=d.router_factories, lending_pool=d.lending_pool, history=128
        )
        await load_pools(self.rpc, self.state, sorted(set(d.router_factories.values())))
        if d.lending_pool is not None:
            await load_lending(self.rpc, self.state, from_block=d.lending_from_block)
        await load_feeds(self.rpc, self.state, self.state.feed_assets)
        head = await eth_get_block(self.rpc, "latest")
        assert head is not None
        self.state.block_number, self.state.block_hash = head.number, head.hash
        self.decoder = Decoder(d.routers, pairs=self.state.pools.__contains__)
        if self.redis_url:
            client = connect_redis(self.redis_url)
            self._closers.append(client.aclose)
            self.bus: RedisBus | None = RedisBus(client)
            self.shared_store: RedisKeeperStore | None = RedisKeeperStore(client)
            self.shared_ledger: SharedLedger | None = SharedLedger(client, self.instance)
        else:
            self.bus = self.shared_store = self.shared_ledger = None
        if self.role != "watcher":
            await self._start_engine(with_strategies=self.role in ("all", "worker"))
        if self.role in ("all", "keeper"):
            await self._start_keepers()
        if self.role in ("all", "watcher"):
            self._start_watcher()
        if self.role == "all":
            self.supervisor.spawn("engine", self._work)
        elif self.role == "watcher":
            self.supervisor.spawn("publish", self._publish)
        else:
            assert self.bus is not None
            self.supervisor.spawn("bus-heads", self._bus_heads)
        if self.role == "worker":
            assert self.bus is not None
            consumer = self.bus.worker("workers", self.instance, self._handle_bus_event)
            self.supervisor.spawn("bus-pending", consumer.run)
        if self.role in ("all", "keeper"):
            self.supervisor.spawn("keepers", self._run_keepers)
        for name, factory in self.extra_tasks:
            self.supervisor.spawn(name, factory)
        if self.config.metrics.enabled:
            self.status_server = await self.metrics.start_server(
                self.config.metrics.host, self.config.metrics.port, snapshot=self.snapshot
            )
            self._closers.append(self.status_server.stop)
            log.info("metrics and status at %s", self.status_server.url)
        log.info(
            "started on %s (chain %d) as %s: %d pools, %d positions, head %d%s",
            d.network,
            d.chain_id,
            self.role,
            len(self.state.pools),
            len(self.state.positions),
            head.number,
            " (dry run)" if self.config.dry_run else "",
        )

    async def _start_engine(self, *, with_strategies: bool) -> None:
        """Simulator, ledger, relays and the engine (strategies unless only keepers use it)."""
        d = self.deployment
        self.simulator = open_simulator(self.config.simulation.backend, d.node_http)
        if isinstance(self.simulator, AnvilForkSimulator):
            self.simulator.warmup = warmup_calls(self.state, d.executor)
        await self.simulator.start()
        self._closers.append(self.simulator.close)
        self.ledger = Ledger.open(self.config.store.ledger_path)
        self._closers.append(self.ledger.close)
        self.session = aiohttp.ClientSession()
        self._closers.append(self.session.close)
        relays = None
        if not self.config.dry_run and d.relays:
            relays = MultiRelay(
                [
                    RelayClient(
                        url,
                        self.keys.searcher,
                        name=name,
                        session=self.session,
                        dialect=d.relay_dialects.get(name, "generic"),
                    )
                    for name, url in d.relays
                ]
            )
        self.relays = relays
        self.strategies = build_strategies(self.config, d, self.state) if with_strategies else []
        self.engine = Engine(
            state=self.state,
            decoder=self.decoder,
            strategies=self.strategies,
            policies=bid_policies(self.config),
            simulator=self.simulator,
            signer=self.keys.executor,
            relays=relays,
            ledger=self.ledger,
            tracker=InclusionTracker(self.ledger, d.executor, d.weth),
            rpc=self.rpc,
            executor=d.executor,
            weth=d.weth,
            chain_id=d.chain_id,
            target_blocks=self.config.strategies.target_blocks,
            dry_run=self.config.dry_run,
            latency=self.latency,
            claim=self._claim if self.shared_store is not None else None,
            shared=self.shared_ledger,
        )

    def _start_watcher(self) -> None:
        d = self.deployment
        # Full tx objects arrive without a lookup; the hash stream (with batched lookups and
        # txpool reconciliation) covers what the full stream drops under bursts.
        # A node that keeps making blocks while a subscription stays quiet has dropped it
        # (anvil does under bursts): notice within seconds, resubscribe, backfill from the pool.
        self.pending_sources = [
            PendingSource(d.node_ws, mode="full", stale_after=PENDING_STALE_AFTER_S),
            PendingSource(d.node_ws, mode="hashes", stale_after=PENDING_STALE_AFTER_S),
        ]
        self.merger = Merger(self.pending_sources)
        self.intake = Intake(10_000, self.decoder, relevant=self._relevant)
        self.heads = HeadSource(d.node_ws, topics=STATE_TOPICS)
        self.journal = JournalWriter(self.journal_path) if self.journal_path else None
        if self.journal is not None:
            self._closers.append(self.journal.close)
        self.supervisor.spawn("watcher", self._run_watcher_thread)

    async def stop(self) -> None:
        await self.supervisor.stop()
        for close in reversed(self._closers):
            try:
                result = close()
                if asyncio.iscoroutine(result):
                    await result
            except Exception as error:  # keep closing the rest
                log.warning("while stopping: %s", error)
        self._closers.clear()
        logging.getLogger("mevbot").removeHandler(self.log_tail)

    # ------------------------------------------------------------------ wiring

    def _relevant(self, tx: PendingTx, intent: Any) -> bool:
        """Worth queueing: a tx to a tracked router, pool or feed."""
        to = tx.to
        return to is not None and (
            to in self.deployment.routers or to in self.state.pools or to in self.state.feeds
        )

    async def _start_keepers(self) -> None:
        """Keeper jobs on their own task: they see the latest head, never delay the pipeline."""
        d, cfg = self.deployment, self.config.keepers
        if self.shared_store is not None:
            self.keeper_store: KeeperStore = self.shared_store
        else:
            store_path = Path(self.config.store.ledger_path).with_suffix(".keepers.sqlite")
            self.keeper_store = SqliteKeeperStore.open(store_path)
            self._closers.append(self.keeper_store.close)
        self.scheduler = Scheduler(self.keeper_store, self.instance)
        self._latest_head: asyncio.Queue[BlockHeader] = asyncio.Queue(maxsize=1)
        if cfg.liquidation and d.lending_pool is not None:
            self.scheduler.add(
                LiquidationKeeper(
                    "liquidation-keeper",
                    state=self.state,
                    rpc=self.rpc,
                    simulator=self.simulator,
                    store=self.keeper_store,
                    owner=self.instance,
                    executor=d.executor,
                    executor_owner=self.keys.executor.address,
                    weth=d.weth,
                    mode="bundle",
                    submit=self.engine.execute,
                    factories=sorted(set(d.router_factories.values())),
                )
            )
        if self.oracle_feeds and self.keys.keeper is not None:
            sender = TxSender(
                self.rpc,
                self.keys.keeper,
                NonceManager(self.keys.keeper.address),
                self.ledger,
                chain_id=d.chain_id,
                policy=FeePolicy(
                    priority_fee_wei=10**9, max_fee_cap_wei=int(cfg.fee_cap_gwei * 10**9)
                ),
            )
            self.scheduler.add(
                OracleKeeper(
                    "oracle-keeper",
                    rpc=self.rpc,
                    sender=sender,
                    store=self.keeper_store,
                    owner=self.instance,
                    feeds=self.oracle_feeds,
                )
            )
        self.engine.on_block_hooks.append(self._offer_head)
        self.keeper_rows = lambda: [KeeperRow(*astuple(s)) for s in self.scheduler.status()]

    def _offer_head(self, head: NewHead, changes: object) -> None:
        """Conflate: the keepers' slot holds only the newest head."""
        if self._latest_head.full():
            self._latest_head.get_nowait()
        self._latest_head.put_nowait(head.header)

    async def _run_keepers(self) -> None:
        try:
            while True:
                await self.scheduler.on_block(await self._latest_head.get())
        finally:
            await self.scheduler.release()

    async def _run_watcher_thread(self) -> None:
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
        async for event in self.merger:
            if self.journal is not None:
                self.journal.write(event)
            self.intake.offer(event)

    async def _follow_heads(self, main: asyncio.AbstractEventLoop) -> None:
        async for event in self.heads:
            if self.journal is not None:
                self.journal.write(event)
            handled = asyncio.run_coroutine_threadsafe(self._on_head_event(event), main)
            await asyncio.wrap_future(handled)

    async def _on_head_event(self, event: Any) -> None:
        if self.role == "watcher":
            assert self.bus is not None
            await self.bus.publish(event)
        else:
            await self._apply_head(event)

    async def _apply_head(self, event: Any) -> None:
        if isinstance(event, Reorg):
            self.engine.on_reorg(event)
        elif isinstance(event, NewHead):
            await self.engine.on_head(event)

    async def _bus_heads(self) -> None:
        """Workers and keepers: every head, in order, from the heads stream. It is read from
        its start (a head published while this reader starts must not be missed); what the
        state loaded at start-up already holds is skipped."""
        assert self.bus is not None
        caught_up = False
        async for event in self.bus.heads(start_id="0"):
            if not caught_up:
                if not isinstance(event, NewHead) or event.number <= self.state.block_number:
                    continue
                caught_up = True
            await self._apply_head(event)

    async def _handle_bus_event(self, event: Any) -> None:
        if isinstance(event, PendingTx):
            await self.engine.on_pending(event)

    async def _publish(self) -> None:
        """The watcher role: what the intake admits goes to the shared pending stream."""
        assert self.bus is not None
        while True:
            admitted = await self.intake.get()
            await self.bus.publish(admitted.event)

    async def _claim(self, key: str) -> bool:
        """Claim an effect's key in the shared store: across instances, one acts."""
        assert self.shared_store is not None
        return await self.shared_store.claim(key, self.instance, ttl_s=CLAIM_TTL_S)

    async def _work(self) -> None:
        """The intake to the engine: each tx considered in arrival order; its candidates, which
        wait on the node and the relays, verified and sent for up to PENDING_IN_FLIGHT txs
        at once. A failure in one ends this task (the supervisor restarts it)."""
        slots = asyncio.Semaphore(PENDING_IN_FLIGHT)
        async with asyncio.TaskGroup() as group:
            while True:
                admitted = await self.intake.get()
                if not isinstance(admitted.event, PendingTx):
                    continue
                candidates = self.engine.candidates_for(admitted.event, admitted.intent)
                if candidates:
                    await slots.acquire()
                    task = group.create_task(self._execute_all(candidates))
                    task.add_done_callback(lambda _: slots.release())

    async def _execute_all(self, candidates: list[Candidate]) -> None:
        for candidate in candidates:
            await self.engine.execute(candidate)

    # ------------------------------------------------------------------ status

    def _intake_status(self) -> IntakeStatus:
        stats = self.decoder.stats
        merger, intake = getattr(self, "merger", None), getattr(self, "intake", None)
        if merger is None or intake is None:  # workers and keepers watch nothing themselves
            return IntakeStatus((), 0, stats.decoded, stats.undecoded + stats.malformed, 0, 0, 0)
        coverage = merger.coverage()
        elapsed = max(time.time() - self.started_at, 1e-9)
        sources = tuple(
            SourceRow(
                name=s.name,
                state="connected" if s.health.connected else "down",
                tx_per_s=s.seen / elapsed,
                seen=s.seen,
                first_seen=s.first_seen,
                duplicates=s.duplicates,
                lag_p50_ms=s.lag_p50_ms,
                reconnects=s.health.reconnects,
                malformed=sum(s.health.malformed.values()),
            )
            for s in coverage.sources
        )
        return IntakeStatus(
            sources=sources,
            pending_seen=coverage.unique,
            decoded=stats.decoded,
            undecoded=stats.undecoded + stats.malformed,
            shed=sum(intake.shed.values()),
            queue_depth=len(intake),
            queue_capacity=intake.capacity,
        )

    def snapshot(self) -> BotStatus:
        """The dashboard's view, assembled from counters (no network I/O)."""
        engine: Engine | None = getattr(self, "engine", None)
        relays = getattr(self, "relays", None)
        relay_rows = tuple(
            RelayHealth(
                name=r.relay, sent=r.sent, ok=r.ok, errors=sum(r.errors.values()), last_error=None
            )
            for r in (relays.stats() if relays else ())
        )
        bundles = tuple(
            BundleRow(
                target_block=b.target_block,
                bundle_hash=b.bundle_hash,
                strategy=b.strategy,
                bid_wei=b.coinbase_wei,
                status=b.status.value,
                realized_profit_wei=b.realized_profit_wei,
            )
            for b in (self.ledger.recent_bundles(12) if engine is not None else ())
        )
        head = engine.head if engine is not None else None
        counters = dict(engine.counters) if engine is not None else {}
        counters["errors"] = self.log_tail.errors
        counters["restarts"] = self.supervisor.total_restarts
        return BotStatus(
            network=self.deployment.network,
            chain_id=self.deployment.chain_id,
            head_block=self.state.block_number,
            head_age_s=None if head is None else max(0.0, time.time() - head.timestamp),
            dry_run=self.config.dry_run,
            relays=relay_rows,
            intake=self._intake_status(),
            opportunities=tuple(list(engine.opportunities)[-12:]) if engine is not None else (),
            bundles=bundles,
            keepers=tuple(self.keeper_rows()),
            latency=self.latency.summary(),
            tasks=tuple(
                TaskRow(t.name, t.state, t.restarts, t.last_error) for t in self.supervisor.status()
            ),
            log_tail=self.log_tail.lines(12),
            counters=counters,
        )


def build_strategies(config: Config, deployment: Deployment, state: ChainState) -> list[Strategy]:
    """The strategies the config enables, as the live bot builds them."""
    cfg = config.strategies
    found: list[Strategy] = []
    if cfg.backrun.enabled:
        found.append(
            BackrunArbitrage.for_state(
                "backrun",
                state,
                start_token=deployment.weth,
                min_expected_profit_wei=max(1, cfg.backrun.min_profit_wei),
            )
        )
    if cfg.liquidation.enabled and deployment.lending_pool is not None:
        found.append(
            LiquidationBackrun(
                "liquidation",
                weth=deployment.weth,
                min_expected_profit_wei=max(1, cfg.liquidation.min_profit_wei),
            )
        )
    return found


def bid_policies(config: Config) -> dict[str, BidPolicy]:
    """Bid policy per strategy name (``default`` for any other), as the live bot prices bids."""
    cfg = config.strategies
    backrun = BidPolicy(cfg.backrun.coinbase_share_bps, cfg.backrun.min_profit_wei)
    liquidation = BidPolicy(cfg.liquidation.coinbase_share_bps, cfg.liquidation.min_profit_wei)
    return {"default": backrun, "backrun": backrun, "liquidation": liquidation}


def warmup_calls(state: ChainState, executor: str) -> list[tuple[str, bytes]]:
    """Reads that pull what bundles touch into a fresh fork: pool reserves, the pools' and the
    executor's token balances."""
    reserves = PAIR_READS.function("getReserves").encode()
    balance = PAIR_READS.function("balanceOf")
    calls = [(pool.address, reserves) for pool in state.pools.values()]
    tokens = sorted({t for pool in state.pools.values() for t in (pool.token0, pool.token1)})
    calls += [
        (t, balance.encode(p.address)) for p in state.pools.values() for t in (p.token0, p.token1)
    ]
    calls += [(t, balance.encode(executor)) for t in tokens]
    return calls


def deployment_from_world(world: Any, relay_url: str | None) -> Deployment:
    """The devnet's deployment, from its JSON description (``mevbot devnet --out``)."""
    return Deployment(
        network="devnet",
        chain_id=world.chain_id,
        node_ws=world.rpc["ws"],
        node_http=world.rpc["http"],
        relays=(("devnet", relay_url),) if relay_url else (),
        executor=world.executor,
        weth=world.tokens["WETH"]["address"],
        routers={d["router"]: RouterKind.UNISWAP_V2_ROUTER for d in world.dexes.values()},
        router_factories={d["router"]: d["factory"] for d in world.dexes.values()},
        lending_pool=world.lending["pool"],
        relay_dialects={"devnet": "buildernet"},  # the devnet relay speaks BuilderNet
    )


def devnet_keys(world: Any) -> Keys:
    """The devnet's public development keys: executor owner, searcher, oracle updater."""
    return Keys(
        executor=LocalSigner(world.roles["executor"].private_key),
        searcher=Account.from_key(world.roles["searcher"].private_key),
        keeper=LocalSigner(world.roles["oracle_updater"].private_key),
    )
