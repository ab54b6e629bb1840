"""What keeps a source alive: jittered exponential backoff and per-reason counting of bad input.

A source retries forever with :class:`Backoff` (full jitter, capped, reset after a healthy
connection). Malformed frames and objects go to :class:`ReasonCounter`, which counts each reason
and logs it once, so a hostile peer cannot flood the log and the counts stay visible.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import Counter

log = logging.getLogger("watcher")

# Reasons are kept verbatim up to this length; more distinct reasons than the cap share one bucket,
# so a peer sending endlessly varied garbage cannot grow memory.
_REASON_CHARS = 160
_MAX_REASONS = 256
_OTHER = "(other reasons)"


class Backoff:
    """Delays of ``base * factor**attempt`` capped at ``cap``, each drawn uniformly from [0, d]."""

    def __init__(
        self,
        base: float = 0.1,
        cap: float = 10.0,
        factor: float = 2.0,
        rng: random.Random | None = None,
    ) -> None:
        self.base = base
        self.cap = cap
        self.factor = factor
        self.attempt = 0
        self._rng = rng or random.Random()

    def next_delay(self) -> float:
        ceiling = min(self.cap, self.base * self.factor**self.attempt)
        self.attempt += 1
        return self._rng.uniform(0.0, ceiling)

    def reset(self) -> None:
        self.attempt = 0

    async def sleep(self) -> float:
        delay = self.next_delay()
        await asyncio.sleep(delay)
        return delay


class ReasonCounter:
    """Counts events by reason; the first occurrence of each reason is logged at WARNING."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.counts: Counter[str] = Counter()

    @property
    def total(self) -> int:
        return self.counts.total()

    def add(self, reason: str, count: int = 1) -> None:
        reason = reason[:_REASON_CHARS]
        if reason not in self.counts:
            if len(self.counts) >= _MAX_REASONS:
                reason = _OTHER
            else:
                log.warning(
                    "%s: %s (logged once; further ones are only counted)", self.what, reason
                )
        self.counts[reason] += count
