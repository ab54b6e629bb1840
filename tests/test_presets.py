"""Network presets with the protocols' real addresses, and what the bot says it will not do on a
network: a sepolia or hoodi config run against a local node of that chain id (anvil: none of the
protocols are there) never idles silently."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from chain.node import ANVIL_DEV_KEYS
from mevbot.config import load_config

CLI = [sys.executable, "-m", "mevbot.cli"]
ENV = {k: v for k, v in os.environ.items() if not k.startswith("MEVBOT_")} | {
    "PYTHONUNBUFFERED": "1",
    "MEVBOT_EXECUTOR_KEY": ANVIL_DEV_KEYS[1],
    "MEVBOT_SEARCHER_KEY": ANVIL_DEV_KEYS[2],
}


def test_sepolia_and_mainnet_presets_hold_uniswaps_published_addresses():
    sepolia = load_config(network="sepolia", environ={})
    # docs.uniswap.org v2 and v3 Ethereum deployments (mevbot/networks.py cites each).
    assert sepolia.weth == "0xfff9976782d46cc05630d1f6ebab18b2324d6b14"
    assert sepolia.v2_factories == {
        "0xee567fe1712faf6149d80da1e6934e354124cfe3": "0xf62c03e08ada871a0beb309762e260a7a6a880e6"
    }
    assert sepolia.routers == {
        "0xee567fe1712faf6149d80da1e6934e354124cfe3": "uniswap-v2",
        "0x3bfa4769fb09eefc5a80d6e87c3b9c650f7ae48e": "uniswap-v3-02",
        # Uniswap/universal-router deploy-addresses/sepolia.json
        "0x3a9d48ab9751398bbfa63ad67599bb04e4bdf98b": "universal-router-v2",
        "0x3fc91a3afd70395cd496c647d5a6cc9d4b2b7fad": "universal-router-v1.2",
    }
    mainnet = load_config(network="mainnet", environ={})
    assert mainnet.weth == "0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2"
    assert mainnet.v2_factories["0x7a250d5630b4cf539739df2c5dacb4c659f2488d"] == (
        "0x5c69bee701ef814a2b6a3edd4b1652cb9cc5aa6f"
    )
    assert mainnet.routers["0x68b3465833fb72a70ecdf485e0e4c7bd8665fc45"] == "uniswap-v3-02"
    assert mainnet.routers["0x66a9893cc07d91d95644aedd05d03f95e1dba8af"] == "universal-router-v2"
    hoodi = load_config(network="hoodi", environ={})
    assert (hoodi.weth, hoodi.routers, hoodi.v2_factories) == (None, {}, {})


def _config(tmp_path: Path, network: str, port: int, extra: str = "") -> Path:
    config = tmp_path / f"{network}.toml"
    config.write_text(
        f'network = "{network}"\ndry_run = true\n{extra}'
        f'[node]\nws = "ws://127.0.0.1:{port}"\nhttp = "http://127.0.0.1:{port}"\n'
        f'[store]\nledger_path = "{tmp_path / "ledger.sqlite"}"\n[metrics]\nenabled = false\n'
    )
    return config


def _mevbot(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, timeout=120, env=ENV, check=False
    )


@pytest.mark.parametrize(
    ("network", "chain_id", "extra", "expected"),
    [
        (
            "sepolia",
            "11155111",
            # Flashbots' MEV-Share node (the preset's) cannot be reached from here: left out.
            'mev_share_url = ""\nmev_share_bundle_url = ""\n',
            [
                "Uniswap V3 (factory 0x0227628f3f023bb0b980b67d528571c95c6dac1c): its pools are "
                "not tracked, so V3 swaps are not backrun",
                "Aave V3 (PoolAddressesProvider 0x012bac54348c0e635dcac9d5fb99f06f24136c9a) is "
                "not read by the liquidation keeper: no liquidations",
                "no MEV-Share on sepolia: no backruns of private flow (set mev_share_url and "
                "mev_share_bundle_url to follow a MEV-Share node)",
            ],
        ),
        (
            "hoodi",
            "560048",
            'weth = "0x000000000000000000000000000000000000beef"\n',
            [
                "no Uniswap V2 on hoodi (Uniswap's deployments list none): no backrun arbitrage "
                "unless v2_factories names a DEX",
                "no Aave V3 on hoodi (Aave's address book has none): no liquidations",
                "no MEV-Share on hoodi (Flashbots runs it on mainnet and sepolia only)",
            ],
        ),
    ],
)
def test_the_bot_says_what_it_will_not_do_on_the_network(
    anvil_factory, tmp_path, network, chain_id, extra, expected
):
    node = anvil_factory("--chain-id", chain_id)
    config = _config(tmp_path, network, node.port, extra)
    deployed = _mevbot("executor", "deploy", "--config", str(config), "--write-config")
    assert deployed.returncode == 0, deployed.stderr
    doctor = _mevbot("doctor", "--config", str(config))
    assert doctor.returncode == 1 and "Traceback" not in doctor.stderr, doctor.stderr
    said = doctor.stdout.split(f"what the bot does not do on {network}:\n", 1)[1]
    for sentence in expected:
        assert f"  - {sentence}\n" in said
    run = _mevbot("run", "--config", str(config), "--no-tui")
    assert run.returncode == 2 and "Traceback" not in run.stderr, run.stderr
    if network == "sepolia":
        # The preset's Uniswap V2 factory has no code on this node: the run refuses to idle.
        assert "mevbot run: pools: the factories 0xf62c03e08ada871a0beb309762e260a7a6a880e6 " in (
            run.stderr
        )
    else:
        assert "mevbot run: pools: 0 pools from 0 factories on hoodi: no arbitrage" in run.stderr
    for sentence in expected:
        assert f"mevbot run: on {network}: {sentence}\n" in run.stderr
