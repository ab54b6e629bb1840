"""Signed devnet transactions that tests send as pending victims."""

from __future__ import annotations

from eth_account import Account
from eth_utils import to_checksum_address

from anvil import artifacts
from anvil.traffic import Traffic
from anvil.world import World
from chain.abi import load_artifact
from chain.ocr import transmit_answer

SWAP = artifacts.load("UniswapV2Router02").abi.function("swapExactTokensForTokens")


def swap(traffic: Traffic, world: World, dex: str, trader: int, amount: int, fee: int) -> str:
    """Trader ``trader`` sells ``amount`` WETH for USDC on ``dex`` (raw tx hex)."""
    weth, usdc = world.tokens["WETH"]["address"], world.tokens["USDC"]["address"]
    holder = world.traders[trader].address
    data = SWAP.encode(amount, 0, [weth, usdc], holder, 2**40)
    return traffic.sign(holder, world.dexes[dex]["router"], data, fee).raw_hex


def transmit(world: World, symbol: str, answer: int, epoch: int = 2) -> tuple[str, bytes]:
    """(aggregator, OCR1 transmit calldata) answering ``answer`` on ``symbol``'s feed. The world
    transmitted epoch 1; each later transmit needs a greater epoch."""
    feed = world.feeds[symbol]
    digest = bytes.fromhex(feed["config_digest"][2:])
    return feed["aggregator"], transmit_answer(answer, digest, epoch)


async def next_transmit(rpc, world: World, symbol: str, answer: int) -> tuple[str, bytes]:
    """Like :func:`transmit`, for the epoch after the aggregator's latest (read from the chain)."""
    aggregator = world.feeds[symbol]["aggregator"]
    fn = load_artifact("OffchainAggregator").abi.function("latestTransmissionDetails")
    raw = await rpc.call(
        "eth_call", [{"to": aggregator, "data": "0x" + fn.encode().hex()}, "latest"]
    )
    _, epoch, _, _, _ = fn.decode_output(bytes.fromhex(raw[2:]))
    return transmit(world, symbol, answer, epoch + 1)


def feed_update(world: World, nonce: int, base_fee: int) -> str:
    """The oracle keeper's transmitter posts ETH at 96% of the world's price (raw tx hex): the
    HF 1.035 borrower goes under 1."""
    updater = Account.from_key(world.roles["oracle_updater"].private_key)
    aggregator, data = transmit(world, "WETH", world.feeds["WETH"]["answer"] * 96 // 100)
    signed = updater.sign_transaction(
        {
            "type": 2,
            "chainId": world.chain_id,
            "nonce": nonce,
            "to": to_checksum_address(aggregator),
            "data": data,
            "gas": 300_000,
            "maxFeePerGas": 2 * base_fee + 10**9,
            "maxPriorityFeePerGas": 10**9,
            "value": 0,
        }
    )
    return "0x" + bytes(signed.raw_transaction).hex()
