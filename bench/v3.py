"""Uniswap V3 quote benchmark: exact-in quotes that cross no initialized tick, and ten.

``python -m bench.v3`` prints JSON. The pool is shaped like a busy 0.05 % pool (tick spacing
10): a full-range position plus 200 overlapping ranges around the price, so every spaced tick
near the price is initialized, and the bitmap words the quotes need are known. Each sample is
one :meth:`~simulation.uniswap_v3_pool.V3Pool.amount_out` call, alternating direction, with an
amount drawn so that the swap crosses the stated number of initialized ticks (checked).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections.abc import Sequence

from bench.stats import timing
from simulation.uniswap_v3_math import MAX_TICK, get_sqrt_ratio_at_tick
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


def run(samples: int = 3000, seed: int = 11) -> dict[str, object]:
    rng = random.Random(seed)
    pool = busy_pool(rng)
    return {
        "v3_quote_no_tick_us": timing(_quote_times(rng, pool, 0, samples), 1),
        "v3_quote_ten_ticks_us": timing(_quote_times(rng, pool, 10, samples), 1),
        "initialized_ticks": len(pool.ticks),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.v3", description=__doc__)
    parser.add_argument("--samples", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args(argv)
    json.dump(run(args.samples, args.seed), sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
