"""The demo: the devnet, traffic that creates opportunities, the bot with its keepers, a summary.

Everything runs in this process on loopback ports: the devnet stack (anvil with the world, the
local relay and block builder), a traffic task sending traders' swaps every block, an oracle
reference price path that makes borrowers liquidatable (the bot's oracle keeper transmits it, the
liquidation strategy backruns the pending transmits), a WBTC update another oracle sends
privately (:mod:`anvil.private_oracle`: no pending tx, so the liquidation keeper takes the
borrower it breaks), and the bot. The executor starts with no WETH (its owner withdraws it
first): every backrun is financed by a flash swap. A share of the traders' swaps goes privately
to the devnet's MEV-Share node (``private_share``), whose hints the bot backruns. After
``blocks`` blocks (or Ctrl-C) it measures the outcome on chain and returns a
:class:`DemoSummary`: liquidations placed right behind an oracle update in their block count as
backruns, the others as the keeper's.

``realized_profit_wei`` is measured on chain: the change in value of the executor contract's
holdings (ETH and tokens, all valued at the feed prices at the end, so price moves of the demo
itself do not count) plus the change of the executor owner's ETH (the gas it paid).
``mevshare_backruns_landed`` counts the bot's backruns of hints that landed behind their user's
tx; ``refunds_paid_wei`` is what the users of those private txs received back on chain: the
values of the builder's in-block refund transfers the node reports, each read back from the
chain and counted only when mined and successful.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import aiohttp

from anvil.mix import DEFAULT_MIX, Mix
from anvil.private_flow import PrivateFlow
from anvil.private_oracle import send_private_transmit
from anvil.stack import DevnetStack
from anvil.traffic import Traffic
from anvil.world import World, reference_points
from chain.abi import load_artifact
from chain.topics import ANSWER_UPDATED, LIQUIDATION_CALL
from keepers.oracle import OracleFeed, SeriesPrice
from mevbot.config import load_config
from mevbot.counters import total
from mevbot.deployment import deployment_from_world, devnet_keys
from mevbot.runtime import Bot

log = logging.getLogger("mevbot.demo")
ERC20 = load_artifact("ERC20Token").abi
SWAPS_PER_BLOCK = (1, 4)
# Blocks after the start when another oracle posts WBTC 8% down privately: the HF 1.08 WBTC
# borrower goes under with no pending transmit to backrun.
PRIVATE_UPDATE = ("WBTC", 10, 92)  # symbol, block offset, percent of the start price


@dataclass(frozen=True, slots=True)
class DemoSummary:
    blocks: int
    pending_seen: int
    decoded: int
    opportunities: int
    bundles_submitted: int
    bundles_landed: int
    realized_profit_wei: int
    liquidations: int
    liquidation_backruns: int  # ... right behind an oracle update in their block
    keeper_liquidations: int  # ... the others
    oracle_updates: int
    keeper_oracle_updates: int  # ... transmitted by the bot's oracle keeper
    shed: int
    errors: int
    latency_ms: dict[str, dict[str, float]]
    swaps_by_router: dict[str, int] = field(default_factory=dict)  # the traffic sent, by kind
    landed_by_venue: dict[str, int] = field(default_factory=dict)  # uniswap-v2, -v3, mixed
    mevshare_backruns_landed: int = 0
    refunds_paid_wei: int = 0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


async def _holdings(rpc: Any, world: World, holder: str) -> dict[str, int]:
    """ETH and every world token held by ``holder``, in one batch."""
    fn = ERC20.function("balanceOf")
    calls: list[tuple[str, list[Any]]] = [("eth_getBalance", [holder, "latest"])]
    symbols = sorted(world.tokens)
    calls += [
        (
            "eth_call",
            [{"to": world.tokens[s]["address"], "data": "0x" + fn.encode(holder).hex()}, "latest"],
        )
        for s in symbols
    ]
    answers = await rpc.batch(calls)
    out = {"ETH": int(answers[0], 16)}
    for symbol, answer in zip(symbols, answers[1:], strict=True):
        out[symbol] = fn.decode_output(bytes.fromhex(answer[2:]))[0]
    return out


def _value_wei(world: World, deltas: dict[str, int], usd_prices: dict[str, int]) -> int:
    """ETH value of balance changes at the given feed answers (USD, feed decimals)."""
    eth_usd = usd_prices["WETH"]
    total = deltas.get("ETH", 0)
    for symbol, delta in deltas.items():
        if symbol == "ETH" or not delta:
            continue
        decimals = world.tokens[symbol]["decimals"]
        total += delta * usd_prices[symbol] * 10**18 // (eth_usd * 10**decimals)
    return total


async def _count_logs(
    rpc: Any, address: str | list[str], topic: bytes, first: int, last: int
) -> list:
    return await rpc.call(
        "eth_getLogs",
        [
            {
                "address": address,
                "topics": ["0x" + topic.hex()],
                "fromBlock": hex(first),
                "toBlock": hex(last),
            }
        ],
    )


async def _traffic(
    stack: DevnetStack,
    bot: Bot,
    seed: int,
    mix: Mix,
    by_router: Counter[str],
    private: PrivateFlow,
    private_share: float,
) -> None:
    """A few traders' swaps of the ``mix`` per block, V2 ones sized from the bot's view of the
    reserves, ``private_share`` of them sent privately; counts them by router kind into
    ``by_router``."""
    traffic = Traffic(stack.world, seed=seed, mix=mix)
    rng = random.Random(seed)
    choose_private = random.Random(seed + 1)
    await traffic.sync_nonces(stack.rpc)
    seen = bot.state.block_number
    while True:
        await asyncio.sleep(0.05)
        if bot.state.block_number == seen or bot.engine.head is None:
            continue
        seen = bot.state.block_number
        pairs = [bot.state.pools[a] for a in stack.world.pool_addresses()]  # the V2 pairs
        reserves = {p.address: (p.reserve0, p.reserve1) for p in pairs}
        for _ in range(rng.randint(*SWAPS_PER_BLOCK)):
            trade = traffic.next(reserves, bot.engine.head.base_fee)
            by_router[trade.swap.kind] += 1
            if choose_private.random() < private_share:
                await private.send(trade.txs, seen)
                continue
            for tx in trade.txs:
                await stack.rpc.call("eth_sendRawTransaction", [tx.raw_hex])


async def _private_update(stack: DevnetStack, bot: Bot, start: int) -> None:
    symbol, offset, percent = PRIVATE_UPDATE
    while True:
        await asyncio.sleep(0.05)
        if bot.state.block_number >= start + offset:
            break
    answer = stack.world.feeds[symbol]["answer"] * percent // 100
    # Epoch 2: the world transmitted this feed's epoch 1, and no keeper of the demo updates it.
    await send_private_transmit(stack.rpc, stack.world, stack.relay_url, symbol, answer, 2)


async def run_demo(
    *,
    blocks: int,
    block_time: float,
    workdir: Path,
    state_dir: Path | None,
    metrics_port: int = 0,
    on_started: Callable[[Bot, DevnetStack], Awaitable[None]] | None = None,
    stop: asyncio.Event | None = None,
    seed: int = 1,
    mix: Mix = DEFAULT_MIX,
    private_share: float = 0.5,
) -> DemoSummary:
    stop = stop or asyncio.Event()
    async with (
        DevnetStack(block_time=block_time, state_dir=state_dir) as stack,
        aiohttp.ClientSession() as session,
    ):
        world = stack.world
        await stack.empty_executor("WETH")
        world.extra["mevshare"] = stack.matchmaker_url
        start = int(await stack.rpc.call("eth_blockNumber"), 16)
        feed = world.feeds["WETH"]
        reference = SeriesPrice.table("devnet ETH/USD", reference_points("WETH", start))
        config = load_config(
            network="devnet",
            environ={
                "MEVBOT_STORE__LEDGER_PATH": str(workdir / "demo-ledger.sqlite"),
                "MEVBOT_METRICS__PORT": str(metrics_port),
                "MEVBOT_STRATEGIES__TARGET_BLOCKS": "2",
            },
        )
        bot = Bot(
            config,
            deployment_from_world(world, stack.relay_url),
            devnet_keys(world),
            oracle_feeds=[OracleFeed(feed["address"], reference, 100, 3600)],
        )
        await bot.start()
        owner = world.roles["executor"].address
        executor_before = await _holdings(stack.rpc, world, world.executor)
        owner_before = await _holdings(stack.rpc, world, owner)
        by_router: Counter[str] = Counter()
        tasks = [
            asyncio.create_task(
                _traffic(
                    stack,
                    bot,
                    seed,
                    mix,
                    by_router,
                    PrivateFlow(stack.matchmaker_url, session, seed=seed),
                    private_share,
                ),
                name="demo traffic",
            ),
            asyncio.create_task(_private_update(stack, bot, start), name="demo private update"),
        ]
        try:
            if on_started is not None:
                await on_started(bot, stack)
            while not stop.is_set() and bot.engine.processed_block < start + blocks:
                await asyncio.sleep(0.05)
                for task in tasks:
                    if task.done():
                        task.result()  # surface a crash
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        end = bot.engine.processed_block
        summary = await _summarize(stack, bot, world, start, end, executor_before, owner_before)
        summary = replace(summary, swaps_by_router=dict(sorted(by_router.items())))
        await bot.stop()
        return summary


def _position(log: dict[str, Any]) -> tuple[int, int]:
    return int(log["blockNumber"], 16), int(log["logIndex"], 16)


async def _summarize(
    stack: DevnetStack,
    bot: Bot,
    world: World,
    start: int,
    end: int,
    executor_before: dict[str, int],
    owner_before: dict[str, int],
) -> DemoSummary:
    rpc = stack.rpc
    prices = {}
    round_data = load_artifact("AggregatorProxy").abi.function("latestRoundData")
    for symbol, feed in world.feeds.items():
        raw = await rpc.call(
            "eth_call",
            [{"to": feed["address"], "data": "0x" + round_data.encode().hex()}, "latest"],
        )
        prices[symbol] = round_data.decode_output(bytes.fromhex(raw[2:]))[1]
    executor_after = await _holdings(rpc, world, world.executor)
    owner_after = await _holdings(rpc, world, world.roles["executor"].address)
    deltas = {k: executor_after[k] - executor_before[k] for k in executor_after}
    deltas["ETH"] += owner_after["ETH"] - owner_before["ETH"]
    liquidations = [
        log
        for log in await _count_logs(rpc, world.aave["pool"], LIQUIDATION_CALL, start + 1, end)
        if log["data"][2 + 64 * 2 : 2 + 64 * 3].endswith(world.executor[2:])
    ]
    updates = await _count_logs(
        rpc, [f["aggregator"] for f in world.feeds.values()], ANSWER_UPDATED, start + 1, end
    )
    backruns = [
        log
        for log in liquidations
        if any(
            _position(u) < _position(log) and u["blockNumber"] == log["blockNumber"]
            for u in updates
        )
    ]
    senders = [
        (await rpc.call("eth_getTransactionByHash", [u["transactionHash"]]))["from"].lower()
        for u in updates
    ]
    updater = world.roles["oracle_updater"].address.lower()
    status = bot.snapshot()
    tally = status.tally
    return DemoSummary(
        blocks=end - start,
        pending_seen=status.intake.pending_seen,
        decoded=status.intake.decoded,
        opportunities=tally.candidates() - tally.candidates("duplicate"),
        bundles_submitted=tally.candidates("sent"),
        bundles_landed=bot.ledger.counts_by_status().get("landed", 0),
        realized_profit_wei=_value_wei(world, deltas, prices),
        liquidations=len(liquidations),
        liquidation_backruns=len(backruns),
        keeper_liquidations=len(liquidations) - len(backruns),
        oracle_updates=len(updates),
        keeper_oracle_updates=senders.count(updater),
        shed=status.intake.shed,
        errors=total(tally.errors) + stack.stats().build_errors,
        latency_ms={k: {"p50": t.p50, "p99": t.p99, "n": t.n} for k, t in status.latency.items()},
        landed_by_venue={c.labels[0]: c.value for c in tally.landed_by_venue},
        mevshare_backruns_landed=status.mevshare.landed if status.mevshare is not None else 0,
        refunds_paid_wei=await _refunds_received(stack),
    )


async def _refunds_received(stack: DevnetStack) -> int:
    """What the users of backrun private txs got back: the builder's in-block refund transfers
    for the node's landed backruns, as the chain holds them."""
    payouts = sorted({m.refund_tx for m in stack.matchmaker.matched if m.refund_tx})
    if not payouts:
        return 0
    answers = await stack.rpc.batch(
        [("eth_getTransactionByHash", [h]) for h in payouts]
        + [("eth_getTransactionReceipt", [h]) for h in payouts]
    )
    txs, receipts = answers[: len(payouts)], answers[len(payouts) :]
    return sum(
        int(tx["value"], 16)
        for tx, receipt in zip(txs, receipts, strict=True)
        if isinstance(tx, dict) and isinstance(receipt, dict) and receipt.get("status") == "0x1"
    )
