"""Builder dialects: the exact eth_sendBundle JSON each builder gets, checked against the rules of
BuilderNet's parser (flashbots/rbuilder crates/rbuilder-primitives/src/serialize.rs tests, their
expectations ported as our own cases) as the devnet relay implements them, and sent over HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web
from eth_account import Account
from hypothesis import given, settings
from hypothesis import strategies as st

from anvil.relay import RpcError, parse_send_bundle
from chain.types import Bundle, SignedTx
from execution.dialects import (
    DIALECTS,
    DialectError,
    RefundTerms,
    Replacement,
    Submission,
    get_dialect,
)
from execution.relay import MultiRelay, RelayClient, RelayUnsupported
from execution.signature import HEADER
from execution.signer import LocalSigner

USER = LocalSigner("0x" + "51" * 32)
SEARCHER = Account.from_key("0x" + "52" * 32)
RECIPIENT = "0x95222290dd7278aa3ddd389cc1e1d165cc4bafe5"  # serialize.rs tests' refundRecipient
UUID = "3255ceb4-fdc5-592d-a501-2183727ca3df"  # serialize.rs test_correct_bundle_cancellation


def tx(nonce: int) -> SignedTx:
    return USER.sign_eip1559(
        chain_id=31337,
        nonce=nonce,
        to="0x" + "77" * 20,
        data=b"",
        value=nonce,
        gas=21_000,
        max_fee_per_gas=30 * 10**9,
        max_priority_fee_per_gas=10**9,
    )


TXS = (tx(0), tx(1))
BUNDLE = Bundle(txs=TXS, block_number=0x1136F1F)


def params(**fields: Any) -> list[dict[str, Any]]:
    """eth_sendBundle params with our two txs and block, plus ``fields``."""
    return [{"txs": [t.raw_hex for t in TXS], "blockNumber": "0x1136f1f", **fields}]


def rejected(fields: dict[str, Any]) -> str:
    with pytest.raises(RpcError) as caught:
        parse_send_bundle(params(**fields))
    return caught.value.message


# --- rbuilder's parser rules (serialize.rs mod tests), as the devnet relay applies them ---------


@pytest.mark.parametrize(
    "field",
    [
        {"droppingTxHashes": [TXS[0].hash]},
        {"refundPercent": 1},
        {"refundRecipient": RECIPIENT},
        {"refundTxHashes": [TXS[1].hash]},
        {"delayedRefund": True},
    ],
)
def test_v1_refuses_every_v2_field(field: dict[str, Any]) -> None:
    # test_error_bundle_decoding_invalid_fields_v1
    name = next(iter(field))
    assert rejected({"version": "v1", **field}) == f"Field {name} not supported by version v1"


def test_v2_refund_is_parsed_with_its_recipient_and_hash() -> None:
    # test_correct_bundle_decoding_refunds_no_block_v2: percent 1, recipient, the listed hash.
    parsed = parse_send_bundle(
        params(
            version="v2",
            refundPercent=1,
            refundRecipient=RECIPIENT,
            refundTxHashes=[TXS[0].hash],
            minTimestamp=123,
            maxTimestamp=1234,
        )
    )
    assert isinstance(parsed, Submission)
    assert parsed.refund == RefundTerms(1, RECIPIENT, TXS[0].hash, delayed=False)
    assert (parsed.bundle.min_timestamp, parsed.bundle.max_timestamp) == (123, 1234)


def test_missing_refund_hash_means_the_last_tx_and_missing_version_means_v2() -> None:
    # test_correct_bundle_decoding_refund_hash_missing / _no_version: no refundTxHashes is the
    # same bundle as one naming the last tx; no version accepts v2 fields.
    implicit = parse_send_bundle(params(refundPercent=1, refundRecipient=RECIPIENT))
    explicit = parse_send_bundle(
        params(refundPercent=1, refundRecipient=RECIPIENT, refundTxHashes=[TXS[-1].hash])
    )
    assert isinstance(implicit, Submission) and isinstance(explicit, Submission)
    assert implicit.refund is not None and implicit.refund.tx_hash is None
    assert implicit.bundle.bundle_hash == explicit.bundle.bundle_hash


def test_two_refund_hashes_are_refused() -> None:
    # test_fail_bundle_decoding_2_refund_hashes
    message = rejected({"refundPercent": 1, "refundTxHashes": [TXS[0].hash, TXS[1].hash]})
    assert message == "More than one refund tx hash not supported"


def test_refund_percent_rules_and_default_recipient() -> None:
    # parse_refund: >= 100 is invalid, 0 means no refund, the recipient defaults to tx[0]'s sender.
    assert rejected({"refundPercent": 100}) == "Invalid refund percent 100"
    no_refund = parse_send_bundle(params(refundPercent=0))
    assert isinstance(no_refund, Submission) and no_refund.refund is None
    default = parse_send_bundle(params(refundPercent=7))
    assert isinstance(default, Submission)
    assert default.refund == RefundTerms(7, USER.address)


@pytest.mark.parametrize("txs", [{"txs": []}, {"txs": None}, {}])
def test_a_uuid_with_no_txs_is_a_cancel(txs: dict[str, Any]) -> None:
    # test_correct_bundle_cancellation_decoding: [] / null / absent txs + uuid + nonce 49.
    body = {"blockNumber": "0x0", "replacementUuid": UUID, "replacementNonce": 49, **txs}
    assert parse_send_bundle([body]) == Replacement(UUID, 49)


def test_a_uuid_needs_a_replacement_nonce() -> None:
    # decode_replacement_data: IncorrectReplacementData without replacementNonce.
    message = rejected({"replacementUuid": UUID})
    assert message == "Incorrect replacement data: a uuid needs replacementNonce"
    assert parse_send_bundle(params(uuid=UUID, replacementNonce=3)) == Submission(
        BUNDLE, Replacement(UUID, 3)
    )


def test_zero_max_timestamp_is_unset() -> None:
    # test_correct_bundle_zero_timestamp_decoding_v1
    parsed = parse_send_bundle(params(version="v1", minTimestamp=0, maxTimestamp=0))
    assert isinstance(parsed, Submission)
    assert (parsed.bundle.min_timestamp, parsed.bundle.max_timestamp) == (0, None)


# --- the JSON each dialect sends ----------------------------------------------------------------

FULL = Submission(
    Bundle(txs=TXS, block_number=0x1136F1F, reverting_tx_hashes=(TXS[0].hash,)),
    replacement=Replacement(UUID, 4),
    dropping_tx_hashes=(TXS[0].hash,),
    refund=RefundTerms(10, RECIPIENT, TXS[1].hash),
)
RAW = [t.raw_hex for t in TXS]


def test_buildernet_sends_v2_with_nonce_and_every_refund_field() -> None:
    assert get_dialect("buildernet").send_params(FULL) == {
        "version": "v2",
        "txs": RAW,
        "blockNumber": "0x1136f1f",
        "revertingTxHashes": [TXS[0].hash],
        "droppingTxHashes": [TXS[0].hash],
        "replacementUuid": UUID,
        "replacementNonce": 4,
        "refundPercent": 10,
        "refundRecipient": RECIPIENT,
        "refundTxHashes": [TXS[1].hash],
    }


def test_titan_sends_its_sequence_number_and_refuses_timestamps() -> None:
    titan = get_dialect("titan")
    sent = titan.send_params(FULL)
    assert sent["replacementSeqNumber"] == 4 and "replacementNonce" not in sent
    assert "version" not in sent
    with pytest.raises(DialectError, match="titan: minTimestamp is not accepted"):
        titan.send_params(Submission(Bundle(TXS, 1, min_timestamp=5)))
    assert titan.cancel_call(Replacement(UUID, 5)).method == "eth_cancelBundle"


def test_beaver_sends_no_uuid_and_cannot_cancel() -> None:
    beaver = get_dialect("beaver")
    sent = beaver.send_params(FULL)
    assert "replacementUuid" not in sent
    assert sent["refundTransactionHashes"] == [TXS[1].hash]
    assert sent["droppingTransactionHashes"] == [TXS[0].hash]
    assert sent["refundRecipient"] == RECIPIENT
    with pytest.raises(DialectError, match="beaver: no way to cancel"):
        beaver.cancel_call(Replacement(UUID, 1))


def test_flashbots_relay_gets_a_nonce_but_no_refund_fields() -> None:
    flashbots = get_dialect("flashbots")
    with pytest.raises(DialectError, match="flashbots: droppingTxHashes is not accepted"):
        flashbots.send_params(FULL)
    plain = Submission(Bundle(TXS, 9, builders=("beaverbuild.org",)), Replacement(UUID, 2))
    assert flashbots.send_params(plain) == {
        "txs": RAW,
        "blockNumber": "0x9",
        "builders": ["beaverbuild.org"],
        "replacementUuid": UUID,
        "replacementNonce": 2,
    }
    with pytest.raises(DialectError, match="refundPercent is not accepted"):
        flashbots.send_params(Submission(Bundle(TXS, 9), refund=RefundTerms(5, RECIPIENT)))


def test_refund_percent_ranges_per_builder() -> None:
    hundred = Submission(Bundle(TXS, 1), refund=RefundTerms(100, RECIPIENT))
    assert get_dialect("rsync").send_params(hundred)["refundPercent"] == 100
    for name in ("buildernet", "titan", "beaver", "ultrasound"):
        with pytest.raises(DialectError, match=f"{name}: refundPercent must be"):
            get_dialect(name).send_params(hundred)
    zero = Submission(Bundle(TXS, 1), refund=RefundTerms(0, RECIPIENT))
    assert all("refundPercent" not in d.send_params(zero) for d in DIALECTS.values())


def test_only_buildernet_takes_delayed_refunds() -> None:
    delayed = Submission(Bundle(TXS, 1), refund=RefundTerms(5, RECIPIENT, delayed=True))
    assert get_dialect("buildernet").send_params(delayed)["delayedRefund"] is True
    for name in ("titan", "beaver", "rsync", "ultrasound"):
        with pytest.raises(DialectError, match="delayedRefund is not accepted"):
            get_dialect(name).send_params(delayed)


def test_buildernet_cancel_is_the_uuid_with_no_txs() -> None:
    call = get_dialect("buildernet").cancel_call(Replacement(UUID, 49))
    assert call.method == "eth_sendBundle"
    assert parse_send_bundle(call.params) == Replacement(UUID, 49)


def test_a_submission_refuses_refund_and_dropping_hashes_outside_the_bundle() -> None:
    with pytest.raises(ValueError, match="refundTxHashes"):
        Submission(BUNDLE, refund=RefundTerms(5, RECIPIENT, "0x" + "ab" * 32))
    with pytest.raises(ValueError, match="droppingTxHashes"):
        Submission(BUNDLE, dropping_tx_hashes=("0x" + "ab" * 32,))
    with pytest.raises(ValueError, match="unknown builder dialect 'bloxroute'"):
        get_dialect("bloxroute")


@settings(max_examples=60, deadline=None)
@given(
    block=st.integers(1, 2**40),
    seq=st.integers(0, 2**32),
    percent=st.integers(0, 99),
    refund_last=st.booleans(),
    delayed=st.booleans(),
    timestamps=st.tuples(st.none() | st.integers(0, 2**32), st.none() | st.integers(1, 2**32)),
    reverting=st.booleans(),
)
def test_buildernet_params_parse_back_to_the_same_submission(
    block: int,
    seq: int,
    percent: int,
    refund_last: bool,
    delayed: bool,
    timestamps: tuple[int | None, int | None],
    reverting: bool,
) -> None:
    # Like serialize.rs' round trips: what we send, BuilderNet's rules read back unchanged.
    bundle = Bundle(
        TXS,
        block,
        min_timestamp=timestamps[0],
        max_timestamp=timestamps[1],
        reverting_tx_hashes=(TXS[1].hash,) if reverting else (),
    )
    refund = RefundTerms(percent, RECIPIENT, None if refund_last else TXS[0].hash, delayed)
    sent = Submission(bundle, Replacement(UUID, seq), refund=refund)
    wire = orjson.loads(orjson.dumps(get_dialect("buildernet").send_params(sent)))
    parsed = parse_send_bundle([wire])
    assert parsed == (sent if percent else Submission(bundle, Replacement(UUID, seq)))
    assert "refundRecipient" in wire if percent else "refundRecipient" not in wire


# --- over HTTP: each relay gets its own dialect and header --------------------------------------


@asynccontextmanager
async def capturing_relay() -> AsyncIterator[tuple[str, list[tuple[dict[str, Any], bool]]]]:
    """A relay that records each request body and whether it was signed."""
    seen: list[tuple[dict[str, Any], bool]] = []

    async def handle(request: web.Request) -> web.Response:
        seen.append((orjson.loads(await request.read()), HEADER in request.headers))
        return web.json_response(
            {"jsonrpc": "2.0", "id": 1, "result": {"bundleHash": "0x" + "cd" * 32}}
        )

    app = web.Application()
    app.router.add_post("/", handle)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.2)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    try:
        yield f"http://{host}:{port}", seen
    finally:
        await runner.cleanup()


async def test_multirelay_sends_each_relay_its_own_dialect() -> None:
    names = ("buildernet", "titan", "beaver")
    async with (
        aiohttp.ClientSession() as session,
        capturing_relay() as (url_a, seen_a),
        capturing_relay() as (url_b, seen_b),
        capturing_relay() as (url_c, seen_c),
    ):
        clients = [
            RelayClient(url, SEARCHER, name=name, dialect=name, session=session)
            for name, url in zip(names, (url_a, url_b, url_c), strict=True)
        ]
        outcomes = await MultiRelay(clients).send_bundle(FULL)
        assert [o.ok for o in outcomes] == [True, True, True]
        (a, a_signed), (b, b_signed), (c, c_signed) = seen_a[0], seen_b[0], seen_c[0]
        assert a["params"] == [get_dialect("buildernet").send_params(FULL)]
        assert b["params"] == [get_dialect("titan").send_params(FULL)]
        assert c["params"] == [get_dialect("beaver").send_params(FULL)]
        assert (a_signed, b_signed, c_signed) == (True, True, False)

        cancels = await MultiRelay(clients).cancel(Replacement(UUID, 5))
        assert isinstance(cancels["beaver"], RelayUnsupported)
        assert seen_a[1][0]["params"] == [
            {"txs": [], "replacementUuid": UUID, "version": "v2", "replacementNonce": 5}
        ]
        assert seen_b[1][0] == {
            "jsonrpc": "2.0",
            "id": 2,
            "method": "eth_cancelBundle",
            "params": [{"replacementUuid": UUID}],
        }
        assert len(seen_c) == 1  # nothing was sent to beaver
        assert clients[2].stats().errors == {"unsupported": 1}
