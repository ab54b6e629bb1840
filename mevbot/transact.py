"""One public transaction from a command: estimate, price, sign, send and wait for its receipt.

For the operator's one-off actions (deploying and funding the executor, withdrawing profit), not
the bot's hot path: fees are the head's base fee twice plus the node's suggested tip, and the
receipt is polled until the transaction is mined. A revert, at estimation or in the block, is a
:class:`TransactError` with the node's reason.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from chain.errors import ChainError, RpcError
from chain.rpc import (
    Rpc,
    eth_chain_id,
    eth_get_block,
    eth_get_transaction_count,
    eth_send_raw_transaction,
)
from chain.types import hex_to_int
from execution.signer import LocalSigner

DEFAULT_TIP = 10**9  # when the node has no eth_maxPriorityFeePerGas
RECEIPT_POLL_S = 0.2


class TransactError(Exception):
    """The transaction could not be sent or did not succeed; the message says why."""


@dataclass(frozen=True, slots=True)
class Mined:
    """A mined, successful transaction."""

    tx_hash: str
    block: int
    gas_used: int
    contract: str | None  # the created contract's address for a deployment


async def _tip(rpc: Rpc) -> int:
    try:
        return hex_to_int(await rpc.call("eth_maxPriorityFeePerGas", []), "tip")
    except (RpcError, ValueError):
        return DEFAULT_TIP


async def transact(
    rpc: Rpc,
    signer: LocalSigner,
    to: str | None,
    data: bytes = b"",
    value: int = 0,
    *,
    wait_s: float = 120.0,
) -> Mined:
    """Send one transaction from ``signer`` and wait until it is mined."""
    call: dict[str, Any] = {"from": signer.address, "data": "0x" + data.hex(), "value": hex(value)}
    if to is not None:
        call["to"] = to
    try:
        gas = hex_to_int(await rpc.call("eth_estimateGas", [call]), "gas")
    except RpcError as error:
        raise TransactError(f"the node refuses it: {error.message}") from None
    head = await eth_get_block(rpc, "latest")
    assert head is not None
    tip = await _tip(rpc)
    signed = signer.sign_eip1559(
        chain_id=await eth_chain_id(rpc),
        nonce=await eth_get_transaction_count(rpc, signer.address, "pending"),
        to=to,
        data=data,
        value=value,
        gas=gas * 12 // 10,
        max_fee_per_gas=2 * head.base_fee + tip,
        max_priority_fee_per_gas=tip,
    )
    try:
        tx_hash = await eth_send_raw_transaction(rpc, signed.raw)
    except RpcError as error:
        raise TransactError(f"the node does not take it: {error.message}") from None
    receipt = await _receipt(rpc, tx_hash, wait_s)
    if hex_to_int(receipt.get("status"), "status") != 1:
        raise TransactError(f"{tx_hash} reverted in block {hex_to_int(receipt['blockNumber'])}")
    return Mined(
        tx_hash,
        hex_to_int(receipt["blockNumber"], "blockNumber"),
        hex_to_int(receipt["gasUsed"], "gasUsed"),
        receipt.get("contractAddress"),
    )


async def _receipt(rpc: Rpc, tx_hash: str, wait_s: float) -> dict[str, Any]:
    try:
        async with asyncio.timeout(wait_s):
            while True:
                receipt = await rpc.call("eth_getTransactionReceipt", [tx_hash])
                if receipt:
                    return dict(receipt)
                await asyncio.sleep(RECEIPT_POLL_S)
    except TimeoutError:
        raise TransactError(
            f"{tx_hash} sent but not mined within {wait_s:g} s; check it later"
        ) from None
    except ChainError as error:
        raise TransactError(f"{tx_hash} sent; waiting for its receipt failed: {error}") from None
