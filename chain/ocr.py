"""Chainlink OCR reports: the layouts oracles transmit to an aggregator, encoded and decoded.

Mainnet price feeds are updated by ``transmit`` calls on the aggregator behind a feed's proxy
(reference builders-oracles-2026.md §4.2, selectors computed there and checked in the tests):

- OCR1 ``transmit(bytes report, bytes32[] rs, bytes32[] ss, bytes32 rawVs)`` (``0xc9807539``,
  AccessControlledOffchainAggregator): ``report = abi.encode(bytes32 rawReportContext, bytes32
  rawObservers, int192[] observations)``; ``rawReportContext`` is 11 zero bytes, the 16-byte
  config digest, a 4-byte epoch and a 1-byte round.
- OCR2 ``transmit(bytes32[3] reportContext, bytes report, ...)`` (``0xb1dc65a4``) and SVR's
  ``transmitSecondary`` with the same arguments (``0xba0cb29e``): ``report = abi.encode(uint32
  observationsTimestamp, bytes32 rawObservers, int192[] observations, int192 juelsPerFeeCoin)``.

Observations are sorted ascending (the aggregator refuses others) and the answer is the median,
``observations[len // 2]``.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import eth_abi
from eth_abi.exceptions import DecodingError

from chain.types import MalformedError

OCR1_TRANSMIT = bytes.fromhex("c9807539")
OCR2_TRANSMIT = bytes.fromhex("b1dc65a4")
TRANSMIT_SECONDARY = bytes.fromhex("ba0cb29e")
FORWARD = bytes.fromhex("6fadcf72")  # forward(address,bytes): SVR's forwarder (§4.2)

_OCR1_REPORT = ("bytes32", "bytes32", "int192[]")
_OCR2_REPORT = ("uint32", "bytes32", "int192[]", "int192")
_OCR1_ARGUMENTS = ("bytes", "bytes32[]", "bytes32[]", "bytes32")


@dataclass(frozen=True, slots=True)
class Report:
    """A decoded report: its observations (sorted ascending) and the answer they give."""

    observations: tuple[int, ...]

    @property
    def median(self) -> int:
        return self.observations[len(self.observations) // 2]


def report_context(config_digest: bytes, epoch: int, round_: int) -> bytes:
    """OCR1's ``rawReportContext`` word for a 16-byte config digest, an epoch and a round."""
    if len(config_digest) != 16:
        raise ValueError("an OCR1 config digest is 16 bytes")
    return bytes(11) + config_digest + epoch.to_bytes(4, "big") + round_.to_bytes(1, "big")


def encode_report(context: bytes, observations: tuple[int, ...]) -> bytes:
    """An OCR1 report; observer ``i`` made observation ``i`` (one index byte each)."""
    observers = bytes(range(len(observations))).ljust(32, b"\0")
    return eth_abi.encode(list(_OCR1_REPORT), [context, observers, list(observations)])


def encode_ocr2_report(timestamp: int, observations: tuple[int, ...]) -> bytes:
    """An OCR2 median report (``juelsPerFeeCoin`` zero: the devnet pays no LINK)."""
    observers = bytes(range(len(observations))).ljust(32, b"\0")
    return eth_abi.encode(list(_OCR2_REPORT), [timestamp, observers, list(observations), 0])


def transmit_calldata(report: bytes, signatures: int) -> bytes:
    """OCR1 ``transmit`` calldata carrying ``report`` and ``signatures`` signature slots.

    The devnet's aggregator counts signatures but does not verify them, so the slots are zero.
    """
    empty = [bytes(32)] * signatures
    return OCR1_TRANSMIT + eth_abi.encode(list(_OCR1_ARGUMENTS), [report, empty, empty, bytes(32)])


def _observations(values: list[int]) -> Report:
    if not values:
        raise MalformedError("OCR report without observations")
    if any(a > b for a, b in itertools.pairwise(values)):
        raise MalformedError("OCR observations not sorted (the aggregator would revert)")
    return Report(tuple(values))


def decode_report(report: bytes) -> Report:
    """An OCR1 report; MalformedError when it does not fit the layout."""
    try:
        _, _, observations = eth_abi.decode(list(_OCR1_REPORT), report, strict=True)
    except (DecodingError, OverflowError, ValueError) as error:
        raise MalformedError(f"OCR1 report: {error}"[:200]) from None
    return _observations(list(observations))


def decode_ocr2_report(report: bytes) -> Report:
    """An OCR2 median report (also SVR's ``transmitSecondary``); MalformedError when it does
    not fit the layout."""
    try:
        _, _, observations, _ = eth_abi.decode(list(_OCR2_REPORT), report, strict=True)
    except (DecodingError, OverflowError, ValueError) as error:
        raise MalformedError(f"OCR2 report: {error}"[:200]) from None
    return _observations(list(observations))


def transmit_answer(answer: int, config_digest: bytes, epoch: int, faults: int = 1) -> bytes:
    """OCR1 ``transmit`` calldata whose median is ``answer``, as ``2f + 1`` oracles would report
    it: observations spread 0.05% apart around it, ``f + 1`` signature slots, round 1 of
    ``epoch`` (which must be past the aggregator's latest)."""
    step = abs(answer) // 2000
    observations = tuple(answer + step * offset for offset in range(-faults, faults + 1))
    report = encode_report(report_context(config_digest, epoch, 1), observations)
    return transmit_calldata(report, faults + 1)
