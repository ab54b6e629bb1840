"""Deploy and drive contracts on a local anvil for set-up work (the world, tests, the demo).

Not the hot path: it sends plain ``eth_sendTransaction`` from accounts anvil holds unlocked (or
impersonates), waits for each receipt and fails loudly with the revert reason. Calldata comes
from :mod:`chain.abi` over the artifacts of :mod:`anvil.artifacts` (Uniswap's official builds,
our own contracts).
"""

from __future__ import annotations

import itertools
import json
import urllib.request
from dataclasses import dataclass
from typing import Any

import eth_abi

from anvil.artifacts import creation_code, load
from chain.abi import Artifact, canonical_type
from chain.types import hex_to_int


class DeployError(RuntimeError):
    """A set-up transaction failed; the message names the call and the node's reason."""


@dataclass(frozen=True, slots=True)
class Receipt:
    tx_hash: str
    status: int
    contract_address: str | None
    gas_used: int
    block_number: int
    logs: tuple[dict[str, Any], ...]


@dataclass(frozen=True, slots=True)
class Call:
    """One set-up transaction for :meth:`Deployer.send_all`."""

    sender: str
    to: str
    data: bytes
    value: int = 0
    what: str = ""
    gas: int | None = None  # None: anvil estimates it


def encode(contract: str, function: str, *args: Any) -> bytes:
    """Calldata of ``contract.function(*args)``."""
    return load(contract).abi.function(function).encode(*args)


def _receipt(raw: dict[str, Any]) -> Receipt:
    return Receipt(
        tx_hash=raw["transactionHash"],
        status=hex_to_int(raw["status"]),
        contract_address=raw.get("contractAddress"),
        gas_used=hex_to_int(raw["gasUsed"]),
        block_number=hex_to_int(raw["blockNumber"]),
        logs=tuple(raw.get("logs", [])),
    )


def _result(method: str, answer: dict[str, Any]) -> Any:
    if "error" in answer:
        error = answer["error"]
        raise DeployError(f"{method}: {error.get('message')} {error.get('data') or ''}".strip())
    return answer["result"]


class Deployer:
    """Synchronous set-up client over anvil's HTTP endpoint."""

    def __init__(self, http_url: str, timeout: float = 30.0) -> None:
        self.url = http_url
        self.timeout = timeout
        self._ids = itertools.count(1)

    def rpc(self, method: str, *params: Any) -> Any:
        answer = self._post(
            {"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": list(params)}
        )
        return _result(method, answer)

    def send(
        self,
        sender: str,
        to: str | None,
        data: bytes = b"",
        value: int = 0,
        what: str = "",
        gas: int | None = None,
    ) -> Receipt:
        tx: dict[str, Any] = {"from": sender, "data": "0x" + data.hex(), "value": hex(value)}
        if to is not None:
            tx["to"] = to
        if gas is not None:
            tx["gas"] = hex(gas)
        try:
            tx_hash = self.rpc("eth_sendTransaction", tx)
        except DeployError as error:
            raise DeployError(f"{what or 'transaction'} failed: {error}") from None
        raw = self.rpc("eth_getTransactionReceipt", tx_hash)
        if raw is None:  # not automining: mine it now so set-up stays sequential
            self.rpc("evm_mine")
            raw = self.rpc("eth_getTransactionReceipt", tx_hash)
        return self._checked(tx, _receipt(raw), what)

    def _checked(self, tx: dict[str, Any], receipt: Receipt, what: str) -> Receipt:
        if receipt.status != 1:
            raise DeployError(f"{what or 'transaction'} reverted: {self._revert_reason(tx)}")
        return receipt

    def send_all(self, calls: list[Call]) -> list[Receipt]:
        """Send many independent set-up calls in one batch and mine them together (a few blocks
        instead of one per call); automine is on again afterwards. Fails like :meth:`send`."""
        txs = [
            {"from": c.sender, "to": c.to, "data": "0x" + c.data.hex(), "value": hex(c.value)}
            | ({"gas": hex(c.gas)} if c.gas is not None else {})
            for c in calls
        ]
        senders = sorted({c.sender for c in calls})
        counts = self._batch([("eth_getTransactionCount", [a, "pending"]) for a in senders])
        nonces = {a: hex_to_int(n) for a, n in zip(senders, counts, strict=True)}
        for tx in txs:  # anvil numbers a sender's pending txs from the mined count: do it here
            tx["nonce"] = hex(nonces[tx["from"]])
            nonces[tx["from"]] += 1
        self.rpc("evm_setAutomine", False)
        try:
            hashes = self._batch([("eth_sendTransaction", [tx]) for tx in txs])
            receipts: list[Any] = [None] * len(hashes)
            while any(r is None for r in receipts):
                self.rpc("evm_mine")
                receipts = self._batch([("eth_getTransactionReceipt", [h]) for h in hashes])
        finally:
            self.rpc("evm_setAutomine", True)
        return [
            self._checked(tx, _receipt(raw), call.what)
            for tx, raw, call in zip(txs, receipts, calls, strict=True)
        ]

    def _batch(self, requests: list[tuple[str, list[Any]]]) -> list[Any]:
        answers = self._post(
            [
                {"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": params}
                for method, params in requests
            ]
        )
        answers = sorted(answers, key=lambda a: a["id"])
        return [
            _result(method, answer) for (method, _), answer in zip(requests, answers, strict=True)
        ]

    def _post(self, payload: Any) -> Any:
        request = urllib.request.Request(
            self.url,
            data=json.dumps(payload).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=self.timeout) as response:
            return json.loads(response.read())

    def _revert_reason(self, tx: dict[str, Any]) -> str:
        """Replay a reverted transaction as a call (its revert left the state unchanged)."""
        try:
            self.rpc("eth_call", tx, "latest")
        except DeployError as error:
            return str(error).removeprefix("eth_call: ")
        return "no reason (the replay as a call succeeded)"

    def deploy(
        self, name: str, *args: Any, sender: str, libraries: dict[str, str] | None = None
    ) -> str:
        """Deploy ``name`` with constructor ``args``, linking ``libraries`` (name -> address)."""
        artifact = load(name)
        constructor = next(
            (e for e in artifact.abi.entries if e.get("type") == "constructor"), None
        )
        types = [canonical_type(p) for p in constructor["inputs"]] if constructor else []
        code = creation_code(name, libraries)
        data = code + (eth_abi.encode(types, args) if types else b"")
        receipt = self.send(sender, None, data, what=f"deploy {name}")
        assert receipt.contract_address is not None
        return receipt.contract_address.lower()

    def transact(
        self,
        contract: str,
        address: str,
        function: str,
        *args: Any,
        sender: str,
        value: int = 0,
        gas: int | None = None,
    ) -> Receipt:
        return self.send(
            sender, address, encode(contract, function, *args), value, f"{contract}.{function}", gas
        )

    def call(self, contract: str, address: str, function: str, *args: Any) -> tuple[Any, ...]:
        fn = load(contract).abi.function(function)
        result = self.rpc(
            "eth_call", {"to": address, "data": "0x" + fn.encode(*args).hex()}, "latest"
        )
        return fn.decode_output(bytes.fromhex(result[2:]))

    def artifact(self, name: str) -> Artifact:
        return load(name)
