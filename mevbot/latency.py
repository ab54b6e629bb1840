"""Stage latencies from wire to relay: bounded windows for p50/p99, fed to the UI and metrics.

Every event carries the monotonic time it was received; each pipeline stage records how long
it took (and the whole path records wire-to-relay). A :class:`LatencyBook` keeps the last
``window`` samples per stage in a ring (memory stays flat) and an optional observer mirrors
each sample into a Prometheus histogram.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from mevbot.status import Timing

# In path order. intake: the frame's arrival to the bounded intake (the hash's lookup, when the
# hash came first, and the decode); handover: the intake to the engine's loop; queue: a
# candidate waiting for the block's bundle (another commit simulating or sending). The ledger is
# written after the first POST, off the path.
STAGES = (
    "intake",
    "handover",
    "decode",
    "state",
    "strategy",
    "queue",
    "sign",
    "simulate",
    "submit",
    "wire_to_relay",
)


def _rank(ordered: list[float], fraction: float) -> float:
    return ordered[max(0, min(len(ordered) - 1, round(fraction * len(ordered) + 0.5) - 1))]


class LatencyBook:
    """Per-stage rings of milliseconds."""

    def __init__(
        self, window: int = 4096, observer: Callable[[str, float], None] | None = None
    ) -> None:
        self.window = window
        self.observer = observer
        self._rings: dict[str, deque[float]] = {}

    def record(self, stage: str, milliseconds: float) -> None:
        ring = self._rings.get(stage)
        if ring is None:
            ring = self._rings[stage] = deque(maxlen=self.window)
        ring.append(milliseconds)
        if self.observer is not None:
            self.observer(stage, milliseconds)

    def record_ns(self, stage: str, start_ns: int, end_ns: int) -> None:
        self.record(stage, (end_ns - start_ns) / 1e6)

    def timing(self, stage: str) -> Timing | None:
        ring = self._rings.get(stage)
        if not ring:
            return None
        ordered = sorted(ring)
        return Timing(round(_rank(ordered, 0.5), 4), round(_rank(ordered, 0.99), 4), len(ordered))

    def summary(self) -> dict[str, Timing]:
        out = {}
        for stage in (*STAGES, *sorted(set(self._rings) - set(STAGES))):
            timing = self.timing(stage)
            if timing is not None:
                out[stage] = timing
        return out
