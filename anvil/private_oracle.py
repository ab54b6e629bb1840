"""A price update the public mempool never sees: another oracle's transmit sent as a bundle.

Chainlink's SVR feeds post their updates privately (through a builder's order flow, not the
public mempool; reference builders-oracles-2026.md §4.2), so a bot that only backruns pending
transmits misses them: the liquidation keeper finds the positions they break in the block that
carries them. :func:`send_private_transmit` plays that on the devnet: the feed committee's second
transmitter (a derived devnet key the world registered, never the bot's) signs an OCR1
``transmit`` and sends it to the local relay with ``eth_sendBundle`` for the next blocks.
"""

from __future__ import annotations

import json
from typing import Any

import aiohttp
from eth_account import Account
from eth_utils import to_checksum_address

from anvil.world import FAULTS, World, derived_key
from chain.ocr import transmit_answer
from execution.signature import HEADER, flashbots_signature

TRANSMITTER_SEED = "oracle-transmitter-1"  # anvil.world.deploy_feeds registers it
BLOCKS = 3  # the bundle is offered for this many blocks


class PrivateSendError(RuntimeError):
    """The relay refused the bundle (its error, verbatim)."""


async def send_private_transmit(
    rpc: Any, world: World, relay_url: str, symbol: str, answer: int, epoch: int
) -> str:
    """Transmit ``answer`` to ``symbol``'s aggregator in a bundle for the next blocks; returns
    the transaction hash. ``epoch`` must be past the aggregator's latest."""
    feed = world.feeds[symbol]
    account = Account.from_key(derived_key(TRANSMITTER_SEED))
    await rpc.call("anvil_setBalance", [account.address, hex(10**18)])
    head = await rpc.call("eth_getBlockByNumber", ["latest", False])
    nonce = int(await rpc.call("eth_getTransactionCount", [account.address, "latest"]), 16)
    digest = bytes.fromhex(feed["config_digest"][2:])
    base_fee = int(head["baseFeePerGas"], 16)
    signed = account.sign_transaction(
        {
            "type": 2,
            "chainId": world.chain_id,
            "nonce": nonce,
            "to": to_checksum_address(feed["aggregator"]),
            "data": transmit_answer(answer, digest, epoch, FAULTS),
            "value": 0,
            "gas": 300_000,
            "maxFeePerGas": 3 * base_fee + 10**9,
            "maxPriorityFeePerGas": 10**9,
        }
    )
    raw = "0x" + bytes(signed.raw_transaction).hex()
    first = int(head["number"], 16) + 1
    async with aiohttp.ClientSession() as session:
        for block in range(first, first + BLOCKS):
            body = json.dumps(
                {
                    "jsonrpc": "2.0",
                    "id": block,
                    "method": "eth_sendBundle",
                    "params": [{"txs": [raw], "blockNumber": hex(block)}],
                }
            ).encode()
            headers = {
                HEADER: flashbots_signature(body, account),
                "Content-Type": "application/json",
            }
            async with session.post(relay_url, data=body, headers=headers) as response:
                reply = await response.json(content_type=None)
            if "error" in reply:
                raise PrivateSendError(f"eth_sendBundle: {reply['error']}")
    return "0x" + bytes(signed.hash).hex()
