"""Signed envelopes rebuilt from the node's tx objects are byte-identical to what was sent."""

from __future__ import annotations

import dataclasses

import pytest
from eth_account import Account

from chain.envelope import signed_envelope
from chain.node import ANVIL_DEV_KEYS
from chain.rpc import connect
from chain.types import PendingTx


def _variants(sender: str, nonce: int) -> list[dict]:
    to = "0x" + "42" * 20
    base = {"nonce": nonce, "to": to, "value": 7, "gas": 60_000, "data": b"\x01\x02\x03"}
    return [
        base | {"gasPrice": 3 * 10**9, "chainId": 31337},  # type 0, EIP-155
        base
        | {
            "nonce": nonce + 1,
            "gasPrice": 3 * 10**9,
            "chainId": 31337,
            "accessList": [{"address": to, "storageKeys": ["0x" + "00" * 31 + "01"]}],
            "type": 1,
        },
        base
        | {
            "nonce": nonce + 2,
            "maxFeePerGas": 3 * 10**9,
            "maxPriorityFeePerGas": 10**9,
            "chainId": 31337,
            "type": 2,
        },
        base
        | {
            "nonce": nonce + 3,
            "maxFeePerGas": 3 * 10**9,
            "maxPriorityFeePerGas": 0,
            "chainId": 31337,
            "type": 2,
            "to": None,
            "data": b"\x60\x00",
        },
    ]


async def test_envelopes_of_pending_txs_of_every_supported_type(anvil_factory):
    node = anvil_factory("--no-mining")
    account = Account.from_key(ANVIL_DEV_KEYS[1])
    async with connect(node.ws_url) as rpc:
        for tx in _variants(account.address, 0):
            if tx["to"] is None:
                del tx["to"]
            signed = account.sign_transaction(tx)
            tx_hash = await rpc.call(
                "eth_sendRawTransaction", ["0x" + bytes(signed.raw_transaction).hex()]
            )
            obj = await rpc.call("eth_getTransactionByHash", [tx_hash])
            pending = PendingTx.from_rpc(obj)
            assert signed_envelope(pending) == bytes(signed.raw_transaction), obj["type"]


@pytest.mark.parametrize("field", ["r", "s", "v", "value", "nonce"])
def test_a_wrong_field_gives_no_envelope_rather_than_another_tx(field):
    account = Account.from_key(ANVIL_DEV_KEYS[1])
    tx = _variants(account.address, 5)[2]
    signed = account.sign_transaction(tx)
    pending = PendingTx(
        hash="0x" + signed.hash.hex(),
        sender=account.address.lower(),
        to=tx["to"],
        value=tx["value"],
        input=tx["data"],
        nonce=tx["nonce"],
        gas=tx["gas"],
        type=2,
        chain_id=31337,
        max_fee_per_gas=tx["maxFeePerGas"],
        max_priority_fee_per_gas=tx["maxPriorityFeePerGas"],
        v=signed.v,
        r=signed.r,
        s=signed.s,
    )
    assert signed_envelope(pending) == bytes(signed.raw_transaction)
    broken = dataclasses.replace(pending, **{field: getattr(pending, field) + 1})
    assert signed_envelope(broken) is None
    assert signed_envelope(dataclasses.replace(pending, type=3)) is None
