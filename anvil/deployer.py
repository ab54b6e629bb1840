"""Deploy and drive contracts on a local anvil for set-up work (the world, tests, the demo).

Not the hot path: it sends plain ``eth_sendTransaction`` from accounts anvil holds unlocked (or
impersonates), waits for each receipt and fails loudly with the revert reason. Calldata comes
from :mod:`chain.abi`, so the same artifacts serve set-up and the bot.
"""

from __future__ import annotations

import itertools
import json
import urllib.request
from dataclasses import dataclass
from typing import Any

import eth_abi

from chain.abi import Artifact, load_artifact
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


class Deployer:
    """Synchronous set-up client over anvil's HTTP endpoint."""

    def __init__(self, http_url: str, timeout: float = 30.0) -> None:
        self.url = http_url
        self.timeout = timeout
        self._ids = itertools.count(1)

    def rpc(self, method: str, *params: Any) -> Any:
        body = json.dumps(
            {"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": list(params)}
        ).encode()
        request = urllib.request.Request(
            self.url, data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=self.timeout) as response:
            answer = json.loads(response.read())
        if "error" in answer:
            error = answer["error"]
            raise DeployError(f"{method}: {error.get('message')} {error.get('data') or ''}".strip())
        return answer["result"]

    def send(
        self, sender: str, to: str | None, data: bytes = b"", value: int = 0, what: str = ""
    ) -> Receipt:
        tx: dict[str, Any] = {"from": sender, "data": "0x" + data.hex(), "value": hex(value)}
        if to is not None:
            tx["to"] = to
        try:
            tx_hash = self.rpc("eth_sendTransaction", tx)
        except DeployError as error:
            raise DeployError(f"{what or 'transaction'} failed: {error}") from None
        raw = self.rpc("eth_getTransactionReceipt", tx_hash)
        if raw is None:  # not automining: mine it now so set-up stays sequential
            self.rpc("evm_mine")
            raw = self.rpc("eth_getTransactionReceipt", tx_hash)
        receipt = Receipt(
            tx_hash=tx_hash,
            status=hex_to_int(raw["status"]),
            contract_address=raw.get("contractAddress"),
            gas_used=hex_to_int(raw["gasUsed"]),
            block_number=hex_to_int(raw["blockNumber"]),
            logs=tuple(raw.get("logs", [])),
        )
        if receipt.status != 1:
            raise DeployError(f"{what or 'transaction'} reverted: {self._revert_reason(tx)}")
        return receipt

    def _revert_reason(self, tx: dict[str, Any]) -> str:
        """Replay a reverted transaction as a call (its revert left the state unchanged)."""
        try:
            self.rpc("eth_call", tx, "latest")
        except DeployError as error:
            return str(error).removeprefix("eth_call: ")
        return "no reason (the replay as a call succeeded)"

    def deploy(self, name: str, *args: Any, sender: str) -> str:
        artifact = load_artifact(name)
        constructor = next(
            (e for e in artifact.abi.entries if e.get("type") == "constructor"), None
        )
        types = [p["type"] for p in constructor["inputs"]] if constructor else []
        data = artifact.bytecode + (eth_abi.encode(types, args) if types else b"")
        receipt = self.send(sender, None, data, what=f"deploy {name}")
        assert receipt.contract_address is not None
        return receipt.contract_address.lower()

    def transact(
        self, contract: str, address: str, function: str, *args: Any, sender: str, value: int = 0
    ) -> Receipt:
        data = load_artifact(contract).abi.function(function).encode(*args)
        return self.send(sender, address, data, value, what=f"{contract}.{function}")

    def call(self, contract: str, address: str, function: str, *args: Any) -> tuple[Any, ...]:
        fn = load_artifact(contract).abi.function(function)
        result = self.rpc(
            "eth_call", {"to": address, "data": "0x" + fn.encode(*args).hex()}, "latest"
        )
        return fn.decode_output(bytes.fromhex(result[2:]))

    def artifact(self, name: str) -> Artifact:
        return load_artifact(name)
