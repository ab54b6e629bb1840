"""Chainlink SVR on the devnet: a feed whose aggregator is a dual one, updated through a forwarder.

Aave's SVR feeds (reference builders-oracles-2026.md §4.2) read a *dual aggregator*: the public
``transmit`` goes through the mempool as before, while the SVR node operators send
``transmitSecondary`` privately through MEV-Share, wrapped in their forwarder's
``forward(address,bytes)``; only the feed's SVR proxy sees the secondary answers, so the
liquidations they enable are won by backrunning the hint. On the devnet the feeds named in
:data:`SVR_FEEDS` are built that way: their proxy (the address the lending markets read) is the
dual aggregator's secondary proxy, and a :class:`Forwarder` owned by the deployer lets the SVR
operator key (:data:`SVR_OPERATOR_KEY`, a public devnet seed) transmit as one of the oracles.
"""

from __future__ import annotations

import eth_abi
from eth_utils import keccak

from chain.ocr import FORWARD, TRANSMIT_SECONDARY, encode_ocr2_report
from execution.signer import rlp_bytes, rlp_int, rlp_list

SVR_FEEDS = ("WETH",)
SVR_OPERATOR_KEY = "0x" + keccak(text="mevbot-devnet:svr-node-operator").hex()
_TRANSMIT_ARGUMENTS = ["bytes32[3]", "bytes", "bytes32[]", "bytes32[]", "bytes32"]


def create_address(sender: str, nonce: int) -> str:
    """The address ``CREATE`` gives a contract deployed by ``sender`` at ``nonce``."""
    encoded = rlp_list([rlp_bytes(bytes.fromhex(sender.removeprefix("0x"))), rlp_int(nonce)])
    return "0x" + keccak(encoded)[12:].hex()


def forward_secondary(
    aggregator: str, config_digest: bytes, epoch: int, answer: int, timestamp: int, faults: int = 1
) -> bytes:
    """``forward(aggregator, transmitSecondary(...))`` calldata whose report's median is
    ``answer``: ``2f + 1`` observations 0.05% apart, round 1 of ``epoch`` (past the aggregator's
    latest secondary one), ``f + 1`` signature slots (the devnet aggregator counts, never
    verifies them)."""
    step = abs(answer) // 2000
    observations = tuple(answer + step * offset for offset in range(-faults, faults + 1))
    context = [bytes(16) + config_digest, (epoch << 8 | 1).to_bytes(32, "big"), bytes(32)]
    empty = [bytes(32)] * (faults + 1)
    report = encode_ocr2_report(timestamp, observations)
    inner = TRANSMIT_SECONDARY + eth_abi.encode(
        _TRANSMIT_ARGUMENTS, [context, report, empty, empty, bytes(32)]
    )
    return FORWARD + eth_abi.encode(["address", "bytes"], [aggregator, inner])
