"""Rebuild a transaction's signed EIP-2718 envelope from its JSON-RPC fields.

Nodes give pending txs as objects (``eth_getTransactionByHash``, subscriptions), not as the
signed bytes a bundle must carry. The object holds everything needed: this module re-encodes
legacy (type 0), access-list (1) and dynamic-fee (2) txs and checks the result hashes to the
tx's hash, so a wrong field can never produce a different transaction. Blob (3) and set-code
(4) txs are not rebuilt (None): their pool form carries data the object does not.
"""

from __future__ import annotations

import rlp
from eth_utils import keccak

from chain.types import PendingTx


def _address(value: str | None) -> bytes:
    return b"" if value is None else bytes.fromhex(value[2:])


def _access_list(tx: PendingTx) -> list[list[object]]:
    return [
        [bytes.fromhex(address[2:]), [bytes.fromhex(key[2:]) for key in keys]]
        for address, keys in tx.access_list
    ]


def signed_envelope(tx: PendingTx) -> bytes | None:
    """The signed bytes of ``tx``, or None when they cannot be rebuilt exactly."""
    if tx.raw is not None:
        return tx.raw
    if tx.v is None or tx.r is None or tx.s is None:
        return None
    common = [tx.nonce]
    if tx.type == 0:
        if tx.gas_price is None:
            return None
        fields = [*common, tx.gas_price, tx.gas, _address(tx.to), tx.value, tx.input]
        raw = rlp.encode([*fields, tx.v, tx.r, tx.s])
    elif tx.type == 1:
        if tx.gas_price is None or tx.chain_id is None:
            return None
        body = [tx.chain_id, *common, tx.gas_price, tx.gas, _address(tx.to), tx.value, tx.input]
        raw = b"\x01" + rlp.encode([*body, _access_list(tx), tx.v, tx.r, tx.s])
    elif tx.type == 2:
        if tx.chain_id is None or tx.max_fee_per_gas is None:
            return None
        body = [
            tx.chain_id,
            *common,
            tx.max_priority_fee_per_gas or 0,
            tx.max_fee_per_gas,
            tx.gas,
            _address(tx.to),
            tx.value,
            tx.input,
        ]
        raw = b"\x02" + rlp.encode([*body, _access_list(tx), tx.v, tx.r, tx.s])
    else:
        return None
    return raw if "0x" + keccak(raw).hex() == tx.hash else None
