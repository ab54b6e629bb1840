"""The terminal UI: every panel and figure from a status snapshot, hostile strings shown literally,
small terminals, a live dashboard that survives a failing or stalled snapshot, log lines."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import math
import re
import time
from collections.abc import Iterator
from dataclasses import replace
from decimal import Decimal, localcontext

from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console

from mevbot.counters import Count, Tally
from mevbot.logfmt import (
    EventFormatter,
    JsonFormatter,
    TailHandler,
    eth,
    event,
    format_event,
    printable,
)
from mevbot.status import (
    BotStatus,
    BundleRow,
    Intake,
    KeeperRow,
    MevShareRow,
    MevShareStatus,
    OpportunityRow,
    RelayHealth,
    SourceRow,
    TaskRow,
    Timing,
)
from mevbot.tui import (
    Dashboard,
    bundles_panel,
    format_age,
    format_duration,
    format_eth,
    format_relative,
    render,
    results_panel,
    sparkline,
)

NOW = 1_750_000_000.0
HOSTILE = "[red]x\x1b[2J"
HOSTILE_SHOWN = "[red]x\\x1b[2J"
TITLES = (
    "mevbot",
    "Intake",
    "Stage latency (wire → relay)",
    "Opportunities",
    "Bundles",
    "Results",
    "Keepers",
    "Tasks",
    "Log",
)


SAMPLE_TALLY = Tally(
    pending=9_000,
    pending_relevant=800,
    blocks=1_200,
    opportunities=(Count(("backrun", "sent"), 5), Count(("liquidation", "dropped"), 2)),
    dropped=(Count(("liquidation", "unprofitable_after_gas"), 2),),
    bundles=(
        Count(("backrun", "missed"), 1),
        Count(("backrun", "sent"), 3),
        Count(("liquidation", "landed"), 3),
        Count(("liquidation", "sent"), 2),
    ),
    relay_bundles=(
        Count(("flashbots", "landed"), 3),
        Count(("flashbots", "sent"), 5),
        Count(("titan", "sent"), 4),
    ),
    realized_profit_wei=(Count(("liquidation",), 18 * 10**16),),
    realized_loss_wei=(Count(("backrun",), 10**15),),
    gas_paid_wei=(Count(("backrun",), 3 * 10**15), Count(("liquidation",), 2 * 10**15)),
    tips_paid_wei=(Count(("liquidation",), 5 * 10**16),),
    keeper_actions=(Count(("oracle-eth-usd",), 7),),
    errors=(Count(("log",), 1), Count(("relay:flashbots",), 2)),
)


def sample_status(
    symbol: str = "WETH", head_block: int = 7_654_321, now: float = NOW, **changes: object
) -> BotStatus:
    """A busy bot on Sepolia: three sources, two relays, opportunities, bundles, keepers."""
    status = BotStatus(
        network="sepolia",
        chain_id=11155111,
        head_block=head_block,
        head_age_s=3.2,
        dry_run=True,
        relays=(
            RelayHealth(
                "flashbots", 120, 118, 2, f"rate limited: 429 ({symbol})", Timing(41.5, 180.2, 120)
            ),
            RelayHealth("titan", 40, 40, 0, None, Timing(35.0, 90.0, 40)),
        ),
        intake=Intake(
            sources=(
                SourceRow("ws-hashes", "up", 42.5, 10_000, 7_000, 3_000, 0.43, 1, 0),
                SourceRow("txpool", "up", 3.0, 2_500, 500, 2_000, 120.0, 0, 2),
                SourceRow("mevshare", "reconnecting", 8.1, 2_600, 2_500, 100, None, 4, 0),
            ),
            pending_seen=10_000,
            decoded=8_721,
            undecoded=1_279,
            shed=37,
            queue_depth=12,
            queue_capacity=4096,
        ),
        opportunities=(
            OpportunityRow(
                now - 5, "backrun", "0x" + "ab" * 32, 7_654_322, 12_345_600_000_000_000, "sent"
            ),
            OpportunityRow(
                now - 12,
                "liquidation",
                "0x" + "cd" * 32,
                7_654_320,
                250 * 10**15,
                "unprofitable",
                f"gas > profit on {symbol}",
            ),
            OpportunityRow(
                now - 20, "backrun", None, 7_654_319, 1_500_000_000_000, "reverted", "UniswapV2: K"
            ),
        ),
        bundles=(
            BundleRow(7_654_322, "0x" + "11" * 32, "backrun", 6 * 10**15, "pending", None),
            BundleRow(
                7_654_310, "0x" + "22" * 32, "liquidation", 5 * 10**16, "landed", 18 * 10**16
            ),
            BundleRow(7_654_300, "0x" + "33" * 32, "backrun", 2 * 10**15, "missed", 0),
        ),
        keepers=(
            KeeperRow("oracle-eth-usd", now - 40, now + 20, f"updated {symbol}/USD", 0),
            KeeperRow("liquidations", now - 2, now + 10, None, 3, "backoff"),
        ),
        latency={
            "decode": Timing(0.052, 0.21, 10_000),
            "state": Timing(0.11, 0.9, 9_000),
            "strategy": Timing(0.3, 2.4, 800),
            "simulate": Timing(1.9, 14.0, 120),
            "sign": Timing(0.09, 0.6, 60),
            "submit": Timing(38.0, 170.0, 60),
            "wire_to_relay": Timing(44.0, 201.0, 60),
        },
        tasks=(
            TaskRow("source:ws-hashes", "running", 0, None),
            TaskRow("source:mevshare", "backoff", 4, f"ConnectionResetError: {symbol}"),
            TaskRow("relay:flashbots", "running", 1, "TimeoutError: 5 s"),
        ),
        log_tail=(
            "12:00:01 INFO mevbot.runtime: started",
            "12:00:02 WARNING watcher: mevshare reconnecting",
            f"12:00:03 INFO keepers: oracle updated {symbol}",
        ),
        tally=SAMPLE_TALLY,
    )
    return replace(status, **changes)


def as_text(renderable: object, width: int = 120, height: int | None = None) -> str:
    console = Console(record=True, width=width, height=height or 100, file=io.StringIO())
    console.print(renderable)
    return console.export_text()


def test_every_panel_and_key_figure_is_shown_at_120_columns():
    text = as_text(render(sample_status(), NOW))
    for title in TITLES:
        assert title in text
    header = ["sepolia", "chain 11155111", "#7,654,321", "(3s ago)", "DRY RUN"]
    relays = ["flashbots 118/120 ok, 2 err, p50 41.5 ms", "titan 40/40 ok", "rate limited: 429"]
    # coverage = share of first sightings (7000 of 10000), decoded share 8721/10000
    intake = ["42.5", "10,000", "70.0%", "5.0%", "25.0%", "reconnecting", "87.2%", "shed 37"]
    intake.append("queue 12/4,096")
    opportunities = ["5s ago", "0xabab…abab", "0.012346 ETH", "sent", "0.25 ETH", "unprofitable"]
    bundles = ["7,654,310", "0.05 ETH", "landed", "0.18 ETH", "0.006 ETH", "pending", "missed"]
    keepers = ["oracle-eth-usd", "40s ago", "in 20s", "updated WETH/USD", "backoff"]
    latency = ["wire_to_relay", "44.0", "201", "0.052", "0.210", "10,000"]
    tasks = ["source:mevshare", "Connecti…", "TimeoutE…"]
    log_lines = ["mevshare reconnecting", "oracle updated WETH"]
    for figure in header + relays + intake + opportunities + bundles + keepers + latency:
        assert figure in text, figure
    for figure in tasks + log_lines:
        assert figure in text, figure
    assert re.search(r"│ source:mevshare\s+backoff\s+4 Connecti…", text)  # restarts column


def test_the_dashboard_fits_120x40_and_shows_every_panel():
    status = sample_status(
        log_tail=tuple(f"12:00:{i:02d} INFO runtime: line {i}" for i in range(30)),
        opportunities=sample_status().opportunities * 5,
    )
    text = as_text(render(status, NOW, max_height=40), width=120, height=40)
    lines = text.splitlines()
    assert len(lines) <= 40
    for title in TITLES:
        assert title in text
    assert "hidden" not in text
    assert "line 29" in text and "line 0 " not in text  # the newest log lines


def test_hostile_strings_are_shown_literally_and_never_reach_the_terminal():
    status = sample_status(symbol=HOSTILE)
    text = as_text(render(status, NOW))
    assert "gas > profit on [red]x\\x1b[2J" in text
    assert f"12:00:03 INFO keepers: oracle updated {HOSTILE_SHOWN}" in text
    assert f"rate limited: 429 ({HOSTILE_SHOWN})" in text
    # Wide enough for every column: relay error, opportunity detail, keeper action, task error
    # and log line, all literal.
    text = as_text(render(status, NOW), width=200)
    assert text.count(HOSTILE_SHOWN) == 5
    # A colour terminal: rich's own styling escapes are there, the token's are not.
    raw = io.StringIO()
    console = Console(file=raw, force_terminal=True, color_system="truecolor", width=200)
    console.print(render(status, NOW))
    output = raw.getvalue()
    assert "\x1b[2J" not in output
    assert set(re.findall(r"\x1b\[[0-9;]*([A-Za-z])", output)) == {"m"}  # colours only
    assert output.count("[red]x\\x1b[2J") == 5
    # Without a terminal there is no escape byte at all.
    plain = io.StringIO()
    Console(file=plain, force_terminal=False, width=120).print(render(status, NOW))
    assert "\x1b" not in plain.getvalue()


def test_other_control_and_invisible_characters_are_made_visible():
    # One-byte CSI (C1), a right-to-left override, a newline, a bell and a backslash.
    name = "A\x9b2J\u202eHTEW\nB\x07C\\x1b"
    shown = printable(name)
    assert shown == "A\\x9b2J\\u202eHTEW\\x0aB\\x07C\\\\x1b"
    assert shown.isprintable()
    text = as_text(render(sample_status(symbol=name), NOW), width=200)
    assert "updated A\\x9b2J\\u202eHTEW\\x0aB\\x07C\\\\x1b/USD" in text
    assert "\u202e" not in text and "\x9b" not in text


def test_very_long_strings_are_cut_and_keep_one_row():
    status = sample_status(symbol="Z" * 5000)
    normal = as_text(render(sample_status(), NOW)).splitlines()
    long = as_text(render(status, NOW)).splitlines()
    assert len(long) == len(normal)
    assert max(len(line) for line in long) == 120


def test_80_columns_degrade_to_stacked_panels():
    status = sample_status(symbol=HOSTILE)
    text = as_text(render(status, NOW), width=80)
    for title in TITLES:
        assert title in text
    assert max(len(line) for line in text.splitlines()) == 80
    assert "trigger" not in text  # the compact opportunities table
    small = as_text(render(status, NOW, max_height=24), width=80, height=24)
    lines = small.splitlines()
    assert len(lines) <= 24
    for title in ("mevbot", "Intake", "Opportunities"):
        assert title in small
    assert lines[-1].startswith("hidden (terminal too small): ")
    hidden = lines[-1].split(": ", 1)[1].split(", ")
    assert "log" in hidden and not any(f"─ {name.title()} " in small for name in hidden)


def test_a_tiny_terminal_keeps_at_least_the_header():
    text = as_text(render(sample_status(), NOW, max_height=6), width=40, height=6)
    assert "mevbot" in text and "sepolia" in text
    assert "hidden (terminal too small)" in text


def test_an_empty_status_shows_placeholders():
    empty = BotStatus(
        network="devnet",
        chain_id=31337,
        head_block=0,
        head_age_s=None,
        dry_run=False,
        relays=(),
        intake=Intake((), 0, 0, 0, 0, 0, 1024),
        opportunities=(),
        bundles=(),
        keepers=(),
        latency={},
        tasks=(),
        log_tail=(),
    )
    text = as_text(render(empty, NOW))
    for what in ("opportunities", "bundles", "keepers", "tasks", "sources", "log lines"):
        assert f"no {what} yet" in text
    assert "head #0 (—)" in text and "relays: —" in text and "DRY RUN" not in text
    assert "decoded — (0/0)" in text
    assert re.search(r"wire_to_relay\s+—\s+—\s+—", text)


def test_amounts_and_times_are_formatted_for_people():
    assert format_eth(0) == "0 ETH"
    assert format_eth(10**18) == "1 ETH"
    assert format_eth(1_234_567_890_123_456_789) == "1.234568 ETH"
    assert format_eth(1234 * 10**18) == "1,234 ETH"
    assert format_eth(-2 * 10**16) == "-0.02 ETH"
    assert format_eth(999 * 10**9) == "999 gwei"
    assert format_eth(1_500_000_000) == "1.5 gwei"
    assert format_eth(7) == "7 wei"
    assert format_eth(None) == "—"
    assert format_age(3.2) == "3s ago"
    assert format_age(None) == "—"
    assert format_duration(252) == "4m12s"
    assert format_duration(7500) == "2h05m"
    assert format_duration(3 * 86400 + 4 * 3600) == "3d04h"
    assert format_relative(NOW + 20, NOW) == "in 20s"
    assert format_relative(NOW - 61, NOW) == "1m01s ago"


@given(st.integers(min_value=10**12, max_value=10**30))
def test_eth_amounts_are_within_half_a_micro_ether(wei: int):
    shown = format_eth(wei)
    assert shown.endswith(" ETH")
    value = Decimal(shown.removesuffix(" ETH").replace(",", ""))
    assert abs(value * 10**18 - wei) <= Decimal(10**12) / 2


def _status_source(script: dict[str, str]):
    def snapshot() -> BotStatus:
        mode = script["mode"]
        if mode == "fail":
            raise RuntimeError("store [bold]locked\x1b[5m")
        if mode == "slow":
            time.sleep(0.8)  # blocks the event loop, as a misbehaving snapshot would
            script["mode"] = "b"
        return sample_status(head_block=200 if mode in ("b", "slow") else 100, now=time.time())

    return snapshot


async def _until(console: Console, needle: str, after: int = 0, timeout: float = 5.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = console.export_text(clear=False)
        if needle in text[after:]:
            return text
        await asyncio.sleep(0.02)
    raise AssertionError(f"{needle!r} never shown")


async def test_the_live_dashboard_survives_a_failing_and_a_stalled_snapshot():
    script = {"mode": "a"}
    out = io.StringIO()
    console = Console(
        file=out, force_terminal=True, color_system=None, width=120, height=40, record=True
    )
    dashboard = Dashboard(_status_source(script), console, refresh_per_second=20, stale_after=0.3)
    task = asyncio.create_task(dashboard.run())
    try:
        await _until(console, "#100")
        script["mode"] = "fail"
        text = await _until(console, "status snapshot failed")
        frame = text[text.rindex("status snapshot failed") :]
        # The last good snapshot stays on screen under the error line, escaped.
        assert "RuntimeError: store [bold]locked\\x1b[5m" in frame
        assert "showing the last good one" in frame and "#100" in frame
        assert "\x1b[5m" not in out.getvalue()
        script["mode"] = "b"
        text = await _until(console, "#200", after=len(text))
        # A snapshot that stalls the loop: the refresh thread keeps drawing and says so.
        script["mode"] = "slow"
        await _until(console, "status not refreshed for", after=len(text))
        await _until(console, "#200", after=len(console.export_text(clear=False)))
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert task.cancelled()
    raw = out.getvalue()
    # The terminal is handed back: alternate screen left, cursor shown again.
    assert raw.rindex("\x1b[?1049l") > raw.rindex("\x1b[?1049h")
    assert raw.endswith("\x1b[?25h") or "\x1b[?25h" in raw[-50:]
    frames_at_stop = raw.count("\x1b[?1049l")
    await asyncio.sleep(0.2)
    assert out.getvalue().count("\x1b[?1049l") == frames_at_stop and len(out.getvalue()) == len(raw)


def test_format_event_is_one_escaped_line():
    line = format_event(
        "bundle_sent",
        symbol=HOSTILE,
        note='said "hi"',
        block=7_654_322,
        profit_eth=0.0123,
        dry_run=True,
        relay=None,
        data=b"\x01\xff",
        empty="",
    )
    assert line == (
        'kind=bundle_sent symbol=[red]x\\x1b[2J note="said \\"hi\\"" block=7654322 '
        'profit_eth=0.0123 dry_run=true relay= data=0x01ff empty=""'
    )


@given(st.text())
def test_format_event_never_emits_a_control_character(value: str):
    line = format_event("x", value=value)
    assert line.isprintable()
    assert line.startswith("kind=x value=")


@contextlib.contextmanager
def _logging_to(
    name: str, formatter: logging.Formatter, tail: TailHandler
) -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """``name``'s records at INFO and up, formatted into a string and kept in ``tail``."""
    logger = logging.getLogger(name)
    logger.propagate = False
    stream = io.StringIO()
    plain = logging.StreamHandler(stream)
    plain.setFormatter(formatter)
    logger.addHandler(plain)
    logger.addHandler(tail)
    logger.setLevel(logging.INFO)
    try:
        yield logger, stream
    finally:
        logger.removeHandler(plain)
        logger.removeHandler(tail)


def test_log_records_become_event_lines_and_a_bounded_tail():
    tail = TailHandler(capacity=3)
    with _logging_to("mevbot.test_tui", EventFormatter(), tail) as (logger, stream):
        logger.info(
            "bundle sent", extra={"event": "bundle_sent", "fields": {"block": 5, "sym": HOSTILE}}
        )
        try:
            raise ValueError("bad\nreason")
        except ValueError:
            logger.exception("relay failed")
        for i in range(3):
            logger.info("tick %d", i)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 5
    assert lines[0].startswith("kind=bundle_sent ts=")
    assert (
        'level=info logger=mevbot.test_tui msg="bundle sent" block=5 sym=[red]x\\x1b[2J' in lines[0]
    )
    assert lines[1].startswith("kind=log ") and "level=error" in lines[1]
    assert 'exc="Traceback' in lines[1] and "ValueError: bad\\x0areason" in lines[1]
    assert [line.split(": ", 1)[1] for line in tail.lines()] == ["tick 0", "tick 1", "tick 2"]
    assert tail.lines(last=1)[0].endswith("INFO mevbot.test_tui: tick 2")
    assert tail.lines(last=0) == ()


def test_the_results_panel_shows_what_the_tally_counted_per_strategy_and_relay():
    text = as_text(results_panel(sample_status()), width=120)
    # 0.18 ETH gained by liquidation, 0.001 ETH lost by backrun; gas 0.003 + 0.002 ETH.
    assert "sent 5 · landed 3 · net 0.179 ETH · gas 0.005 ETH · tips 0.05 ETH" in text
    # Candidates, sent, bundles landed, net, gas, tips per strategy.
    assert re.search(r"backrun\s+5\s+5\s+0\s+-0\.001 ETH\s+0\.003 ETH\s+0 ETH", text), text
    assert re.search(r"liquidation\s+2\s+0\s+3\s+0\.18 ETH\s+0\.002 ETH\s+0\.05 ETH", text), text
    header = as_text(render(sample_status(), NOW), width=160)
    assert "flashbots 118/120 ok, 2 err, p50 41.5 ms, landed 3/5 (60.0%)" in header
    assert "titan 40/40 ok, p50 35.0 ms, landed 0/4 (0.0%)" in header


def test_json_log_lines_are_ascii_objects_and_verdicts_stay_out_of_the_tail():
    tail = TailHandler()
    big = 3 * 10**30  # wei beyond 64 bits stay exact
    with _logging_to("mevbot.test_json", JsonFormatter(), tail) as (logger, stream):
        logger.info(
            "bundle landed",
            extra=event(
                "bundle_landed",
                profit_eth=eth(big),
                wei=big,
                sym=HOSTILE,
                raw=b"\x01",
                nan=math.nan,
            ),
        )
        logger.info("verdict", extra=event("opportunity", verdict="dropped"))
    first, second = stream.getvalue().splitlines()
    assert first.isascii() and first.isprintable()
    landed = json.loads(first)
    assert landed["kind"] == "bundle_landed" and landed["level"] == "info"
    assert landed["profit_eth"] == "3000000000000" and landed["wei"] == big
    assert landed["sym"] == HOSTILE and landed["raw"] == "0x01" and landed["nan"] == "nan"
    assert json.loads(second)["verdict"] == "dropped"
    # Verdicts have their own panel; the log tail keeps the rest.
    assert [line.split(": ", 1)[1] for line in tail.lines()] == ["bundle landed"]


@given(st.integers(min_value=-(10**40), max_value=10**40))
def test_eth_is_the_exact_decimal_amount(wei: int):
    text = eth(wei)
    with localcontext(prec=100):
        assert Decimal(text) * 10**18 == wei
    assert text == "0" or not text.endswith(("0", ".")) or "." not in text


def test_the_bundles_panel_shows_one_bundle_per_block_with_its_members():
    block = 7_654_322
    status = sample_status(
        bundles=(
            BundleRow(block, "0x" + "11" * 32, "backrun", 6 * 10**15, "landed", 5 * 10**16),
            BundleRow(block, "0x" + "44" * 32, "backrun", 4 * 10**15, "landed", 3 * 10**16),
            BundleRow(block, "0x" + "55" * 32, "liquidation", 10**15, "landed", 10**16),
            BundleRow(block - 1, "0x" + "33" * 32, "backrun", 2 * 10**15, "missed", 0),
        )
    )
    text = as_text(bundles_panel(status), width=160)
    lines = [line for line in text.splitlines() if "7,654,32" in line]
    assert len(lines) == 2, text
    newest, older = lines
    assert "7,654,322" in newest and "2× backrun, liquidation" in newest and "landed" in newest
    assert "0.011" in newest  # bids added up: 0.006 + 0.004 + 0.001 ETH
    assert "0.09" in newest  # realized: 0.05 + 0.03 + 0.01 ETH
    assert "7,654,321" in older and "missed" in older


def test_the_results_panel_shows_the_pnl_and_its_sparkline_over_blocks():
    history = ((100, 0), (101, 10**17), (102, 5 * 10**16))
    text = as_text(results_panel(sample_status(pnl_by_block=history)), width=160)
    title = next(line for line in text.splitlines() if "Results" in line)
    assert "PnL" in title and "▁█▄" in title, title
    assert sparkline(history[:1]) == "" and sparkline(((1, 5), (2, 5))) == "▁▁"


def sample_mevshare() -> MevShareStatus:
    rows = (
        MevShareRow("0x" + "5e" * 32, "0x" + "01" * 32, "exact", 7_654_322, 12 * 10**15, 6 * 10**15, "landed"),
        MevShareRow("0x" + "6f" * 32, "0x" + "02" * 32, "bounded", 7_654_323, 10**15, 5 * 10**14, "refused"),
        MevShareRow("0x" + "7a" * 32, "0x" + "03" * 32, "oracle", 7_654_323, 3 * 10**16, 10**16, "pending"),
    )  # fmt: skip
    return MevShareStatus(
        url="https://mev-share.flashbots.net",
        connected=True,
        hints=1234,
        malformed=2,
        candidates={"exact": 10, "bounded": 6, "oracle": 1},
        sent=15,
        refused=3,
        landed=4,
        missed=8,
        coinbase_paid_wei=6 * 10**15,
        user_refunds_wei=54 * 10**14,
        rows=rows,
    )


def test_the_mevshare_panel_shows_the_source_its_hints_and_its_bundles():
    mevshare = sample_mevshare()
    text = as_text(render(sample_status(mevshare=mevshare), NOW))
    assert "MEV-Share · https://mev-share.flashbots.net · connected" in text
    summary = "hints 1,234 (malformed 2) · candidates bounded 6 exact 10 oracle 1"
    assert summary in text
    outcomes = (
        "sent 15 · landed 4 · refused 3 · missed 8 · paid 0.006 ETH · users' refunds 0.0054 ETH"
    )
    assert outcomes in text
    for figure in ("7,654,322", "0x5e5e…5e5e", "exact", "0.012 ETH", "landed", "refused", "oracle"):
        assert figure in text, figure
    # Without a MEV-Share source there is no panel.
    assert "MEV-Share" not in as_text(render(sample_status(), NOW))
