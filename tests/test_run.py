"""`mevbot run` as a user runs it: against `mevbot devnet`, queried by `mevbot status`, stopped
by SIGTERM; bad configs are one clear message; no key material in any output."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import redis
from redis_fixture import redis_server  # noqa: F401 (a fixture)

from anvil.world import World
from chain.node import free_port

CLI = [sys.executable, "-m", "mevbot.cli"]
ENV = os.environ | {"PYTHONUNBUFFERED": "1"}


def _wait_for(process: subprocess.Popen[str], marker: str, timeout: float = 60) -> list[str]:
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    stream = process.stdout
    assert stream is not None
    while time.monotonic() < deadline:
        line = stream.readline()
        if not line:
            break
        lines.append(line)
        if marker in line:
            return lines
    process.kill()
    raise AssertionError(f"never saw {marker!r}: {''.join(lines)[-2000:]}")


def _mevbot(*args: str) -> subprocess.Popen[str]:
    """A long-running mevbot command, stdout and stderr as one text stream."""
    return subprocess.Popen(
        [*CLI, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=ENV
    )


def _start_devnet(tmp_path: Path, devnet_cache: Path, outputs: list[str]) -> subprocess.Popen[str]:
    """`mevbot devnet --out tmp_path/devnet.json`, mining every 0.5 s, once it is ready."""
    out = str(tmp_path / "devnet.json")
    devnet = _mevbot(
        "devnet", "--out", out, "--block-time", "0.5", "--state-dir", str(devnet_cache)
    )
    outputs += _wait_for(devnet, "Ctrl-C")
    return devnet


def _stop(process: subprocess.Popen[str], outputs: list[str]) -> int:
    process.send_signal(signal.SIGTERM)
    rest, _ = process.communicate(timeout=30)
    outputs.append(rest)
    return process.returncode


def test_run_against_the_devnet_status_and_clean_shutdown(tmp_path, devnet_cache):
    world_json = tmp_path / "devnet.json"
    outputs: list[str] = []
    devnet = _start_devnet(tmp_path, devnet_cache, outputs)
    try:
        port = free_port()
        config = tmp_path / "mevbot.toml"
        config.write_text(
            f'network = "devnet"\ndevnet_json = "{world_json}"\n'
            f'[store]\nledger_path = "{tmp_path / "ledger.sqlite"}"\n'
            f"[metrics]\nport = {port}\n"
        )
        summary = tmp_path / "summary.json"
        bot = _mevbot("run", "--config", str(config), "--no-tui", "--summary", str(summary))
        try:
            outputs += _wait_for(bot, "metrics and status at")
            time.sleep(2.0)  # a few blocks go by
            status = subprocess.run(
                [*CLI, "status", "--json", "--url", f"http://127.0.0.1:{port}"],
                capture_output=True,
                text=True,
                timeout=30,
                check=True,
            )
            outputs.append(status.stdout + status.stderr)
            data = json.loads(status.stdout)
            assert data["network"] == "devnet" and data["chain_id"] == 31337
            assert data["head_block"] > 0
            assert {t["name"]: t["state"] for t in data["tasks"]} == {
                "watcher": "running",
                "engine": "running",
                "keepers": "running",
                "refunds": "running",
                "v3-words": "running",
                "v3-retry": "running",
                "verifier": "running",
                # The devnet's JSON names its MEV-Share node: the bot follows its hints.
                "mevshare-stream": "running",
                "mevshare": "running",
                "mevshare-heads": "running",
            }
            assert (
                data["mevshare"]["url"] == json.loads(world_json.read_text())["extra"]["mevshare"]
            )
            text = subprocess.run(
                [*CLI, "status", "--url", f"http://127.0.0.1:{port}"],
                capture_output=True,
                text=True,
                timeout=30,
                check=True,
            ).stdout
            outputs.append(text)
            assert "devnet" in text
            bot.send_signal(signal.SIGTERM)
            rest, _ = bot.communicate(timeout=30)
            outputs.append(rest)
            assert bot.returncode == 0, rest[-2000:]
            assert "mevbot stopped" in rest
            # On exit: the summary as a table in ETH, and as JSON in wei where --summary says.
            written = json.loads(summary.read_text())
            assert written["network"] == "devnet" and written["blocks"] >= 1
            assert isinstance(written["realized_profit_wei"], int)
            assert "mevbot run on devnet" in rest and "realized profit" in rest
            assert "ETH" in rest.split("realized profit", 1)[1].splitlines()[0]
        finally:
            if bot.poll() is None:
                bot.kill()
    finally:
        _stop(devnet, outputs)
    world = World.from_json(json.loads(world_json.read_text()))
    keys = [r.private_key for r in world.roles.values()] + [t.private_key for t in world.traders]
    keys += [b["private_key"] for b in world.aave["borrowers"]]
    everything = "".join(outputs).lower()
    for key in keys:
        assert key[2:].lower() not in everything, "a private key appeared in the output"


def test_a_bad_config_is_one_clear_message_and_exit_code_2(tmp_path):
    config = tmp_path / "bad.toml"
    config.write_text('network = "mainnet"\n[strategies.backrun]\ncoinbase_share_bps = 20000\n')
    done = subprocess.run(
        [*CLI, "run", "--config", str(config)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert "strategies.backrun.coinbase_share_bps" in done.stderr
    assert "Traceback" not in done.stderr
    missing = tmp_path / "mainnet.toml"
    missing.write_text('network = "mainnet"\n')
    done = subprocess.run(
        [*CLI, "run", "--config", str(missing)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2 and "node.ws, node.http, executor: required" in done.stderr


def test_keys_come_from_the_environment_and_never_show(tmp_path):
    key = "0x" + "4f" * 32
    config = tmp_path / "sepolia.toml"
    config.write_text(
        'network = "sepolia"\nexecutor = "0x'
        + "11" * 20
        + '"\n[node]\nws = "ws://127.0.0.1:9"\nhttp = "http://127.0.0.1:9"\n'
    )
    env = ENV | {"MEVBOT_EXECUTOR_KEY": "0x1234"}
    done = subprocess.run(
        [*CLI, "run", "--config", str(config)], capture_output=True, text=True, timeout=60, env=env
    )
    assert (
        done.returncode == 2 and "MEVBOT_EXECUTOR_KEY" in done.stderr and "1234" not in done.stderr
    )
    env = ENV | {"MEVBOT_EXECUTOR_KEY": key}
    done = subprocess.run(
        [*CLI, "run", "--config", str(config)], capture_output=True, text=True, timeout=60, env=env
    )
    assert done.returncode == 2 and "MEVBOT_SEARCHER_KEY" in done.stderr
    assert key[2:] not in done.stderr + done.stdout
    assert Path(config).read_text().count("4f" * 32) == 0


def test_store_redis_url_puts_the_keepers_leases_in_redis(
    tmp_path,
    devnet_cache,
    redis_server,  # noqa: F811 (the fixture)
):
    outputs: list[str] = []
    devnet = _start_devnet(tmp_path, devnet_cache, outputs)
    try:
        config = tmp_path / "mevbot.toml"
        config.write_text(
            f'network = "devnet"\ndevnet_json = "{tmp_path / "devnet.json"}"\n'
            f'[store]\nledger_path = "{tmp_path / "ledger.sqlite"}"\n'
            f'redis_url = "{redis_server.url}"\n[metrics]\nenabled = false\n'
        )
        bot = _mevbot("run", "--config", str(config), "--no-tui", "--name", "bot-1")
        try:
            outputs += _wait_for(bot, "started on devnet")
            client = redis.Redis.from_url(redis_server.url)
            owners: dict[bytes, bytes | None] = {}
            deadline = time.monotonic() + 30
            while not owners and time.monotonic() < deadline:
                owners = {k: client.hget(k, "owner") for k in client.scan_iter("*:lease:*")}
                time.sleep(0.1)
            assert owners and set(owners.values()) == {b"bot-1"}, "".join(outputs)[-2000:]
            assert _stop(bot, outputs) == 0
        finally:
            if bot.poll() is None:
                bot.kill()
    finally:
        _stop(devnet, outputs)
