"""Turn bundle inputs into fully specified transactions: decode signed envelopes, fill defaults.

A signed envelope (legacy with or without EIP-155, EIP-2930, EIP-1559) is decoded with ``rlp``
and its sender recovered with coincurve, so a victim tx is simulated with its real sender,
nonce, gas limit and fees. Decoding is cached by the raw bytes: the same pending tx is usually
simulated several times (once per candidate backrun). The simulator's decode of a tx this
process signed skips the recovery (:func:`signed_here`). Blob and set-code txs are refused with a
:class:`~chain.types.MalformedError` (they cannot be replayed from their fields alone here).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import rlp
from coincurve import PublicKey
from eth_hash.auto import keccak

from chain.types import MalformedError
from simulation.simulator import BlockEnv, SimCall, SimulationError

AccessList = tuple[tuple[str, tuple[int, ...]], ...]


@dataclass(frozen=True, slots=True)
class PreparedTx:
    """A transaction with every field the EVM needs. ``max_fee``/``priority_fee`` both equal the
    gas price for legacy and EIP-2930 txs; ``nonce`` None means "the sender's current nonce"."""

    sender: str
    to: str | None
    data: bytes
    value: int
    gas: int
    max_fee: int
    priority_fee: int
    nonce: int | None
    tx_type: int
    chain_id: int | None = None
    access_list: AccessList = ()
    hash: str | None = None
    raw: bytes | None = None

    def effective_gas_price(self, base_fee: int) -> int:
        return min(self.max_fee, base_fee + self.priority_fee)


def _int(item: object, name: str) -> int:
    if not isinstance(item, bytes) or len(item) > 32:
        raise MalformedError(f"signed tx: {name} is not a quantity")
    return int.from_bytes(item, "big")


def _address(item: object, name: str) -> str | None:
    if item == b"":
        return None
    if not isinstance(item, bytes) or len(item) != 20:
        raise MalformedError(f"signed tx: {name} is not an address")
    return "0x" + item.hex()


def _access_list(item: object) -> AccessList:
    if not isinstance(item, list):
        raise MalformedError("signed tx: access list is not a list")
    entries = []
    for entry in item:
        if not isinstance(entry, list) or len(entry) != 2 or not isinstance(entry[1], list):
            raise MalformedError("signed tx: bad access list entry")
        address = _address(entry[0], "access list address")
        if address is None:
            raise MalformedError("signed tx: empty access list address")
        entries.append((address, tuple(_int(key, "storage key") for key in entry[1])))
    return tuple(entries)


# Txs this process signed: their senders are known, so their decode skips the recovery (a
# fresh signature each time a candidate is signed: nothing else would reuse its decode).
_SIGNED_HERE: dict[bytes, str] = {}
_SIGNED_HERE_MAX = 4096


def signed_here(raw: bytes, sender: str) -> None:
    """Note that this process signed ``raw`` with ``sender``'s key (the oldest notes go first)."""
    if len(_SIGNED_HERE) >= _SIGNED_HERE_MAX:
        del _SIGNED_HERE[next(iter(_SIGNED_HERE))]
    _SIGNED_HERE[raw] = sender.lower()


def _recover(sighash: bytes, y_parity: int, r: int, s: int) -> str:
    if y_parity not in (0, 1) or not 0 < r < 2**256 or not 0 < s < 2**256:
        raise MalformedError("signed tx: bad signature values")
    signature = r.to_bytes(32, "big") + s.to_bytes(32, "big") + bytes([y_parity])
    try:
        public_key = PublicKey.from_signature_and_message(signature, sighash, hasher=None)
    except ValueError:
        raise MalformedError("signed tx: signature does not recover a public key") from None
    return "0x" + keccak(public_key.format(compressed=False)[1:])[-20:].hex()


def _decode_list(payload: bytes, length: int, kind: str) -> list[object]:
    try:
        fields = rlp.decode(payload)
    except rlp.exceptions.DecodingError:
        raise MalformedError(f"signed tx: {kind} payload is not RLP") from None
    if not isinstance(fields, list) or len(fields) != length:
        raise MalformedError(f"signed tx: {kind} needs {length} fields")
    return fields


@lru_cache(maxsize=4096)
def decode_signed(raw: bytes) -> PreparedTx:
    """Decode a signed EIP-2718 envelope; :class:`MalformedError` if it is not one we can run.
    Its sender is always recovered from the signature (a relay or builder checks it)."""
    return _decode(raw, None)


def _decode(raw: bytes, sender: str | None) -> PreparedTx:
    """:func:`decode_signed`, the sender given or (None) recovered."""
    if not raw:
        raise MalformedError("signed tx: empty")
    first = raw[0]
    if first >= 0xC0:
        fields = _decode_list(raw, 9, "legacy")
        v = _int(fields[6], "v")
        if v in (27, 28):
            chain_id, y_parity, signed = None, v - 27, fields[:6]
        elif v >= 35:
            chain_id, y_parity = (v - 35) // 2, (v - 35) % 2
            signed = [*fields[:6], _int_bytes(chain_id), b"", b""]
        else:
            raise MalformedError(f"signed tx: bad legacy v {v}")
        prefix = b""
        gas_price = _int(fields[1], "gasPrice")
        nonce, gas, to, value, data = fields[0], fields[2], fields[3], fields[4], fields[5]
        access_list: AccessList = ()
        tx_type, max_fee, priority_fee = 0, gas_price, gas_price
        r, s = _int(fields[7], "r"), _int(fields[8], "s")
    elif first == 1:
        fields = _decode_list(raw[1:], 11, "EIP-2930")
        prefix, signed = b"\x01", fields[:8]
        chain_id = _int(fields[0], "chainId")
        gas_price = _int(fields[2], "gasPrice")
        nonce, gas, to, value, data = fields[1], fields[3], fields[4], fields[5], fields[6]
        access_list = _access_list(fields[7])
        tx_type, max_fee, priority_fee = 1, gas_price, gas_price
        y_parity, r, s = _int(fields[8], "yParity"), _int(fields[9], "r"), _int(fields[10], "s")
    elif first == 2:
        fields = _decode_list(raw[1:], 12, "EIP-1559")
        prefix, signed = b"\x02", fields[:9]
        chain_id = _int(fields[0], "chainId")
        nonce, gas, to, value, data = fields[1], fields[4], fields[5], fields[6], fields[7]
        priority_fee = _int(fields[2], "maxPriorityFeePerGas")
        max_fee = _int(fields[3], "maxFeePerGas")
        access_list = _access_list(fields[8])
        tx_type = 2
        y_parity, r, s = _int(fields[9], "yParity"), _int(fields[10], "r"), _int(fields[11], "s")
    else:
        raise MalformedError(f"signed tx: type {first} is not supported by the simulator")
    if not isinstance(data, bytes):
        raise MalformedError("signed tx: data is not bytes")
    if sender is None:
        sender = _recover(keccak(prefix + rlp.encode(signed)), y_parity, r, s)
    return PreparedTx(
        sender=sender,
        to=_address(to, "to"),
        data=data,
        value=_int(value, "value"),
        gas=_int(gas, "gas"),
        max_fee=max_fee,
        priority_fee=priority_fee,
        nonce=_int(nonce, "nonce"),
        tx_type=tx_type,
        chain_id=chain_id,
        access_list=access_list,
        hash="0x" + keccak(raw).hex(),
        raw=raw,
    )


def _int_bytes(value: int) -> bytes:
    return value.to_bytes((value.bit_length() + 7) // 8, "big")


def prepare(txs: Sequence[bytes | SimCall], env: BlockEnv) -> tuple[PreparedTx, ...]:
    """Every input as a :class:`PreparedTx`; unsigned calls get the block's fee defaults."""
    prepared = []
    for index, tx in enumerate(txs):
        if isinstance(tx, bytes | bytearray | memoryview):
            raw = bytes(tx)
            sender = _SIGNED_HERE.get(raw)
            try:
                prepared.append(decode_signed(raw) if sender is None else _decode(raw, sender))
            except MalformedError as error:
                raise SimulationError(f"tx {index}: {error.reason}") from None
        else:
            max_fee = env.base_fee if tx.max_fee_per_gas is None else tx.max_fee_per_gas
            prepared.append(
                PreparedTx(
                    sender=tx.sender.lower(),
                    to=None if tx.to is None else tx.to.lower(),
                    data=tx.data,
                    value=tx.value,
                    gas=tx.gas,
                    max_fee=max_fee,
                    priority_fee=tx.max_priority_fee_per_gas or 0,
                    nonce=tx.nonce,
                    tx_type=2,
                )
            )
    return tuple(prepared)


def check_nonces(txs: Sequence[PreparedTx], account_nonces: dict[str, int]) -> None:
    """Each explicit nonce must be the sender's next one, counting the bundle's earlier txs
    (``account_nonces`` holds the state nonce of at least every sender with an explicit nonce)."""
    expected: dict[str, int] = {}
    for index, tx in enumerate(txs):
        if tx.sender not in account_nonces:
            continue
        expected.setdefault(tx.sender, account_nonces[tx.sender])
        if tx.nonce is not None and tx.nonce != expected[tx.sender]:
            raise SimulationError(
                f"tx {index}: nonce {tx.nonce}, the sender's next is {expected[tx.sender]}"
            )
        expected[tx.sender] += 1


def senders_with_nonces(txs: Sequence[PreparedTx]) -> list[str]:
    return sorted({tx.sender for tx in txs if tx.nonce is not None})
