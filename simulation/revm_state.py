"""pyrevm's fork cache as state we can write: cold writes, and what one call changed.

pyrevm 0.3.7 (revm 8) keeps two layers: the fork cache (a ``CacheDB`` over the upstream) and the
journal, which never ends a transaction. An account or slot is warm exactly while it is in the
journal's state, and a slot's *original* value (what SSTORE is priced against) is the value it
had when the journal loaded it. So a write that must look like chain state (cold, and original
for the next transaction) has to land in the cache while the journal does not hold the account:

* ``insert_account_info`` of an account the journal does not hold writes the cache directly;
* ``insert_account_storage`` writes the cache and then loads the account into the journal, so it
  runs inside a journal checkpoint that is reverted at once: reverting a load drops the account
  from the journal state again (revm 8 ``journal_revert``: ``AccountLoaded`` removes it).

:func:`call_changes` reads what the open call changed from ``journal_state`` (account infos) and
the journal's debug text (storage slots, ``previous_or_original_value`` against
``present_value``): pyrevm offers no other view of the journal's storage.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from itertools import pairwise

from eth_utils import keccak
from pyrevm import EVM, AccountInfo, TxEnv

from simulation.block_diff import StateKey, Value
from simulation.fetch_guard import GUARD_ERROR

EMPTY_CODE_HASH = keccak(b"")
FETCH_FAILED = "Database("  # how pyrevm words an error of its fork client
FETCH_FAILED_ANSWER = "revm could not fetch state:"
_CALLER = "0x0000000000000000000000000000000000000000"  # the sender of a probe's eth_call
_ACCOUNT = ": Account { info: "  # follows each account's address in the journal's text
_SLOT = re.compile(
    r"(\d+): StorageSlot \{ previous_or_original_value: (\d+), present_value: (\d+) \}"
)


@dataclass(frozen=True, slots=True)
class CallChanges:
    """Accounts the journal holds (their infos now) and the slots whose value changed:
    ``slots[(address, slot)] = (value before the call, value now)``."""

    infos: Mapping[str, AccountInfo]
    slots: Mapping[tuple[str, int], tuple[int, int]]


@dataclass(slots=True)
class Undo:
    """The cache's values before a bundle's writes, to put back when it ends."""

    infos: dict[str, AccountInfo] = field(default_factory=dict)
    slots: dict[tuple[str, int], int] = field(default_factory=dict)


def call_changes(evm: EVM) -> CallChanges:
    """What the journal holds now; call it before reverting the call's checkpoint."""
    infos = {address.lower(): info for address, info in evm.journal_state.items()}
    text = evm.journal_str
    end = text.find(", transient_storage: ")
    # Split at each account rather than scan the whole text with a regex: most of it is
    # bytecode hex. Each piece ends with the next account's address.
    pieces = text[: end if end >= 0 else len(text)].split(_ACCOUNT)
    slots: dict[tuple[str, int], tuple[int, int]] = {}
    for owner, piece in pairwise(pieces):
        address = owner[-42:]
        # The account's storage map comes after its code, whose hex holds no "storage".
        start = piece.rfind("storage: {")
        if start < 0:
            continue
        for slot, before, now in _SLOT.findall(piece, start):
            if before != now:
                slots[(address, int(slot))] = (int(before), int(now))
    return CallChanges(infos, slots)


def fetch_failure(message: str) -> str:
    """One line for pyrevm's (long, nested) error of a failed state fetch."""
    start = message.find(GUARD_ERROR)
    if start >= 0:
        end = message.find('"', start)
        return message[start : end if end > 0 else start + 120]
    return "state fetch from the upstream failed: " + message[:160]


def cold_basic(evm: EVM, address: str) -> AccountInfo:
    """The account as the cache holds it, leaving the journal as it was."""
    checkpoint = evm.snapshot()
    try:
        return evm.basic(address)
    finally:
        evm.revert(checkpoint)


def write_slot(evm: EVM, address: str, slot: int, value: int) -> None:
    """Set a storage slot in the cache, cold (see the module docstring)."""
    checkpoint = evm.snapshot()
    try:
        evm.insert_account_storage(address, slot, value)
    finally:
        evm.revert(checkpoint)


def same_account(a: AccountInfo, b: AccountInfo) -> bool:
    return a.balance == b.balance and a.nonce == b.nonce and a.code_hash == b.code_hash


def settle(evm: EVM, changes: CallChanges, undo: Undo) -> None:
    """Write a finished call's changes into the cache as chain state (the call's checkpoint
    already reverted), remembering in ``undo`` each value it replaced first."""
    for address, info in changes.infos.items():
        before = cold_basic(evm, address)
        if not same_account(before, info):
            undo.infos.setdefault(address, before)
            evm.insert_account_info(address, info)
    for (address, slot), (before, now) in changes.slots.items():
        undo.slots.setdefault((address, slot), before)
        write_slot(evm, address, slot, now)


def restore(evm: EVM, undo: Undo) -> None:
    """Put the cache back as it was before the bundle."""
    for address, info in undo.infos.items():
        evm.insert_account_info(address, info)
    for (address, slot), value in undo.slots.items():
        write_slot(evm, address, slot, value)


def write_state(evm: EVM, values: Mapping[StateKey, Value]) -> None:
    """Write what blocks changed (:mod:`simulation.block_diff`) into the cache, cold."""
    accounts: dict[str, dict[str, Value]] = {}
    for key, value in values.items():
        if key.field == "storage":
            assert isinstance(value, int)
            write_slot(evm, key.address, key.slot, value)
        else:
            accounts.setdefault(key.address, {})[key.field] = value
    for address, fields in accounts.items():
        evm.insert_account_info(address, _updated(evm, address, fields))


def _updated(evm: EVM, address: str, fields: Mapping[str, Value]) -> AccountInfo:
    before = cold_basic(evm, address)
    code = fields.get("code")
    if not isinstance(code, bytes):
        code = _code(evm, address, before)
    balance, nonce = fields.get("balance", before.balance), fields.get("nonce", before.nonce)
    return AccountInfo(balance=balance, nonce=nonce, code=code, code_hash=keccak(code))


def _code(evm: EVM, address: str, info: AccountInfo) -> bytes:
    if info.code is not None or info.code_hash == EMPTY_CODE_HASH:
        return bytes(info.code or b"")
    checkpoint = evm.snapshot()
    try:
        return bytes(evm.get_code(address) or b"")
    finally:
        evm.revert(checkpoint)


def read_probes(evm: EVM, probes: Iterable[tuple[str, list]]) -> list[object]:
    """JSON-RPC reads (:data:`simulation.fork_warm.Probe`) answered from the cache as a node
    would answer them, for the differential check against the upstream. After a read that
    could not fetch state, the rest are answered with that failure instead of waiting again."""
    answers: list[object] = []
    failed = ""
    for method, params in probes:
        answer = failed or _read_probe(evm, method, params)
        if isinstance(answer, str) and answer.startswith(FETCH_FAILED_ANSWER):
            failed = answer
        answers.append(answer)
    return answers


def _read_probe(evm: EVM, method: str, params: list) -> object:
    checkpoint = evm.snapshot()
    try:
        if method == "eth_getStorageAt":
            return hex(evm.storage(params[0], int(params[1], 16)))
        if method == "eth_getBalance":
            return hex(evm.basic(params[0]).balance)
        if method == "eth_getTransactionCount":
            return hex(evm.basic(params[0]).nonce)
        if method == "eth_getCode":
            return "0x" + bytes(evm.get_code(params[0]) or b"").hex()
        if method == "eth_call":
            call = params[0]
            data = bytes.fromhex(call.get("data", "0x")[2:])
            evm.set_tx_env(TxEnv())
            output = evm.message_call(_CALLER, call["to"], data, is_static=True)
            return "0x" + bytes(output).hex()
        raise ValueError(f"no local read for {method}")
    except RuntimeError as error:
        if str(error).startswith(FETCH_FAILED):
            return f"{FETCH_FAILED_ANSWER} {fetch_failure(str(error))}"
        return f"revm: {error}"
    finally:
        evm.revert(checkpoint)
