"""OCR transmits decode into oracle updates with the report's median: three real transactions
(tests/fixtures/ocr1_transmits.json, with their hashes and where they were found), reports built
by :mod:`chain.ocr` for OCR1, OCR2 and SVR's transmitSecondary, and hypothesis: random reports
round-trip, and mutated or truncated calldata never raises."""

from __future__ import annotations

import json
from pathlib import Path

import eth_abi
import pytest
from eth_utils import keccak
from hypothesis import given, settings
from hypothesis import strategies as st

from chain.intents import OracleUpdateIntent
from chain.ocr import (
    encode_ocr2_report,
    encode_report,
    report_context,
    transmit_answer,
    transmit_calldata,
)
from watcher.decode import FEED_METHODS, Decoder

FIXTURE = json.loads((Path(__file__).parent / "fixtures/ocr1_transmits.json").read_text())
AGGREGATOR = "0x" + "a9" * 20
INT192 = st.integers(-(2**191), 2**191 - 1)


@pytest.mark.parametrize("tx", FIXTURE["transactions"], ids=lambda tx: tx["tx_hash"][:10])
def test_real_mainnet_transmits_decode_to_their_median(tx):
    decoder = Decoder(feeds=[tx["to"]])
    intent = decoder.decode(tx["to"], bytes.fromhex(tx["input"][2:]))
    assert intent == OracleUpdateIntent(tx["to"], "transmit", tx["median"])
    assert decoder.stats.by_method == {"transmit": 1}


def test_the_real_transmits_are_what_the_fixture_says():
    """The recorded medians are those of eth-abi's strict decoding of the recorded input."""
    for tx in FIXTURE["transactions"]:
        data = bytes.fromhex(tx["input"][2:])
        report, rs, ss, _ = eth_abi.decode(
            ["bytes", "bytes32[]", "bytes32[]", "bytes32"], data[4:], strict=True
        )
        _, _, observations = eth_abi.decode(["bytes32", "bytes32", "int192[]"], report)
        assert len(observations) == tx["observations"] and len(rs) == len(ss) == tx["signatures"]
        assert observations[len(observations) // 2] == tx["median"]
        assert len(bytes.fromhex(tx["tx_hash"][2:])) == 32 and tx["source"]


def test_feed_selectors_are_the_mainnet_ones():
    assert {s.hex(): m.signature for s, m in FEED_METHODS.items()} == {
        "c9807539": "transmit(bytes,bytes32[],bytes32[],bytes32)",
        "b1dc65a4": "transmit(bytes32[3],bytes,bytes32[],bytes32[],bytes32)",
        "ba0cb29e": "transmitSecondary(bytes32[3],bytes,bytes32[],bytes32[],bytes32)",
    }
    for selector, method in FEED_METHODS.items():
        assert keccak(text=method.signature)[:4] == selector


@settings(max_examples=300, deadline=None)
@given(
    st.lists(INT192, min_size=1, max_size=31).map(sorted),
    st.binary(min_size=16, max_size=16),
    st.integers(0, 2**32 - 1),
    st.integers(0, 255),
    st.integers(1, 11),
)
def test_ocr1_reports_round_trip_to_their_median(observations, digest, epoch, round_, sigs):
    report = encode_report(report_context(digest, epoch, round_), tuple(observations))
    intent = Decoder(feeds=[AGGREGATOR]).decode(AGGREGATOR, transmit_calldata(report, sigs))
    assert intent == OracleUpdateIntent(
        AGGREGATOR, "transmit", observations[len(observations) // 2]
    )


@settings(max_examples=200, deadline=None)
@given(
    st.lists(INT192, min_size=1, max_size=31).map(sorted), st.sampled_from(["b1dc65a4", "ba0cb29e"])
)
def test_ocr2_and_svr_reports_decode_to_their_median(observations, selector):
    report = encode_ocr2_report(1_700_000_000, tuple(observations))
    arguments = eth_abi.encode(
        ["bytes32[3]", "bytes", "bytes32[]", "bytes32[]", "bytes32"],
        [[bytes(32)] * 3, report, [bytes(32)], [bytes(32)], bytes(32)],
    )
    decoder = Decoder(feeds=[AGGREGATOR])
    intent = decoder.decode(AGGREGATOR, bytes.fromhex(selector) + arguments)
    assert intent is not None and intent.answer == observations[len(observations) // 2]


def test_unsorted_or_empty_reports_are_malformed_not_updates():
    decoder = Decoder(feeds=[AGGREGATOR])
    context = report_context(bytes(16), 1, 1)
    for observations in ((3, 2, 1), ()):
        data = transmit_calldata(encode_report(context, observations), 2)
        assert decoder.decode(AGGREGATOR, data) is None
    assert decoder.stats.malformed == 2
    assert decoder.stats.last_malformed.startswith("OCR report without observations")


@settings(max_examples=400, deadline=None)
@given(st.data())
def test_mutated_and_truncated_transmits_never_raise(data):
    tx = data.draw(st.sampled_from(FIXTURE["transactions"]))
    calldata = bytearray(bytes.fromhex(tx["input"][2:]))
    for _ in range(data.draw(st.integers(0, 4))):
        calldata[data.draw(st.integers(0, len(calldata) - 1))] = data.draw(st.integers(0, 255))
    calldata = bytes(calldata[: data.draw(st.integers(0, len(calldata)))])
    decoder = Decoder(feeds=[AGGREGATOR])
    intent = decoder.decode(AGGREGATOR, calldata)
    assert intent is None or isinstance(intent, OracleUpdateIntent)
    assert decoder.stats.decoded + decoder.stats.undecoded + decoder.stats.malformed == 1


def test_the_keepers_transmit_has_the_answer_as_median():
    data = transmit_answer(2_880 * 10**8, bytes(16), 5)
    assert Decoder(feeds=[AGGREGATOR]).decode(AGGREGATOR, data).answer == 2_880 * 10**8
