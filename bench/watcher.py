"""Watcher throughput: ``python -m bench.watcher`` prints one JSON object.

``decode_tx_per_s``: the calldata decoder over the 210 mainnet router calls of the shared
fixture, on one core. ``stream_tx_per_s`` / ``stream_loss``: 5,000 signed txs (signed before the
clock starts) pushed into ``anvil --no-mining`` as fast as batches go, received by the default
pending source (hash subscription + batched lookups + txpool reconciliation); the rate is
received txs over the time from the first send to the last receipt, loss = sent - received.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from pathlib import Path

from eth_account import Account
from eth_utils import to_checksum_address

from chain.node import ANVIL_DEV_KEYS, AnvilProcess
from chain.rpc import connect
from chain.types import PendingTx, hex_to_bytes, hex_to_int
from watcher.decode import Decoder
from watcher.events import Event
from watcher.pending import PendingSource

FIXTURE = (
    Path(__file__).resolve().parent.parent.parent / "shared/fixtures/mainnet/router_calls.jsonl"
)
STREAM_TXS = 5_000
STREAM_DEADLINE = 60.0


def decode_rate(fixture: Path = FIXTURE, seconds: float = 1.0) -> float:
    calls = []
    for line in fixture.read_text().splitlines():
        record = json.loads(line)
        calls.append((record["to"], hex_to_bytes(record["input"]), hex_to_int(record["value"])))
    decoder = Decoder()
    decoded = 0
    started = time.perf_counter()
    while (elapsed := time.perf_counter() - started) < seconds:
        for to, calldata, value in calls:
            decoder.decode(to, calldata, value)
        decoded += len(calls)
    return decoded / elapsed


def sign_burst(count: int) -> list[str]:
    accounts = [Account.from_key(key) for key in ANVIL_DEV_KEYS]
    sink = to_checksum_address("0x" + "ee" * 20)
    raws = []
    for index in range(count):
        account = accounts[index % len(accounts)]
        tx = {
            "type": 2,
            "chainId": 31337,
            "nonce": index // len(accounts),
            "to": sink,
            "value": 1,
            "gas": 21_000,
            "maxFeePerGas": 10**10,
            "maxPriorityFeePerGas": 10**9,
        }
        raws.append("0x" + account.sign_transaction(tx).raw_transaction.hex().removeprefix("0x"))
    return raws


async def stream_rate(raws: list[str]) -> tuple[float, int]:
    node = await AnvilProcess(args=["--no-mining"]).astart()
    try:
        source = PendingSource(node.ws_url)
        received = 0
        last_at = 0.0
        all_in = asyncio.Event()

        async def count(event: Event) -> None:
            nonlocal received, last_at
            if isinstance(event, PendingTx):
                received += 1
                last_at = time.perf_counter()
                if received == len(raws):
                    all_in.set()

        task = asyncio.create_task(source.run(count))
        while not source.stats.connected:  # noqa: ASYNC110 (a counter, not an event)
            await asyncio.sleep(0.01)
        started = time.perf_counter()
        async with connect(node.ws_url, timeout=60) as rpc:
            for start in range(0, len(raws), 250):
                await rpc.batch(
                    [("eth_sendRawTransaction", (r,)) for r in raws[start : start + 250]]
                )
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(STREAM_DEADLINE):
                await all_in.wait()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return received / max(last_at - started, 1e-9), len(raws) - received
    finally:
        node.stop()


def run(stream_txs: int = STREAM_TXS, decode_seconds: float = 1.0) -> dict[str, object]:
    """The stream figures, and the decode rate unless ``decode_seconds`` is 0."""
    result: dict[str, object] = {}
    if decode_seconds:
        result["decode_tx_per_s"] = round(decode_rate(seconds=decode_seconds))
    stream, loss = asyncio.run(stream_rate(sign_burst(stream_txs)))
    result["stream_tx_per_s"] = round(stream)
    result["stream_loss"] = loss
    return result


def main() -> int:
    print(json.dumps(run()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
