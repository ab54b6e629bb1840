"""`mevbot devnet`: comes up, describes a complete world, restarts from its cache, stops cleanly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
from official_code import mismatches

from anvil.deployer import Deployer
from anvil.devnet import cache_key
from anvil.world import ROUTER_KINDS, SPEC, World
from chain.node import _probe


def _start_devnet(out: Path, state_dir: Path) -> tuple[subprocess.Popen[str], list[str]]:
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "mevbot.cli", "devnet", "--out", str(out)),
            *("--manual-mining", "--state-dir", str(state_dir)),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=os.environ | {"PYTHONUNBUFFERED": "1"},
    )
    lines: list[str] = []
    deadline = time.monotonic() + 60
    assert process.stdout is not None
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line.strip())
        if line.startswith("Ctrl-C"):
            return process, lines
    process.kill()
    pytest.fail(f"devnet did not come up: {lines}")


def _stop(process: subprocess.Popen[str]) -> str:
    process.send_signal(signal.SIGTERM)
    rest, _ = process.communicate(timeout=20)
    assert process.returncode == 0, rest
    return rest


def _has_code(deployer: Deployer, address: str) -> bool:
    return deployer.rpc("eth_getCode", address, "latest") not in ("0x", "0x0")


def test_devnet_comes_up_with_a_complete_world_and_restarts_from_cache(tmp_path):
    out, state_dir = tmp_path / "devnet.json", tmp_path / "state"
    process, lines = _start_devnet(out, state_dir)
    try:
        assert any("deployed" in line for line in lines)
        assert any(line.startswith("relay http://127.0.0.1:") for line in lines)
        assert any(str(out) in line for line in lines), "prints where the JSON went"
        world = World.from_json(json.loads(out.read_text()))
        d = Deployer(world.rpc["http"])
        assert world.chain_id == int(d.rpc("eth_chainId"), 16) == 31337

        assert set(world.tokens) == {t.symbol for t in SPEC.tokens}
        for token in world.tokens.values():
            assert _has_code(d, token["address"])
            contract = "WETH9" if token["symbol"] == "WETH" else "ERC20Token"
            assert d.call(contract, token["address"], "decimals") == (token["decimals"],)

        assert set(world.dexes) == {"uniswap", "sushiswap"}
        factories = {dex["factory"] for dex in world.dexes.values()}
        assert len(factories) == 2, "two independent DEXes"
        for dex in world.dexes.values():
            assert len(dex["pairs"]) == 5
            for name, pair in dex["pairs"].items():
                base, quote = name.split("/")
                (found,) = d.call(
                    "UniswapV2Factory",
                    dex["factory"],
                    "getPair",
                    world.tokens[base]["address"],
                    world.tokens[quote]["address"],
                )
                assert found.lower() == pair["address"]
                r0, r1, _ = d.call("UniswapV2Pair", pair["address"], "getReserves")
                assert r0 > 0 and r1 > 0

        # Same pair, two DEXes, prices apart (the second DEX is skewed by 1.2% on WETH/USDC).
        def weth_price(dex: str) -> float:
            pair = world.dexes[dex]["pairs"]["WETH/USDC"]
            r0, r1, _ = d.call("UniswapV2Pair", pair["address"], "getReserves")
            weth_first = pair["token0"] == world.tokens["WETH"]["address"]
            weth, usdc = (r0, r1) if weth_first else (r1, r0)
            return (usdc / 1e6) / (weth / 1e18)

        assert weth_price("uniswap") == pytest.approx(3000)
        assert weth_price("sushiswap") == pytest.approx(3000 * 1.012)

        for symbol, feed in world.feeds.items():
            # Read through the proxy: phase 1, the aggregator's first OCR transmission.
            round_id, answer, _, updated_at, _ = d.call(
                "AggregatorProxy", feed["address"], "latestRoundData"
            )
            assert answer == round(world.tokens[symbol]["usd_price"] * 1e8) and updated_at > 0
            assert round_id == (1 << 64) | 1
            (aggregator,) = d.call("AggregatorProxy", feed["address"], "aggregator")
            assert aggregator.lower() == feed["aggregator"]

        health = []
        for borrower in world.aave["borrowers"]:
            data = d.call("Pool", world.aave["pool"], "getUserAccountData", borrower["address"])
            assert data[1] > 0, "every borrower has debt"
            health.append(data[5] / 1e18)
            assert health[-1] == pytest.approx(borrower["target_health_factor"], rel=1e-6)
        assert any(h < 1.06 for h in health), "some borrowers are close to liquidation"

        # Uniswap's official bytecode, every router listed by kind, every V3 pool described.
        assert mismatches(world) == []
        kinds = {r["kind"]: r["address"] for r in world.routers}
        assert sorted(kinds) == sorted(ROUTER_KINDS)
        assert kinds["uniswap-v3"] == world.v3["swap_router"]
        assert kinds["uniswap-v3-02"] == world.v3["swap_router02"]
        assert kinds["universal-router"] == world.v3["universal_router"]
        v2_routers = {r["address"] for r in world.routers if r["kind"] == "uniswap-v2"}
        assert v2_routers == {dex["router"] for dex in world.dexes.values()}
        pools = world.v3["pools"]
        assert {(p["name"], p["fee"]) for p in pools} == {
            (f"{s.base}/{s.quote}", s.fee) for s in SPEC.v3_pools
        }
        assert len(pools) == 15
        for pool in pools:
            assert set(pool) == {"name", "address", "token0", "token1", "fee", "tick_spacing"}
            (fee,) = d.call("UniswapV3Pool", pool["address"], "fee")
            (token0,) = d.call("UniswapV3Pool", pool["address"], "token0")
            (liquidity,) = d.call("UniswapV3Pool", pool["address"], "liquidity")
            assert (fee, token0.lower()) == (pool["fee"], pool["token0"]) and liquidity > 0
        assert _has_code(d, world.v3["quoter"]) and _has_code(d, world.v3["position_manager"])

        assert _has_code(d, world.executor)
        (owner,) = d.call("Executor", world.executor, "owner")
        assert owner.lower() == world.roles["executor"].address
        (weth_held,) = d.call("WETH9", world.tokens["WETH"]["address"], "balanceOf", world.executor)
        assert weth_held == 100 * 10**18
        assert {"deployer", "searcher", "executor", "oracle_updater", "keeper"} <= set(world.roles)
        assert len({r.address for r in world.roles.values()}) == len(world.roles)
        assert world.extra["relay"].startswith("http://127.0.0.1:")
        port = int(world.rpc["http"].rsplit(":", 1)[1])
    finally:
        rest = _stop(process)
    assert "devnet stopped" in rest
    assert not _probe(port), "anvil is stopped on exit"

    process, lines = _start_devnet(out, state_dir)
    try:
        assert any("loaded from cache" in line for line in lines)
        cached = World.from_json(json.loads(out.read_text()))
        assert cached.executor == world.executor and cached.rpc["http"] != world.rpc["http"]
        d = Deployer(cached.rpc["http"])
        assert _has_code(d, cached.executor)
        pair = cached.dexes["uniswap"]["pairs"]["WETH/USDC"]["address"]
        assert d.call("UniswapV2Pair", pair, "getReserves")[0] > 0
        assert cached.v3 == world.v3 and cached.routers == world.routers
        assert d.call("UniswapV3Pool", cached.v3["pools"][0]["address"], "liquidity")[0] > 0
    finally:
        _stop(process)


def test_devnet_help_explains_itself():
    from mevbot.cli import build_parser

    parser = build_parser()
    top = parser.format_help()
    assert "devnet" in top and "good MEV only" in top
    sub = subprocess.run(
        [sys.executable, "-m", "mevbot.cli", "devnet", "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for option in ("--out", "--block-time", "--state-dir", "--no-cache", "--relay-port", "Ctrl-C"):
        assert option in sub


def test_cache_key_follows_the_world_and_old_world_json_still_loads(tmp_path):
    changed = replace(SPEC, v3_pools=SPEC.v3_pools[:1])
    assert cache_key(changed) != cache_key(SPEC)
    world = World.from_json(json.loads(json.dumps(_OLD_WORLD)))
    assert world.routers == [] and world.v3 == {}


# A world JSON written before the V3 side existed (no "routers", no "v3").
_OLD_WORLD = {
    "chain_id": 31337,
    "rpc": {"http": "http://127.0.0.1:1", "ws": "ws://127.0.0.1:1"},
    "roles": {},
    "traders": [],
    "tokens": {},
    "dexes": {},
    "feeds": {},
    "executor": "0x" + "11" * 20,
    "deployed_block": 1,
    "extra": {},
}
