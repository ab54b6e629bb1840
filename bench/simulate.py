"""Benchmark the fork simulator: ``python -m bench.simulate [--n N]`` prints JSON.

On a fresh devnet: a 1-tx bundle (a trader's signed router swap) and a 2-tx bundle (the swap,
then the executor's arbitrage call from its owner). Measured in the same run, interleaved
iteration by iteration so that load from other processes hits all alike:

- ``simulate()`` on the anvil backend (``eth_simulateV1`` over WebSocket) and on the revm backend;
- a bare ``eth_simulateV1`` round trip of the same txs (prebuilt params, one ``call`` on a
  WebSocket to the same fork): what a caller without our layer would pay;
- the bare round trip of exactly the request our layer sends (the txs between the two balance
  reads), to tell the cost of exact balance diffs from the cost of the Python around it.

Following the chain (``HEADS`` blocks, each with a swap on the simulated pool): the fork kept warm
(the default) and the fork reset at every head, side by side: ``on_new_head_*`` and
``first_simulate_after_head_*``, and whether both gave the same gas at every head.

``overhead_ratio`` = simulate() p50 / bare p50 of the same txs (goal <= 1.25);
``layer_ratio`` = simulate() p50 / bare p50 of our own request.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from eth_account import Account
from eth_utils import to_checksum_address

from anvil import artifacts
from anvil.devnet import Devnet
from anvil.world import Role, World
from chain.rpc import Rpc, WsRpc, connect, eth_get_transaction_count
from simulation.actions import HopArbitrageAction, SwapHop
from simulation.balances import balance_query
from simulation.fork import AnvilForkSimulator
from simulation.fork_v1 import call_object, request
from simulation.prepared import prepare
from simulation.revm_backend import RevmSimulator
from simulation.simulator import SimCall, resolve_block

Timed = Callable[[], Awaitable[Any]]
HEADS = 40


def _stats(samples: Sequence[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_ms": round(statistics.median(ordered), 4),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], 4),
        "n": len(ordered),
    }


async def _measure(runs: dict[str, Timed], n: int, warmup: int = 30) -> dict[str, dict[str, float]]:
    samples: dict[str, list[float]] = {name: [] for name in runs}
    for iteration in range(warmup + n):
        for name, run in runs.items():
            started = time.perf_counter()
            await run()
            if iteration >= warmup:
                samples[name].append((time.perf_counter() - started) * 1000)
    return {name: _stats(values) for name, values in samples.items()}


async def _signed_swap(world: World, upstream: Rpc, trader: Role, amount: int, tip: int) -> bytes:
    """``trader`` sells ``amount`` WETH for USDC through the uniswap router (a signed tx)."""
    weth, usdc = world.tokens["WETH"]["address"], world.tokens["USDC"]["address"]
    swap = artifacts.load("UniswapV2Router02").abi.function("swapExactTokensForTokens")
    tx = {
        "type": 2,
        "chainId": world.chain_id,
        "nonce": await eth_get_transaction_count(upstream, trader.address),
        "to": to_checksum_address(world.dexes["uniswap"]["router"]),
        "data": swap.encode(amount, 0, [weth, usdc], trader.address, 2**40),
        "gas": 300_000,
        "maxFeePerGas": 100 * 10**9,
        "maxPriorityFeePerGas": tip,
        "value": 0,
    }
    return bytes(Account.sign_transaction(tx, trader.private_key).raw_transaction)


async def _bundles(world: World, upstream: Rpc) -> dict[str, list[bytes | SimCall]]:
    victim = await _signed_swap(world, upstream, world.traders[0], 10**18, 2 * 10**9)
    weth = world.tokens["WETH"]["address"]
    # WETH -> USDC on sushiswap, USDC -> WETH on uniswap, from the executor's inventory.
    hops = tuple(
        SwapHop(pair["address"], "uniswap-v2", (pair["token0"] == weth) == (dex == "sushiswap"))
        for dex in ("sushiswap", "uniswap")
        for pair in [world.dexes[dex]["pairs"]["WETH/USDC"]]
    )
    arbitrage = SimCall(
        sender=world.roles["executor"].address,
        to=world.executor,
        data=HopArbitrageAction(hops, weth, 10**18, flash=False).calldata(0, 10**14),
        gas=400_000,
        max_fee_per_gas=100 * 10**9,
        max_priority_fee_per_gas=10**9,
    )
    return {"1tx": [victim], "2tx": [victim, arbitrage]}


async def run(n: int) -> dict[str, Any]:
    with Devnet(block_time=0, state_dir=None) as world:
        async with connect(world.rpc["ws"]) as upstream:
            bundles = await _bundles(world, upstream)
        watch = [world.traders[0].address, world.executor]
        tokens = [world.tokens["WETH"]["address"], world.tokens["USDC"]["address"]]
        anvil = AnvilForkSimulator(world.rpc["http"], method="simulate_v1")
        revm = RevmSimulator(world.rpc["http"])
        await anvil.start()
        await revm.start()
        assert anvil.node is not None
        bare = await WsRpc.connect(anvil.node.ws_url)
        try:
            report: dict[str, Any] = {"n": n}
            for name, bundle in bundles.items():
                result = await anvil.simulate(bundle, watch=watch, tokens=tokens)
                assert result.success, result.txs
                env = resolve_block(anvil.head, None, block_interval=12, coinbase=anvil.coinbase)
                prepared = prepare(bundle, env)
                query = balance_query(watch, tokens, env.coinbase)
                ours = request(prepared, env, query)
                same_txs = [
                    {**ours[0], "blockStateCalls": [dict(ours[0]["blockStateCalls"][0])]},
                    "latest",
                ]
                same_txs[0]["blockStateCalls"][0]["calls"] = [call_object(tx) for tx in prepared]

                def simulate_on(sim: AnvilForkSimulator | RevmSimulator, txs=bundle) -> Timed:
                    return lambda: sim.simulate(txs, watch=watch, tokens=tokens)

                timings = await _measure(
                    {
                        "simulate_anvil": simulate_on(anvil),
                        "simulate_revm": simulate_on(revm),
                        "bare_simulateV1_same_txs": lambda p=same_txs: bare.call(
                            "eth_simulateV1", p
                        ),
                        "bare_simulateV1_our_request": lambda p=ours: bare.call(
                            "eth_simulateV1", p
                        ),
                    },
                    n,
                )
                p50 = {key: value["p50_ms"] for key, value in timings.items()}
                report[name] = {
                    **timings,
                    "overhead_ratio": round(
                        p50["simulate_anvil"] / p50["bare_simulateV1_same_txs"], 3
                    ),
                    "layer_ratio": round(
                        p50["simulate_anvil"] / p50["bare_simulateV1_our_request"], 3
                    ),
                    "revm_vs_bare_ratio": round(
                        p50["simulate_revm"] / p50["bare_simulateV1_same_txs"], 3
                    ),
                    "gas_used": [tx.gas_used for tx in result.txs],
                }
            report.update(await _follow_the_chain(world, bundles, watch, tokens))
            return report
        finally:
            await bare.close()
            await anvil.close()
            await revm.close()


async def _follow_the_chain(
    world: World, bundles: dict[str, list[bytes | SimCall]], watch: list[str], tokens: list[str]
) -> dict[str, Any]:
    """The forks kept warm vs forked again at every head (anvil's process and revm's cache),
    side by side on the same blocks: each head is a block with a swap on the simulated pool;
    then on_new_head and the first simulate() after it, the order turning each head."""
    url = world.rpc["http"]
    forks: dict[str, AnvilForkSimulator | RevmSimulator] = {
        "warm": AnvilForkSimulator(url, method="simulate_v1"),
        "reset": AnvilForkSimulator(url, method="simulate_v1", keep_warm=False),
        "revm_warm": RevmSimulator(url),
        "revm_reset": RevmSimulator(url, keep_warm=False),
    }
    samples: dict[str, list[float]] = {}
    for fork in forks.values():
        await fork.start()
    try:
        async with connect(world.rpc["ws"]) as upstream:
            for index in range(HEADS):
                await _land_swap(world, upstream, index)
                head = int(await upstream.call("eth_blockNumber"), 16)
                order = list(forks.items())
                shift = index % len(order)
                for name, fork in order[shift:] + order[:shift]:
                    started = time.perf_counter()
                    await fork.on_new_head(head)
                    moved = time.perf_counter()
                    result = await fork.simulate(bundles["1tx"], watch=watch, tokens=tokens)
                    done = time.perf_counter()
                    samples.setdefault(f"on_new_head_{name}", []).append((moved - started) * 1e3)
                    samples.setdefault(f"first_simulate_after_head_{name}", []).append(
                        (done - moved) * 1e3
                    )
                    samples.setdefault(f"gas_{name}", []).append(result.gas_used)
        gas = [samples[f"gas_{name}"] for name in forks]
        return {
            **{key: _stats(values) for key, values in samples.items() if "gas" not in key},
            "same_gas_every_head": all(g == gas[0] for g in gas),
            **{f"{name}_fork": forks[name].warm.counts() for name in ("warm", "revm_warm")},
        }
    finally:
        for fork in forks.values():
            await fork.close()


async def _land_swap(world: World, upstream: Rpc, index: int) -> None:
    """A trader's small swap on the simulated pool, mined (the devnet automines)."""
    raw = await _signed_swap(world, upstream, world.traders[1 + index % 2], 10**17, 10**9)
    tx_hash = await upstream.call("eth_sendRawTransaction", ["0x" + raw.hex()])
    for _ in range(500):
        if await upstream.call("eth_getTransactionReceipt", [tx_hash]) is not None:
            return
        await asyncio.sleep(0.01)
    raise RuntimeError(f"{tx_hash} was not mined")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=500, help="timed iterations per measurement")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.n)), indent=1))


if __name__ == "__main__":
    main()
