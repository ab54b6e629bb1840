"""One bundle per block on the devnet: every non-conflicting candidate of a block joins it, each
member's executor call on the next nonce, and the whole set lands in one block; a bundle whose
victim was mined without it is cancelled at the builder for the blocks it still had."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest

from anvil import artifacts
from anvil.stack import DevnetStack
from anvil.traffic import Traffic
from chain.rpc import connect
from mevbot import parts as runtime_parts
from mevbot.config import load_config
from mevbot.deployment import deployment_from_world, devnet_keys
from mevbot.runtime import Bot

SWAP = artifacts.load("UniswapV2Router02").abi.function("swapExactTokensForTokens")


async def _until(predicate: Callable[[], object], timeout: float = 20.0, what: str = "") -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def _bot(stack: DevnetStack, tmp_path, target_blocks: int) -> Bot:
    config = load_config(
        network="devnet",
        environ={
            "MEVBOT_STORE__LEDGER_PATH": str(tmp_path / "ledger.sqlite"),
            "MEVBOT_STRATEGIES__TARGET_BLOCKS": str(target_blocks),
            "MEVBOT_KEEPERS__LIQUIDATION": "false",
            "MEVBOT_METRICS__PORT": "0",
        },
    )
    return Bot(
        config, deployment_from_world(stack.world, stack.relay_url), devnet_keys(stack.world)
    )


@pytest.fixture
async def stack(devnet_cache) -> AsyncIterator[DevnetStack]:
    async with DevnetStack(block_time=None, state_dir=devnet_cache) as stack:
        yield stack


def _landed(bot: Bot) -> int:
    return sum(n for (_, status), n in bot.engine.counts.bundles.items() if status == "landed")


async def _mine(stack: DevnetStack, bot: Bot):
    report = await stack.builder.build_block()
    await _until(lambda: bot.engine.processed_block >= report.number, what="the bot's head")
    return report


def _sell_weth(stack: DevnetStack, bot: Bot, traffic: Traffic, trader: int, pair: str):
    """A trader sells 3% of a WETH pool's WETH for the other token, through the pool's DEX."""
    world = stack.world
    weth = world.tokens["WETH"]["address"]
    for dex in world.dexes.values():
        for name, info in dex["pairs"].items():
            if name == pair and dex is world.dexes["uniswap"]:
                other = world.tokens[name.split("/")[1]]["address"]
                amount = bot.state.pools[info["address"]].reserves_for(weth)[0] * 3 // 100
                who = world.traders[trader].address
                data = SWAP.encode(amount, 0, [weth, other], who, 2**40)
                return traffic.sign(who, dex["router"], data, bot.engine.head.base_fee)
    raise AssertionError(f"no uniswap pair {pair}")


async def test_two_victims_of_one_block_are_backrun_in_one_bundle_that_lands_whole(stack, tmp_path):
    bot = _bot(stack, tmp_path, target_blocks=1)
    await bot.start()
    try:
        async with connect(stack.world.rpc["ws"]) as rpc:
            await _mine(stack, bot)
            await _mine(stack, bot)  # block-state gaps closed: prices start level
            traffic = Traffic(stack.world, seed=5)
            await traffic.sync_nonces(rpc)
            victims = [
                _sell_weth(stack, bot, traffic, 0, "WETH/USDC"),
                _sell_weth(stack, bot, traffic, 1, "WETH/DAI"),
            ]
            for victim in victims:
                await rpc.call("eth_sendRawTransaction", [victim.raw_hex])
            triggers = {victim.hash for victim in victims}
            sent = lambda: [  # noqa: E731
                v
                for c, v in bot.engine.submitter.verdicts
                if v.outcome == "sent" and c.trigger_hash in triggers
            ]
            verdicts = lambda: [  # noqa: E731
                (c.key, v.outcome, v.reason)
                for c, v in bot.engine.submitter.verdicts
                if c.trigger_hash in triggers
            ]
            await _until(lambda: len(verdicts()) >= 2, what="verdicts on both backruns")
            assert len(sent()) == 2, verdicts()
            bundle = bot.engine.submitter.bundle
            members = [m for m in bundle.members if m.candidate.trigger_hash in triggers]
            assert len(members) == 2
            nonces = [m.plan.our_tx.nonce for m in members]
            assert nonces[1] == nonces[0] + 1, "the second backrun signs the next nonce"

            landed = _landed(bot)
            report = await _mine(stack, bot)
            block = await rpc.call("eth_getBlockByNumber", [hex(report.number), False])
            txs = block["transactions"]
            ours = [m.plan.our_tx.hash for m in members]
            for victim, our_hash in zip(victims, ours, strict=True):
                assert txs.index(our_hash) == txs.index(victim.hash) + 1, "right behind its victim"
            await _until(
                lambda: _landed(bot) >= landed + 2,
                what="both members settled",
            )
            with_bundle, landed = bot.ledger.blocks_landed(report.number, report.number)
            assert (with_bundle, landed) == (1, 1)
    finally:
        await bot.stop()


async def test_a_bundle_whose_victim_was_mined_without_it_is_cancelled(stack, tmp_path):
    bot = _bot(stack, tmp_path, target_blocks=3)
    await bot.start()
    try:
        async with connect(stack.world.rpc["ws"]) as rpc:
            await _mine(stack, bot)
            await _mine(stack, bot)
            traffic = Traffic(stack.world, seed=6)
            await traffic.sync_nonces(rpc)
            victim = _sell_weth(stack, bot, traffic, 2, "WETH/USDC")
            await rpc.call("eth_sendRawTransaction", [victim.raw_hex])
            await _until(
                lambda: any(
                    v.outcome == "sent" and c.trigger_hash == victim.hash
                    for c, v in bot.engine.submitter.verdicts
                ),
                what="the backrun bundle",
            )
            head = bot.engine.processed_block
            carried = bot.engine.submitter.bundle
            uuids = dict(carried.replacements)
            assert sorted(uuids) == [head + 1, head + 2, head + 3]
            assert [m for m in carried.members if m.candidate.trigger_hash == victim.hash]
            counts = bot.engine.counts
            dropped, cancelled = counts.members_dropped, counts.bundles_cancelled
            # The node mines the victim on its own: the builder (and our bundle) are bypassed.
            await rpc.call("evm_mine", [])
            mined = await rpc.call("eth_getBlockByNumber", [hex(head + 1), False])
            assert victim.hash in mined["transactions"], "the node mined the victim itself"
            await _until(lambda: bot.engine.processed_block >= head + 1, what="the bot's head")
            assert counts.members_dropped >= dropped + 1
            if not bot.engine.submitter.bundle.members:  # nothing left to send: cancelled
                assert counts.bundles_cancelled == cancelled + 2
            for block in (head + 2, head + 3):
                left = [
                    e
                    for e in stack.relay.book.for_block(block)
                    if getattr(e, "uuid", None) == uuids[block].uuid
                ]
                # The gap the victim left may be traded again as a block arbitrage (the same
                # executor tx, the victim's swap no longer in front): never behind the victim.
                assert all(victim.hash not in [tx.hash for tx in e.bundle.txs] for e in left), (
                    f"our stale backrun of the victim is still at the builder for block {block}"
                )
    finally:
        await bot.stop()


async def test_the_running_bot_reconciles_the_refunds_its_landed_bundles_earn(
    stack, tmp_path, monkeypatch
):
    monkeypatch.setattr(runtime_parts, "REFUND_EVERY_BLOCKS", 1)
    bot = _bot(stack, tmp_path, target_blocks=1)
    await bot.start()
    try:
        async with connect(stack.world.rpc["ws"]) as rpc:
            searcher = bot.keys.searcher.address.lower()
            await _mine(stack, bot)
            traffic = Traffic(stack.world, seed=7)
            await traffic.sync_nonces(rpc)
            before = int(await rpc.call("eth_getBalance", [searcher, "latest"]), 16)
            victim = _sell_weth(stack, bot, traffic, 3, "WETH/USDC")
            await rpc.call("eth_sendRawTransaction", [victim.raw_hex])
            await _until(
                lambda: any(
                    v.outcome == "sent" and c.trigger_hash == victim.hash
                    for c, v in bot.engine.submitter.verdicts
                ),
                what="the backrun bundle",
            )
            for _ in range(4):  # it lands; its refund is paid the block after; then read back
                await _mine(stack, bot)
            await _until(
                lambda: bot.refunds is not None and bot.refunds.received_wei > 0,
                what="the refunds reconciled as received",
            )
            refunds = bot.refunds
            after = int(await rpc.call("eth_getBalance", [searcher, "latest"]), 16)
            # Every wei the searcher received is a refund the ledger knows: received, or paid
            # since the last reading and still pending there (bundles keep landing meanwhile).
            received = after - before
            assert refunds.received_wei <= received <= refunds.received_wei + refunds.pending_wei
            assert bot.ledger.refund_totals(searcher).received_wei >= refunds.received_wei
    finally:
        await bot.stop()
