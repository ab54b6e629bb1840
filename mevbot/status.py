"""What the bot shows: one frozen snapshot of its state, rendered by the TUI and `status --json`.

The runtime assembles a :class:`BotStatus` a few times a second from its components' counters
(what the pipeline counts travels as one :class:`~mevbot.counters.Tally`);
renderers only read it (rendering is separate from state, as in rich). Strings that come from
the chain (token symbols, revert reasons, relay messages) are carried raw here and escaped by
each renderer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from mevbot.counters import Tally


@dataclass(frozen=True, slots=True)
class Timing:
    """A latency summary in milliseconds."""

    p50: float
    p99: float
    n: int


@dataclass(frozen=True, slots=True)
class RelayHealth:
    name: str
    sent: int
    ok: int
    errors: int
    last_error: str | None
    latency: Timing | None = None


@dataclass(frozen=True, slots=True)
class SourceRow:
    """One pending-tx source: throughput and coverage (share of txs it saw first)."""

    name: str
    state: str
    tx_per_s: float
    seen: int
    first_seen: int
    duplicates: int
    lag_p50_ms: float | None
    reconnects: int = 0
    malformed: int = 0


@dataclass(frozen=True, slots=True)
class Intake:
    sources: tuple[SourceRow, ...]
    pending_seen: int
    decoded: int
    undecoded: int
    shed: int
    queue_depth: int
    queue_capacity: int

    @property
    def decoded_share(self) -> float:
        total = self.decoded + self.undecoded
        return self.decoded / total if total else 0.0


@dataclass(frozen=True, slots=True)
class OpportunityRow:
    """A candidate and what became of it (``verdict``: sent, or why it was dropped)."""

    at: float  # time.time()
    strategy: str
    trigger: str | None
    target_block: int
    expected_profit_wei: int
    verdict: str
    detail: str = ""


@dataclass(frozen=True, slots=True)
class BundleRow:
    target_block: int
    bundle_hash: str
    strategy: str
    bid_wei: int
    status: str  # pending | landed | missed | failed
    realized_profit_wei: int | None


@dataclass(frozen=True, slots=True)
class KeeperRow:
    job: str
    last_run: float | None
    next_run: float | None
    last_action: str | None
    failures: int
    state: str = "ok"
    actions: int = 0


@dataclass(frozen=True, slots=True)
class TaskRow:
    name: str
    state: str
    restarts: int
    last_error: str | None


@dataclass(frozen=True, slots=True)
class PoolUpkeep:
    """The tracked pools' upkeep: V3 bitmap words asked for by quotes, fetched and dropped over
    the fetcher's bounds; pending txs that waited for a missing word and were considered again
    once it came (``pending_retried``), forgotten when the block moved on first, or not kept
    over a bound (``pending_unretried``); pools the state verifier compared with the node, and
    found drifted (each reloaded), the last of them as ``last_drift``."""

    words_asked: int = 0
    words_fetched: int = 0
    words_dropped: int = 0
    pending_retried: int = 0
    pending_unretried: int = 0
    pools_checked: int = 0
    pools_drifted: int = 0
    last_drift: str | None = None


@dataclass(frozen=True, slots=True)
class MevShareRow:
    """One backrun of a MEV-Share hint: how it was sized, what it bid, what became of it
    (``pending``, ``refused`` by the node, ``landed``, ``missed``, ``failed``)."""

    hint_hash: str
    tx_hash: str
    sizing: str
    target_block: int
    expected_profit_wei: int
    coinbase_wei: int
    status: str


@dataclass(frozen=True, slots=True)
class MevShareStatus:
    """The MEV-Share source and its backruns: the node, whether its stream is connected, hints
    received and malformed, candidates by sizing, backruns by outcome, what landed ones paid the
    coinbase and what their users were paid back in those blocks, read from the chain (wei), the
    latest rows."""

    url: str
    connected: bool
    hints: int
    malformed: int
    candidates: Mapping[str, int]
    sent: int
    refused: int
    landed: int
    missed: int
    coinbase_paid_wei: int
    user_refunds_wei: int
    rows: tuple[MevShareRow, ...] = ()


@dataclass(frozen=True, slots=True)
class BotStatus:
    """Everything the dashboard shows, at one instant."""

    network: str
    chain_id: int
    head_block: int
    head_age_s: float | None
    dry_run: bool
    relays: tuple[RelayHealth, ...]
    intake: Intake
    opportunities: tuple[OpportunityRow, ...]
    bundles: tuple[BundleRow, ...]
    keepers: tuple[KeeperRow, ...]
    latency: dict[str, Timing]
    tasks: tuple[TaskRow, ...]
    log_tail: tuple[str, ...]
    tally: Tally = field(default_factory=Tally)
    # Cumulative realized profit net of losses (wei) after each of the last blocks, oldest first.
    pnl_by_block: tuple[tuple[int, int], ...] = ()
    pools: PoolUpkeep = field(default_factory=PoolUpkeep)
    mevshare: MevShareStatus | None = None

    def to_json(self) -> dict[str, Any]:
        """Plain JSON types (ints stay ints; wei amounts can exceed 2**53, so readers beware)."""
        data = asdict(self)
        data["intake"]["decoded_share"] = self.intake.decoded_share
        return data
