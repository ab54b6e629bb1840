"""The running bot: its role's parts (:mod:`mevbot.parts`), each run under one supervisor.

Heads from wherever they come go to every part that asked for them (:meth:`Bot.on_head_event`),
in order. ``snapshot()`` assembles the :class:`~mevbot.status.BotStatus` the UI renders;
``stop()`` cancels the tasks, lets in-flight work unwind and closes what the parts opened.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from chain.rpc import eth_get_block
from chain.rpc_reconnecting import ReconnectingRpc
from chain.types import PendingTx
from execution.ledger import Ledger
from execution.refunds import Reconciled
from execution.relay import MultiRelay
from keepers.oracle import OracleFeed
from mevbot.config import Config
from mevbot.counters import Counts
from mevbot.deployment import Deployment, Keys, chain_state
from mevbot.endpoint import StatusServer
from mevbot.engine import Engine
from mevbot.latency import LatencyBook
from mevbot.logfmt import TailHandler
from mevbot.metrics import Metrics
from mevbot.mevshare import MevShareDesk
from mevbot.parts import CLAIM_TTL_S, PNL_BLOCKS, ROLE_PARTS, ROLES, HeadHandler
from mevbot.redis_bus import RedisBus
from mevbot.redis_store import RedisKeeperStore, SharedLedger, connect_redis
from mevbot.status import (
    BotStatus,
    BundleRow,
    KeeperRow,
    PoolUpkeep,
    RelayHealth,
    SourceRow,
    TaskRow,
)
from mevbot.status import (
    Intake as IntakeStatus,
)
from mevbot.supervisor import Supervisor
from simulation.backends import Choice
from simulation.loader import catch_up, load_feeds, load_lending, load_pools
from simulation.state import ChainState
from watcher.decode import Decoder
from watcher.events import NewHead, Reorg
from watcher.intake import Intake
from watcher.merge import Merger

log = logging.getLogger("mevbot.runtime")


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
    # The state the start-up checks loaded (pools and positions at their block, which is set):
    # start() catches it up to the head instead of loading it again.
    preloaded: ChainState | None = None
    # What "auto" stands for, when the start-up checks chose it (the bot chooses otherwise).
    simulator_choice: Choice | None = None

    def __post_init__(self) -> None:
        if self.role not in ROLE_PARTS:
            raise ValueError(f"role must be one of {', '.join(ROLES)}, not {self.role!r}")
        self.supervisor = Supervisor()
        self.metrics = Metrics()
        self.latency = LatencyBook(observer=self.metrics.observe_stage)
        self.status_server: StatusServer | None = None
        self.started_at = time.time()
        # A stable name lets a restarted worker take back its own pending stream entries.
        self.instance = self.name or f"{socket.gethostname()}:{os.getpid()}"
        self.keeper_rows: Callable[[], Sequence[KeeperRow]] = tuple
        self.pool_upkeep: Callable[[], PoolUpkeep] = PoolUpkeep
        self.closers: list[Callable[[], Any]] = []
        self.head_handlers: list[HeadHandler] = []
        # What the core and the parts fill in as they start.
        self.rpc: ReconnectingRpc | None = None
        self.state = self.preloaded or chain_state(self.deployment)
        self.decoder = Decoder(
            self.deployment.routers,
            pairs=self.state.pools.__contains__,
            feeds=self.state.aggregators.__contains__,
        )
        self.bus: RedisBus | None = None
        self.shared_store: RedisKeeperStore | None = None
        self.shared_ledger: SharedLedger | None = None
        self.engine: Engine | None = None
        self.simulator_backend = ""  # what simulates, once started ("auto" resolved)
        self.ledger: Ledger | None = None
        self.relays: MultiRelay | None = None
        self.merger: Merger | None = None
        self.intake: Intake | None = None
        self.refunds: Reconciled | None = None
        self.mevshare: MevShareDesk | None = None
        self.pnl_by_block: deque[tuple[int, int]] = deque(maxlen=PNL_BLOCKS)

    # ------------------------------------------------------------------ start / stop

    async def start(self) -> None:
        d = self.deployment
        root = logging.getLogger("mevbot")
        if root.level == logging.NOTSET:
            root.setLevel(logging.INFO)  # the dashboard's log tail shows INFO and up
        root.addHandler(self.log_tail)
        self.rpc = ReconnectingRpc(d.node_ws, timeout=self.config.node.timeout_s)
        await self.rpc.__aenter__()
        self.closers.append(self.rpc.close)
        head = await eth_get_block(self.rpc, "latest")
        assert head is not None
        # One block for every load: Aave events are deltas, applied from the next head on.
        if self.preloaded is None:
            await load_pools(self.rpc, self.state, hex(head.number), self.config.state.max_pools)
            if d.lending_pool is not None:
                await load_lending(self.rpc, self.state, d.lending_from_block, head.number)
            self.state.block_number, self.state.block_hash = head.number, head.hash
        else:
            await catch_up(self.rpc, self.state, head.number, head.hash)
        await load_feeds(self.rpc, self.state, self.state.feed_assets, hex(head.number))
        if self.redis_url:
            client = connect_redis(self.redis_url)
            self.closers.append(client.aclose)
            self.bus = RedisBus(client)
            self.shared_store = RedisKeeperStore(client)
            self.shared_ledger = SharedLedger(client, self.instance)
        for part in ROLE_PARTS[self.role]():
            await part.start(self)
        for name, factory in self.extra_tasks:
            self.supervisor.spawn(name, factory)
        if self.config.metrics.enabled:
            self.status_server = await self.metrics.start_server(
                self.config.metrics.host, self.config.metrics.port, snapshot=self.snapshot
            )
            self.closers.append(self.status_server.stop)
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

    async def stop(self) -> None:
        await self.supervisor.stop()
        for close in reversed(self.closers):
            try:
                result = close()
                if asyncio.iscoroutine(result):
                    await result
            except Exception as error:  # keep closing the rest
                log.warning("while stopping: %s", error)
        self.closers.clear()
        logging.getLogger("mevbot").removeHandler(self.log_tail)

    # ------------------------------------------------------------------ wiring

    def require_bus(self, part: str) -> RedisBus:
        if self.bus is None:
            raise ValueError(
                f"role {self.role!r} ({part}) shares its work through Redis: give --redis URL"
            )
        return self.bus

    def relevant(self, tx: PendingTx, intent: Any) -> bool:
        """Worth queueing: a tx to a tracked router, pool or feed."""
        to = tx.to
        return to is not None and (
            to in self.deployment.routers or to in self.state.pools or to in self.state.aggregators
        )

    async def on_head_event(self, event: NewHead | Reorg) -> None:
        """A head or reorg, from the node or the bus: to every part that follows heads."""
        for handle in self.head_handlers:
            await handle(event)

    async def claim(self, key: str) -> bool:
        """Claim an effect's key in the shared store: across instances, one acts."""
        assert self.shared_store is not None
        return await self.shared_store.claim(key, self.instance, ttl_s=CLAIM_TTL_S)

    # ------------------------------------------------------------------ status

    def _intake_status(self) -> IntakeStatus:
        stats = self.decoder.stats
        merger, intake = self.merger, self.intake
        if merger is None or intake is None:  # workers and keepers watch nothing themselves
            undecoded = stats.undecoded + stats.malformed
            seen = stats.decoded + undecoded  # the pending txs handed to this process's engine
            return IntakeStatus((), seen, stats.decoded, undecoded, 0, 0, 0)
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
            # What the intake decoded, once per tx (the engine decodes again what it could not).
            decoded=intake.decoded,
            undecoded=intake.undecoded,
            shed=sum(intake.shed.values()),
            queue_depth=len(intake),
            queue_capacity=intake.capacity,
        )

    def snapshot(self) -> BotStatus:
        """The dashboard's view, assembled from counters (no network I/O)."""
        engine, relays = self.engine, self.relays
        relay_rows = tuple(
            RelayHealth(
                name=r.relay,
                sent=r.sent,
                ok=r.ok,
                errors=sum(r.errors.values()),
                last_error=r.last_error,
            )
            for r in (relays.stats() if relays else ())
        )
        keepers = tuple(self.keeper_rows())
        tasks = tuple(
            TaskRow(t.name, t.state, t.restarts, t.last_error) for t in self.supervisor.status()
        )
        errors = {
            "log": self.log_tail.errors,
            **{f"relay:{r.name}": r.errors for r in relay_rows},
            **{f"keeper:{k.job}": k.failures for k in keepers},
            **{f"task:{t.name}": t.restarts for t in tasks},
        }
        tally = (engine.counts if engine is not None else Counts()).tally(
            keeper_actions={k.job: k.actions for k in keepers}, errors=errors
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
            for b in (self.ledger.recent_bundles(12) if self.ledger is not None else ())
        )
        head = engine.submitter.head if engine is not None else None
        return BotStatus(
            network=self.deployment.network,
            chain_id=self.deployment.chain_id,
            head_block=self.state.block_number,
            head_age_s=None if head is None else max(0.0, time.time() - head.timestamp),
            dry_run=self.config.dry_run,
            relays=relay_rows,
            intake=self._intake_status(),
            opportunities=(
                tuple(list(engine.submitter.opportunities)[-12:]) if engine is not None else ()
            ),
            bundles=bundles,
            keepers=keepers,
            latency=self.latency.summary(),
            tasks=tasks,
            log_tail=self.log_tail.lines(12),
            tally=tally,
            pnl_by_block=tuple(self.pnl_by_block),
            pools=self.pool_upkeep(),
            mevshare=self.mevshare.status() if self.mevshare is not None else None,
        )
