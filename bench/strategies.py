"""Strategy hot-path latency on a synthetic 2,000-pool graph and a 10,000-position Aave book.

``python -m bench.strategies [--pools 2000] [--swaps 2000] [--positions 10000]`` prints JSON:
per pending swap, :meth:`BackrunArbitrage.on_pending` alone and with the
:meth:`ChainState.after` that precedes it (microsecond percentiles, share that gave a
candidate); the first-block scan over every cycle; the cycle-index build; and per pending
oracle update, :meth:`LiquidationBackrun.on_pending`. Pending swaps are real router calldata
(``swapExactTokensForTokens``, 0.2-3% of a pool's reserve) decoded by the watcher's decoder.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import time
from collections.abc import Callable

from anvil import artifacts
from chain.ocr import transmit_answer
from chain.types import BlockHeader, PendingTx
from simulation.aave_v3 import RAY, AavePosition, ReserveState
from simulation.amm import Pool
from simulation.state import ChainState, FeedAnswer, FeedLink, StateChanges
from strategies.backrun import BackrunArbitrage
from strategies.base import BlockContext, PendingContext
from strategies.liquidation import LiquidationBackrun
from watcher.decode import Decoder, RouterKind

SWAP = artifacts.load("UniswapV2Router02").abi.function("swapExactTokensForTokens")
WETH = "0x" + "ee" * 20
FACTORIES = ("0x" + "fa" * 20, "0x" + "fb" * 20)
ROUTERS = ("0x" + "0a" * 20, "0x" + "0b" * 20)
TRADER = "0x" + "77" * 20
LENDING_POOL = "0x" + "1e" * 20
WAD = 10**18


def _address(kind: int, index: int) -> str:
    return "0x" + f"{kind:02x}{index:038x}"


def build_graph(pool_count: int, rng: random.Random) -> ChainState:
    """WETH against every token on both DEXes, the rest token/token pairs; prices within 0.3%
    of a common truth so that only a few gaps exist before any swap."""
    state = ChainState(
        routers={r: {"uniswap-v2": f} for r, f in zip(ROUTERS, FACTORIES, strict=True)}
    )
    token_count = pool_count // 8
    tokens = [_address(0x70, i) for i in range(token_count)]
    price = {WETH: 1.0} | {t: 10 ** rng.uniform(-4, 1) for t in tokens}  # in WETH
    pairs: set[tuple[str, str, str]] = set()
    for factory in FACTORIES:
        for token in tokens:
            pairs.add((factory, *sorted((WETH, token))))
    while len(pairs) < pool_count:
        a, b = rng.sample(tokens, 2)
        pairs.add((rng.choice(FACTORIES), *sorted((a, b))))
    for index, (factory, token0, token1) in enumerate(sorted(pairs)):
        depth_weth = 10 ** rng.uniform(1, 3)
        noise = 1 + rng.uniform(-0.003, 0.003)
        reserve0 = int(depth_weth / price[token0] * WAD)
        reserve1 = int(depth_weth / price[token1] * WAD * noise)
        state.add_pool(factory, Pool(_address(0x90, index), token0, token1, reserve0, reserve1))
    return state


def pending_swaps(state: ChainState, count: int, rng: random.Random) -> list[PendingContext]:
    decoder = Decoder({r: RouterKind.UNISWAP_V2_ROUTER for r in ROUTERS})
    factory_router = {v["uniswap-v2"]: r for r, v in state.routers.items()}
    pools = list(state.pools.values())
    contexts = []
    for nonce in range(count):
        pool = rng.choice(pools)
        token_in, token_out = rng.sample((pool.token0, pool.token1), 2)
        amount = int(pool.reserves_for(token_in)[0] * rng.uniform(0.002, 0.03))
        router = factory_router[state.pool_factory[pool.address]]
        calldata = SWAP.encode(amount, 0, [token_in, token_out], TRADER, 2**40)
        tx = PendingTx(
            "0x" + f"{nonce:064x}", TRADER, router, 0, calldata, nonce, 250_000, raw=b"\x02"
        )
        intent = decoder.decode_tx(tx)
        contexts.append(PendingContext(tx, state.after(intent), 1))
    return contexts


def _percentiles_us(samples: list[int]) -> dict[str, float]:
    samples = sorted(samples)
    return {
        "p50": round(samples[len(samples) // 2] / 1000, 1),
        "p99": round(samples[len(samples) * 99 // 100] / 1000, 1),
        "mean": round(statistics.fmean(samples) / 1000, 1),
        "n": len(samples),
    }


def _timed(call: Callable[[], object]) -> tuple[int, object]:
    started = time.perf_counter_ns()
    result = call()
    return time.perf_counter_ns() - started, result


def bench_backrun(pool_count: int, swaps: int, seed: int) -> dict[str, object]:
    rng = random.Random(seed)
    state = build_graph(pool_count, rng)
    build_ns, strategy = _timed(lambda: BackrunArbitrage.for_state("b", state, start_token=WETH))
    assert isinstance(strategy, BackrunArbitrage)
    contexts = pending_swaps(state, swaps, rng)
    decoder = Decoder({r: RouterKind.UNISWAP_V2_ROUTER for r in ROUTERS})
    intents = [decoder.decode_tx(c.tx) for c in contexts]
    strategy_ns, with_effect_ns, found = [], [], 0
    for context, intent in zip(contexts, intents, strict=True):
        elapsed, candidates = _timed(lambda c=context: strategy.on_pending(c, state))
        strategy_ns.append(elapsed)
        found += bool(candidates)
        tx = context.tx
        elapsed, _ = _timed(
            lambda tx=tx, i=intent: strategy.on_pending(
                PendingContext(tx, state.after(i), 1), state
            )
        )
        with_effect_ns.append(elapsed)
    per_pool = [len(strategy.cycles.cycles_touching(a)) for a in state.pools]
    header = BlockHeader(1, "0x" + "01" * 32, "0x" + "00" * 32, 0, 0, 0, 0, "0x" + "00" * 20)
    first_block_ns, block_candidates = _timed(
        lambda: strategy.on_block(BlockContext(header, StateChanges(), 2), state)
    )
    assert isinstance(block_candidates, list)
    return {
        "pools": len(state.pools),
        "cycles": len(strategy.cycles.cycles),
        "cycles_per_pool": {"mean": round(statistics.fmean(per_pool), 1), "max": max(per_pool)},
        "cycle_index_build_ms": round(build_ns / 1e6, 1),
        "on_pending_us": _percentiles_us(strategy_ns),
        "after_plus_on_pending_us": _percentiles_us(with_effect_ns),
        "swaps_with_candidate": found,
        "first_block_all_cycles_ms": round(first_block_ns / 1e6, 1),
        "first_block_candidates": len(block_candidates),
    }


def bench_liquidation(position_count: int, updates: int, seed: int) -> dict[str, object]:
    """Positions spread over four assets; a pending WETH update re-checks the WETH users."""
    rng = random.Random(seed)
    assets = [WETH, *(_address(0x60, i) for i in range(3))]
    feeds = [_address(0xF0, i) for i in range(len(assets))]
    aggregator = _address(0xA0, 0)  # WETH's: where the oracles transmit
    state = ChainState(
        routers={r: {"uniswap-v2": f} for r, f in zip(ROUTERS, FACTORIES, strict=True)},
        feed_assets=dict(zip(feeds, assets, strict=True)),
        lending_pool=LENDING_POOL,
    )
    configuration = 8000 | 8250 << 16 | 10500 << 32 | 18 << 48
    for reserve_id, (feed, asset, price) in enumerate(
        zip(feeds, assets, (3000, 1, 1, 60_000), strict=True)
    ):
        state.set_reserve(ReserveState(asset, reserve_id, configuration, RAY, 0, RAY, 0, 0))
        state.set_feed(FeedAnswer(feed, 1, price * 10**8, 1))
        if asset != WETH:
            state.add_pool(
                FACTORIES[0],
                Pool(_address(0x91, len(state.pools)), WETH, asset, 10**4 * WAD, 10**4 * WAD),
            )
    state.link_aggregator(aggregator, FeedLink(feeds[0], 1))
    prices = {a: state.feeds[f].answer for f, a in zip(feeds, assets, strict=True)}
    for index in range(position_count):
        collateral, debt = rng.sample(assets, 2)
        amount = rng.randint(1, 100) * WAD
        health = rng.uniform(1.01, 3.0)
        debt_amount = int(amount * prices[collateral] * 0.825 / health / prices[debt])
        flags = 1 << 2 * state.reserves[collateral].reserve_id + 1
        flags |= 1 << 2 * state.reserves[debt].reserve_id
        position = AavePosition({collateral: amount}, {debt: debt_amount}, flags)
        state.set_position(_address(0x50, index), position)
    strategy = LiquidationBackrun("l", weth=WETH)
    samples, found = [], 0
    for nonce in range(updates):
        answer = int(3000 * 10**8 * rng.uniform(0.9, 1.0))
        calldata = transmit_answer(answer, bytes(16), nonce + 1)
        tx = PendingTx(
            "0x" + f"{nonce:064x}", TRADER, aggregator, 0, calldata, nonce, 300_000, raw=b"\x02"
        )
        context = PendingContext(
            tx, state.after(Decoder(feeds=[aggregator]).decode(aggregator, calldata)), 1
        )
        elapsed, candidates = _timed(lambda c=context: strategy.on_pending(c, state))
        samples.append(elapsed)
        found += len(candidates)  # type: ignore[arg-type]
    return {
        "positions": position_count,
        "positions_checked_per_update": strategy.stats.positions_checked // updates,
        "on_pending_us": _percentiles_us(samples[1:]),  # the first one builds the index
        "index_build_ms": round(samples[0] / 1e6, 1),
        "candidates_per_update": round(found / updates, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pools", type=int, default=2000)
    parser.add_argument("--swaps", type=int, default=2000)
    parser.add_argument("--positions", type=int, default=10_000)
    parser.add_argument("--updates", type=int, default=50)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core, as advertised
    result = {
        "backrun": bench_backrun(args.pools, args.swaps, args.seed),
        "liquidation": bench_liquidation(args.positions, args.updates, args.seed),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
