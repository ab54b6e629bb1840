"""Run several sources at once as one stream: dedupe by hash, first seen wins, count coverage.

Pending txs and MEV-Share hints are keyed by their hash (a hint's hash is a double hash, so it
never collides with a tx hash); heads and reorgs pass through (run one head source). Per source
the merger counts ``seen``, ``first_seen``, ``duplicates`` and the lag behind the first source
to deliver each hash (0 when it was first), over the last ``lag_samples`` events.
:meth:`Merger.coverage` returns a frozen snapshot for the CLI, the TUI and tests.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from chain.types import PendingTx
from watcher.events import Event, MevShareHint
from watcher.recent import RecentHashes
from watcher.source import Emit, Source, SourceHealth


@dataclass(frozen=True, slots=True)
class SourceCoverage:
    name: str
    seen: int
    first_seen: int
    duplicates: int
    lag_p50_ms: float | None
    lag_p99_ms: float | None
    health: SourceHealth


@dataclass(frozen=True, slots=True)
class Coverage:
    """``unique``: events delivered downstream (each hash once); one entry per source."""

    unique: int
    sources: tuple[SourceCoverage, ...]

    def source(self, name: str) -> SourceCoverage:
        return next(entry for entry in self.sources if entry.name == name)


@dataclass(slots=True)
class _Counters:
    seen: int = 0
    first_seen: int = 0
    duplicates: int = 0
    lags_ns: deque[int] = field(default_factory=deque)


def _percentile(sorted_values: list[int], fraction: float) -> float | None:
    if not sorted_values:
        return None
    return sorted_values[round(fraction * (len(sorted_values) - 1))] / 1e6


class Merger(Source):
    """A source made of sources; ``run(emit)`` runs them all and emits each hash once."""

    def __init__(
        self,
        sources: Sequence[Source],
        *,
        name: str = "merged",
        memory: int = 200_000,
        lag_samples: int = 4096,
    ) -> None:
        names = [source.name for source in sources]
        if len(set(names)) != len(names):
            raise ValueError(f"source names must be distinct: {names}")
        super().__init__(name)
        self.sources = tuple(sources)
        self._first = RecentHashes(memory)
        self._counters = {
            source.name: _Counters(lags_ns=deque(maxlen=lag_samples)) for source in sources
        }

    async def run(self, emit: Emit) -> None:
        async with asyncio.TaskGroup() as group:
            for source in self.sources:
                group.create_task(source.run(self._emit_for(source.name, emit)))

    def _emit_for(self, name: str, downstream: Emit) -> Emit:
        counters = self._counters[name]
        first = self._first
        stats = self.stats

        async def emit(event: Event) -> None:
            counters.seen += 1
            if isinstance(event, PendingTx | MevShareHint):
                first_at = first.get(event.hash)
                if first_at is not None:
                    counters.duplicates += 1
                    counters.lags_ns.append(max(0, event.received_at - first_at))
                    return
                first.add(event.hash, event.received_at)
                counters.lags_ns.append(0)
            counters.first_seen += 1
            stats.delivered += 1
            await downstream(event)

        return emit

    def first_seen_at(self, tx_hash: str) -> int | None:
        """When ``tx_hash`` was first delivered (monotonic ns), or None if not remembered."""
        return self._first.get(tx_hash)

    def coverage(self) -> Coverage:
        entries = []
        for source in self.sources:
            counters = self._counters[source.name]
            lags = sorted(counters.lags_ns)
            entries.append(
                SourceCoverage(
                    name=source.name,
                    seen=counters.seen,
                    first_seen=counters.first_seen,
                    duplicates=counters.duplicates,
                    lag_p50_ms=_percentile(lags, 0.50),
                    lag_p99_ms=_percentile(lags, 0.99),
                    health=source.stats.snapshot(),
                )
            )
        return Coverage(unique=self.stats.delivered, sources=tuple(entries))
