"""How long the devnet takes to come up: a first deploy of the whole world, and a cached start.

``mevbot devnet``, the demo and most tests start a :class:`anvil.devnet.Devnet`. The first start
deploys every contract (Uniswap's official bytecode, our own) and saves anvil's state; later
starts with the same cache key load it. Each figure is wall time from launching anvil to a
world ready for traffic, in milliseconds; the goals are 10 s and 2 s.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from anvil.devnet import Devnet
from bench.stats import timing

GOALS_MS = {"first_deploy": 10_000, "cached_start": 2_000}


def _start(state_dir: Path) -> tuple[float, bool]:
    started = time.perf_counter()
    devnet = Devnet(block_time=None, state_dir=state_dir)
    devnet.start()
    elapsed = (time.perf_counter() - started) * 1000
    devnet.stop()
    return elapsed, devnet.loaded_from_cache


def run(deploys: int = 3, cached_starts: int = 10) -> dict[str, Any]:
    """``deploys`` first deploys (each into an empty cache), ``cached_starts`` starts from the
    last one's cache."""
    first: list[float] = []
    cached: list[float] = []
    with tempfile.TemporaryDirectory(prefix="bench-devnet-") as root:
        for index in range(deploys):
            elapsed, from_cache = _start(Path(root) / str(index))
            if from_cache:
                raise RuntimeError("an empty state directory gave a cached start")
            first.append(elapsed)
        for _ in range(cached_starts):
            elapsed, from_cache = _start(Path(root) / str(deploys - 1))
            if not from_cache:
                raise RuntimeError("the devnet deployed again instead of loading its cache")
            cached.append(elapsed)
    return {
        "first_deploy": timing(first, 1),
        "cached_start": timing(cached, 1),
        "goal_ms": GOALS_MS,
    }
