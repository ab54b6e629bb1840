"""Prometheus metrics: counters for every count the status carries, a latency histogram per stage.

A :class:`Metrics` owns its own ``CollectorRegistry`` (several bots or tests in one process
never collide). Counts reach it in two ways:

- :meth:`Metrics.observe_stage` is a :class:`~mevbot.latency.LatencyBook` observer: every
  latency sample lands in the ``mevbot_stage_latency_seconds{stage}`` histogram.
- :meth:`Metrics.update_from` reads a :class:`~mevbot.status.BotStatus`: gauges are set, and
  each counter catches up to the cumulative total the status reports (a total that goes down
  means its component restarted from zero, so the new total is counted afresh, as Prometheus
  treats counter resets). Calling it often, or at every scrape, never double counts.

What the pipeline counts comes from the status's :class:`~mevbot.counters.Tally`, one family
per field (:data:`TALLY_FAMILIES`): opportunities by strategy and verdict, candidates dropped by
reason, bundles by status and by relay, realized profit and loss, gas and coinbase tips paid (in
wei), keeper actions by job, errors by component. Counters carry no ``_created`` series.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)

from mevbot.counters import Count, Tally
from mevbot.endpoint import StatusServer
from mevbot.latency import STAGES
from mevbot.status import BotStatus, MevShareStatus

# A counter's _created series doubles every sample line and says only when this process started.
disable_created_metrics()

# 0.05 ms .. 1 s, roughly 1-2.5-5 per decade: decode sits at the bottom, relay round trips high.
LATENCY_BUCKETS_S = (
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
)  # fmt: skip

# The Tally's labelled counts: (metric name without _total, help, label names, the field).
TALLY_FAMILIES: tuple[tuple[str, str, tuple[str, ...], Callable[[Tally], Iterable[Count]]], ...] = (
    ("mevbot_opportunities", "Candidates by strategy and verdict", ("strategy", "verdict"),
     lambda t: t.opportunities),
    ("mevbot_candidates_dropped", "Candidates dropped, by strategy and reason",
     ("strategy", "reason"), lambda t: t.dropped),
    ("mevbot_bundles", "Bundles (one per target block): sent, then how each settled",
     ("strategy", "status"), lambda t: t.bundles),
    ("mevbot_relay_bundles", "Bundles a relay accepted (sent) and how those settled",
     ("relay", "status"), lambda t: t.relay_bundles),
    ("mevbot_realized_profit_wei", "Realized profit of settled bundles that gained, in wei",
     ("strategy",), lambda t: t.realized_profit_wei),
    ("mevbot_realized_loss_wei", "Realized loss of settled bundles that lost, in wei",
     ("strategy",), lambda t: t.realized_loss_wei),
    ("mevbot_gas_paid_wei", "Gas paid by our included txs, in wei", ("strategy",),
     lambda t: t.gas_paid_wei),
    ("mevbot_coinbase_tips_wei", "Coinbase tips paid by our included txs, in wei",
     ("strategy",), lambda t: t.tips_paid_wei),
    ("mevbot_bundles_landed_by_venue", "Landed bundles by the pools they traded", ("venue",),
     lambda t: t.landed_by_venue),
    ("mevbot_keeper_actions", "Keeper runs that took an action, by job", ("job",),
     lambda t: t.keeper_actions),
    ("mevbot_errors", "Errors by component (relay:, keeper:, task:, log, shared-ledger)",
     ("component",), lambda t: t.errors),
)  # fmt: skip

# The Tally's plain counts: (metric name without _total, help, the field).
TALLY_TOTALS: tuple[tuple[str, str, Callable[[Tally], int]], ...] = (
    ("mevbot_pending_handled", "Pending txs the engine considered", lambda t: t.pending),
    ("mevbot_pending_relevant", "Pending txs that changed the tracked state",
     lambda t: t.pending_relevant),
    ("mevbot_pending_reverting",
     "Pending swaps through tracked pools that would revert on the current state",
     lambda t: t.pending_reverting),
    ("mevbot_no_envelope", "Pending txs whose signed envelope could not be rebuilt",
     lambda t: t.no_envelope),
    ("mevbot_blocks", "Blocks processed", lambda t: t.blocks),
    ("mevbot_malformed_logs", "Malformed logs skipped", lambda t: t.malformed_logs),
    ("mevbot_reorgs", "Reorgs rolled back", lambda t: t.reorgs),
    ("mevbot_profit_mismatches", "Simulated gains that differed from the strategy's",
     lambda t: t.profit_mismatches),
    ("mevbot_bundle_members_dropped", "Block-bundle members that no longer joined at a new head",
     lambda t: t.members_dropped),
    ("mevbot_bundle_members_displaced", "Block-bundle members displaced by a better candidate",
     lambda t: t.members_displaced),
    ("mevbot_block_bundles_carried", "Block bundles sent again for the next block",
     lambda t: t.bundles_carried),
    ("mevbot_block_bundles_cancelled", "Target-block bundles cancelled at the relays",
     lambda t: t.bundles_cancelled),
)  # fmt: skip


class Metrics:
    """The bot's metrics in a private registry; see the module docstring."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        registry = self.registry

        def counter(name: str, doc: str, labels: Iterable[str] = ()) -> Counter:
            return Counter(name, doc, tuple(labels), registry=registry)

        def gauge(name: str, doc: str, labels: Iterable[str] = ()) -> Gauge:
            return Gauge(name, doc, tuple(labels), registry=registry)

        source = ("source",)
        self.pending_seen = counter("mevbot_pending_seen", "Pending txs seen, per source", source)
        self.first_seen = counter(
            "mevbot_pending_first_seen", "Pending txs this source saw before any other", source
        )
        self.duplicates = counter(
            "mevbot_pending_duplicates", "Pending txs another source had already seen", source
        )
        self.reconnects = counter("mevbot_source_reconnects", "Source reconnections", source)
        self.malformed = counter("mevbot_source_malformed", "Malformed items skipped", source)
        self.pending_unique = counter("mevbot_pending_unique", "Distinct pending txs taken in")
        self.decoded = counter("mevbot_decoded", "Pending txs decoded into an intent")
        self.undecoded = counter("mevbot_undecoded", "Pending txs with no known intent")
        self.shed = counter("mevbot_shed", "Events shed under overload")
        self.relay_requests = counter(
            "mevbot_relay_requests", "Relay requests by outcome (ok, error)", ("relay", "outcome")
        )
        self.relay_sent = counter("mevbot_relay_sent", "Relay requests sent", ("relay",))
        self.keeper_failures = counter("mevbot_keeper_failures", "Keeper job failures", ("job",))
        self.task_restarts = counter("mevbot_task_restarts", "Supervised task restarts", ("task",))
        self.v3_words = counter(
            "mevbot_v3_bitmap_words",
            "V3 tick-bitmap words quotes found missing: asked for, fetched, dropped over a bound",
            ("outcome",),
        )
        self.word_waits = counter(
            "mevbot_v3_word_waits",
            "Pending txs that waited for a missing V3 word: considered again once it came "
            "(retried), or not (unretried: expired with their block, or over a bound)",
            ("outcome",),
        )
        self.pools_checked = counter(
            "mevbot_pools_verified", "Tracked pools the state verifier compared with the node"
        )
        self.pool_drift = counter(
            "mevbot_pool_drift", "Tracked pools found drifted from the node (each reloaded)"
        )
        self.mevshare_hints = counter("mevbot_mevshare_hints", "MEV-Share hints received")
        self.mevshare_candidates = counter(
            "mevbot_mevshare_candidates", "Backruns of hints proposed, by sizing", ("sizing",)
        )
        self.mevshare_backruns = counter(
            "mevbot_mevshare_backruns",
            "MEV-Share backruns by outcome (sent, refused, landed, missed)",
            ("outcome",),
        )
        self.mevshare_paid = counter(
            "mevbot_mevshare_coinbase_paid_wei", "What landed MEV-Share backruns paid the coinbase"
        )
        self.mevshare_refunds = counter(
            "mevbot_mevshare_refunds_wei",
            "What the users of our landed backruns were paid back in those blocks (read on chain)",
        )
        self.tally_families = [
            (counter(name, doc, labels), field) for name, doc, labels, field in TALLY_FAMILIES
        ]
        self.tally_totals = [(counter(name, doc), field) for name, doc, field in TALLY_TOTALS]
        self.stage_latency = Histogram(
            "mevbot_stage_latency_seconds",
            "Latency of each pipeline stage, wire_to_relay end to end",
            ("stage",),
            buckets=LATENCY_BUCKETS_S,
            registry=registry,
        )
        self.head_block = gauge("mevbot_head_block", "Latest block number seen")
        self.head_age = gauge("mevbot_head_age_seconds", "Age of the latest block")
        self.queue_depth = gauge("mevbot_queue_depth", "Events waiting in the bus")
        self.queue_capacity = gauge("mevbot_queue_capacity", "Capacity of the bus")
        self.decoded_share = gauge("mevbot_decoded_share", "Share of pending txs decoded (0..1)")
        self.tx_rate = gauge("mevbot_source_tx_per_second", "Pending txs per second", source)
        self.task_running = gauge("mevbot_task_running", "1 while the task runs", ("task",))
        self.dry_run = gauge("mevbot_dry_run", "1 when nothing is sent")
        self.info = gauge("mevbot_info", "The network the bot watches", ("network", "chain_id"))
        # Children are cached: observe_stage runs per event on the hot path.
        self._stage_children = {stage: self.stage_latency.labels(stage) for stage in STAGES}
        self._totals: dict[tuple[int, tuple[str, ...]], int] = {}
        self._gauge_labels: dict[int, set[tuple[str, ...]]] = {}

    # --- feeding ---------------------------------------------------------------------------

    def observe_stage(self, stage: str, milliseconds: float) -> None:
        """One latency sample (a :class:`~mevbot.latency.LatencyBook` observer)."""
        child = self._stage_children.get(stage)
        if child is None:
            child = self._stage_children[stage] = self.stage_latency.labels(stage)
        child.observe(milliseconds / 1000.0)

    def _catch_up(self, metric: Counter, labels: tuple[str, ...], total: int) -> None:
        key = (id(metric), labels)
        previous = self._totals.get(key, 0)
        delta = total - previous if total >= previous else total
        self._totals[key] = total
        if delta > 0:
            (metric.labels(*labels) if labels else metric).inc(delta)

    def _set_gauges(self, metric: Gauge, values: Mapping[tuple[str, ...], float]) -> None:
        """Sets labelled gauges and removes the label sets that disappeared from the status."""
        for labels, value in values.items():
            metric.labels(*labels).set(value)
        previous = self._gauge_labels.get(id(metric), set())
        for gone in previous - set(values):
            metric.remove(*gone)
        self._gauge_labels[id(metric)] = set(values)

    def update_from(self, status: BotStatus) -> None:
        """Brings every counter and gauge up to ``status`` (idempotent for the same status)."""
        intake = status.intake
        for row in intake.sources:
            labels = (row.name,)
            self._catch_up(self.pending_seen, labels, row.seen)
            self._catch_up(self.first_seen, labels, row.first_seen)
            self._catch_up(self.duplicates, labels, row.duplicates)
            self._catch_up(self.reconnects, labels, row.reconnects)
            self._catch_up(self.malformed, labels, row.malformed)
        self._catch_up(self.pending_unique, (), intake.pending_seen)
        self._catch_up(self.decoded, (), intake.decoded)
        self._catch_up(self.undecoded, (), intake.undecoded)
        self._catch_up(self.shed, (), intake.shed)
        for relay in status.relays:
            self._catch_up(self.relay_sent, (relay.name,), relay.sent)
            self._catch_up(self.relay_requests, (relay.name, "ok"), relay.ok)
            self._catch_up(self.relay_requests, (relay.name, "error"), relay.errors)
        for keeper in status.keepers:
            self._catch_up(self.keeper_failures, (keeper.job,), keeper.failures)
        for task in status.tasks:
            self._catch_up(self.task_restarts, (task.name,), task.restarts)
        pools = status.pools
        self._catch_up(self.v3_words, ("asked",), pools.words_asked)
        self._catch_up(self.v3_words, ("fetched",), pools.words_fetched)
        self._catch_up(self.v3_words, ("dropped",), pools.words_dropped)
        self._catch_up(self.word_waits, ("retried",), pools.pending_retried)
        self._catch_up(self.word_waits, ("unretried",), pools.pending_unretried)
        self._catch_up(self.pools_checked, (), pools.pools_checked)
        self._catch_up(self.pool_drift, (), pools.pools_drifted)
        if status.mevshare is not None:
            self._mevshare(status.mevshare)
        tally = status.tally
        for metric, counts in self.tally_families:
            for count in counts(tally):
                self._catch_up(metric, count.labels, count.value)
        for metric, value in self.tally_totals:
            self._catch_up(metric, (), value(tally))

        self.head_block.set(status.head_block)
        self.head_age.set(float("nan") if status.head_age_s is None else status.head_age_s)
        self.queue_depth.set(intake.queue_depth)
        self.queue_capacity.set(intake.queue_capacity)
        self.decoded_share.set(intake.decoded_share)
        self.dry_run.set(1 if status.dry_run else 0)
        self._set_gauges(self.tx_rate, {(row.name,): row.tx_per_s for row in intake.sources})
        self._set_gauges(
            self.task_running,
            {(task.name,): 1.0 if task.state == "running" else 0.0 for task in status.tasks},
        )
        self._set_gauges(self.info, {(status.network, str(status.chain_id)): 1.0})

    def _mevshare(self, mevshare: MevShareStatus) -> None:
        self._catch_up(self.mevshare_hints, (), mevshare.hints)
        for sizing, count in mevshare.candidates.items():
            self._catch_up(self.mevshare_candidates, (sizing,), count)
        for outcome, count in (
            ("sent", mevshare.sent),
            ("refused", mevshare.refused),
            ("landed", mevshare.landed),
            ("missed", mevshare.missed),
        ):
            self._catch_up(self.mevshare_backruns, (outcome,), count)
        self._catch_up(self.mevshare_paid, (), mevshare.coinbase_paid_wei)
        self._catch_up(self.mevshare_refunds, (), mevshare.user_refunds_wei)

    # --- exposing --------------------------------------------------------------------------

    def exposition(self) -> bytes:
        """The Prometheus text format of everything in this registry."""
        return generate_latest(self.registry)

    async def start_server(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        snapshot: Callable[[], BotStatus] | None = None,
    ) -> StatusServer:
        """Serves ``/metrics`` (and ``/status`` when ``snapshot`` is given); port 0 picks one.

        The bound port is ``server.port``; ``await server.stop()`` closes it.
        """
        server = StatusServer(self, snapshot)
        await server.start(host, port)
        return server
