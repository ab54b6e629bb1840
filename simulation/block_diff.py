"""What a block changed in the state, read from the node's prestate diff trace, as writes to a fork.

``debug_traceBlockByNumber(n, {"tracer": "prestateTracer", "tracerConfig": {"diffMode":
true}})`` gives, per transaction, ``pre`` and ``post`` account states where ``post`` holds only
what the tx changed (geth's documented diffMode; anvil serves the same shape). Applied in block
order, the post values are the block's final values. What a diff leaves open is re-read from the
node at that block instead of guessed: a storage slot in ``pre`` but not in ``post`` (geth omits
a slot cleared to zero from ``post``), an account in ``pre`` only (deleted), and the balances
the block's withdrawals credited (they are not transactions, so no trace shows them).

Sources: geth's prestateTracer diffMode (go-ethereum eth/tracers/native/prestate.go,
``processDiffState``: unchanged slots dropped, zeroed slots left out of ``post``); anvil 1.7.1
answers the same request (checked by :mod:`tests.test_warm_fork`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from chain.types import MalformedError, hex_to_bytes, hex_to_int, norm_address

Field = Literal["balance", "nonce", "code", "storage"]
Value = int | bytes
DIFF_TRACER = {"tracer": "prestateTracer", "tracerConfig": {"diffMode": True}}
_ACCOUNT_FIELDS: tuple[Field, ...] = ("balance", "nonce", "code")


@dataclass(frozen=True, slots=True, order=True)
class StateKey:
    """One piece of account state: a balance, nonce, code, or a storage slot (``slot``)."""

    field: Field
    address: str
    slot: int = 0

    def read(self, block: str) -> tuple[str, list[Any]]:
        """The JSON-RPC read of this piece at ``block`` (a tag or hex number)."""
        if self.field == "storage":
            return "eth_getStorageAt", [self.address, _word(self.slot), block]
        method = {
            "balance": "eth_getBalance",
            "nonce": "eth_getTransactionCount",
            "code": "eth_getCode",
        }[self.field]
        return method, [self.address, block]

    def parse(self, answer: Any) -> Value:
        """A read's answer as the value :meth:`write` takes."""
        if self.field == "code":
            return hex_to_bytes(answer, "code")
        return hex_to_int(answer, self.field)

    def write(self, value: Value) -> tuple[str, list[Any]]:
        """anvil's call that sets this piece to ``value`` on a fork."""
        if isinstance(value, bytes):
            return "anvil_setCode", [self.address, "0x" + value.hex()]
        if self.field == "storage":
            return "anvil_setStorageAt", [self.address, _word(self.slot), _word(value)]
        method = "anvil_setBalance" if self.field == "balance" else "anvil_setNonce"
        return method, [self.address, hex(value)]


@dataclass(frozen=True, slots=True)
class BlockChanges:
    """The final values a run of blocks wrote (``known``) and what must be re-read (``unsure``)."""

    known: Mapping[StateKey, Value]
    unsure: frozenset[StateKey]

    def __len__(self) -> int:
        return len(self.known) + len(self.unsure)


def _word(value: int) -> str:
    return f"0x{value:064x}"


def _fields(address: str, obj: Any) -> tuple[dict[StateKey, Value], set[StateKey]]:
    """``(values present, storage slots present)`` of one account object of a trace."""
    if not isinstance(obj, dict):
        raise MalformedError(f"diff trace: account {address} is not an object")
    values: dict[StateKey, Value] = {}
    if "balance" in obj:
        values[StateKey("balance", address)] = hex_to_int(obj["balance"], "balance")
    if "nonce" in obj:
        nonce = obj["nonce"]  # geth and anvil give a JSON number here, not a hex string
        values[StateKey("nonce", address)] = nonce if isinstance(nonce, int) else hex_to_int(nonce)
    if "code" in obj:
        values[StateKey("code", address)] = hex_to_bytes(obj["code"], "code")
    storage = obj.get("storage") or {}
    if not isinstance(storage, dict):
        raise MalformedError(f"diff trace: storage of {address} is not an object")
    for slot, value in storage.items():
        values[StateKey("storage", address, hex_to_int(slot, "slot"))] = hex_to_int(value, "slot")
    return values, {key for key in values if key.field == "storage"}


def block_changes(traces: Iterable[Any], withdrawals: Iterable[str] = ()) -> BlockChanges:
    """Fold per-tx diff traces (in block order, blocks in order) into the final changes.

    ``traces`` are the ``result`` objects (``{"pre": ..., "post": ...}``); ``withdrawals`` the
    addresses the blocks' withdrawals credited. :class:`MalformedError` on a shape it cannot read.
    """
    known: dict[StateKey, Value] = {}
    unsure: set[StateKey] = set()

    def settle(key: StateKey, value: Value | None) -> None:
        if value is None:
            known.pop(key, None)
            unsure.add(key)
        else:
            known[key] = value
            unsure.discard(key)

    for trace in traces:
        if not isinstance(trace, dict):
            raise MalformedError("diff trace: a tx result is not an object")
        pre, post = trace.get("pre") or {}, trace.get("post") or {}
        if not isinstance(pre, dict) or not isinstance(post, dict):
            raise MalformedError("diff trace: pre/post are not objects")
        for raw in sorted(set(pre) | set(post)):
            address = norm_address(raw, "diff trace address")
            _, before_slots = _fields(address, pre.get(raw, {}))
            after, _ = _fields(address, post.get(raw, {}))
            if raw not in post:  # deleted (or a shape we do not know): ask the node
                for field in _ACCOUNT_FIELDS:
                    settle(StateKey(field, address), None)
            for key, value in after.items():
                settle(key, value)
            for key in before_slots - after.keys():
                settle(key, None)  # cleared to zero, or unchanged: the node knows which
    for raw in withdrawals:
        settle(StateKey("balance", norm_address(raw, "withdrawal address")), None)
    return BlockChanges(known, frozenset(unsure))
