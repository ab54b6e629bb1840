"""Typed values that flow through the bot: pending txs, block headers, logs, signed txs, bundles.

Addresses and hashes are lowercase ``0x``-prefixed strings (cheap to compare, hash and print);
calldata and log data are ``bytes`` (what eth-abi decodes); quantities are ``int``.
``from_rpc`` constructors parse untrusted JSON-RPC objects and raise :class:`MalformedError`
with a reason instead of ``KeyError``/``TypeError`` deep inside the pipeline.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from eth_utils import keccak


class MalformedError(ValueError):
    """Untrusted input (RPC object, frame, calldata) that cannot be parsed; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def hex_to_int(value: Any, name: str = "value") -> int:
    """Parse a JSON-RPC quantity (``"0x1a"``; ints are accepted as they are)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if not isinstance(value, str) or not value.startswith(("0x", "0X")):
        raise MalformedError(f"{name}: expected a 0x quantity, got {value!r:.80}")
    try:
        return int(value, 16) if len(value) > 2 else 0
    except ValueError:
        raise MalformedError(f"{name}: not hex: {value!r:.80}") from None


def hex_to_bytes(value: Any, name: str = "data") -> bytes:
    """Parse ``0x``-prefixed hex data."""
    if not isinstance(value, str) or not value.startswith(("0x", "0X")):
        raise MalformedError(f"{name}: expected 0x hex data, got {value!r:.80}")
    try:
        return bytes.fromhex(value[2:])
    except ValueError:
        raise MalformedError(f"{name}: not hex: {value!r:.80}") from None


def norm_address(value: Any, name: str = "address") -> str:
    """A lowercase 20-byte address, or :class:`MalformedError`."""
    if not isinstance(value, str) or len(value) != 42 or not value.startswith(("0x", "0X")):
        raise MalformedError(f"{name}: not an address: {value!r:.80}")
    lowered = value.lower()
    try:
        int(lowered[2:], 16)
    except ValueError:
        raise MalformedError(f"{name}: not an address: {value!r:.80}") from None
    return lowered


def norm_hash(value: Any, name: str = "hash") -> str:
    """A lowercase 32-byte hash, or :class:`MalformedError`."""
    if not isinstance(value, str) or len(value) != 66 or not value.startswith(("0x", "0X")):
        raise MalformedError(f"{name}: not a 32-byte hash: {value!r:.80}")
    lowered = value.lower()
    try:
        int(lowered[2:], 16)
    except ValueError:
        raise MalformedError(f"{name}: not a 32-byte hash: {value!r:.80}") from None
    return lowered


def _opt_int(obj: dict[str, Any], key: str) -> int | None:
    value = obj.get(key)
    return None if value is None else hex_to_int(value, key)


@dataclass(frozen=True, slots=True)
class PendingTx:
    """A transaction seen before inclusion, with when and where it was first received.

    ``received_at`` is ``time.monotonic_ns()`` at receipt (latency accounting); ``source`` names
    the watcher source that delivered it. ``raw`` holds the signed envelope when known, which is
    what a backrun bundle must carry.
    """

    hash: str
    sender: str
    to: str | None
    value: int
    input: bytes
    nonce: int
    gas: int
    type: int = 2
    chain_id: int | None = None
    gas_price: int | None = None
    max_fee_per_gas: int | None = None
    max_priority_fee_per_gas: int | None = None
    raw: bytes | None = None
    received_at: int = 0
    source: str = ""
    # Signature and access list as the node reported them: enough to rebuild the signed
    # envelope (chain.envelope) for the few txs we backrun, without another round trip.
    v: int | None = None
    r: int | None = None
    s: int | None = None
    access_list: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @property
    def selector(self) -> bytes:
        return self.input[:4]

    @classmethod
    def from_rpc(
        cls, obj: Any, *, source: str = "", received_at: int = 0, raw: bytes | None = None
    ) -> PendingTx:
        """Parse a JSON-RPC transaction object (``eth_getTransactionByHash`` shape)."""
        if not isinstance(obj, dict):
            raise MalformedError(f"transaction: expected an object, got {type(obj).__name__}")
        try:
            to = obj.get("to")
            tx_input = obj.get("input", obj.get("data", "0x"))
            return cls(
                hash=norm_hash(obj["hash"], "hash"),
                sender=norm_address(obj["from"], "from"),
                to=None if to is None else norm_address(to, "to"),
                value=hex_to_int(obj.get("value", "0x0"), "value"),
                input=hex_to_bytes(tx_input, "input"),
                nonce=hex_to_int(obj["nonce"], "nonce"),
                gas=hex_to_int(obj["gas"], "gas"),
                type=hex_to_int(obj.get("type", "0x0"), "type"),
                chain_id=_opt_int(obj, "chainId"),
                gas_price=_opt_int(obj, "gasPrice"),
                max_fee_per_gas=_opt_int(obj, "maxFeePerGas"),
                max_priority_fee_per_gas=_opt_int(obj, "maxPriorityFeePerGas"),
                raw=raw,
                received_at=received_at,
                source=source,
                v=_opt_int(obj, "yParity") if "yParity" in obj else _opt_int(obj, "v"),
                r=_opt_int(obj, "r"),
                s=_opt_int(obj, "s"),
                access_list=_access_list(obj.get("accessList")),
            )
        except KeyError as missing:
            raise MalformedError(f"transaction: missing field {missing.args[0]!r}") from None


def _access_list(value: Any) -> tuple[tuple[str, tuple[str, ...]], ...]:
    if not value:
        return ()
    if not isinstance(value, list):
        raise MalformedError("accessList: expected a list")
    try:
        return tuple(
            (
                norm_address(entry["address"], "accessList.address"),
                tuple(norm_hash(key, "accessList.storageKeys") for key in entry["storageKeys"]),
            )
            for entry in value
        )
    except (KeyError, TypeError):
        raise MalformedError("accessList: entries need address and storageKeys") from None


@dataclass(frozen=True, slots=True)
class BlockHeader:
    """The parts of a block header the bot uses."""

    number: int
    hash: str
    parent_hash: str
    timestamp: int
    base_fee: int
    gas_limit: int
    gas_used: int
    miner: str
    received_at: int = 0

    @classmethod
    def from_rpc(cls, obj: Any, *, received_at: int = 0) -> BlockHeader:
        if not isinstance(obj, dict):
            raise MalformedError(f"block: expected an object, got {type(obj).__name__}")
        try:
            return cls(
                number=hex_to_int(obj["number"], "number"),
                hash=norm_hash(obj["hash"], "hash"),
                parent_hash=norm_hash(obj["parentHash"], "parentHash"),
                timestamp=hex_to_int(obj["timestamp"], "timestamp"),
                base_fee=hex_to_int(obj.get("baseFeePerGas", "0x0"), "baseFeePerGas"),
                gas_limit=hex_to_int(obj["gasLimit"], "gasLimit"),
                gas_used=hex_to_int(obj["gasUsed"], "gasUsed"),
                miner=norm_address(obj["miner"], "miner"),
                received_at=received_at,
            )
        except KeyError as missing:
            raise MalformedError(f"block: missing field {missing.args[0]!r}") from None


@dataclass(frozen=True, slots=True)
class Log:
    """An event log. ``topics[0]`` is the event signature hash (as bytes)."""

    address: str
    topics: tuple[bytes, ...]
    data: bytes
    block_number: int
    block_hash: str
    tx_hash: str
    tx_index: int
    log_index: int
    removed: bool = False

    @property
    def topic0(self) -> bytes:
        return self.topics[0] if self.topics else b""

    @classmethod
    def from_rpc(cls, obj: Any) -> Log:
        if not isinstance(obj, dict):
            raise MalformedError(f"log: expected an object, got {type(obj).__name__}")
        try:
            topics = obj["topics"]
            if not isinstance(topics, list):
                raise MalformedError("log: topics is not a list")
            return cls(
                address=norm_address(obj["address"], "address"),
                topics=tuple(hex_to_bytes(t, "topic") for t in topics),
                data=hex_to_bytes(obj["data"], "data"),
                block_number=hex_to_int(obj["blockNumber"], "blockNumber"),
                block_hash=norm_hash(obj["blockHash"], "blockHash"),
                tx_hash=norm_hash(obj["transactionHash"], "transactionHash"),
                tx_index=hex_to_int(obj.get("transactionIndex", "0x0"), "transactionIndex"),
                log_index=hex_to_int(obj["logIndex"], "logIndex"),
                removed=bool(obj.get("removed", False)),
            )
        except KeyError as missing:
            raise MalformedError(f"log: missing field {missing.args[0]!r}") from None


@dataclass(frozen=True, slots=True)
class SignedTx:
    """A signed transaction envelope (EIP-2718 bytes) and the facts about it we need later."""

    raw: bytes
    hash: str
    sender: str
    nonce: int

    @property
    def raw_hex(self) -> str:
        return "0x" + self.raw.hex()


@dataclass(frozen=True, slots=True)
class Bundle:
    """An ordered, atomic list of signed txs for one target block (Flashbots ``eth_sendBundle``)."""

    txs: tuple[SignedTx, ...]
    block_number: int
    min_timestamp: int | None = None
    max_timestamp: int | None = None
    reverting_tx_hashes: tuple[str, ...] = ()
    replacement_uuid: str | None = None
    builders: tuple[str, ...] = field(default=())

    @property
    def bundle_hash(self) -> str:
        """keccak256 of the concatenated tx hashes, as relays compute it."""
        return "0x" + keccak(b"".join(bytes.fromhex(t.hash[2:]) for t in self.txs)).hex()

    def to_rpc(self) -> dict[str, Any]:
        """The ``eth_sendBundle`` parameter object, with only the fields that are set."""
        params: dict[str, Any] = {
            "txs": [t.raw_hex for t in self.txs],
            "blockNumber": hex(self.block_number),
        }
        if self.min_timestamp is not None:
            params["minTimestamp"] = self.min_timestamp
        if self.max_timestamp is not None:
            params["maxTimestamp"] = self.max_timestamp
        if self.reverting_tx_hashes:
            params["revertingTxHashes"] = list(self.reverting_tx_hashes)
        if self.replacement_uuid is not None:
            params["replacementUuid"] = self.replacement_uuid
        if self.builders:
            params["builders"] = list(self.builders)
        return params
