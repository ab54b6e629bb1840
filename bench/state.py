"""State benchmark: apply a block of Sync logs to 10,000 tracked pools; memory per 10,000 pools.

``python -m bench.state`` prints JSON. A block carries ``--syncs`` Sync logs (default 400, a
busy mainnet block's worth) spread over random tracked pools; each timing is one whole block.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
import tracemalloc

from bench.stats import timing
from chain.topics import SYNC
from chain.types import Log
from simulation.amm import Pool
from simulation.state import ChainState


def _pools(count: int) -> ChainState:
    state = ChainState()
    for index in range(count):
        address = "0x" + f"{index + 1:040x}"
        token0, token1 = "0x" + f"{2 * index:040x}", "0x" + f"{2 * index + 1:040x}"
        state.add_pool("0x" + "fa" * 20, Pool(address, token0, token1, 10**21, 10**24))
    return state


def _block(rng: random.Random, number: int, pools: list[str], syncs: int) -> list[Log]:
    return [
        Log(
            rng.choice(pools),
            (SYNC,),
            rng.randrange(1, 2**112).to_bytes(32, "big")
            + rng.randrange(1, 2**112).to_bytes(32, "big"),
            number,
            "0x" + f"{number:064x}",
            "0x" + "00" * 32,
            i,
            i,
        )
        for i in range(syncs)
    ]


def run(pools: int = 10_000, syncs: int = 400, blocks: int = 300) -> dict[str, object]:
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    state = _pools(pools)
    memory = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    rng = random.Random(1)
    addresses = list(state.pools)
    prepared = [_block(rng, n, addresses, syncs) for n in range(1, blocks + 1)]
    samples = []
    for number, logs in enumerate(prepared, start=1):
        start = time.perf_counter_ns()
        state.apply_block(number, "0x" + f"{number:064x}", logs)
        samples.append((time.perf_counter_ns() - start) / 1e6)
    return {
        "state_update_ms_10k_pools": timing(samples),
        "syncs_per_block": syncs,
        "pools": pools,
        "memory_mb_per_10k_pools": round(memory / 1e6 * 10_000 / pools, 2),
        "sync_apply_us": round(statistics.median(samples) * 1000 / syncs, 3),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.state", description=__doc__)
    parser.add_argument("--pools", type=int, default=10_000)
    parser.add_argument("--syncs", type=int, default=400)
    parser.add_argument("--blocks", type=int, default=300)
    args = parser.parse_args(argv)
    json.dump(run(args.pools, args.syncs, args.blocks), sys.stdout, indent=1)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
