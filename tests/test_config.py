"""Config: presets, TOML, env overrides; one clear message per mistake; keys never from the file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from anvil.world import World
from mevbot.config import PRESETS, ConfigError, load_config
from mevbot.resolve import resolve_deployment


def _write(tmp_path, text: str):
    path = tmp_path / "mevbot.toml"
    path.write_text(text)
    return path


def test_preset_fills_chain_id_relays_and_routers(tmp_path):
    config = load_config(
        _write(tmp_path, 'network = "mainnet"\n[node]\nws = "ws://node:8546"\n'), environ={}
    )
    assert config.chain_id == 1
    assert [(r.name, r.dialect) for r in config.relays] == [
        ("flashbots", "flashbots"),
        ("titan", "titan"),
        ("beaver", "beaver"),
        ("rsync", "rsync"),
        ("ultrasound", "ultrasound"),
    ]
    assert config.relays[0].url == "https://relay.flashbots.net"
    assert config.routers["0x7a250d5630b4cf539739df2c5dacb4c659f2488d"] == "uniswap-v2"
    assert config.routers["0x66a9893cc07d91d95644aedd05d03f95e1dba8af"] == "universal-router-v2"
    assert sum(kind.startswith("universal-router") for kind in config.routers.values()) == 4
    assert config.node.ws == "ws://node:8546"
    sepolia = load_config(network="sepolia", environ={})
    assert sepolia.chain_id == 11155111 and "sepolia" in sepolia.relays[0].url


@pytest.mark.parametrize("network", sorted(PRESETS))
def test_every_preset_is_a_valid_config(network):
    assert load_config(network=network, environ={}).network == network


def test_environment_overrides_the_file(tmp_path):
    path = _write(tmp_path, 'network = "sepolia"\n[strategies.backrun]\nmin_profit_wei = 5\n')
    config = load_config(
        path,
        environ={
            "MEVBOT_STRATEGIES__BACKRUN__MIN_PROFIT_WEI": "7",
            "MEVBOT_NODE__WS": "ws://other:1",
            "MEVBOT_DRY_RUN": "true",
            "HOME": "/root",
        },
    )
    assert config.strategies.backrun.min_profit_wei == 7
    assert config.node.ws == "ws://other:1" and config.dry_run is True


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        (
            'network = "mainnet"\n[strategies.backrun]\ncoinbase_share_bps = 20000\n',
            "strategies.backrun.coinbase_share_bps: Input should be less than or equal to 10000",
        ),
        (
            'network = "mainnet"\n[strategies.backrun]\nmin_proft_wei = 1\n',
            "strategies.backrun.min_proft_wei: unknown field",
        ),
        (
            'network = "mainnet"\nexecutor = "0x1234"\n',
            "executor: Value error, not an address: '0x1234'",
        ),
        (
            'network = "moonnet"\n',
            "network: unknown network 'moonnet'; choose one of devnet, hoodi, mainnet, sepolia",
        ),
        ("[node]\nws = 'ws://x'\n", "network: required field is missing"),
        (
            'network = "mainnet"\n[[relays]]\nname = "x"\nurl = "ftp://relay"\n',
            "relays.0.url: Value error, relay url must be http(s)://",
        ),
        ('network = "mainnet"\nnode = [', "not valid TOML"),
    ],
)
def test_a_bad_config_is_one_clear_message(tmp_path, toml, expected):
    with pytest.raises(ConfigError) as raised:
        load_config(_write(tmp_path, toml), environ={})
    assert expected in str(raised.value)


def test_a_missing_file_says_so(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.toml", environ={})


def test_private_keys_are_refused_in_the_file_without_echoing_them(tmp_path):
    key = "0x" + "ab" * 32
    with pytest.raises(ConfigError) as raised:
        load_config(
            _write(tmp_path, f'network = "mainnet"\n[keys]\nexecutor_env = "{key}"\n'), environ={}
        )
    message = str(raised.value)
    assert "keys.executor_env" in message and "MEVBOT_EXECUTOR_KEY" in message
    assert "ab" * 32 not in message


def test_key_variables_in_the_environment_are_not_config_fields():
    config = load_config(
        network="devnet",
        environ={"MEVBOT_EXECUTOR_KEY": "0x" + "11" * 32, "MEVBOT_KEYSTORE_PASSWORD": "pw"},
    )
    assert config.network == "devnet" and "11" * 32 not in config.model_dump_json()


CLI = [sys.executable, "-m", "mevbot.cli"]
ORACLE = '[[keepers.oracle]]\nfeed = "0x' + "11" * 20 + '"\n'


@pytest.mark.parametrize(
    ("toml", "environ", "expected"),
    [
        (
            'network = "mainnet"\nexector = "0x' + "11" * 20 + '"\n',
            {},
            "exector: unknown field; did you mean executor? (see README: Configuration)",
        ),
        (
            'network = "mainnet"\n[node]\nws = "http://127.0.0.1:8545"\n',
            {},
            "node.ws: Value error, 'http://127.0.0.1:8545' cannot carry subscriptions (pending "
            "txs, heads): give ws://, wss:// or the node's IPC socket path",
        ),
        (
            'network = "mainnet"\n',
            {"MEVBOT_NODE__WSS": "ws://127.0.0.1:8546"},
            "MEVBOT_NODE__WSS: unknown field node.wss; did you mean MEVBOT_NODE__WS?",
        ),
        (
            'network = "mainnet"\n',
            {"MEVBOT_NODE__WS": "http://127.0.0.1:8545"},
            "node.ws (from MEVBOT_NODE__WS): Value error, 'http://127.0.0.1:8545' cannot carry "
            "subscriptions (pending txs, heads): give ws://, wss:// or the node's IPC socket path",
        ),
        (
            'network = "mainnet"\n' + ORACLE + 'source = { kind = "dex", pair = "WETH/USDC" }\n',
            {},
            "keepers.oracle.0.source.kind: Input should be 'http'; keepers.oracle.0.source.url: "
            "required field is missing; keepers.oracle.0.source.json_path: required field is "
            "missing; keepers.oracle.0.source.pair: unknown field; check the spelling (see "
            "README: Configuration)",
        ),
        (
            'network = "mainnet"\n[[relays]]\nname = "a"\nurl = "https://a"\n'
            '[[relays]]\nname = "a"\nurl = "https://b"\n',
            {},
            "relays: Value error, relay names must differ: a is used twice",
        ),
        (
            'network = "mainnet"\n[store]\nredis_url = "localhost:6379"\n',
            {},
            "store.redis_url: Value error, 'localhost:6379': give redis://host:port/db, rediss:// "
            "or unix://",
        ),
    ],
)
def test_mevbot_run_names_a_config_mistake_in_one_line(tmp_path, toml, environ, expected):
    config = _write(tmp_path, toml)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEVBOT_")} | environ
    done = subprocess.run(
        [*CLI, "run", "--config", str(config)], capture_output=True, text=True, env=env, timeout=60
    )
    assert (done.returncode, done.stderr) == (2, f"mevbot run: {expected}\n")


def test_mevbot_run_refuses_a_directory_as_config(tmp_path):
    done = subprocess.run(
        [*CLI, "run", "--config", str(tmp_path)], capture_output=True, text=True, timeout=60
    )
    assert (done.returncode, done.stderr) == (
        2,
        f"mevbot run: {tmp_path} is a directory, not a config file (TOML)\n",
    )


def test_a_role_without_redis_says_where_redis_comes_from(tmp_path):
    config = _write(tmp_path, 'network = "devnet"\n')
    done = subprocess.run(
        [*CLI, "run", "--config", str(config), "--role", "worker"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (done.returncode, done.stderr) == (
        2,
        "mevbot run: --role worker shares its work through Redis: give --redis URL "
        "(or store.redis_url)\n",
    )


def _world_json(tmp_path: Path, **fields: Any) -> Path:
    """A minimal devnet world JSON (WETH 0x01.., a V2 router 0x02.. of factory 0x03.., the
    lending pool 0x04.., the executor 0x05..) with ``fields`` on top."""
    world = World(
        chain_id=31337,
        rpc={"http": "http://127.0.0.1:1", "ws": "ws://127.0.0.1:1"},
        roles={},
        traders=[],
        tokens={"WETH": {"address": "0x" + "01" * 20}},
        dexes={"uni": {"router": "0x" + "02" * 20, "factory": "0x" + "03" * 20}},
        feeds={},
        aave={"pool": "0x" + "04" * 20},
        executor="0x" + "05" * 20,
        deployed_block=1,
        **fields,
    )
    devnet_json = tmp_path / "devnet.json"
    devnet_json.write_text(json.dumps(world.to_json()))
    return devnet_json


def test_the_devnet_honours_the_files_own_addresses_and_relays(tmp_path):
    devnet_json = _world_json(tmp_path, extra={"relay": "http://127.0.0.1:2"})
    router, factory = "0x" + "aa" * 20, "0x" + "bb" * 20
    config = load_config(
        _write(
            tmp_path,
            f'network = "devnet"\ndevnet_json = "{devnet_json}"\nexecutor = "0x{"cc" * 20}"\n'
            f'weth = "0x{"dd" * 20}"\n[routers]\n"{router}" = "uniswap-v2"\n'
            f'[v2_factories]\n"{router}" = "{factory}"\n'
            '[[relays]]\nname = "mine"\nurl = "http://127.0.0.1:3"\n',
        ),
        environ={},
    )
    deployment = resolve_deployment(config)
    assert deployment.executor == "0x" + "cc" * 20 and deployment.weth == "0x" + "dd" * 20
    assert deployment.router_factories == {"0x" + "02" * 20: "0x" + "03" * 20, router: factory}
    assert set(deployment.routers) == {"0x" + "02" * 20, router}
    assert deployment.relays == (("devnet", "http://127.0.0.1:2"), ("mine", "http://127.0.0.1:3"))
    assert deployment.lending_pool == "0x" + "04" * 20  # the world's, the file names none


def test_key_variables_the_file_names_are_not_config_fields(tmp_path):
    config = load_config(
        _write(tmp_path, 'network = "devnet"\n[keys]\nexecutor_env = "MEVBOT_OWNER_KEY"\n'),
        environ={"MEVBOT_OWNER_KEY": "0x" + "11" * 32},
    )
    assert config.keys.executor_env == "MEVBOT_OWNER_KEY"


def test_the_worlds_routers_reach_the_deployment_by_kind(tmp_path):
    routers = [
        {"address": "0x" + "02" * 20, "kind": "uniswap-v2", "name": "uni"},
        {"address": "0x" + "06" * 20, "kind": "uniswap-v3-02", "name": "swap-router-02"},
        {"address": "0x" + "07" * 20, "kind": "universal-router", "name": "universal-router"},
        {"address": "0x" + "08" * 20, "kind": "universal-router-v2", "name": "ur-v2"},  # a fork's
    ]
    v3 = {"factory": "0x" + "09" * 20, "v2_factory": "0x" + "03" * 20}
    devnet_json = _world_json(tmp_path, routers=routers, v3=v3)
    config = load_config(
        _write(tmp_path, f'network = "devnet"\ndevnet_json = "{devnet_json}"\n'), environ={}
    )
    kinds = {a: k.value for a, k in resolve_deployment(config).routers.items()}
    assert kinds == {
        "0x" + "02" * 20: "uniswap-v2-router",
        "0x" + "06" * 20: "uniswap-v3-swap-router02",
        "0x" + "07" * 20: "universal-router-v2.1",  # the npm package the devnet deploys
        "0x" + "08" * 20: "universal-router-v2",
    }
    both = {"uniswap-v3": "0x" + "09" * 20, "uniswap-v2": "0x" + "03" * 20}
    venues = resolve_deployment(config).venues
    assert venues["0x" + "06" * 20] == venues["0x" + "07" * 20] == venues["0x" + "08" * 20] == both


def test_a_relay_names_a_known_dialect(tmp_path):
    text = 'network = "sepolia"\n[[relays]]\nname = "b"\nurl = "https://b.example"\n'
    assert load_config(_write(tmp_path, text), environ={}).relays[0].dialect == "generic"
    with pytest.raises(ConfigError) as caught:
        load_config(_write(tmp_path, text + 'dialect = "bloxroute"\n'), environ={})
    assert str(caught.value).startswith(
        "relays.0.dialect: Value error, unknown dialect 'bloxroute'"
    )


def test_the_readme_example_is_a_valid_config(tmp_path):
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    example = readme.split("```toml\n", 1)[1].split("```", 1)[0]
    config = load_config(
        _write(tmp_path, example.replace('"0x..."', f'"0x{"11" * 20}"')), environ={}
    )
    assert config.network == "sepolia" and [r.name for r in config.relays] == ["titan"]
