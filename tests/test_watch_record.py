"""A journal recorded by `mevbot watch --record` holds heads with their logs and replays with
`mevbot replay` to candidates behind the recorded swaps; a last line cut short (the recorder
stopped mid-write) is reported in one line and every complete line before it is replayed.
`mevbot watch` refuses an http:// node for subscriptions and a node that is down, in one line."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from devnet_txs import swap

from anvil.stack import DevnetStack
from anvil.traffic import Traffic
from chain.abi import Abi
from chain.node import free_port
from chain.rpc import connect, eth_call, eth_get_block

CLI = [sys.executable, "-m", "mevbot.cli"]
ENV = {k: v for k, v in os.environ.items() if not k.startswith("MEVBOT_")} | {
    "PYTHONUNBUFFERED": "1"
}
RESERVES = Abi.from_signatures("function getReserves() returns (uint112, uint112, uint32)")


async def _cli(*args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        *CLI, *args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV
    )
    out, err = await asyncio.wait_for(process.communicate(), 300)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def _until(stream: asyncio.StreamReader, kind: str, **match: Any) -> dict[str, Any]:
    """The next line the watch prints of ``kind`` with the given fields."""
    while True:
        line = await asyncio.wait_for(stream.readline(), 60)
        assert line, f"the watch ended before a {kind} {match}"
        record = json.loads(line)
        if record["kind"] == kind and all(record.get(k) == v for k, v in match.items()):
            return record


async def test_a_watch_journal_replays_and_a_cut_last_line_is_reported(devnet_cache, tmp_path):
    journal = tmp_path / "watch.jsonl"
    async with DevnetStack(block_time=None, state_dir=devnet_cache) as stack:
        world = stack.world
        await stack.builder.build_block()
        watch = await asyncio.create_subprocess_exec(
            *CLI,
            "watch",
            "--rpc",
            world.rpc["ws"],
            "--record",
            str(journal),
            "--jsonl",
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=ENV,
        )
        try:
            assert watch.stdout is not None and watch.stderr is not None
            await _until(watch.stdout, "head")  # connected: the latest head is journaled
            triggers = []
            async with connect(world.rpc["ws"]) as rpc:
                traffic = Traffic(world, seed=5)
                await traffic.sync_nonces(rpc)
                pair = world.dexes["uniswap"]["pairs"]["WETH/USDC"]["address"]
                reserves = RESERVES.function("getReserves")
                weth_reserve = reserves.decode_output(await eth_call(rpc, pair, reserves.encode()))[
                    0
                ]  # token0 is WETH
                for dex, trader in (("uniswap", 0), ("sushiswap", 1)):
                    head = await eth_get_block(rpc, "latest")
                    assert head is not None
                    raw = swap(traffic, world, dex, trader, weth_reserve * 3 // 100, head.base_fee)
                    tx_hash = await rpc.call("eth_sendRawTransaction", [raw])
                    await _until(watch.stdout, "tx", hash=tx_hash)
                    triggers.append(tx_hash)
                    report = await stack.builder.build_block()
                    await _until(watch.stdout, "head", number=report.number)
            watch.send_signal(signal.SIGINT)
            assert await asyncio.wait_for(watch.wait(), 30) == 0
        finally:
            if watch.returncode is None:
                watch.kill()
                await watch.wait()

        world_json = tmp_path / "devnet.json"
        world_json.write_text(json.dumps(world.to_json()))
        config = tmp_path / "mevbot.toml"
        config.write_text(
            f'network = "devnet"\ndevnet_json = "{world_json}"\n[strategies]\ntarget_blocks = 1\n'
        )
        replay = ("replay", "--config", str(config), "--jsonl", "--journal")

        code, out, err = await _cli(*replay, str(journal))
        assert code == 0, err
        candidates = [json.loads(line) for line in out.splitlines()]
        simulated = {c["trigger"] for c in candidates if c["verdict"] == "simulated"}
        assert set(triggers) <= simulated
        assert "replayed 5 events (head 3, tx 2)" in err

        lines = journal.read_bytes().splitlines(keepends=True)
        complete, cut = tmp_path / "complete.jsonl", tmp_path / "cut.jsonl"
        complete.write_bytes(b"".join(lines[:-1]))
        cut.write_bytes(b"".join(lines[:-1]) + lines[-1][: len(lines[-1]) // 2])
        whole = await _cli(*replay, str(complete))
        code, out, err = await _cli(*replay, str(cut))
        assert code == whole[0] == 0 and out == whole[1]
        assert err.splitlines()[0] == (
            f"mevbot replay: {cut}: line {len(lines)} is cut short (the recorder stopped while "
            "writing it): replayed every line before it"
        )
        assert err.splitlines()[1:] == whole[2].splitlines()


async def test_watch_refuses_http_for_subscriptions_and_a_node_that_is_down():
    code, out, err = await _cli("watch", "--rpc", "http://127.0.0.1:8545")
    assert (code, out) == (2, "")
    assert err == (
        "mevbot watch: --rpc 'http://127.0.0.1:8545' cannot carry subscriptions (pending txs, "
        "heads): give ws://, wss:// or the node's IPC socket path (for ws-hashes)\n"
    )
    down = f"ws://127.0.0.1:{free_port()}"
    code, out, err = await _cli("watch", "--rpc", down, "--record", str(Path("/nonexistent/j")))
    assert (code, out) == (1, "")
    assert (
        err == f"mevbot watch: --rpc: {down}: connection refused; start the node or correct --rpc\n"
    )
