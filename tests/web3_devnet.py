"""Shared test helpers: web3 over one anvil (deploy our artifacts, send from dev accounts, read
reverts) and an OCR feed (aggregator + proxy) deployed with it."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from web3 import Web3
from web3.contract import Contract
from web3.exceptions import ContractLogicError
from web3.logs import DISCARD

from anvil import artifacts
from chain.ocr import transmit_answer

USD = 10**8


@dataclass
class Devnet:
    """web3 over one anvil: deploy artifacts, send from unlocked dev accounts, read reverts."""

    w3: Web3
    accounts: list[str] = field(default_factory=list)

    @classmethod
    def connect(cls, url: str) -> Devnet:
        w3 = Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": 10}))
        return cls(w3=w3, accounts=list(w3.eth.accounts))

    def deploy(self, name: str, *args: Any, sender: str | None = None) -> Contract:
        artifact = artifacts.artifact_json(name)
        factory = self.w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
        receipt = self.send(factory.constructor(*args), sender or self.accounts[0])
        return self.w3.eth.contract(address=receipt["contractAddress"], abi=artifact["abi"])

    def at(self, name: str, address: str) -> Contract:
        artifact = artifacts.artifact_json(name)
        return self.w3.eth.contract(address=Web3.to_checksum_address(address), abi=artifact["abi"])

    def send(self, call: Any, sender: str, **tx: Any) -> Any:
        tx_hash = call.transact({"from": sender, **tx})
        receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=10)
        assert receipt["status"] == 1, f"transaction reverted: {receipt}"
        return receipt

    def revert_reason(self, call: Any, sender: str) -> str:
        """The revert reason of ``call`` from ``sender`` (fails the test if it does not revert)."""
        with pytest.raises(ContractLogicError) as caught:
            call.call({"from": sender})
        return str(caught.value.message).removeprefix("execution reverted: ")

    def snapshot(self) -> str:
        return self.w3.provider.make_request("evm_snapshot", [])["result"]

    def revert(self, snapshot_id: str) -> None:
        assert self.w3.provider.make_request("evm_revert", [snapshot_id])["result"] is True


@dataclass
class Feed:
    """An OCR aggregator behind its proxy; ``transmitter`` may transmit under ``digest``."""

    devnet: Devnet
    proxy: Contract
    aggregator: Contract
    digest: bytes
    transmitter: str
    epochs: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def transmit(self, answer: int) -> Any:
        """Transmit ``answer`` in the next epoch; the receipt."""
        data = transmit_answer(answer, self.digest, next(self.epochs))
        return self.devnet.w3.eth.wait_for_transaction_receipt(
            self.devnet.w3.eth.send_transaction(
                {"from": self.transmitter, "to": self.aggregator.address, "data": data}
            )
        )


def deploy_feed(devnet: Devnet, description: str, answer: int, transmitter: str) -> Feed:
    """Aggregator (4 oracles, f = 1, ``transmitter`` the first) answering ``answer``, and its
    proxy."""
    owner = devnet.accounts[0]
    aggregator = devnet.deploy("OffchainAggregator", 1, 2**191 - 1, 8, description)
    oracles = [transmitter, *devnet.accounts[6:9]]
    devnet.send(aggregator.functions.setConfig(oracles, oracles, 1, 1, b""), owner)
    digest = aggregator.functions.latestConfigDetails().call()[2]
    proxy = devnet.deploy("AggregatorProxy", aggregator.address, "0x" + "00" * 20)
    feed = Feed(devnet, proxy, aggregator, digest, transmitter)
    feed.transmit(answer)
    return feed


def event_args(contract: Contract, receipt: Any, event: str) -> list[dict[str, Any]]:
    return [
        dict(e["args"])
        for e in getattr(contract.events, event)().process_receipt(receipt, errors=DISCARD)
    ]
