"""`mevbot fork` through the CLI, by forking the devnet (a fork of a fork). Without the devnet's
world JSON, given only the protocols' addresses, the fork finds the devnet's pools, tokens,
borrowers and Aave market on the chain and deploys its own Executor; `mevbot run` against the
world JSON it writes lands a backrun on the fork. With the upstream's world JSON,
`--replay-journal` pushes a recorded journal's pending transactions into the fork, where its
builder mines them."""

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
from chain.topics import V3_SWAP

TRAFFIC = [sys.executable, "-m", "anvil.traffic"]


def _rpc(url: str, method: str, *params: object) -> object:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)})
    request = urllib.request.Request(
        url, body.encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as reply:
        return json.loads(reply.read())["result"]


def _fork(world: Path, out: Path, *extra: str):
    upstream = json.loads(world.read_text())["rpc"]["http"]
    fork = _popen(*CLI, "fork", "--rpc", upstream, "--out", str(out), *extra)
    return fork, _wait_for(fork, "Ctrl-C")


def _protocol_flags(world: dict) -> list[str]:
    """The devnet's protocols as `mevbot fork` flags (the devnet has no network preset)."""
    v3 = world["v3"]
    return [
        "--weth", world["tokens"]["WETH"]["address"],
        *(f"--v2={d['router']}={d['factory']}" for d in world["dexes"].values()),
        f"--router=uniswap-v3={v3['swap_router']}",
        f"--router=uniswap-v3-02={v3['swap_router02']}",
        f"--router=universal-router={v3['universal_router']}",
        "--v3-factory", v3["factory"],
        "--aave-provider", world["aave"]["addresses_provider"],
    ]  # fmt: skip


def test_run_lands_a_backrun_on_a_fork_of_the_devnet_without_its_world(tmp_path, devnet_cache):
    devnet, world = _devnet(tmp_path, devnet_cache)
    fork = bot = traffic = None
    try:
        upstream = json.loads(world.read_text())
        forked = tmp_path / "fork.json"
        refused = _mevbot("fork", "--rpc", upstream["rpc"]["http"], "--out", str(forked))
        assert refused.returncode == 2
        assert refused.stderr == (
            "mevbot fork: chain 31337 has no network preset with WETH: give --weth and the DEXes "
            "(--v2 ROUTER=FACTORY, --v3-factory), or --world FILE\n"
        )
        fork, said = _fork(world, forked, "--block-time", "0.5", *_protocol_flags(upstream))
        description = json.loads(forked.read_text())
        node = description["rpc"]["http"]
        assert node != upstream["rpc"]["http"]
        assert description["extra"]["relay"] != upstream["extra"]["relay"]
        head = description["extra"]["forked_from"]["block"]
        assert f"at block {head}: {node}  " in said
        assert int(_rpc(node, "eth_chainId"), 16) == 31337

        # What the fork found on the chain is what the devnet deployed.
        def pairs(w: dict) -> set[str]:
            return {p["address"] for d in w["dexes"].values() for p in d["pairs"].values()}

        assert pairs(description) == pairs(upstream) and len(pairs(upstream)) == 10
        v3_pools = {(p["address"], p["fee"]) for p in description["v3"]["pools"]}
        assert v3_pools == {(p["address"], p["fee"]) for p in upstream["v3"]["pools"]}
        assert description["v3"]["v2_factory"] == upstream["v3"]["v2_factory"]
        assert {t["address"]: t["decimals"] for t in description["tokens"].values()} == {
            t["address"]: t["decimals"] for t in upstream["tokens"].values()
        }
        aave = description["aave"]
        assert {b["address"] for b in aave["borrowers"]} == {
            b["address"] for b in upstream["aave"]["borrowers"]
        }
        assert len(aave["borrowers"]) == 6 and "6 Aave borrowers; executor" in said
        assert description["aave"]["pool"] == upstream["aave"]["pool"]
        assert description["aave"]["oracle"] == upstream["aave"]["oracle"]
        executor = description["executor"]
        assert executor != upstream["executor"]
        assert f"executor {executor} deployed" in said
        assert _rpc(upstream["rpc"]["http"], "eth_getCode", executor, "latest") == "0x"
        status = _mevbot("executor", "status", "--rpc", node, "--executor", executor)
        assert "the committed artifact" in status.stdout, status.stdout + status.stderr

        port = free_port()
        # The fork simulates on itself: a fork of the fork of the devnet would fetch every slot
        # through two forks.
        config = _config(tmp_path, forked, '[simulation]\nbackend = "node"\n', port=port)
        doctor = _mevbot("doctor", "--config", str(config))
        assert doctor.returncode == 0 and "0 failed: ready to run" in doctor.stdout, doctor.stdout
        assert "25 pools from 3 factories" in doctor.stdout
        bot = _popen(*CLI, "run", "--config", str(config), "--no-tui")
        _wait_for(bot, "started on devnet")
        # The devnet's traders, their balances and approvals are on the fork too.
        trading = tmp_path / "traffic.json"
        trading.write_text(json.dumps(upstream | {"rpc": description["rpc"]}))
        traffic = _popen(
            sys.executable, "-m", "anvil.traffic", "--world", str(trading), "--seconds", "20"
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
            [*TRAFFIC, "--world", str(world), "--seconds", "4", "--mix", "v3=1"],
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
        # The recorder follows every registered pool kind's logs: the V3 swaps' are journaled.
        logged = {
            log["topics"][0] for r in recorded if r["kind"] == "head" for log in r["data"]["logs"]
        }
        assert "0x" + V3_SWAP.hex() in logged

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
