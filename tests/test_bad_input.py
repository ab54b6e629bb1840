"""Bad input never crashes a parser: fuzzing of the state's log parser, the relay answer parsers
(and a real RelayClient against a local server answering garbage), and the config loader.

The calldata and log decoders are fuzzed in tests/test_decode.py.
"""

from __future__ import annotations

import contextlib
import json

import aiohttp
import pytest
from bad_relays import BadRelay
from eth_account import Account
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chain.topics import (
    AGGREGATOR_CONFIRMED,
    ANSWER_UPDATED,
    BALANCE_TRANSFER,
    BORROW,
    COLLATERAL_DISABLED,
    COLLATERAL_ENABLED,
    LIQUIDATION_CALL,
    REPAY,
    RESERVE_DATA_UPDATED,
    SUPPLY,
    SYNC,
    WITHDRAW,
)
from chain.types import Bundle, Log, MalformedError, SignedTx
from execution.relay import (
    RelayClient,
    RelayFailure,
    parse_bundle_receipt,
    parse_call_bundle_result,
    parse_cancel_receipt,
    parse_sim_mev_bundle_result,
    parse_tx_sim_result,
)
from mevbot.config import ConfigError, load_config
from simulation.aave_v3 import RAY, ReserveState
from simulation.amm import Pool
from simulation.state import ChainState, FeedLink

POOL = "0x" + "11" * 20
FEED = "0x" + "22" * 20
AGGREGATOR = "0x" + "23" * 20
LENDING = "0x" + "33" * 20
A_TOKEN = "0x" + "34" * 20
TOKENS = ("0x" + "aa" * 20, "0x" + "bb" * 20)

words = st.binary(min_size=0, max_size=200)
topic_values = st.one_of(
    st.sampled_from(
        [
            SYNC,
            ANSWER_UPDATED,
            AGGREGATOR_CONFIRMED,
            SUPPLY,
            WITHDRAW,
            BORROW,
            REPAY,
            LIQUIDATION_CALL,
            RESERVE_DATA_UPDATED,
            COLLATERAL_ENABLED,
            COLLATERAL_DISABLED,
            BALANCE_TRANSFER,
            bytes(12) + bytes.fromhex(TOKENS[0][2:]),  # the listed reserve, as an indexed word
        ]
    ),
    st.binary(min_size=0, max_size=40),
)
logs = st.builds(
    Log,
    address=st.sampled_from([POOL, FEED, AGGREGATOR, LENDING, A_TOKEN, "0x" + "44" * 20]),
    topics=st.lists(topic_values, max_size=5).map(tuple),
    data=words,
    block_number=st.just(10),
    block_hash=st.just("0x" + "55" * 32),
    tx_hash=st.just("0x" + "66" * 32),
    tx_index=st.just(0),
    log_index=st.integers(0, 100),
)


def _state() -> ChainState:
    state = ChainState(lending_pool=LENDING, feed_assets={FEED: TOKENS[0]})
    configuration = 8000 | 8250 << 16 | 10500 << 32 | 18 << 48
    state.set_reserve(ReserveState(TOKENS[0], 0, configuration, RAY, 0, RAY, 0, 0, A_TOKEN))
    state.link_aggregator(AGGREGATOR, FeedLink(FEED, 1))
    state.add_pool("0x" + "77" * 20, Pool(POOL, *TOKENS, 10**18, 10**18))
    return state


@settings(max_examples=400, deadline=None)
@given(st.lists(logs, max_size=12))
def test_apply_block_counts_garbage_logs_as_malformed_and_never_raises(block_logs):
    state = _state()
    changes = state.apply_block(10, "0x" + "55" * 32, block_logs)
    assert 0 <= changes.malformed <= len(block_logs)
    assert state.block_number == 10
    for pool in state.pools.values():
        assert 0 <= pool.reserve0 < 2**256 and 0 <= pool.reserve1 < 2**256
    assert all(len(a) == 42 and link.proxy == FEED for a, link in state.aggregators.items())
    assert state.can_roll_back_to(9) or not block_logs  # the undo entry was kept


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=0, max_size=128).filter(lambda d: len(d) != 64))
def test_a_sync_log_with_the_wrong_data_size_is_malformed(data):
    state = _state()
    log = Log(POOL, (SYNC,), data, 10, "0x" + "55" * 32, "0x" + "66" * 32, 0, 0)
    assert state.apply_block(10, "0x" + "55" * 32, [log]).malformed == 1
    assert (state.pools[POOL].reserve0, state.pools[POOL].reserve1) == (10**18, 10**18)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=70)
    | st.sampled_from(["0x", "0x12", "0x" + "ab" * 32, "123", "-1", "0xzz"]),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "bundleHash",
                    "results",
                    "txHash",
                    "gasUsed",
                    "gasPrice",
                    "gasFees",
                    "coinbaseDiff",
                    "ethSentToCoinbase",
                    "bundleGasPrice",
                    "stateBlockNumber",
                    "totalGasUsed",
                    "fromAddress",
                    "toAddress",
                    "value",
                    "error",
                    "revert",
                    "success",
                    "stateBlock",
                    "profit",
                    "logs",
                    "smart",
                ]
            ),
            children,
            max_size=12,
        )
    ),
    max_leaves=20,
)

PARSERS = (
    parse_tx_sim_result,
    parse_call_bundle_result,
    parse_sim_mev_bundle_result,
    lambda value: parse_bundle_receipt(value, "fuzz"),
    lambda value: parse_cancel_receipt(value, "fuzz"),
)


@settings(max_examples=500, deadline=None)
@given(json_values)
def test_relay_answer_parsers_raise_only_malformed_error(value):
    for parse in PARSERS:
        with contextlib.suppress(MalformedError):
            parse(value)


@pytest.fixture(scope="module")
def searcher():
    return Account.from_key("0x" + "42" * 32)


BUNDLE = Bundle(txs=(SignedTx(bytes.fromhex("02f8"), "0x" + "99" * 32, POOL, 0),), block_number=100)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    answers=st.lists(
        st.tuples(
            st.sampled_from([200, 200, 200, 400, 404, 429, 500, 502]),
            st.binary(max_size=300)
            | json_values.map(lambda v: json.dumps({"jsonrpc": "2.0", "id": 1, "result": v})).map(
                str.encode
            )
            | json_values.map(lambda v: json.dumps({"error": v})).map(str.encode),
        ),
        min_size=1,
        max_size=3,
    )
)
async def test_a_relay_client_facing_random_answers_fails_only_with_relay_failures(
    answers, searcher
):
    async with BadRelay("scripted") as relay, aiohttp.ClientSession() as session:
        for status, body in answers:
            relay.queue(status, body)
        client = RelayClient(
            relay.url, searcher, name="fuzz", session=session, timeout=1.0, backoff_base=0.001
        )
        try:
            receipt = await client.send_bundle(BUNDLE)
        except RelayFailure as failure:
            assert failure.kind in {
                "rejected",
                "server_error",
                "timeout",
                "unreachable",
                "throttled",
                "bad_response",
            }
            stats = client.stats()
            assert stats.ok == 0 and sum(stats.errors.values()) == 1
        else:
            assert receipt.bundle_hash.startswith("0x") and len(receipt.bundle_hash) == 66
            assert client.stats().ok == 1


toml_fragments = st.sampled_from(
    [
        'network = "devnet"\n',
        'network = "mainnet"\n',
        'network = "nowhere"\n',
        "network = 5\n",
        "[node]\n",
        'ws = "ws://127.0.0.1:1"\n',
        "timeout_s = -1\n",
        "timeout_s = 1e999\n",
        "[strategies.backrun]\n",
        "coinbase_share_bps = 20000\n",
        "min_profit_wei = -5\n",
        "[[relays]]\n",
        'url = "ftp://x"\n',
        'name = "\\u0000\\u001b[2J"\n',
        'executor = "0x12"\n',
        "[metrics]\n",
        "port = 99999999999999999999999\n",
        "[keys]\n",
        'executor_key = "0xdeadbeef"\n',
        "dry_run = true\n",
        "[[keepers.oracle]]\n",
        "feed = []\n",
        "= broken\n",
        "[[[\n",
    ]
)
environments = st.dictionaries(
    st.sampled_from(
        [
            "MEVBOT_NETWORK",
            "MEVBOT_DRY_RUN",
            "MEVBOT_NODE__WS",
            "MEVBOT_STRATEGIES__TARGET_BLOCKS",
            "MEVBOT_METRICS__PORT",
            "MEVBOT_STORE__LEDGER_PATH",
        ]
    ),
    st.text(max_size=20),
    max_size=3,
)


@settings(max_examples=300, deadline=None)
@given(
    text=st.lists(toml_fragments | st.text(max_size=30), max_size=10).map("".join),
    environ=environments,
)
def test_load_config_on_random_text_raises_only_config_error(tmp_path_factory, text, environ):
    path = tmp_path_factory.mktemp("config") / "mevbot.toml"
    path.write_text(text, errors="surrogatepass")
    try:
        load_config(path, environ=environ)
    except ConfigError as error:
        assert str(error), "a ConfigError says what is wrong"


@settings(max_examples=100, deadline=None)
@given(raw=st.binary(max_size=60).map(lambda b: b'network = "devnet"\n# ' + b))
def test_load_config_on_random_bytes_raises_only_config_error(tmp_path_factory, raw):
    path = tmp_path_factory.mktemp("config") / "mevbot.toml"
    path.write_bytes(raw)
    try:
        load_config(path, environ={})
    except ConfigError as error:
        assert str(error), "a ConfigError says what is wrong"


async def test_a_hostile_token_symbol_is_rendered_literally(anvil):
    """The dashboard shows no token symbols; its escaping (tui.safe) is checked on the real
    answers of BadSymbolToken.symbol() for the markup and invalid-UTF-8 modes."""
    from anvil.deployer import Deployer
    from chain.node import ANVIL_DEV_KEYS
    from mevbot.tui import safe

    owner = Account.from_key(ANVIL_DEV_KEYS[0]).address.lower()
    deployer = Deployer(anvil.http_url)
    token = deployer.deploy("BadSymbolToken", "Bad", "BAD", 18, sender=owner)
    shown = {}
    for mode in (2, 3):
        deployer.transact("BadSymbolToken", token, "setSymbolMode", mode, sender=owner)
        answer = deployer.rpc("eth_call", {"to": token, "data": "0x95d89b41"}, "latest")
        raw = bytes.fromhex(answer[2:])
        length = int.from_bytes(raw[32:64], "big")
        text = raw[64 : 64 + length].decode("utf-8", errors="replace")
        shown[mode] = safe(text)
    markup = shown[2]
    assert markup.plain.startswith("[red]x") and "\x1b" not in markup.plain
    assert not markup.spans, "rendered as text, never parsed as markup"
    assert all(ch.isprintable() for ch in shown[3].plain)
