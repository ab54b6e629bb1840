"""The benchmark suite: ``python -m bench [--skip-slow]`` prints one JSON document and writes it to
``bench/results.json``.

Sections, in order: decoding on one core (:mod:`bench.decode`), the state update of 10,000
pools (:mod:`bench.state`), Uniswap V3 quotes (:mod:`bench.v3`), the devnet's first deploy
and cached start (:mod:`bench.devnet`), the fork simulator against a bare ``eth_simulateV1``
and the warm fork against the reset one while following heads (:mod:`bench.simulate`), the
pending-tx stream from anvil (:mod:`bench.watcher`), then end to end on the devnet with the
web3.py baseline interleaved block by block (:mod:`bench.e2e`), a mevbot-only run for the
landed/submitted ratio, the end to end run on each simulator and wire -> relay during a 10x
burst (:mod:`bench.burst`). ``--skip-slow`` leaves out the stream and the devnet runs (their
keys are ``null``). Timings are ``{"p50", "p99", "n"}`` in milliseconds unless a key says
otherwise; rates are numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import platform
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import burst, decode, devnet, e2e, simulate, state, v3, watcher
from chain.node import find_anvil

RESULTS = Path(__file__).resolve().parent / "results.json"
BURST_S = 15.0


def _timing(figure: dict[str, Any]) -> dict[str, Any]:
    """bench.simulate's ``{"p50_ms", "p99_ms", "n"}`` as ``{"p50", "p99", "n"}``."""
    return {"p50": figure["p50_ms"], "p99": figure["p99_ms"], "n": figure["n"]}


def _on_one_core(work: Callable[[], Any]) -> Any:
    """Run ``work`` pinned to one CPU (the decode figure is per core), then unpin."""
    if not hasattr(os, "sched_setaffinity"):
        return work()
    allowed = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(allowed)})
    try:
        return work()
    finally:
        os.sched_setaffinity(0, allowed)


def _simulation(n: int) -> tuple[dict[str, Any], dict[str, Any]]:
    report = asyncio.run(simulate.run(n))
    sizes = ("1tx", "2tx")
    figures = {
        "anvil": {size: _timing(report[size]["simulate_anvil"]) for size in sizes},
        "revm": {size: _timing(report[size]["simulate_revm"]) for size in sizes},
        "bare_eth_simulateV1": {
            size: _timing(report[size]["bare_simulateV1_same_txs"]) for size in sizes
        },
        "bare_eth_simulateV1_our_request": {
            size: _timing(report[size]["bare_simulateV1_our_request"]) for size in sizes
        },
        "following_heads": {
            **{
                f"{key}_{fork}": _timing(report[f"{key}_{fork}"])
                for key in ("on_new_head", "first_simulate_after_head")
                for fork in ("warm", "reset", "revm_warm", "revm_reset")
            },
            "same_gas_every_head": report["same_gas_every_head"],
            "warm_fork": report["warm_fork"],
            "revm_warm_fork": report["revm_warm_fork"],
        },
    }
    ratios = {size: report[size]["overhead_ratio"] for size in sizes}
    return figures, ratios


def _machine() -> dict[str, Any]:
    anvil = subprocess.run(
        [find_anvil(), "--version"], capture_output=True, text=True, check=False, timeout=30
    ).stdout.splitlines()
    return {
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "anvil": anvil[0] if anvil else None,
        "platform": platform.platform(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def _peak_rss_mb() -> tuple[float, dict[str, float]]:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return round(own + children, 1), {"self": round(own, 1), "largest_child": round(children, 1)}


NOTES = {
    "units": "milliseconds unless a key says otherwise; timings are nearest-rank p50/p99 and n",
    "decode_tx_per_s": "bench.decode: the 210 mainnet router calls of the shared fixture decoded "
    "over and over by watcher.decode.Decoder.decode_tx, pinned to one CPU",
    "stream": "bench.watcher: 5,000 signed transfers pushed into anvil --no-mining as fast as "
    "batches go, received by the default pending source (hash subscription + batched lookups + "
    "txpool reconciliation); rate = received / (last receipt - first send), loss = sent - received",
    "simulate_ms": "bench.simulate on a fresh devnet, interleaved per iteration: simulate() on "
    "each backend vs a bare eth_simulateV1 of the same txs over its own WebSocket to the same "
    "fork; overhead ratio = simulate() anvil p50 / bare p50 (goal <= 1.25). anvil_reset and the "
    "first simulate after it are what every new head costs the anvil backend",
    "e2e_ms": "bench.e2e: DevnetStack + the full Bot (dry_run false, the devnet relay, the default "
    "simulator: auto, which is node on the devnet, a local node); p50/p99/n = the bot's own "
    "wire_to_relay: from PendingTx.received_at (the hash notification frame reaching its "
    "stream task) to the relay's answer to the first bundle POST. shared_frame_to_relay "
    "starts at this benchmark's own subscription to the same notifications; send_to_relay at "
    "its eth_sendRawTransaction. stages: frame_to_engine = eth_getTransactionByHash round "
    "trip + watcher/intake hand-offs up to the engine; decode is re-timed on the same tx (the "
    "intake decodes before the engine, which does not record it); unattributed = "
    "wire_to_relay minus the timed stages (the bid, task switches). "
    "first_after_head = the first victim after a mined block",
    "relay_post_floor_ms": "bench.e2e after the interleaved run, the pipeline idle: the last "
    "bundle sent, sent 100 times more for a block the builder never reaches, through the bot's "
    "relay client and as a bare aiohttp POST of a prebuilt body and signature (the floor under "
    "the submit stage; the devnet relay answers in this same process)",
    "baseline_e2e_ms": "bench.baseline: the web3.py bot on the same devnet, same relay, blocks "
    "alternating with mevbot's in the same run (mevbot's strategies off during the baseline's "
    "blocks); p50/p99/n from when web3.py handed it the hash notification to the relay's answer",
    "speedup_vs_baseline_p50": "baseline_e2e_ms.p50 / e2e_ms.p50 (each from its own client's "
    "delivery of the hash notification); speedup_vs_baseline_p50_shared_frame below compares "
    "from the shared frame instead, which adds web3.py's late delivery of the notification",
    "by_simulator": "by_simulator.e2e_ms: bench.e2e (40 blocks, 3 victims each, no baseline) "
    "once per simulator, one after the other: the anvil fork kept warm, the anvil fork reset at "
    "every head, node (eth_simulateV1 on the devnet node itself), revm over a cache kept warm "
    "and revm forked again at every head. "
    "by_simulator.burst: bench.burst, the 10x burst of tests/test_load.py for BURST_S s on each "
    "backend "
    "(mevbot devnet in its own process, a block every second, 30 swaps/s + 150 transfers/s): "
    "the bot's wire_to_relay and simulate stage over the burst",
    "landing": "e2e_ms.landing: mevbot's bundles settled by its inclusion tracker in the "
    "interleaved run (a block's victims and their backruns go out as one bundle, each backrun on "
    "the next nonce): landed/submitted counts members, blocks_landed_share the blocks we sent a "
    "bundle for in which it landed, dropped_reverting_share the verified candidates dropped as "
    "reverting or out of gas; e2e_ms.landing_100_blocks: a mevbot-only run of 100 blocks, one "
    "victim per block",
    "devnet_start_ms": "bench.devnet: Devnet.start() from launching anvil to the world ready, "
    "first_deploy into an empty state directory (every contract deployed, the state saved), "
    "cached_start loading that state; goals 10 s and 2 s",
    "v3_quote_us": "bench.v3: V3Pool.amount_out on a 0.05 % pool with dense liquidity near the "
    "price, in microseconds: exact-in quotes crossing no initialized tick, and exactly ten "
    "(goals: 20 and 150 us); v3_swap_logs_ms_10k_pools: one block of 400 V3 Swap logs over "
    "10,000 tracked V3 pools (goal 5 ms); pending_cycle_search_1k_pools: the best WETH cycle "
    "(cycles_touching + best_opportunity, microseconds) after a pending V3 swap over about 1,000 "
    "V2 and V3 pools (goal 1 ms)",
    "state_update_ms_10k_pools": "bench.state: one block of 400 Sync logs over 10,000 tracked "
    "pools; memory by tracemalloc while building the pools",
    "peak_rss_mb": "ru_maxrss of this process + the largest waited-for child. Caveat: a child "
    "forked from this process counts the parent's pages it touched before exec, so "
    "largest_child can equal self and the sum overstates; anvil's own RSS is not isolated here",
}


def _first_after_head_note(simulate_ms: dict[str, Any], e2e_ms: dict[str, Any]) -> str:
    """What a new head costs, with this run's figures (nothing excluded from e2e_ms)."""
    heads = simulate_ms["following_heads"]
    stages = e2e_ms["stages"]
    return (
        f"the forks are kept warm: a new head costs p50 "
        f"{heads['on_new_head_revm_warm']['p50']} ms on revm's cache (the default) and "
        f"{heads['on_new_head_warm']['p50']} ms on anvil's fork (the block's state changes "
        f"written) vs {heads['on_new_head_revm_reset']['p50']} / "
        f"{heads['on_new_head_reset']['p50']} ms forking again, and the first simulate after it "
        f"p50 {heads['first_simulate_after_head_revm_warm']['p50']} / "
        f"{heads['first_simulate_after_head_warm']['p50']} ms vs "
        f"{heads['first_simulate_after_head_revm_reset']['p50']} / "
        f"{heads['first_simulate_after_head_reset']['p50']} ms after forking (bench.simulate). "
        f"In e2e_ms no sample is excluded: first victim after a head p50 "
        f"{e2e_ms['first_after_head']['p50']} / p99 {e2e_ms['first_after_head']['p99']} ms, "
        f"later victims p50 {e2e_ms['later_in_block']['p50']} / p99 "
        f"{e2e_ms['later_in_block']['p99']} ms; the simulate stage p50 "
        f"{stages['simulate_first_after_head']['p50']} ms first vs "
        f"{stages['simulate_later_in_block']['p50']} ms later"
    )


def _by_simulator() -> dict[str, Any]:
    """The same end-to-end run (40 blocks, 3 victims each) on every simulator, one after the
    other, and wire -> relay during a 10x burst on each backend."""
    runs = {
        "anvil_warm": {"backend": "anvil"},
        "anvil_reset_every_head": {"backend": "anvil", "keep_warm": False},
        "node": {"backend": "node"},
        "revm_warm": {"backend": "revm"},
        "revm_fork_every_head": {"backend": "revm", "keep_warm": False},
    }
    figures: dict[str, Any] = {}
    for name, options in runs.items():
        run = asyncio.run(e2e.run(blocks=40, victims_per_block=3, **options))
        report = run["e2e_ms"]
        figures[name] = {
            **({"fork": run["fork"]} if "fork" in run else {}),
            **{k: report[k] for k in ("p50", "p99", "n")},
            "first_after_head": report["first_after_head"],
            "later_in_block": report["later_in_block"],
            "simulate": report["stages"]["simulate"],
        }
    during_burst = {
        backend: asyncio.run(burst.run(BURST_S, backend)) for backend in ("anvil", "node", "revm")
    }
    return {"e2e_ms": figures, "burst": during_burst}


def run(skip_slow: bool = False) -> dict[str, Any]:
    started = time.perf_counter()
    machine = _machine()
    decoded = _on_one_core(lambda: decode.run(3.0))
    state_figures = state.run()
    v3_figures = v3.run()
    devnet_start_ms = devnet.run()
    simulate_ms, overhead = _simulation(300)
    result: dict[str, Any] = {
        "decode_tx_per_s": decoded["decode_tx_per_s"],
        "stream_tx_per_s": None,
        "stream_loss": None,
        "devnet_start_ms": devnet_start_ms,
        "simulate_ms": simulate_ms,
        "simulate_overhead_ratio": overhead,
        "e2e_ms": None,
        "by_simulator": None,
        "baseline_e2e_ms": None,
        "speedup_vs_baseline_p50": None,
        "v3_quote_us": {
            "no_tick": v3_figures["v3_quote_no_tick_us"],
            "ten_ticks": v3_figures["v3_quote_ten_ticks_us"],
        },
        "v3_swap_logs_ms_10k_pools": v3_figures["v3_swap_logs_ms_10k_pools"],
        "pending_cycle_search_1k_pools": v3_figures["pending_cycle_search_1k_pools"],
        "state_update_ms_10k_pools": {
            **state_figures["state_update_ms_10k_pools"],  # type: ignore[dict-item]
            "syncs_per_block": state_figures["syncs_per_block"],
            "memory_mb_per_10k_pools": state_figures["memory_mb_per_10k_pools"],
        },
    }
    notes: dict[str, Any] = dict(NOTES)
    notes["decode_per_call_us"] = decoded["per_call_us"]
    if not skip_slow:
        stream = watcher.run(decode_seconds=0)
        result["stream_tx_per_s"] = stream["stream_tx_per_s"]
        result["stream_loss"] = stream["stream_loss"]
        interleaved = asyncio.run(e2e.run(blocks=80, victims_per_block=3, baseline=True))
        landing = asyncio.run(e2e.run(blocks=100, victims_per_block=1, baseline=False))
        result["e2e_ms"] = {
            **interleaved["e2e_ms"],
            "landing_100_blocks": {
                **landing["e2e_ms"]["landing"],
                "e2e_ms": {k: landing["e2e_ms"][k] for k in ("p50", "p99", "n")},
            },
        }
        result["relay_post_floor_ms"] = interleaved["relay_post_floor_ms"]
        result["by_simulator"] = _by_simulator()
        result["baseline_e2e_ms"] = interleaved["baseline_e2e_ms"]
        result["speedup_vs_baseline_p50"] = interleaved["speedup_vs_baseline_p50"]
        notes["speedup_vs_baseline_p50_shared_frame"] = interleaved[
            "speedup_vs_baseline_p50_shared_frame"
        ]
        notes["first_after_head"] = _first_after_head_note(simulate_ms, result["e2e_ms"])
    else:
        notes["skipped"] = "--skip-slow: no stream, no devnet end-to-end runs"
    result["peak_rss_mb"], notes["peak_rss_breakdown_mb"] = _peak_rss_mb()
    notes["suite_seconds"] = round(time.perf_counter() - started, 1)
    result["notes"] = notes
    result["machine"] = machine
    result["generated_at"] = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--skip-slow", action="store_true", help="no stream and no devnet end-to-end runs"
    )
    args = parser.parse_args(argv)
    result = run(args.skip_slow)
    text = json.dumps(result, indent=1)
    RESULTS.write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
