"""`keepers.liquidation_mode = "public"` on the devnet: the bot's liquidation keeper sends the
liquidation as a public transaction from the executor key (no bundle), and it lands."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

from devnet_txs import feed_update

from anvil.stack import DevnetStack
from chain.rpc import Rpc, connect
from chain.topics import LIQUIDATION_CALL
from mevbot.config import load_config
from mevbot.deployment import devnet_keys
from mevbot.resolve import resolve_deployment
from mevbot.runtime import Bot


async def _until(predicate: Callable[[], object], what: str, timeout: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def _pending_from(rpc: Rpc, sender: str) -> list[str]:
    pool = await rpc.call("txpool_content")
    by_sender = {address.lower(): txs for address, txs in pool.get("pending", {}).items()}
    return [tx["hash"] for tx in by_sender.get(sender, {}).values()]


async def _mine(stack: DevnetStack, bot: Bot) -> int:
    report = await stack.builder.build_block()
    await _until(lambda: bot.engine.processed_block >= report.number, f"block {report.number}")
    return report.number


async def test_public_mode_liquidates_with_a_public_tx_from_the_executor_key(
    devnet_cache, tmp_path
):
    async with DevnetStack(block_time=None, state_dir=devnet_cache) as stack:
        world = stack.world
        world_json = tmp_path / "devnet.json"
        world_json.write_text(json.dumps(world.to_json()))
        config = load_config(
            network="devnet",
            environ={
                "MEVBOT_DEVNET_JSON": str(world_json),
                "MEVBOT_STORE__LEDGER_PATH": str(tmp_path / "ledger.sqlite"),
                "MEVBOT_METRICS__ENABLED": "false",
                "MEVBOT_KEEPERS__LIQUIDATION_MODE": "public",
                "MEVBOT_STRATEGIES__LIQUIDATION__ENABLED": "false",
            },
        )
        bot = Bot(config, resolve_deployment(config), devnet_keys(world))
        await bot.start()
        try:
            async with connect(world.rpc["ws"]) as rpc:
                await _mine(stack, bot)
                updater = world.roles["oracle_updater"].address
                nonce = int(await rpc.call("eth_getTransactionCount", [updater, "pending"]), 16)
                raw = feed_update(world, nonce, bot.engine.head.base_fee)
                await rpc.call("eth_sendRawTransaction", [raw])
                await _mine(stack, bot)  # the price drop lands; the keeper sees the borrower

                owner = world.roles["executor"].address
                sent: list[str] = []
                deadline = asyncio.get_running_loop().time() + 20
                while not sent and asyncio.get_running_loop().time() < deadline:
                    sent = await _pending_from(rpc, owner)
                    await asyncio.sleep(0.05)
                assert len(sent) == 1, "one public liquidation tx from the executor key"
                await _mine(stack, bot)
                receipt = await rpc.call("eth_getTransactionReceipt", [sent[0]])
        finally:
            await bot.stop()
    assert int(receipt["status"], 16) == 1
    assert receipt["from"] == owner and receipt["to"] == world.executor
    topics = [log["topics"][0] for log in receipt["logs"]]
    assert "0x" + LIQUIDATION_CALL.hex() in topics
    assert not [c for c, _ in bot.engine.submitter.verdicts if c.strategy == "liquidation-keeper"]
