"""Our MEV-Share wire format against the peers' expectations, ported as our own cases.

From flashbots/mev-share-client-ts (``src/tests/rpc.spec.ts``, ``src/api/mungers.ts``): hints
travel in snake_case and ``hash`` is always among them; ``inclusion.block`` is a 0x-hex
quantity; version ``v0.1``; ``validity`` may come as empty ``refund``/``refundConfig`` lists.
From flashbots/mev-share-node (``mevshare/bundle_validation.go`` and its tests, ``types.go``):
``{hash}`` only first and never alone, no ``validity.refund`` and no hints beside a ``{hash}``,
at most 30 blocks of range, percents within 0..100 summing to at most 100, nesting depth 1,
and the bundle hash: a lone element's own hash, else keccak of the elements' hashes.
"""

from __future__ import annotations

import pytest
from eth_account import Account
from eth_utils import keccak

from anvil.matchmaker import KNOWN_HINTS, parse_hints
from anvil.relay import RpcError, parse_mev_bundle
from chain.types import SignedTx
from execution.relay import mev_bundle

SEARCHER = "0x" + "5e" * 20
TARGET = "0x" + keccak(b"a hint's double hash").hex()
CLIENT_TS_HINTS = [  # rpc.spec.ts "should encode hints in snake_case", hash added by the munger
    "contract_address",
    "function_selector",
    "calldata",
    "logs",
    "default_logs",
    "tx_hash",
    "hash",
]


def _tx(nonce: int) -> SignedTx:
    account = Account.from_key("0x" + "01" * 32)
    signed = account.sign_transaction(
        {
            "type": 2,
            "chainId": 31337,
            "nonce": nonce,
            "to": "0x" + "22" * 20,
            "value": 1,
            "gas": 21_000,
            "maxFeePerGas": 10**9,
            "maxPriorityFeePerGas": 10**9,
        }
    )
    raw = bytes(signed.raw_transaction)
    return SignedTx(raw, "0x" + signed.hash.hex(), account.address.lower(), nonce)


def test_a_backrun_bundle_has_the_documented_v01_shape() -> None:
    tx = _tx(0)
    bundle = mev_bundle(13333337, [TARGET, tx], max_block=13333339, refund_config=[(SEARCHER, 100)])
    assert bundle == {
        "version": "v0.1",
        "inclusion": {"block": "0xcb7359", "maxBlock": "0xcb735b"},
        "body": [{"hash": TARGET}, {"tx": tx.raw_hex, "canRevert": False}],
        "validity": {"refund": [], "refundConfig": [{"address": SEARCHER, "percent": 100}]},
    }
    parsed = parse_mev_bundle(bundle, SEARCHER)
    assert (parsed.block_number, parsed.max_block, parsed.backrun_of) == (
        13333337,
        13333339,
        TARGET,
    )
    assert parsed.bundle_hash == "0x" + keccak(bytes.fromhex(TARGET[2:] + tx.hash[2:])).hex()


def test_the_client_ts_default_shape_is_accepted() -> None:
    tx = _tx(0)
    # mungeBundleParams: version v0.1, hex block, no maxBlock, empty validity lists.
    params = {
        "version": "v0.1",
        "inclusion": {"block": "0xcb7359"},
        "body": [{"hash": TARGET}, {"tx": tx.raw_hex, "canRevert": False}],
        "validity": {"refund": [], "refundConfig": []},
    }
    parsed = parse_mev_bundle(params, SEARCHER)
    assert parsed.max_block == parsed.block_number == 13333337  # block only: that block alone
    # A lone signed tx's bundle hash is its own hash.
    alone = parse_mev_bundle(dict(params, body=[{"tx": tx.raw_hex, "canRevert": False}]), "0x")
    assert alone.bundle_hash == tx.hash


def test_hints_travel_in_snake_case_and_the_hash_hint_is_implied() -> None:
    assert set(CLIENT_TS_HINTS) == KNOWN_HINTS
    assert parse_hints(CLIENT_TS_HINTS) == KNOWN_HINTS
    assert parse_hints(["calldata"]) == {"calldata", "hash"}  # any hint adds the hash (node)
    assert parse_hints([]) == frozenset()  # none: nothing is shared at all
    with pytest.raises(RpcError, match="invalid hint 'contractAddress'"):
        parse_hints(["contractAddress"])  # the client's camelCase never reaches the wire


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"version": "v0.2"}, "unsupported bundle version"),
        ({"inclusion": {"block": "0x10", "maxBlock": "0x2f"}}, "invalid inclusion"),  # 31 blocks
        ({"inclusion": {"block": "0x10", "maxBlock": "0x0f"}}, "invalid inclusion"),
        ({"body": [{"hash": TARGET}]}, "invalid bundle body"),  # a hash alone
        ({"validity": {"refund": [{"bodyIdx": 0, "percent": 10}]}}, "invalid bundle constraints"),
        ({"privacy": {"hints": ["calldata"]}}, "invalid bundle privacy"),
        ({"validity": {"refundConfig": [{"address": SEARCHER, "percent": 101}]}}, "constraints"),
    ],
)
def test_what_the_node_refuses_is_refused(change: dict[str, object], message: str) -> None:
    tx = _tx(0)
    params = {
        "version": "v0.1",
        "inclusion": {"block": "0x10"},
        "body": [{"hash": TARGET}, {"tx": tx.raw_hex, "canRevert": False}],
    }
    with pytest.raises(RpcError, match=message):
        parse_mev_bundle({**params, **change}, SEARCHER)


def test_a_hash_after_a_tx_and_nesting_past_one_level_are_refused() -> None:
    tx, other = _tx(0), _tx(1)
    with pytest.raises(RpcError, match="invalid bundle body"):
        parse_mev_bundle(
            {
                "version": "v0.1",
                "inclusion": {"block": "0x10"},
                "body": [{"tx": tx.raw_hex, "canRevert": False}, {"hash": TARGET}],
            },
            SEARCHER,
        )
    inner = {"version": "v0.1", "inclusion": {"block": "0x10"}, "body": [{"tx": other.raw_hex}]}
    middle = {"version": "v0.1", "inclusion": {"block": "0x10"}, "body": [{"bundle": inner}]}
    with pytest.raises(RpcError, match="bundle too deep"):
        parse_mev_bundle(
            {"version": "v0.1", "inclusion": {"block": "0x10"}, "body": [{"bundle": middle}]},
            SEARCHER,
        )
