"""Prometheus metrics from status snapshots and latency samples; the HTTP endpoint serving
/metrics and /status; ``mevbot status`` reading it."""

from __future__ import annotations

import argparse
import asyncio
import json
import re
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import aiohttp
import pytest
from e2e_support import level
from fault_support import bot_config, call, mine, push_victim, sent_for, until, with_relays
from prometheus_client.parser import text_string_to_metric_families
from test_tui import HOSTILE, HOSTILE_SHOWN, sample_mevshare, sample_status

from anvil.stack import DevnetStack
from anvil.traffic import Traffic
from chain.abi import load_artifact
from chain.node import free_port
from keepers.oracle import OracleFeed, SeriesPrice
from mevbot import cmd_status
from mevbot.counters import Count, total
from mevbot.deployment import devnet_keys
from mevbot.endpoint import StatusFetchError, status_from_json
from mevbot.latency import LatencyBook
from mevbot.metrics import Metrics
from mevbot.runtime import Bot
from mevbot.status import Intake, SourceRow

FEED = load_artifact("AggregatorProxy").abi


def samples(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = metrics.exposition().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(metrics: Metrics, metric: str, **labels: str) -> float:
    return samples(metrics)[(metric, tuple(sorted(labels.items())))]


def test_stage_latencies_land_in_per_stage_histograms():
    metrics = Metrics()
    book = LatencyBook(observer=metrics.observe_stage)
    for ms in (0.03, 0.2, 7.0):
        book.record("decode", ms)
    book.record("wire_to_relay", 450.0)
    book.record("custom_stage", 2000.0)  # beyond the last bucket: only +Inf
    assert value(metrics, "mevbot_stage_latency_seconds_bucket", stage="decode", le="5e-05") == 1
    assert value(metrics, "mevbot_stage_latency_seconds_bucket", stage="decode", le="0.00025") == 2
    assert value(metrics, "mevbot_stage_latency_seconds_bucket", stage="decode", le="0.005") == 2
    assert value(metrics, "mevbot_stage_latency_seconds_bucket", stage="decode", le="0.01") == 3
    assert value(metrics, "mevbot_stage_latency_seconds_count", stage="decode") == 3
    assert value(metrics, "mevbot_stage_latency_seconds_sum", stage="decode") == pytest.approx(
        0.00723
    )
    assert (
        value(metrics, "mevbot_stage_latency_seconds_bucket", stage="wire_to_relay", le="0.25") == 0
    )
    assert (
        value(metrics, "mevbot_stage_latency_seconds_bucket", stage="wire_to_relay", le="0.5") == 1
    )
    assert (
        value(metrics, "mevbot_stage_latency_seconds_bucket", stage="custom_stage", le="1.0") == 0
    )
    assert value(metrics, "mevbot_stage_latency_seconds_count", stage="custom_stage") == 1
    # Every pipeline stage has its histogram from the start (zero until observed).
    assert value(metrics, "mevbot_stage_latency_seconds_count", stage="simulate") == 0


def test_update_from_catches_counters_up_without_double_counting():
    metrics = Metrics()
    status = sample_status()
    metrics.update_from(status)
    metrics.update_from(status)  # the same totals again: nothing new
    assert value(metrics, "mevbot_pending_seen_total", source="ws-hashes") == 10_000
    assert value(metrics, "mevbot_pending_first_seen_total", source="txpool") == 500
    assert value(metrics, "mevbot_pending_duplicates_total", source="ws-hashes") == 3_000
    assert value(metrics, "mevbot_source_reconnects_total", source="mevshare") == 4
    assert value(metrics, "mevbot_source_malformed_total", source="txpool") == 2
    assert value(metrics, "mevbot_pending_unique_total") == 10_000
    assert value(metrics, "mevbot_decoded_total") == 8_721
    assert value(metrics, "mevbot_undecoded_total") == 1_279
    assert value(metrics, "mevbot_shed_total") == 37
    assert value(metrics, "mevbot_pending_handled_total") == 9_000
    assert value(metrics, "mevbot_pending_relevant_total") == 800
    assert value(metrics, "mevbot_blocks_total") == 1_200
    assert value(metrics, "mevbot_reorgs_total") == 0
    assert value(metrics, "mevbot_opportunities_total", strategy="backrun", verdict="sent") == 5
    assert (
        value(metrics, "mevbot_opportunities_total", strategy="liquidation", verdict="dropped") == 2
    )
    assert (
        value(
            metrics,
            "mevbot_candidates_dropped_total",
            strategy="liquidation",
            reason="unprofitable_after_gas",
        )
        == 2
    )
    assert value(metrics, "mevbot_bundles_total", strategy="backrun", status="sent") == 3
    assert value(metrics, "mevbot_bundles_total", strategy="liquidation", status="landed") == 3
    assert value(metrics, "mevbot_relay_bundles_total", relay="flashbots", status="landed") == 3
    assert value(metrics, "mevbot_relay_bundles_total", relay="titan", status="sent") == 4
    assert value(metrics, "mevbot_realized_profit_wei_total", strategy="liquidation") == 18e16
    assert value(metrics, "mevbot_realized_loss_wei_total", strategy="backrun") == 1e15
    assert value(metrics, "mevbot_gas_paid_wei_total", strategy="backrun") == 3e15
    assert value(metrics, "mevbot_coinbase_tips_wei_total", strategy="liquidation") == 5e16
    assert value(metrics, "mevbot_relay_sent_total", relay="flashbots") == 120
    assert value(metrics, "mevbot_relay_requests_total", relay="flashbots", outcome="ok") == 118
    assert value(metrics, "mevbot_relay_requests_total", relay="flashbots", outcome="error") == 2
    assert value(metrics, "mevbot_keeper_actions_total", job="oracle-eth-usd") == 7
    assert value(metrics, "mevbot_keeper_failures_total", job="liquidations") == 3
    assert value(metrics, "mevbot_task_restarts_total", task="source:mevshare") == 4
    assert value(metrics, "mevbot_errors_total", component="relay:flashbots") == 2
    assert value(metrics, "mevbot_head_block") == 7_654_321
    assert value(metrics, "mevbot_head_age_seconds") == pytest.approx(3.2)
    assert value(metrics, "mevbot_queue_depth") == 12
    assert value(metrics, "mevbot_queue_capacity") == 4096
    assert value(metrics, "mevbot_decoded_share") == pytest.approx(0.8721)
    assert value(metrics, "mevbot_source_tx_per_second", source="ws-hashes") == 42.5
    assert value(metrics, "mevbot_task_running", task="source:mevshare") == 0
    assert value(metrics, "mevbot_task_running", task="relay:flashbots") == 1
    assert value(metrics, "mevbot_dry_run") == 1
    assert value(metrics, "mevbot_info", network="sepolia", chain_id="11155111") == 1

    # Later: totals grew; one source restarted its counts from zero and another went away.
    later = replace(
        status,
        intake=Intake(
            sources=(SourceRow("ws-hashes", "up", 50.0, 10_250, 7_100, 3_150, 0.4, 1, 0),),
            pending_seen=10_300,
            decoded=8_800,
            undecoded=1_500,
            shed=40,
            queue_depth=0,
            queue_capacity=4096,
        ),
        tally=replace(
            status.tally,
            bundles=(Count(("liquidation", "landed"), 1), Count(("liquidation", "sent"), 6)),
        ),
    )
    metrics.update_from(later)
    assert value(metrics, "mevbot_pending_seen_total", source="ws-hashes") == 10_250
    assert value(metrics, "mevbot_decoded_total") == 8_800
    assert value(metrics, "mevbot_shed_total") == 40
    # A total that went down was reset (its component restarted): counted afresh.
    assert value(metrics, "mevbot_bundles_total", strategy="liquidation", status="landed") == 3 + 1
    assert value(metrics, "mevbot_bundles_total", strategy="liquidation", status="sent") == 2 + 4
    assert value(metrics, "mevbot_pending_seen_total", source="txpool") == 2_500  # counters stay
    gauges = samples(metrics)
    assert (("mevbot_source_tx_per_second", (("source", "txpool"),))) not in gauges
    assert gauges[("mevbot_source_tx_per_second", (("source", "ws-hashes"),))] == 50.0


def test_the_exposition_has_no_created_series_and_no_catch_all_and_registries_are_private():
    metrics = Metrics()
    metrics.update_from(sample_status())
    names = {name for name, _ in samples(metrics)}
    assert not any(name.endswith("_created") for name in names)
    assert "mevbot_events_total" not in names
    one, two = Metrics(), Metrics()  # two bots in one process: no "duplicated timeseries"
    one.observe_stage("sign", 0.5)
    assert value(one, "mevbot_stage_latency_seconds_count", stage="sign") == 1
    assert value(two, "mevbot_stage_latency_seconds_count", stage="sign") == 0


async def test_the_endpoint_serves_metrics_and_status_and_stops():
    metrics = Metrics()
    metrics.observe_stage("wire_to_relay", 44.0)
    state = {"status": sample_status(symbol=HOSTILE), "fail": False}

    def snapshot():
        if state["fail"]:
            raise RuntimeError("store locked")
        return state["status"]

    server = await metrics.start_server("127.0.0.1", 0, snapshot=snapshot)
    assert server.port and server.url == f"http://127.0.0.1:{server.port}"
    timeout = aiohttp.ClientTimeout(total=5)
    try:
        async with aiohttp.ClientSession(timeout=timeout) as session:
            async with session.get(server.url + "/metrics") as response:
                assert response.status == 200
                assert response.headers["Content-Type"].startswith("text/plain; version=")
                text = await response.text()
            # The scrape brought the counters up to the snapshot first.
            assert 'mevbot_pending_seen_total{source="ws-hashes"} 10000.0' in text
            assert 'mevbot_stage_latency_seconds_count{stage="wire_to_relay"} 1.0' in text
            async with session.get(server.url + "/status") as response:
                assert response.status == 200
                body = await response.json()
            assert body == json.loads(json.dumps(state["status"].to_json()))
            assert body["keepers"][0]["last_action"] == f"updated {HOSTILE}/USD"  # raw in JSON
            state["fail"] = True
            async with session.get(server.url + "/status") as response:
                assert response.status == 503
                assert (await response.json())["error"] == (
                    "status snapshot failed: RuntimeError: store locked"
                )
            async with session.get(server.url + "/metrics") as response:
                assert response.status == 200  # still serves what it has
            async with session.get(server.url + "/nope") as response:
                assert response.status == 404
    finally:
        port = server.port
        await server.stop()
    with pytest.raises(aiohttp.ClientConnectionError):
        async with aiohttp.ClientSession(timeout=timeout) as session:
            await session.get(f"http://127.0.0.1:{port}/metrics")


def run_status_command(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="mevbot")
    cmd_status.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["status", *argv])
    return args.handler(args)


async def test_mevbot_status_prints_the_served_state(capsys):
    status = sample_status(symbol=HOSTILE)
    server = await Metrics().start_server("127.0.0.1", 0, snapshot=lambda: status)
    try:
        # The command runs its own event loop, as from a shell: give it a thread.
        code = await asyncio.to_thread(run_status_command, "--json", "--url", server.url)
        out = capsys.readouterr().out
        assert code == 0
        assert json.loads(out) == json.loads(json.dumps(status.to_json()))
        assert "\x1b" not in out  # JSON escapes the token's control character

        code = await asyncio.to_thread(run_status_command, "--url", server.url + "/status")
        out = capsys.readouterr().out
        assert code == 0
        for title in ("mevbot", "Intake", "Opportunities", "Bundles", "Keepers", "Log"):
            assert title in out
        assert "#7,654,321" in out and HOSTILE_SHOWN in out and "\x1b" not in out
    finally:
        await server.stop()


async def test_mevbot_status_fails_clearly_without_a_bot(capsys):
    url = f"http://127.0.0.1:{free_port()}"
    code = await asyncio.to_thread(run_status_command, "--json", "--url", url, "--timeout", "2")
    captured = capsys.readouterr()
    assert code == 1 and captured.out == ""
    assert captured.err.startswith(f"mevbot status: cannot reach {url}/status")

    # A server that answers, but not with a status (another service on the port).
    server = await Metrics().start_server("127.0.0.1", 0)  # no snapshot: /status is 404
    try:
        code = await asyncio.to_thread(run_status_command, "--url", server.url)
        assert code == 1
        assert "answered HTTP 404" in capsys.readouterr().err
    finally:
        await server.stop()


def test_mevshare_counts_are_exported_and_survive_the_status_json():
    metrics = Metrics()
    status = sample_status(mevshare=sample_mevshare())
    metrics.update_from(status)
    metrics.update_from(status)
    assert value(metrics, "mevbot_mevshare_hints_total") == 1234
    assert value(metrics, "mevbot_mevshare_candidates_total", sizing="exact") == 10
    assert value(metrics, "mevbot_mevshare_backruns_total", outcome="landed") == 4
    assert value(metrics, "mevbot_mevshare_backruns_total", outcome="refused") == 3
    assert value(metrics, "mevbot_mevshare_coinbase_paid_wei_total") == 6 * 10**15
    assert value(metrics, "mevbot_mevshare_refunds_wei_total") == 54 * 10**14
    assert status_from_json(json.loads(json.dumps(status.to_json()))) == status


def test_a_status_answer_is_validated_before_it_is_shown():
    data = json.loads(json.dumps(sample_status().to_json()))
    assert status_from_json(data) == sample_status()
    data["intake"]["sources"][0]["seen"] = "lots"
    with pytest.raises(StatusFetchError, match=r"intake\.sources\.0\.seen"):
        status_from_json(data)


@pytest.fixture
async def stack(devnet_cache: Path) -> AsyncIterator[DevnetStack]:
    async with DevnetStack(block_time=None, state_dir=devnet_cache) as stack:
        yield stack


def families(text: str) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """Sample values per family name, by sorted labels."""
    return {
        family.name: {
            tuple(sorted(sample.labels.items())): sample.value for sample in family.samples
        }
        for family in text_string_to_metric_families(text)
    }


async def test_a_running_bot_exports_every_count_it_keeps(stack, tmp_path, capsys):
    """A devnet bot with an oracle keeper and a second relay that refuses connections: after a
    backrun landed and a backrun of a swap that reverts was dropped, ``/metrics`` has samples
    in every family of what the bot counts, and the wei ones agree with the ledger."""
    world = stack.world
    feed = world.feeds["WETH"]["address"]
    round_data = FEED.function("latestRoundData")
    answer = round_data.decode_output(await call(stack.rpc, feed, round_data.encode()))[1]
    # 10% above the feed: the keeper's deviation threshold (1%) is crossed at once.
    reference = SeriesPrice("test ETH/USD", lambda _: answer * 11 // 10)
    refusing = f"http://127.0.0.1:{free_port()}/"
    bot = Bot(
        bot_config(
            tmp_path / "ledger.sqlite", MEVBOT_METRICS__ENABLED="true", MEVBOT_METRICS__PORT="0"
        ),
        with_relays(stack, {"refusing": refusing}),
        devnet_keys(world),
        oracle_feeds=[OracleFeed(feed, reference, 100, 3600)],
    )
    await bot.start()
    try:
        await level(stack, bot)  # the victim's bundle is then the only one of ours
        traffic = Traffic(world, seed=11)
        await traffic.sync_nonces(stack.rpc)
        victim = await push_victim(stack, traffic)
        await until(lambda: sent_for(bot, victim.hash), 30, "a backrun bundle")
        (verdict,) = sent_for(bot, victim.hash)
        report = await mine(stack, bot)
        assert verdict.plan.bundle_hash in report.included
        await until(
            lambda: bot.engine.counts.bundles["backrun", "landed"] >= 1, 15, "the bundle to settle"
        )
        expired = await push_victim(stack, traffic, pair="WETH/DAI", deadline=1)
        await until(
            lambda: any(c.trigger_hash == expired.hash for c, _ in bot.engine.submitter.verdicts),
            30,
            "a verdict on the expired swap's backrun",
        )
        (dropped,) = [v for c, v in bot.engine.submitter.verdicts if c.trigger_hash == expired.hash]
        assert dropped.outcome == "dropped" and dropped.reason.startswith("reverts: backrun tx 0")
        await until(lambda: bot.snapshot().tally.keeper_actions, 15, "the oracle keeper to act")

        assert bot.status_server is not None
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session,
            session.get(bot.status_server.url + "/metrics") as response,
        ):
            assert response.status == 200
            text = await response.text()
        tally = bot.snapshot().tally
        ledger_profit = bot.ledger.realized_profit_total()
        code = await asyncio.to_thread(run_status_command, "--url", bot.status_server.url)
        shown = capsys.readouterr().out
        assert code == 0
    finally:
        await bot.stop()

    found = families(text)
    assert "mevbot_events" not in found and "_created" not in text

    def positive(family: str, **labels: str) -> float:
        samples = found[family]
        value = samples.get(tuple(sorted(labels.items())), 0.0)
        assert value > 0, f"{family}{labels}: {samples}"
        return value

    positive("mevbot_opportunities", strategy="backrun", verdict="sent")
    positive("mevbot_opportunities", strategy="backrun", verdict="dropped")
    positive("mevbot_candidates_dropped", strategy="backrun", reason="reverts")
    positive("mevbot_bundles", strategy="backrun", status="sent")
    positive("mevbot_bundles", strategy="backrun", status="landed")
    positive("mevbot_relay_bundles", relay="devnet", status="sent")
    positive("mevbot_relay_bundles", relay="devnet", status="landed")
    profit = positive("mevbot_realized_profit_wei", strategy="backrun")
    gas = positive("mevbot_gas_paid_wei", strategy="backrun")
    tips = positive("mevbot_coinbase_tips_wei", strategy="backrun")
    positive("mevbot_keeper_actions", job="oracle-keeper")
    positive("mevbot_errors", component="relay:refusing")
    assert not any(labels == (("relay", "refusing"),) for labels in found["mevbot_relay_bundles"])

    # The dashboard's intake line divides by the pending txs it shows (each decoded once, the
    # bot's own bundle txs that reached the pool included): `pending N · decoded x% (d/N)`.
    match = re.search(r"pending (\d+) · decoded [\d.]+% \((\d+)/(\d+)\)", shown)
    assert match is not None, shown
    pending, decoded, classified = map(int, match.groups())
    assert classified == pending >= 3 and 0 < decoded < pending
    assert found["mevbot_decoded"][()] + found["mevbot_undecoded"][()] == pending
    assert found["mevbot_pending_unique"][()] == pending

    # The wei counts are exact in the tally and agree with the ledger; the exposition's floats
    # round them.
    assert tally.net_profit_wei == ledger_profit > 0
    assert profit == pytest.approx(total(tally.realized_profit_wei, "backrun"), rel=1e-12)
    assert gas == pytest.approx(total(tally.gas_paid_wei, "backrun"), rel=1e-12)
    assert tips == pytest.approx(total(tally.tips_paid_wei, "backrun"), rel=1e-12)
    assert total(tally.tips_paid_wei) >= verdict.plan.bid.coinbase_wei > 0
