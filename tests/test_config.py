"""Config: presets, TOML, env overrides; one clear message per mistake; keys never from the file."""

from __future__ import annotations

import pytest

from mevbot.config import ConfigError, load_config


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
    assert config.node.ws == "ws://node:8546"
    sepolia = load_config(network="sepolia", environ={})
    assert sepolia.chain_id == 11155111 and "sepolia" in sepolia.relays[0].url


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


def test_a_relay_names_a_known_dialect(tmp_path):
    text = 'network = "sepolia"\n[[relays]]\nname = "b"\nurl = "https://b.example"\n'
    assert load_config(_write(tmp_path, text), environ={}).relays[0].dialect == "generic"
    with pytest.raises(ConfigError) as caught:
        load_config(_write(tmp_path, text + 'dialect = "bloxroute"\n'), environ={})
    assert str(caught.value).startswith(
        "relays.0.dialect: Value error, unknown dialect 'bloxroute'"
    )
