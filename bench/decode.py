"""Decoder throughput on one core: the 210 mainnet fixture router calls, decoded over and over.

``python -m bench.decode [--seconds 3]`` prints JSON: ``decode_tx_per_s`` (decodes over wall time,
timer overhead included) and per-call latency percentiles in microseconds.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from chain.types import PendingTx
from watcher.decode import Decoder

FIXTURES = Path(__file__).resolve().parents[2] / "shared/fixtures/mainnet/router_calls.jsonl"


def load_txs(path: Path = FIXTURES) -> list[PendingTx]:
    txs = []
    for line in path.read_text().splitlines():
        if line.strip():
            row = json.loads(line)
            txs.append(
                PendingTx.from_rpc(
                    {"hash": row["tx_hash"], "nonce": "0x0", **row}, source="fixture"
                )
            )
    return txs


def run(seconds: float) -> dict[str, object]:
    txs = load_txs()
    decoder = Decoder()
    decode_tx = decoder.decode_tx
    clock = time.perf_counter_ns
    samples: list[int] = []
    record = samples.append
    started = clock()
    deadline = started + int(seconds * 1e9)
    while clock() < deadline:
        for tx in txs:
            before = clock()
            decode_tx(tx)
            record(clock() - before)
    elapsed_s = (clock() - started) / 1e9
    if decoder.stats.undecoded or decoder.stats.malformed:
        raise SystemExit(f"fixture calls failed to decode: {decoder.stats.log_line()}")
    samples.sort()
    return {
        "decode_tx_per_s": round(len(samples) / elapsed_s),
        "per_call_us": {
            "p50": round(samples[len(samples) // 2] / 1000, 2),
            "p99": round(samples[len(samples) * 99 // 100] / 1000, 2),
            "n": len(samples),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core, as advertised
    print(json.dumps(run(args.seconds)))


if __name__ == "__main__":
    main()
