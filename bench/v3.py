"""Uniswap V3 benchmark: exact-in quotes that cross no initialized tick, and ten; a block of
V3 Swap logs over 10,000 tracked V3 pools; the best cycle for a pending V3 swap over 1,000
V2 and V3 pools.

``python -m bench.v3`` prints JSON. The quoted pool is shaped like a busy 0.05 % pool (tick
spacing 10): a full-range position plus 200 overlapping ranges around the price, so every spaced
tick near the price is initialized, and the bitmap words the quotes need are known. Each sample
is one :meth:`~simulation.uniswap_v3_pool.V3Pool.amount_out` call, alternating direction, with
an amount drawn so that the swap crosses the stated number of initialized ticks (checked). The
block figure is :meth:`~simulation.state.ChainState.apply_block` of 400 Swap logs on random
tracked pools, each timing one whole block. The cycle figure takes :func:`bench.amm.build_graph`
with fewer long-tail tokens (about 1,000 pools): its 25-bps DEX stays V2, its 30-bps pools become
V3 pools of the 0.3 % tier with the same price (half the liquidity full range, the rest in ten
ranges around the price), and every hub pair gains a 0.05 % pool; each sample is a pending swap
of 0.5..5 % of a random V3 pool's virtual reserve, timed as ``cycles_touching`` +
``best_opportunity`` over WETH cycles of up to 3 hops (:func:`bench.amm.search_times`).
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from math import isqrt

from bench.amm import HUBS, build_graph, search_times
from bench.stats import json_main, timing
from chain.topics import V3_SWAP
from chain.types import Log
from simulation.amm import Pool
from simulation.arbitrage import CycleIndex
from simulation.pools import PoolState
from simulation.state import ChainState
from simulation.uniswap_v3_math import MAX_TICK, Q96, get_sqrt_ratio_at_tick, get_tick_at_sqrt_ratio
from simulation.uniswap_v3_pool import V3Pool

TOKEN0, TOKEN1 = "0x" + "0a" * 20, "0x" + "1b" * 20
SPACING = 10


def busy_pool(rng: random.Random) -> V3Pool:
    """A 0.05 % pool at tick 200_005 (between initialized ticks) with dense liquidity."""
    full_range = MAX_TICK // SPACING * SPACING
    pool = V3Pool(
        "0x" + "33" * 20,
        TOKEN0,
        TOKEN1,
        500,
        SPACING,
        get_sqrt_ratio_at_tick(200_005),
        200_005,
        bitmap_complete=True,
    )
    positions = [(-full_range, full_range, 10**20)]
    for _ in range(200):
        lower = 200_000 + SPACING * rng.randrange(-60, 60)
        upper = lower + SPACING * rng.randrange(1, 40)
        positions.append((lower, upper, rng.randrange(10**17, 10**19)))
    for lower, upper, liquidity in positions:
        changed = pool.with_position_change(lower, upper, liquidity)
        assert changed is not None
        pool = changed
    return pool


def _amounts(pool: V3Pool, zero_for_one: bool, crossed: int) -> tuple[int, int]:
    """The range of exact inputs whose swap crosses exactly ``crossed`` initialized ticks."""

    def crossings(amount: int) -> int:
        return pool.simulate(zero_for_one, amount).ticks_crossed

    def first_reaching(count: int) -> int:
        low, high = 1, 1
        while crossings(high) < count:
            high *= 2
        while low < high:
            middle = (low + high) // 2
            low, high = (middle + 1, high) if crossings(middle) < count else (low, middle)
        return low

    return first_reaching(crossed), first_reaching(crossed + 1) - 1


def _quote_times(rng: random.Random, pool: V3Pool, crossed: int, samples: int) -> list[float]:
    ranges = {side: _amounts(pool, side, crossed) for side in (True, False)}
    micros: list[float] = []
    for index in range(samples):
        zero_for_one = index % 2 == 0
        amount = rng.randint(*ranges[zero_for_one])
        token_in = TOKEN0 if zero_for_one else TOKEN1
        started = time.perf_counter()
        pool.amount_out(token_in, amount)
        micros.append((time.perf_counter() - started) * 1e6)
        assert pool.simulate(zero_for_one, amount).ticks_crossed == crossed
    return micros


def _word(value: int) -> bytes:
    return (value % (1 << 256)).to_bytes(32, "big")


def _swap_log(rng: random.Random, number: int, index: int, pool: str) -> Log:
    tick = rng.randrange(-200_000, 200_000)
    data = b"".join(
        _word(value)
        for value in (
            rng.randrange(-(10**20), 10**20),
            rng.randrange(-(10**20), 10**20),
            get_sqrt_ratio_at_tick(tick) + 1,
            rng.randrange(10**15, 10**24),
            tick,
        )
    )
    topics = (V3_SWAP, _word(0xABC), _word(0xDEF))
    return Log(pool, topics, data, number, "0x" + f"{number:064x}", "0x" + "00" * 32, index, index)


def swap_log_blocks(
    rng: random.Random, pools: int = 10_000, swaps: int = 400, blocks: int = 200
) -> list[float]:
    """Milliseconds to apply each block of ``swaps`` Swap logs over ``pools`` tracked pools."""
    state = ChainState()
    for index in range(pools):
        address = "0x" + f"{index + 1:040x}"
        token0, token1 = "0x" + f"{2 * index:040x}", "0x" + f"{2 * index + 1:040x}"
        sqrt_price = get_sqrt_ratio_at_tick(0)
        pool = V3Pool(address, token0, token1, 3000, 60, sqrt_price, 0, 10**20, {0: 1}, {0: (1, 1)})
        state.add_pool("0x" + "fa" * 20, pool)
    addresses = list(state.pools)
    prepared = [
        [_swap_log(rng, number, i, rng.choice(addresses)) for i in range(swaps)]
        for number in range(1, blocks + 1)
    ]
    samples = []
    for number, logs in enumerate(prepared, start=1):
        started = time.perf_counter()
        changes = state.apply_block(number, "0x" + f"{number:064x}", logs)
        samples.append((time.perf_counter() - started) * 1e3)
        assert changes.malformed == 0
    return samples


def _like(pair: Pool, address: str, fee: int, spacing: int, rng: random.Random) -> V3Pool:
    """A V3 pool at the pair's price holding about the pair's liquidity."""
    sqrt_price = isqrt((pair.reserve1 << 192) // pair.reserve0)
    tick = get_tick_at_sqrt_ratio(sqrt_price)
    pool = V3Pool(
        address, pair.token0, pair.token1, fee, spacing, sqrt_price, tick, bitmap_complete=True
    )
    liquidity = isqrt(pair.reserve0 * pair.reserve1)
    full = MAX_TICK // spacing * spacing
    centre = tick // spacing * spacing
    ranges = [(-full, full, liquidity // 2)]
    for _ in range(10):
        lower = centre - spacing * rng.randrange(1, 30)
        ranges.append((lower, centre + spacing * rng.randrange(1, 30), liquidity // 20))
    for lower, upper, amount in ranges:
        changed = pool.with_position_change(lower, upper, amount)
        assert changed is not None
        pool = changed
    return pool


def mixed_graph(rng: random.Random, tail_tokens: int = 270) -> tuple[list[PoolState], str]:
    """About 1,000 V2 and V3 pools (see the module docstring) and the WETH address."""
    pairs, weth = build_graph(rng, tail_tokens)
    hubs = {"0x" + f"{1:02x}" + f"{i:038x}" for i in range(len(HUBS))}
    pools: list[PoolState] = []
    for index, pair in enumerate(pairs):
        if pair.fee_bps != 30:
            pools.append(pair)
            continue
        pools.append(_like(pair, "0x" + f"{3:02x}" + f"{index:038x}", 3000, 60, rng))
        if {pair.token0, pair.token1} <= hubs:
            pools.append(_like(pair, "0x" + f"{4:02x}" + f"{index:038x}", 500, 10, rng))
    return pools, weth


def _virtual_reserve(pool: PoolState, token: str) -> int:
    assert isinstance(pool, V3Pool)
    if token == pool.token0:
        return pool.liquidity * Q96 // pool.sqrt_price_x96
    return pool.liquidity * pool.sqrt_price_x96 // Q96


def pending_cycle_search(rng: random.Random, samples: int) -> dict[str, object]:
    """The best WETH cycle after a pending V3 swap, over the mixed graph."""
    pools, weth = mixed_graph(rng)
    index = CycleIndex.build(pools, [weth], max_hops=3)
    base = {pool.address: pool for pool in pools}
    targets = [p for p in pools if isinstance(p, V3Pool) and index.cycles_touching(p.address)]
    figures = search_times(
        rng, index, base, rng.choices(targets, k=samples), False, _virtual_reserve
    )
    return {
        "pools": len(pools),
        "v3_pools": sum(isinstance(p, V3Pool) for p in pools),
        "cycles": len(index.cycles),
        **figures,
    }


def run(samples: int = 3000, seed: int = 11) -> dict[str, object]:
    rng = random.Random(seed)
    pool = busy_pool(rng)
    return {
        "v3_quote_no_tick_us": timing(_quote_times(rng, pool, 0, samples), 1),
        "v3_quote_ten_ticks_us": timing(_quote_times(rng, pool, 10, samples), 1),
        "initialized_ticks": len(pool.ticks),
        "v3_swap_logs_ms_10k_pools": timing(swap_log_blocks(rng), 3),
        "pending_cycle_search_1k_pools": pending_cycle_search(rng, min(samples, 1000)),
    }


def main(argv: Sequence[str] | None = None) -> int:
    return json_main("python -m bench.v3", __doc__, run, 3000, 11, argv)


if __name__ == "__main__":
    raise SystemExit(main())
