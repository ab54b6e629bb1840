"""Latency of the JSON-RPC clients against a local anvil: ``python -m bench.rpc``.

Starts its own anvil (with ``--ipc``), measures round trips per transport, a 100-call batch, and
how late ``newPendingTransactions`` notifications arrive at 100 tx/s with and without TCP
quick-ACK; prints one JSON object (milliseconds) and stops anvil.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
from eth_account import Account
from eth_utils import keccak

from chain.node import ANVIL_DEV_KEYS, AnvilProcess
from chain.rpc import HttpRpc, IpcRpc, Rpc, WsRpc, connect

# Runtime code that returns uint256 42 for any call: a view with no deployment needed.
FORTY_TWO_CODE = "0x602a60005260206000f3"
VIEW_ADDRESS = "0x00000000000000000000000000000000000b0042"


def summary(samples_s: list[float]) -> dict[str, float | int]:
    ordered = sorted(samples_s)
    n = len(ordered)
    return {
        "p50": round(ordered[n // 2] * 1e3, 4),
        "p99": round(ordered[min(n - 1, int(n * 0.99))] * 1e3, 4),
        "n": n,
    }


async def round_trips(operation: Callable[[], Awaitable[Any]], n: int) -> dict[str, float | int]:
    for _ in range(n // 10):
        await operation()
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        await operation()
        samples.append(time.perf_counter() - started)
    return summary(samples)


async def notification_delays(ws_or_ipc: WsRpc | IpcRpc, sender: Rpc, txs: list[bytes]) -> Any:
    """Send pre-signed txs at 100 tx/s; delay from send to the full-tx notification."""
    subscription = await ws_or_ipc.subscribe("newPendingTransactions", True)
    sent_at: dict[str, float] = {}
    delays: list[float] = []

    async def collect() -> None:
        async for tx in subscription:
            delays.append(time.perf_counter() - sent_at[tx["hash"]])
            if len(delays) == len(txs):
                return

    collector = asyncio.create_task(collect())
    for raw in txs:
        started = sent_at["0x" + keccak(raw).hex()] = time.perf_counter()
        await sender.call("eth_sendRawTransaction", ("0x" + raw.hex(),))
        await asyncio.sleep(max(0.0, 0.01 - (time.perf_counter() - started)))
    async with asyncio.timeout(10):
        await collector
    await subscription.unsubscribe()
    result = summary(delays)
    result["over_20ms"] = sum(delay > 0.02 for delay in delays)
    return result


def signed_transfers(key_index: int, count: int) -> list[bytes]:
    key = ANVIL_DEV_KEYS[key_index]
    return [
        bytes(
            Account.sign_transaction(
                {
                    "chainId": 31337,
                    "nonce": nonce,
                    "to": "0x000000000000000000000000000000000000dEaD",
                    "value": 1,
                    "gas": 21_000,
                    "maxFeePerGas": 10**10,
                    "maxPriorityFeePerGas": 10**9,
                    "type": 2,
                },
                key,
            ).raw_transaction
        )
        for nonce in range(count)
    ]


async def run(n: int, notifications: int) -> dict[str, Any]:
    directory = Path(tempfile.mkdtemp(prefix="bench-rpc-"))
    ipc_path = str(directory / "anvil.ipc")
    node = await AnvilProcess(args=["--ipc", ipc_path]).astart()
    try:
        async with (
            connect(node.ws_url) as ws,
            connect(node.http_url) as http,
            connect(ipc_path) as ipc,
        ):
            assert isinstance(ws, WsRpc) and isinstance(ipc, IpcRpc) and isinstance(http, HttpRpc)
            await ws.call("anvil_setCode", (VIEW_ADDRESS, FORTY_TWO_CODE))
            view_call = ({"to": VIEW_ADDRESS, "data": "0x"}, "latest")
            hundred = [("eth_getBalance", (f"0x{i + 1:040x}", "latest")) for i in range(100)]
            results: dict[str, Any] = {
                "ws_call_blockNumber": await round_trips(lambda: ws.call("eth_blockNumber"), n),
                "ws_eth_call_view": await round_trips(lambda: ws.call("eth_call", view_call), n),
                "http_call_blockNumber": await round_trips(lambda: http.call("eth_blockNumber"), n),
                "ipc_call_blockNumber": await round_trips(lambda: ipc.call("eth_blockNumber"), n),
                "ws_batch_100_getBalance": await round_trips(lambda: ws.batch(hundred), n // 10),
                "http_batch_100_getBalance": await round_trips(
                    lambda: http.batch(hundred), n // 10
                ),
                "ipc_batch_100_getBalance": await round_trips(lambda: ipc.batch(hundred), n // 10),
            }
            started = time.perf_counter()
            await asyncio.gather(*(ws.call("eth_blockNumber") for _ in range(n)))
            results["ws_pipelined_calls_per_s"] = round(n / (time.perf_counter() - started))

            if notifications:
                for key_index, label, client in (
                    (1, "ws_quickack", ws),
                    (2, "ipc", ipc),
                ):
                    txs = signed_transfers(key_index, notifications)
                    results[f"pending_tx_notify_{label}"] = await notification_delays(
                        client, http, txs
                    )
                async with await WsRpc.connect(node.ws_url, quickack=False) as plain:
                    txs = signed_transfers(3, notifications)
                    results["pending_tx_notify_ws_no_quickack"] = await notification_delays(
                        plain, http, txs
                    )
        return results
    finally:
        node.stop()
        shutil.rmtree(directory, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", type=int, default=2000, help="round trips per measurement")
    parser.add_argument(
        "--notifications", type=int, default=200, help="txs per notification run (0 = skip)"
    )
    args = parser.parse_args()
    print(
        orjson.dumps(
            asyncio.run(run(args.n, args.notifications)), option=orjson.OPT_INDENT_2
        ).decode()
    )


if __name__ == "__main__":
    main()
