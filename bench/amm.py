"""Arbitrage-search benchmark: the per-pending-swap cycle search over a ~2,000-pool graph.

``python -m bench.amm`` prints JSON. The graph has 5 hub tokens (WETH, two 6-decimal stables,
an 18-decimal stable, an 8-decimal BTC) on two DEXes and long-tail tokens paired with 1-3 hubs
on each DEX; reserves are worth 10^4..10^7 USD with prices off by up to 0.3 %, so, as on a
quiet market, few cycles pay after fees. Each sample swaps 0.5..5 % of a random pool's
reserve (as a pending swap would), layers the new pool over the state with a ``ChainMap``, and
times ``cycles_touching`` + ``best_opportunity`` for WETH-start cycles of up to 3 hops.
``worst_pool`` repeats that on the pool with the most cycles (a WETH/stable hub pair).
"""

from __future__ import annotations

import random
import time
from collections import ChainMap
from collections.abc import Callable, Mapping, Sequence

from bench.stats import json_main, timing
from simulation.amm import Pool
from simulation.arbitrage import CycleIndex, best_opportunity, optimal_two_pool
from simulation.pools import PoolState

HUBS: tuple[tuple[str, float, int], ...] = (
    ("weth", 3000.0, 18),
    ("usdc", 1.0, 6),
    ("usdt", 1.0, 6),
    ("dai", 1.0, 18),
    ("wbtc", 60000.0, 8),
)
DEX_FEES_BPS = (30, 25)


def _address(kind: int, index: int) -> str:
    return "0x" + f"{kind:02x}" + f"{index:038x}"


def build_graph(rng: random.Random, tail_tokens: int = 560) -> tuple[list[Pool], str]:
    """Pools of the benchmark graph and the WETH address."""
    tokens = [(_address(1, i), price, decimals) for i, (_, price, decimals) in enumerate(HUBS)]
    hubs = list(tokens)
    for index in range(tail_tokens):
        price = 10 ** rng.uniform(-4, 3)
        tokens.append((_address(1, len(HUBS) + index), price, rng.choice((18, 18, 9, 6))))
    pairs = [(a, b) for i, a in enumerate(hubs) for b in hubs[i + 1 :]]
    for tail in tokens[len(HUBS) :]:
        pairs.extend((hub, tail) for hub in rng.sample(hubs, rng.choice((1, 1, 2, 3))))
    pools: list[Pool] = []
    for (token_a, price_a, decimals_a), (token_b, price_b, decimals_b) in pairs:
        token0, token1 = sorted((token_a, token_b))
        for fee_bps in DEX_FEES_BPS:
            usd = 10 ** rng.uniform(4, 7)
            amount_a = int(usd / price_a * 10**decimals_a)
            amount_b = int(usd / price_b * 10**decimals_b * rng.uniform(0.997, 1.003))
            reserves = (amount_a, amount_b) if token0 == token_a else (amount_b, amount_a)
            pools.append(Pool(_address(2, len(pools)), token0, token1, *reserves, fee_bps))
    return pools, hubs[0][0]


def search_times(
    rng: random.Random,
    index: CycleIndex,
    base: Mapping[str, PoolState],
    targets: Sequence[PoolState],
    both_directions: bool,
    held: Callable[[PoolState, str], int] = lambda pool, token: pool.reserves_for(token)[0],
) -> dict[str, object]:
    """Time ``cycles_touching`` + ``best_opportunity`` after a pending swap on each target.

    The swap sells 0.5..5 % of what the pool ``held`` of the token sold (a V2 pair's reserve).
    Without ``both_directions`` only the cycles that sell the swap's *output* token into the
    pool are searched (the ones it can help).
    """
    micros: list[float] = []
    examined: list[int] = []
    found = 0
    for pool in targets:
        sold = rng.choice((pool.token0, pool.token1))
        amount = int(held(pool, sold) * rng.uniform(0.005, 0.05))
        overlay = ChainMap({pool.address: pool.swap(sold, amount)[1]}, base)
        started = time.perf_counter()
        if both_directions:
            cycles = index.cycles_touching(pool.address)
        else:
            cycles = index.cycles_touching(pool.address, token_in=pool.token_out(sold))
        opportunity = best_opportunity(cycles, overlay)
        micros.append((time.perf_counter() - started) * 1e6)
        examined.append(len(cycles))
        found += opportunity is not None
    return {
        "best_opportunity_us": timing(micros, 1),
        "cycles_per_search": timing(examined, 0),
        "searches_with_trade": found,
    }


def run(samples: int = 2000, seed: int = 7) -> dict[str, object]:
    rng = random.Random(seed)
    pools, weth = build_graph(rng)
    started = time.perf_counter()
    index = CycleIndex.build(pools, [weth], max_hops=3)
    build_ms = (time.perf_counter() - started) * 1e3
    base = {pool.address: pool for pool in pools}

    tracked = [pool for pool in pools if index.cycles_touching(pool.address)]
    targets = rng.choices(tracked, k=samples)
    busiest = max(tracked, key=lambda pool: len(index.cycles_touching(pool.address)))
    searches = {
        f"{name}_{'both' if both else 'gaining'}_directions": search_times(
            rng, index, base, pool_targets, both
        )
        for name, pool_targets in (("random_pool", targets), ("busiest_pool", [busiest] * 300))
        for both in (False, True)
    }
    two_pool = []
    for _ in range(2000):
        started = time.perf_counter()
        optimal_two_pool(1000 * 10**18, 21 * 10**23, 2 * 10**24, 1000 * 10**18)
        two_pool.append((time.perf_counter() - started) * 1e6)
    return {
        "pools": len(pools),
        "pools_in_cycles": len(tracked),
        "cycles": len(index.cycles),
        "busiest_pool_cycles": len(index.cycles_touching(busiest.address)),
        "cycle_index_build_ms": round(build_ms, 1),
        **searches,
        "optimal_two_pool_us": timing(two_pool, 2),
    }


def main(argv: Sequence[str] | None = None) -> int:
    return json_main("python -m bench.amm", __doc__, run, 2000, 7, argv)


if __name__ == "__main__":
    raise SystemExit(main())
