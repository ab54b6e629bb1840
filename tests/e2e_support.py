"""What the end-to-end tests share: a devnet stack with a running bot, and the on-chain reads
they measure the bot by."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path

from anvil.builder import BlockReport
from anvil.stack import DevnetStack
from chain.abi import load_artifact
from mevbot.config import load_config
from mevbot.deployment import deployment_from_world, devnet_keys
from mevbot.runtime import Bot
from mevbot.submitter import Verdict
from simulation.simulator import ETH

ERC20 = load_artifact("ERC20Token").abi


async def until(predicate: Callable[[], object], timeout: float = 15.0, what: str = "") -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def stack_with_bot(
    state_dir: Path, workdir: Path, environ: Mapping[str, str] | None = None
) -> AsyncIterator[tuple[DevnetStack, Bot]]:
    """A devnet that builds a block when asked and the bot on it (bundles for the next block),
    configured further by ``environ`` (``MEVBOT_...`` variables)."""
    async with DevnetStack(block_time=None, state_dir=state_dir) as stack:
        stack.world.extra["mevshare"] = stack.matchmaker_url  # the bot follows its hints too
        config = load_config(
            network="devnet",
            environ={
                "MEVBOT_STORE__LEDGER_PATH": str(workdir / "ledger.sqlite"),
                "MEVBOT_STRATEGIES__TARGET_BLOCKS": "1",
                "MEVBOT_METRICS__PORT": "0",
                **(environ or {}),
            },
        )
        bot = Bot(
            config, deployment_from_world(stack.world, stack.relay_url), devnet_keys(stack.world)
        )
        await bot.start()
        try:
            yield stack, bot
        finally:
            await bot.stop()


async def mine(stack: DevnetStack, bot: Bot) -> BlockReport:
    """Build the next block and wait until the bot has processed it."""
    report = await stack.builder.build_block()
    await until(
        lambda: bot.engine.processed_block >= report.number, what=f"bot at block {report.number}"
    )
    return report


async def level(stack: DevnetStack, bot: Bot, most: int = 10) -> None:
    """Mine until the bot has nothing of its own for the next block.

    The devnet's pools start apart (sushiswap's WETH/USDC and the V3 fee tiers are skewed), so
    block-state arbitrage goes out at the first heads; each that lands can leave a smaller gap
    on a neighbouring cycle, so how many blocks that takes depends on how well the bot sizes
    and finds trades. A test that measures the executor's balances over one block needs the
    block to hold only the bundle it is about: the bot's block bundle for the next block is
    decided before :func:`mine` returns (``processed_block`` is set after the block's
    candidates have their verdicts), so an empty one means prices are level.
    """
    for _ in range(most):
        await mine(stack, bot)
        bundle = bot.engine.submitter.bundle
        if bundle is not None and not bundle.members:
            return
    raise AssertionError(f"block-state arbitrage still going out after {most} blocks")


async def balances(rpc, holder: str, tokens: list[str]) -> dict[str, int]:
    """``holder``'s ETH (key :data:`ETH`) and token balances."""
    out = {ETH: int(await rpc.call("eth_getBalance", [holder, "latest"]), 16)}
    fn = ERC20.function("balanceOf")
    for token in tokens:
        raw = await rpc.call(
            "eth_call", [{"to": token, "data": "0x" + fn.encode(holder).hex()}, "latest"]
        )
        out[token] = fn.decode_output(bytes.fromhex(raw[2:]))[0]
    return out


def sent_for(bot: Bot, trigger: str) -> list[Verdict]:
    """The verdicts of candidates sent to the relays behind the tx ``trigger``."""
    return [
        v
        for c, v in bot.engine.submitter.verdicts
        if c.trigger_hash == trigger and v.outcome == "sent"
    ]


async def block_tx_hashes(rpc, number: int) -> list[str]:
    block = await rpc.call("eth_getBlockByNumber", [hex(number), False])
    return block["transactions"]
