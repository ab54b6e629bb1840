"""A relay that goes down while `mevbot run --no-tui` runs on `mevbot devnet` with traffic: its
first failure is one structured log line, the repeats are only counted (no flood), and
`mevbot status` shows the count and the last error's text."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from bad_relays import BadRelay

from chain.node import free_port

CLI = [sys.executable, "-m", "mevbot.cli"]
ENV = {k: v for k, v in os.environ.items() if not k.startswith("MEVBOT_")} | {
    "PYTHONUNBUFFERED": "1"
}


async def _start(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        *args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=ENV
    )


async def _read_until(process: asyncio.subprocess.Process, marker: str, lines: list[str]) -> None:
    assert process.stdout is not None
    while marker not in (lines[-1] if lines else ""):
        line = (await asyncio.wait_for(process.stdout.readline(), 120)).decode()
        assert line, f"ended before {marker!r}: {''.join(lines)[-2000:]}"
        lines.append(line)


async def _stop(process: asyncio.subprocess.Process, lines: list[str]) -> int:
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
    rest, _ = await asyncio.wait_for(process.communicate(), 60)
    lines.append(rest.decode())
    assert process.returncode is not None
    return process.returncode


async def _relays(port: int) -> dict[str, dict]:
    status = await asyncio.create_subprocess_exec(
        *CLI, "status", "--json", "--url", f"http://127.0.0.1:{port}", stdout=subprocess.PIPE
    )
    out, _ = await asyncio.wait_for(status.communicate(), 60)
    assert status.returncode == 0
    return {row["name"]: row for row in json.loads(out)["relays"]}


async def test_a_relay_that_goes_down_is_logged_once_and_shown_in_the_status(
    tmp_path: Path, devnet_cache: Path
) -> None:
    world_json = tmp_path / "devnet.json"
    devnet_lines: list[str] = []
    bot_lines: list[str] = []
    devnet = await _start(
        *CLI,
        "devnet",
        "--out",
        str(world_json),
        "--block-time",
        "1",
        "--state-dir",
        str(devnet_cache),
    )
    try:
        await _read_until(devnet, "Ctrl-C", devnet_lines)
        relay = await BadRelay("http500").start()  # up: the start-up check passes
        status_port = free_port()
        config = tmp_path / "mevbot.toml"
        config.write_text(
            f'network = "devnet"\ndevnet_json = "{world_json}"\n'
            f'[[relays]]\nname = "flaky"\nurl = "{relay.url}"\n'
            f'[store]\nledger_path = "{tmp_path / "ledger.sqlite"}"\n'
            f"[metrics]\nport = {status_port}\n"
        )
        bot = await _start(*CLI, "run", "--config", str(config), "--no-tui")
        try:
            await _read_until(bot, "started on devnet", bot_lines)
            await relay.close()  # ... and now it refuses connections
            traffic = await _start(
                sys.executable, "-m", "anvil.traffic", "--world", str(world_json),
                "--seconds", "8", "--swaps-per-s", "4", "--transfers-per-s", "0",
            )  # fmt: skip
            flaky: dict = {}
            for _ in range(600):
                flaky = (await _relays(status_port))["flaky"]
                if flaky["errors"] >= 6:
                    break
                await asyncio.sleep(0.1)
            await _stop(traffic, [])
            assert flaky["errors"] >= 6, flaky
            assert await _stop(bot, bot_lines) == 0
        finally:
            if bot.returncode is None:
                bot.kill()
    finally:
        await _stop(devnet, devnet_lines)
    # Bundles go out and stale ones are cancelled: the last failure is either call's.
    refused = (
        f"ClientConnectorError: Cannot connect to host 127.0.0.1:{relay.port} "
        f"ssl:default [Connect call failed ('127.0.0.1', {relay.port})]"
    )
    assert flaky["last_error"] in (f"eth_sendBundle: {refused}", f"eth_cancelBundle: {refused}")
    output = "".join(bot_lines).splitlines()
    about_the_relay = [line for line in output if "flaky" in line]
    # Each client of the relay logs its first failure; the repeats are only counted.
    assert 1 <= len(about_the_relay) <= 2 < flaky["errors"], about_the_relay
    assert all(
        line.startswith("kind=log ") and "level=warning logger=execution.relay" in line
        for line in about_the_relay
    )
    assert refused in about_the_relay[-1].replace('\\"', '"')
