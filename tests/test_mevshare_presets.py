"""MEV-Share on real networks: the mainnet and sepolia presets name Flashbots' event stream and the
bundle relay its ``mev_sendBundle`` goes to (mevbot/networks.py cites both), a config points them
elsewhere or leaves them out, and the preflight checks both: the stream answers as Server-Sent
Events, the bundle endpoint answers and takes the searcher's signature. Flashbots cannot be reached
from here: the devnet's MEV-Share node, which speaks the same wire protocol, stands in."""

from __future__ import annotations

import aiohttp
import pytest
from eth_account import Account

from anvil.stack import DevnetStack
from chain.node import ANVIL_DEV_KEYS, free_port
from execution.signer import LocalSigner
from mevbot.config import ConfigError, load_config
from mevbot.deployment import Keys
from mevbot.networks import limits
from mevbot.preflight import check_mev_share, check_mev_share_bundles
from mevbot.resolve import resolve_deployment

pytestmark = pytest.mark.timeout(120)

EXECUTOR = "0x000000000000000000000000000000000000e0e0"


def _sepolia(tmp_path, extra: str = ""):
    path = tmp_path / "mevbot.toml"
    path.write_text(
        f'network = "sepolia"\nexecutor = "{EXECUTOR}"\n{extra}'
        '[node]\nws = "ws://127.0.0.1:8546"\nhttp = "http://127.0.0.1:8545"\n'
    )
    return load_config(path, environ={})


@pytest.mark.parametrize(
    ("network", "stream", "bundles"),
    [
        ("mainnet", "https://mev-share.flashbots.net", "https://relay.flashbots.net"),
        (
            "sepolia",
            "https://mev-share-sepolia.flashbots.net",
            "https://relay-sepolia.flashbots.net",
        ),
        ("hoodi", None, None),
    ],
)
def test_the_presets_name_flashbots_stream_and_bundle_relay(network, stream, bundles):
    config = load_config(network=network, environ={})
    assert (config.mev_share_url, config.mev_share_bundle_url) == (stream, bundles)


def test_a_sepolia_run_follows_the_preset_node_or_the_one_the_config_names(tmp_path):
    preset = resolve_deployment(_sepolia(tmp_path))
    assert (preset.mevshare_stream, preset.mevshare_rpc) == (
        "https://mev-share-sepolia.flashbots.net",
        "https://relay-sepolia.flashbots.net",
    )
    assert not any("MEV-Share" in sentence for sentence in limits(preset))

    own = resolve_deployment(
        _sepolia(
            tmp_path,
            'mev_share_url = "http://127.0.0.1:9001/"\n'
            'mev_share_bundle_url = "http://127.0.0.1:9002/"\n',
        )
    )
    assert (own.mevshare_stream, own.mevshare_rpc) == (
        "http://127.0.0.1:9001/",
        "http://127.0.0.1:9002/",
    )

    off = resolve_deployment(_sepolia(tmp_path, 'mev_share_url = ""\nmev_share_bundle_url = ""\n'))
    assert (off.mevshare_stream, off.mevshare_rpc) == (None, None)
    assert (
        "no MEV-Share on sepolia: no backruns of private flow (set mev_share_url and "
        "mev_share_bundle_url to follow a MEV-Share node)"
    ) in limits(off)


def test_a_stream_without_a_bundle_endpoint_is_one_clear_message(tmp_path):
    with pytest.raises(ConfigError, match="MEV-Share needs both"):
        resolve_deployment(_sepolia(tmp_path, 'mev_share_bundle_url = ""\n'))
    with pytest.raises(ConfigError, match="give an http:// or https:// URL"):
        _sepolia(tmp_path, 'mev_share_bundle_url = "ws://127.0.0.1:9002"\n')


async def test_the_preflight_checks_the_stream_and_the_bundle_endpoint(devnet_cache):
    keys = Keys(LocalSigner(ANVIL_DEV_KEYS[1]), Account.from_key(ANVIL_DEV_KEYS[2]))
    async with (
        DevnetStack(block_time=None, state_dir=devnet_cache) as stack,
        aiohttp.ClientSession() as session,
    ):
        node = stack.matchmaker_url
        stream = await check_mev_share(session, node)
        assert (stream.ok, stream.detail) == (True, f"{node.rstrip('/')} streams events")
        bundles = await check_mev_share_bundles(session, node, keys)
        assert [(c.name, c.ok) for c in bundles] == [
            ("mev-share bundles", True),
            ("mev-share bundles signature", True),
        ]
        signer = keys.searcher.address.lower()
        assert bundles[1].detail == f"accepts requests signed by {signer}"

        closed = f"http://127.0.0.1:{free_port()}/"
        (down,) = await check_mev_share_bundles(session, closed, keys)
        assert (down.name, down.ok, down.fix) == (
            "mev-share bundles",
            False,
            "check mev_share_bundle_url",
        )
