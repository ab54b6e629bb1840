"""Shared figures for every benchmark: ``{"p50": ..., "p99": ..., "n": ...}`` from samples."""

from __future__ import annotations

from collections.abc import Sequence


def percentile(samples: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile (no interpolation): a value that was actually measured."""
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    rank = max(0, min(len(ordered) - 1, round(fraction * len(ordered) + 0.5) - 1))
    return ordered[rank]


def timing(samples: Sequence[float], digits: int = 4) -> dict[str, float | int]:
    """Median, 99th percentile and count of timings (in whatever unit they were taken)."""
    return {
        "p50": round(percentile(samples, 0.50), digits),
        "p99": round(percentile(samples, 0.99), digits),
        "n": len(samples),
    }
