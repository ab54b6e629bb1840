"""Price-feed updates: the OCR ``transmit`` calls that set an aggregator's next answer.

The intent's ``feed`` is the called aggregator (the state maps it to the proxy the lending
market reads) and its answer is the report's median (:mod:`chain.ocr` has the layouts).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from eth_abi import decode as abi_decode
from eth_abi.exceptions import DecodingError

from chain.intents import OracleUpdateIntent
from chain.ocr import FORWARD, Report, decode_ocr2_report, decode_report
from watcher.decode_v2 import Build, Row


def _median_of(report_at: int, decode: Callable[[bytes], Report]) -> Build:
    def build(feed: str, method: str, value: int, args: tuple[Any, ...]) -> OracleUpdateIntent:
        return OracleUpdateIntent(feed, method, decode(args[report_at]).median)

    return build


# Chainlink aggregators (reference builders-oracles-2026.md §4.2): OCR1's AccessControlled-
# OffchainAggregator behind most mainnet feeds, OCR2, and SVR's dual aggregator, whose
# transmitSecondary arrives through MEV-Share.
FEED_ROWS: tuple[Row, ...] = (
    ("c9807539", "transmit(bytes,bytes32[],bytes32[],bytes32)", _median_of(0, decode_report)),
    (
        "b1dc65a4",
        "transmit(bytes32[3],bytes,bytes32[],bytes32[],bytes32)",
        _median_of(1, decode_ocr2_report),
    ),
    (
        "ba0cb29e",
        "transmitSecondary(bytes32[3],bytes,bytes32[],bytes32[],bytes32)",
        _median_of(1, decode_ocr2_report),
    ),
)


def svr_forward(call_data: bytes) -> tuple[str, bytes] | None:
    """The inner call of an SVR forwarder's ``forward(address to, bytes data)`` (selector
    ``0x6fadcf72``, reference builders-oracles-2026.md §4.2): ``(to, data)``, or None for other or
    malformed calldata."""
    if call_data[:4] != FORWARD:
        return None
    try:
        to, data = abi_decode(["address", "bytes"], call_data[4:])
    except (DecodingError, ValueError, OverflowError):
        return None
    return to.lower(), bytes(data)
