"""Load: a burst of 10x the demo's pending rate for 30 s on the devnet, plus irrelevant traffic.

The demo sends ~3 swaps per 1 s block; here 30 swaps/s (relevant: they move tracked pools) and
150 plain ETH transfers/s (irrelevant: they touch no pool) go to the devnet for 30 s while it
builds a block every second. The intake is narrowed to 64 slots so the bursts overflow it.
Checked: memory stays bounded (peak RSS reported), every relevant tx is handled and none of them
is shed while irrelevant ones can go, the shed counts add up (offered = processed + shed), and
the backrun latency from the wire to the relay stays under one block.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from fault_support import bot_on, proc_status_kb, sign_transfer, until

from anvil.stack import DevnetStack
from anvil.traffic import Traffic
from chain.node import ANVIL_DEV_KEYS

pytestmark = [pytest.mark.faults, pytest.mark.slow]

BURST_S = 30.0
SWAPS_PER_S = 30  # 10x the demo's ~3 swaps per 1 s block
TRANSFERS_PER_S = 150
INTAKE_SLOTS = 64
# A backrun that reaches the relay after the next block is built is too late: one block time.
LATENCY_GOAL_MS = 1000.0
MAX_RSS_GROWTH_KB = 200 * 1024
# Dev keys the world does not use (0-4 are its roles, 5-7 its traders): irrelevant senders.
SPAMMER_KEYS = ANVIL_DEV_KEYS[8:10]


class PendingTxsLost(AssertionError):
    """Relevant pending txs never reached the bot (not shed: never delivered by the source)."""


@pytest.fixture
async def stack(devnet_cache: Path) -> AsyncIterator[DevnetStack]:
    async with DevnetStack(block_time=1.0, state_dir=devnet_cache) as stack:
        yield stack


@pytest.mark.xfail(
    strict=True,
    raises=PendingTxsLost,
    reason=(
        "under this burst (~160 tx/s sent while the devnet builds 1 s blocks, the bot, the "
        "builder, the relay and the traffic signer all in this one process) anvil's "
        "newPendingTransactions subscriptions go quiet; the sources now notice within ~4 s "
        "(stale_after=2 s twice) and resubscribe + backfill from txpool_content, but the new "
        "subscriptions go quiet again and txs mined meanwhile are never seen (runs: 771/771 "
        "swaps but 1,833/4,626 txs offered; 311/732 swaps). Not yet known whether anvil ends "
        "a lagging subscriber or our reader falls behind; anvil_drop* was ruled out"
    ),
)
async def test_a_30_s_burst_at_10x_the_pending_rate(stack, tmp_path, record_property):
    record_property(
        "injected",
        f"{BURST_S:.0f} s of {SWAPS_PER_S} swaps/s (10x) + {TRANSFERS_PER_S} transfers/s, "
        f"intake {INTAKE_SLOTS} slots",
    )
    async with bot_on(stack, tmp_path) as bot:
        bot.intake.capacity = INTAKE_SLOTS
        await until(lambda: bot.engine.head is not None, what="the bot's first head")
        traffic = Traffic(stack.world, seed=17)
        await traffic.sync_nonces(stack.rpc)
        spammers = {}
        for key in SPAMMER_KEYS:
            address = sign_transfer(key, 0, "0x" + "00" * 20, 1).sender
            nonce = await stack.rpc.call("eth_getTransactionCount", [address, "pending"])
            spammers[key] = int(nonce, 16)
        rss_before = proc_status_kb("VmRSS")
        swaps: set[str] = set()
        transfers = 0
        deepest = 0
        tick = 0.1
        started = time.monotonic()
        while (elapsed := time.monotonic() - started) < BURST_S:
            base_fee = bot.engine.head.base_fee
            reserves = {a: (p.reserve0, p.reserve1) for a, p in bot.state.pools.items()}
            batch = []
            for _ in range(round(SWAPS_PER_S * tick)):
                swap, _ = traffic.swap(reserves, base_fee)
                swaps.add(swap.hash)
                batch.append(swap)
            for i in range(round(TRANSFERS_PER_S * tick)):
                key = SPAMMER_KEYS[i % len(SPAMMER_KEYS)]
                batch.append(sign_transfer(key, spammers[key], "0x" + "ee" * 20, base_fee))
                spammers[key] += 1
                transfers += 1
            answers = await stack.rpc.batch(
                [("eth_sendRawTransaction", [tx.raw_hex]) for tx in batch]
            )
            refused = [a for a in answers if not isinstance(a, str)]
            assert not refused, f"the devnet refused {len(refused)} txs: {refused[0]}"
            deepest = max(deepest, len(bot.intake))
            await asyncio.sleep(max(0.0, started + elapsed + tick - time.monotonic()))
        offered_total = len(swaps) + transfers
        with contextlib.suppress(AssertionError):  # what never arrives is judged below
            await until(
                lambda: bot.intake.offered >= offered_total and len(bot.intake) == 0,
                timeout=20,
                what=f"the bot to take in all {offered_total} pending txs",
            )
        await until(lambda: len(bot.intake) == 0, what="the intake to drain")
        rss_after = proc_status_kb("VmRSS")
        peak = proc_status_kb("VmHWM")
        intake = bot.intake
        counters = bot.engine.counters
        shed = dict(intake.shed)
        assert counters["pending"] + sum(shed.values()) == intake.offered, (counters, shed)
        assert shed.get("relevant", 0) == 0, "a relevant tx was shed while irrelevant ones queued"
        assert shed.get("irrelevant", 0) > 0, "the bursts never overflowed the intake"
        assert deepest <= INTAKE_SLOTS
        assert rss_after - rss_before < MAX_RSS_GROWTH_KB
        assert {t.state for t in bot.supervisor.status()} == {"running"}
        wire = bot.latency.timing("wire_to_relay")
        assert wire is not None and wire.n > 0, "no backrun reached the relay"
        figures = (
            f"peak RSS {peak / 1024:.0f} MB (RSS {rss_before / 1024:.0f} -> "
            f"{rss_after / 1024:.0f} MB); wire_to_relay p50 {wire.p50:.1f} ms p99 "
            f"{wire.p99:.1f} ms (n={wire.n}); shed {shed}; "
            f"{counters['pending_relevant']}/{len(swaps)} swaps handled"
        )
        print(f"\nload: {figures}")
        record_property("survived", figures)
        assert wire.p50 <= LATENCY_GOAL_MS, figures
        # The bot's own bundle txs reach anvil's pool through the builder: offered can be more.
        if intake.offered < offered_total or counters["pending_relevant"] < len(swaps):
            health = bot.merger.coverage().sources[0].health
            raise PendingTxsLost(
                f"offered {intake.offered} of {offered_total} sent; {counters['pending_relevant']}"
                f" of {len(swaps)} swaps handled; source {health}"
            )
