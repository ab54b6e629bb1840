"""Shared figures for every benchmark: ``{"p50": ..., "p99": ..., "n": ...}`` from samples."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence


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


def json_main(
    prog: str,
    doc: str | None,
    run: Callable[[int, int], object],
    samples: int,
    seed: int,
    argv: Sequence[str] | None = None,
) -> int:
    """A benchmark module's command line: ``--samples`` and ``--seed``, the result as JSON."""
    parser = argparse.ArgumentParser(prog=prog, description=doc)
    parser.add_argument("--samples", type=int, default=samples)
    parser.add_argument("--seed", type=int, default=seed)
    args = parser.parse_args(argv)
    json.dump(run(args.samples, args.seed), sys.stdout, indent=2)
    print()
    return 0
