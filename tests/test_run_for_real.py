"""Run it for real, through the CLI only, on the devnet: `mevbot executor deploy` a fresh
Executor, fund it, `mevbot doctor` all ✔, `mevbot run` lands a backrun, `mevbot executor
withdraw` moves the profit out. And `mevbot doctor` on a broken config shows each ✖ with its fix
and exits 1.

The MEV-Share stream the doctor checks is a loopback server that answers as the stream does (SSE
headers and a ping comment): Flashbots' stream cannot be reached from here."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from chain.node import free_port

CLI = [sys.executable, "-m", "mevbot.cli"]
ENV = {k: v for k, v in os.environ.items() if not k.startswith("MEVBOT_")} | {
    "PYTHONUNBUFFERED": "1"
}
RECEIVER = "0x000000000000000000000000000000000000beef"


def _mevbot(*args: str, env: dict[str, str] = ENV) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, timeout=120, env=env, check=False
    )


def _popen(*command: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        list(command), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=ENV
    )


def _wait_for(process: subprocess.Popen[str], marker: str, timeout: float = 90) -> str:
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    assert process.stdout is not None
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        seen.append(line)
        if marker in line:
            return "".join(seen)
    process.kill()
    raise AssertionError(f"never saw {marker!r}: {''.join(seen)[-3000:]}")


def _stop(process: subprocess.Popen[str]) -> str:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        rest, _ = process.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        rest, _ = process.communicate()
    return rest


def _status_rows(output: str) -> dict[str, str]:
    """`mevbot executor status` lines as name -> value."""
    return dict(line.split(None, 1) for line in output.strip().splitlines())


def _doctor_rows(output: str) -> dict[str, str]:
    """Each table row of `mevbot doctor` by check name (the row's whole text)."""
    rows = {}
    for line in output.splitlines():
        found = re.match(r"\s*([✔✖])\s+(\S+(?: \S+)*?)\s{2,}", line)
        if found:
            rows[found.group(2)] = line
    return rows


def _backrun_landed(port: int) -> tuple[bool, str]:
    """Whether the bot at ``port`` sent a backrun of a pending tx and has landed bundles (its
    `mevbot status`), polled for up to 90 s; and the last status, to show when not."""
    sent_backrun = landed = False
    data: dict[str, object] = {}
    deadline = time.monotonic() + 90
    while not (sent_backrun and landed) and time.monotonic() < deadline:
        time.sleep(1.0)
        shown = _mevbot("status", "--json", "--url", f"http://127.0.0.1:{port}")
        data = json.loads(shown.stdout)
        sent_backrun |= any(o["trigger"] and o["verdict"] == "sent" for o in data["opportunities"])
        bundles = data["tally"]["bundles"]
        landed |= any(c["labels"][1] == "landed" and c["value"] > 0 for c in bundles)
    return sent_backrun and landed, json.dumps(data)[-3000:]


def _devnet(tmp_path: Path, devnet_cache: Path) -> tuple[subprocess.Popen[str], Path]:
    world = tmp_path / "devnet.json"
    devnet = _popen(
        *CLI, "devnet", "--out", str(world), "--block-time", "0.5", "--state-dir", str(devnet_cache)
    )
    _wait_for(devnet, "Ctrl-C")
    return devnet, world


class _Stream(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        self.wfile.write(b":ping\n\n")

    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def _event_stream() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Stream)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


def _config(tmp_path: Path, world: Path, extra: str = "", port: int | None = None) -> Path:
    config = tmp_path / "mevbot.toml"
    metrics = f"port = {port}" if port else "enabled = false"
    config.write_text(
        f'# my bot\nnetwork = "devnet"\ndevnet_json = "{world}"\n{extra}\n'
        f'[store]\nledger_path = "{tmp_path / "ledger.sqlite"}"\n[metrics]\n{metrics}\n'
    )
    return config


def test_deploy_doctor_run_land_and_withdraw_the_profit(tmp_path, devnet_cache):
    devnet, world = _devnet(tmp_path, devnet_cache)
    bot = traffic = None
    try:
        port = free_port()
        with _event_stream() as stream:
            config = _config(tmp_path, world, f'mev_share_url = "{stream}"', port=port)
            doctor = _mevbot("doctor", "--config", str(config))
        assert doctor.returncode == 0, doctor.stdout + doctor.stderr
        assert "✖" not in doctor.stdout and "0 failed: ready to run" in doctor.stdout
        rows = _doctor_rows(doctor.stdout)
        assert f"{stream} streams events" in rows["mev-share"]
        aave = json.loads(world.read_text())["aave"]
        assert (
            f"pool {aave['pool']} (from {aave['addresses_provider']}), revision 1" in rows["aave"]
        )
        config = _config(tmp_path, world, port=port)
        before = config.read_text()
        deployed = _mevbot("executor", "deploy", "--config", str(config), "--write-config")
        assert deployed.returncode == 0, deployed.stderr
        (executor,) = re.findall(r"^executor (0x[0-9a-f]{40}) deployed", deployed.stdout, re.M)
        assert f'wrote executor = "{executor}" into {config}' in deployed.stdout
        assert config.read_text() == before.replace("[store]", f'executor = "{executor}"\n[store]')
        assert executor != json.loads(world.read_text())["executor"]

        funded = _mevbot("executor", "fund", "--config", str(config), "--eth", "1", "--weth", "50")
        assert funded.returncode == 0, funded.stderr
        status = _status_rows(_mevbot("executor", "status", "--config", str(config)).stdout)
        assert status["executor"] == executor and status["code"] == "the committed artifact"
        assert (status["ETH"], status["WETH"]) == ("1", "50")

        doctor = _mevbot("doctor", "--config", str(config))
        assert doctor.returncode == 0, doctor.stdout + doctor.stderr
        assert "✖" not in doctor.stdout and "0 failed: ready to run" in doctor.stdout
        rows = _doctor_rows(doctor.stdout)
        assert {"node", "node methods", "executor code", "executor owner", "executor funds"} <= set(
            rows
        )
        assert {"relay devnet", "relay devnet signature", "pools", "positions", "aave"} <= set(rows)
        # The default simulator on a node of one's own: the node itself.
        said = " ".join(doctor.stdout.split())  # the table may wrap a long row
        assert re.search(
            r"auto simulator node: the node answers in \d+\.\d\d ms and serves eth_simulateV1",
            said,
        ), doctor.stdout
        assert "simulator node" in rows, doctor.stdout

        bot = _popen(*CLI, "run", "--config", str(config), "--no-tui")
        _wait_for(bot, "started on devnet")
        traffic = _popen(
            sys.executable, "-m", "anvil.traffic", "--world", str(world), "--seconds", "20"
        )
        landed_backrun, status = _backrun_landed(port)
        assert landed_backrun, status
        _stop(traffic)
        assert "mevbot stopped" in _stop(bot)

        status = _status_rows(_mevbot("executor", "status", "--config", str(config)).stdout)
        profit = Decimal(status["WETH"]) - 50
        assert profit > 0, status
        moved = _mevbot(
            "executor", "withdraw", "--config", str(config), "WETH", f"{profit}", "--to", RECEIVER
        )
        assert moved.returncode == 0, moved.stderr
        assert moved.stdout.startswith(f"withdrew {profit} WETH (")
        assert f"from the executor {executor} to {RECEIVER}: tx 0x" in moved.stdout
        after = _status_rows(_mevbot("executor", "status", "--config", str(config)).stdout)
        assert after["WETH"] == "50"
    finally:
        for process in (traffic, bot):
            if process is not None:
                _stop(process)  # SIGTERM: its anvil processes stop with it
        _stop(devnet)


def test_doctor_shows_each_broken_part_with_its_fix_and_exits_1(tmp_path, devnet_cache):
    devnet, world_json = _devnet(tmp_path, devnet_cache)
    try:
        world = json.loads(world_json.read_text())
        closed = free_port()
        # A sepolia config pointed at the devnet's node: the wrong chain, a closed relay,
        # MEV-Share stream and MEV-Share bundle endpoint.
        sepolia = tmp_path / "sepolia.toml"
        sepolia.write_text(
            f'network = "sepolia"\nexecutor = "{world["executor"]}"\n'
            f'weth = "{world["tokens"]["WETH"]["address"]}"\n'
            f'mev_share_url = "http://127.0.0.1:{closed}/"\n'
            f'mev_share_bundle_url = "http://127.0.0.1:{closed}/"\n'
            f'[node]\nws = "{world["rpc"]["ws"]}"\nhttp = "{world["rpc"]["http"]}"\n'
            f'[[relays]]\nname = "closed"\nurl = "http://127.0.0.1:{closed}"\n'
        )
        keys = {
            "MEVBOT_EXECUTOR_KEY": world["roles"]["executor"]["private_key"],
            "MEVBOT_SEARCHER_KEY": world["roles"]["searcher"]["private_key"],
        }
        doctor = _mevbot("doctor", "--config", str(sepolia), env=ENV | keys)
        assert doctor.returncode == 1, doctor.stdout + doctor.stderr
        rows = _doctor_rows(doctor.stdout)
        for name in ("node", "fork node", "relay closed", "mev-share", "mev-share bundles"):
            assert rows[name].lstrip().startswith("✖"), doctor.stdout
        wrong = "is chain 31337 (devnet), but the config is for sepolia (chain 11155111)"
        assert wrong in rows["node"] and "point node.ws at a sepolia node" in rows["node"]
        assert f"127.0.0.1:{closed}: connection refused" in rows["relay closed"]
        assert "check the relay URL" in rows["relay closed"]
        assert f"127.0.0.1:{closed}: connection refused" in rows["mev-share"]
        assert "check mev_share_url" in rows["mev-share"]
        assert f"127.0.0.1:{closed}: connection refused" in rows["mev-share bundles"]
        assert "check mev_share_bundle_url" in rows["mev-share bundles"]
        assert "5 failed" in doctor.stdout
        assert keys["MEVBOT_EXECUTOR_KEY"][2:] not in doctor.stdout + doctor.stderr

        nothing = "0x000000000000000000000000000000000000dead"
        relay = world["extra"]["relay"]  # answers HTTP, but is no event stream
        no_code = _config(
            tmp_path, world_json, f'executor = "{nothing}"\nmev_share_url = "{relay}"\n'
        )
        doctor = _mevbot("doctor", "--config", str(no_code))
        assert doctor.returncode == 1
        rows = _doctor_rows(doctor.stdout)
        assert rows["node"].lstrip().startswith("✔")
        assert rows["executor"].lstrip().startswith("✖")
        assert f"no contract at {nothing}" in rows["executor"]
        assert "mevbot executor deploy --config FILE --write-config" in rows["executor"]
        assert rows["mev-share"].lstrip().startswith("✖")
        assert "answers HTTP 405 (text/plain), not an event stream" in rows["mev-share"]
        assert "point mev_share_url at a MEV-Share event stream" in rows["mev-share"]
        assert "2 failed" in doctor.stdout
    finally:
        _stop(devnet)
