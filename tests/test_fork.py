"""`mevbot fork` through the CLI, by forking the devnet (a fork of a fork): `mevbot run` against
the fork's world JSON lands a backrun on the fork, and `--replay-journal` pushes a recorded
journal's pending transactions into the fork, where its builder mines them."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from test_run_for_real import (
    CLI,
    _backrun_landed,
    _config,
    _devnet,
    _mevbot,
    _popen,
    _stop,
    _wait_for,
)

from chain.node import free_port


def _rpc(url: str, method: str, *params: object) -> object:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)})
    request = urllib.request.Request(
        url, body.encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as reply:
        return json.loads(reply.read())["result"]


def _fork(world: Path, out: Path, *extra: str):
    upstream = json.loads(world.read_text())["rpc"]["http"]
    fork = _popen(*CLI, "fork", "--rpc", upstream, "--world", str(world), "--out", str(out), *extra)
    return fork, _wait_for(fork, "Ctrl-C")


def test_run_lands_a_backrun_on_a_fork_of_the_devnet(tmp_path, devnet_cache):
    devnet, world = _devnet(tmp_path, devnet_cache)
    fork = bot = traffic = None
    try:
        forked = tmp_path / "fork.json"
        fork, said = _fork(world, forked, "--block-time", "0.5")
        description = json.loads(forked.read_text())
        upstream = json.loads(world.read_text())
        assert description["rpc"]["http"] != upstream["rpc"]["http"]
        assert description["extra"]["relay"] != upstream["extra"]["relay"]
        assert description["executor"] == upstream["executor"]
        head = description["extra"]["forked_from"]["block"]
        assert f"at block {head}: {description['rpc']['http']}  " in said
        assert int(_rpc(description["rpc"]["http"], "eth_chainId"), 16) == 31337

        port = free_port()
        # The fork simulates on itself: a fork of the fork of the devnet would fetch every slot
        # through two forks.
        config = _config(tmp_path, forked, '[simulation]\nbackend = "node"\n', port=port)
        doctor = _mevbot("doctor", "--config", str(config))
        assert doctor.returncode == 0 and "0 failed: ready to run" in doctor.stdout, doctor.stdout
        bot = _popen(*CLI, "run", "--config", str(config), "--no-tui")
        _wait_for(bot, "started on devnet")
        traffic = _popen(
            sys.executable, "-m", "anvil.traffic", "--world", str(forked), "--seconds", "20"
        )
        landed_backrun, status = _backrun_landed(port)
        assert landed_backrun, status
        _stop(traffic)
        assert "mevbot stopped" in _stop(bot)
        assert "fork stopped:" in _stop(fork)
    finally:
        for process in (traffic, bot, fork):
            if process is not None:
                _stop(process)  # SIGTERM: its anvil processes stop with it
        _stop(devnet)


def test_replay_journal_pushes_the_recorded_pending_txs_into_the_fork(tmp_path, devnet_cache):
    devnet, world = _devnet(tmp_path, devnet_cache)
    fork = None
    try:
        upstream = json.loads(world.read_text())["rpc"]
        start = int(_rpc(upstream["http"], "eth_blockNumber"), 16)
        journal = tmp_path / "journal.jsonl"
        watch = _popen(*CLI, "watch", "--rpc", upstream["ws"], "--record", str(journal))
        time.sleep(2.0)  # subscribed before the traffic starts
        traffic = subprocess.run(
            [sys.executable, "-m", "anvil.traffic", "--world", str(world), "--seconds", "4"],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert traffic.returncode == 0, traffic.stdout + traffic.stderr
        _stop(watch)
        recorded = [json.loads(line) for line in journal.read_text().splitlines() if line]
        hashes = [r["data"]["hash"] for r in recorded if r["kind"] == "tx"]
        assert hashes and all("raw" in r["data"] for r in recorded if r["kind"] == "tx")

        forked = tmp_path / "fork.json"
        fork = _popen(
            *CLI, "fork", "--rpc", upstream["http"], "--block", str(start), "--world", str(world),
            "--out", str(forked), "--block-time", "0.5", "--replay-journal", str(journal),
        )  # fmt: skip
        said = _wait_for(fork, "pending txs from")
        pushed = int(said.split("pushed ", 1)[1].split(" ", 1)[0])
        assert pushed == len(hashes), said
        assert f"at block {start}: " in said
        node = json.loads(forked.read_text())["rpc"]["http"]
        deadline = time.monotonic() + 60
        mined: list[object] = []
        while len(mined) < len(hashes) and time.monotonic() < deadline:
            time.sleep(0.5)
            mined = [r for h in hashes if (r := _rpc(node, "eth_getTransactionReceipt", h))]
        assert len(mined) == len(hashes), f"{len(mined)} of {len(hashes)} mined on the fork"
    finally:
        if fork is not None:
            _stop(fork)
        _stop(devnet)
