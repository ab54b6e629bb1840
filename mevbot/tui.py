"""The terminal dashboard: pure renderers of a :class:`BotStatus`, and a rich Live that shows them.

:func:`render` turns one snapshot into a rich renderable and reads nothing else, so the same
function serves the live dashboard, ``mevbot status`` and tests. The view fits the space it
is given: side-by-side panels from :data:`WIDE_FROM` columns, stacked below that; when the
height is bounded, long lists get fewer rows and, if still too tall, the least important panels
are hidden and named on a last line.

:class:`Dashboard` takes a snapshot from a cheap callable in the event loop (never network I/O)
about four times a second; rich's refresh thread renders the latest good one. A snapshot that
raises or stalls never stops the display: the last good snapshot stays on screen with a warning.

Every string that may come from the chain, a relay or a log line goes through
:func:`mevbot.logfmt.printable` into a :class:`rich.text.Text` (never markup), so it is shown
literally and cannot inject styles or terminal control sequences.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TypeVar

from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.live import Live
from rich.panel import Panel
from rich.segment import Segment
from rich.table import Table
from rich.text import Text

from mevbot.counters import Tally, total
from mevbot.latency import STAGES
from mevbot.logfmt import printable
from mevbot.status import (
    BotStatus,
    BundleRow,
    MevShareStatus,
    OpportunityRow,
    RelayHealth,
    Timing,
)

Row = TypeVar("Row")

MISSING = "—"
WIDE_FROM = 100  # columns from which panels go side by side
HEAD_STALE_AFTER_S = 30.0
UNBOUNDED_ROWS = 20  # list rows shown when the height is not bounded (one-shot print)

_WEI_PER_ETH = Decimal(10) ** 18
_WEI_PER_GWEI = Decimal(10) ** 9
_VERDICT_STYLES = {"sent": "green", "landed": "bold green"}
_BUNDLE_STYLES = {"landed": "bold green", "pending": "cyan", "missed": "yellow", "failed": "red"}
_TASK_STYLES = {"running": "green", "backoff": "yellow", "stopped": "red", "finished": "dim"}


# --- formatting -------------------------------------------------------------------------------


def format_eth(wei: int | None) -> str:
    """Wei as ETH with up to 6 decimals; amounts below a micro-ether in gwei, then in wei."""
    if wei is None:
        return MISSING
    amount = Decimal(wei)
    if not amount or abs(amount) >= _WEI_PER_ETH / 1_000_000:
        text = f"{amount / _WEI_PER_ETH:,.6f}".rstrip("0").rstrip(".")
        return f"{text} ETH"
    if abs(amount) >= _WEI_PER_GWEI:
        text = f"{amount / _WEI_PER_GWEI:,.3f}".rstrip("0").rstrip(".")
        return f"{text} gwei"
    return f"{wei} wei"


def format_duration(seconds: float) -> str:
    """A short duration: ``45s``, ``4m12s``, ``2h05m``, ``3d04h``."""
    whole = int(max(0.0, seconds))
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    if whole < 86400:
        return f"{whole // 3600}h{whole % 3600 // 60:02d}m"
    return f"{whole // 86400}d{whole % 86400 // 3600:02d}h"


def format_age(seconds: float | None) -> str:
    """How long ago: ``3s ago``; missing as ``—``."""
    return MISSING if seconds is None else f"{format_duration(seconds)} ago"


def format_relative(at: float | None, now: float) -> str:
    """A wall-clock time relative to ``now``: ``3s ago`` or ``in 12s``."""
    if at is None:
        return MISSING
    if at > now:
        return f"in {format_duration(at - now)}"
    return format_age(now - at)


def format_ms(milliseconds: float | None) -> str:
    """Milliseconds with precision that suits the magnitude (0.052, 1.35, 12.4, 250)."""
    if milliseconds is None:
        return MISSING
    for bound, digits in ((1, 3), (10, 2), (100, 1)):
        if milliseconds < bound:
            return f"{milliseconds:.{digits}f}"
    return f"{milliseconds:,.0f}"


def format_share(part: int, whole: int) -> str:
    return MISSING if whole <= 0 else f"{100 * part / whole:.1f}%"


def short_hash(value: str | None) -> str:
    if not value:
        return MISSING
    return value if len(value) <= 14 else f"{value[:6]}…{value[-4:]}"


def safe(value: object, style: str = "", limit: int = 200) -> Text:
    """Untrusted text, escaped and never parsed as markup; None is shown as ``—``."""
    if value is None:
        return Text(MISSING, style="dim")
    return Text(printable(value, limit), style=style)


def _num(value: int) -> Text:
    return Text(f"{value:,}")


# --- panels -----------------------------------------------------------------------------------
# Every cell is one terminal row (no wrapping, ellipsis), so a panel's height is known without
# rendering it: borders + header + rows (+ any summary line). Fixed column widths keep columns
# readable and spare rich from measuring every cell; one flexible column takes the rest.

Column = tuple[str, int | None, bool]  # header, width (None: flexible), right-aligned

_BORDERS = 2


def _table(columns: Sequence[Column]) -> Table:
    table = Table(box=None, expand=True, pad_edge=False, header_style="bold", padding=(0, 1, 0, 0))
    for name, width, right in columns:
        table.add_column(
            name,
            width=width,
            ratio=None if width else 1,
            justify="right" if right else "left",
            no_wrap=True,
            overflow="ellipsis",
        )
    return table


def _panel(
    body: RenderableType, title: str, height: int | None = None, subtitle: str | None = None
) -> Panel:
    return Panel(
        body,
        title=title,
        title_align="left",
        height=height,
        subtitle=subtitle,
        subtitle_align="left",
    )


def _table_height(rows: int) -> int:
    return _BORDERS + 1 + max(1, rows)  # an empty table shows a placeholder row


def _fill(table: Table, rows: Iterable[Sequence[Text]], what: str) -> RenderableType:
    for row in rows:
        table.add_row(*row)
    if table.row_count:
        return table
    return Group(table, Text(f"no {what} yet", style="dim", no_wrap=True, overflow="ellipsis"))


def _line(*parts: Text | str) -> Text:
    line = Text(no_wrap=True, overflow="ellipsis")
    for part in parts:
        line.append(part) if isinstance(part, str) else line.append_text(part)
    return line


def _relay_summary(relay: RelayHealth, tally: Tally) -> Text:
    if relay.sent and not relay.ok:
        style = "red"
    elif relay.errors:
        style = "yellow"
    else:
        style = "green"
    text = _line(Text("● ", style=style), safe(relay.name, limit=40))
    text.append(f" {relay.ok:,}/{relay.sent:,} ok")
    if relay.errors:
        text.append(f", {relay.errors:,} err", style=style)
    if relay.latency is not None:
        text.append(f", p50 {format_ms(relay.latency.p50)} ms")
    # Of the bundles (target blocks) this relay accepted, how many landed.
    accepted = total(tally.relay_bundles, relay.name, "sent")
    if accepted:
        landed = total(tally.relay_bundles, relay.name, "landed")
        text.append(f", landed {landed:,}/{accepted:,} ({format_share(landed, accepted)})")
    return text


def _failing_relay(status: BotStatus) -> RelayHealth | None:
    return next((r for r in status.relays if r.errors and r.last_error), None)


def header_height(status: BotStatus) -> int:
    return _BORDERS + 2 + (1 if _failing_relay(status) else 0)


def header_panel(status: BotStatus) -> Panel:
    head_style = "red" if (status.head_age_s or 0) > HEAD_STALE_AFTER_S else ""
    chain = _line(
        safe(status.network, style="bold", limit=30),
        f" · chain {status.chain_id} · head ",
        Text(f"#{status.head_block:,}", style="bold"),
        Text(f" ({format_age(status.head_age_s)})", style=head_style),
    )
    if status.dry_run:
        chain.append(" · ")
        chain.append(" DRY RUN ", style="bold black on yellow")
    relays = _line("relays: ")
    if status.relays:
        relays.append_text(
            Text("   ").join(_relay_summary(relay, status.tally) for relay in status.relays)
        )
    else:
        relays.append(MISSING, style="dim")
    lines = [chain, relays]
    failing = _failing_relay(status)
    if failing is not None:
        lines.append(
            _line(
                Text("last relay error ", style="yellow"),
                safe(failing.name, limit=40),
                ": ",
                safe(failing.last_error, limit=300),
            )
        )
    return Panel(Group(*lines), title="mevbot", title_align="left", border_style="blue")


_INTAKE_COLUMNS: tuple[Column, ...] = (
    ("source", 11, False), ("state", 8, False), ("tx/s", 6, True), ("seen", 8, True),
    ("first", 6, True), ("dup", 7, True), ("lag ms", 7, True), ("reconn", 6, True),
    ("bad", 4, True),
)  # fmt: skip


def intake_height(status: BotStatus, rows: int | None) -> int:
    return _table_height(len(status.intake.sources[:rows])) + 2


def pools_line(status: BotStatus) -> Text:
    """The tracked pools' upkeep: the state verifier's checks and drift, the V3 words fetched."""
    pools = status.pools
    return _line(
        f"pools verified {pools.pools_checked:,} · drifted ",
        Text(f"{pools.pools_drifted:,}", style="yellow" if pools.pools_drifted else ""),
        f" · V3 words fetched {pools.words_fetched:,}/{pools.words_asked:,}",
        f" · txs retried {pools.pending_retried:,}",
    )


def intake_panel(status: BotStatus, rows: int | None = None, height: int | None = None) -> Panel:
    intake = status.intake
    firsts = sum(source.first_seen for source in intake.sources)
    table = _fill(
        _table(_INTAKE_COLUMNS),
        (
            (
                safe(source.name, limit=40),
                safe(source.state, style="" if source.state == "up" else "yellow", limit=20),
                Text(f"{source.tx_per_s:,.1f}"),
                _num(source.seen),
                Text(format_share(source.first_seen, firsts)),
                _num(source.duplicates),
                Text(format_ms(source.lag_p50_ms)),
                _num(source.reconnects),
                Text(f"{source.malformed:,}", style="red" if source.malformed else ""),
            )
            for source in intake.sources[:rows]
        ),
        "sources",
    )
    classified = intake.decoded + intake.undecoded
    queue_full = intake.queue_depth >= intake.queue_capacity > 0
    summary = _line(
        f"pending {intake.pending_seen:,} · decoded {format_share(intake.decoded, classified)}",
        f" ({intake.decoded:,}/{classified:,}) · shed ",
        Text(f"{intake.shed:,}", style="yellow" if intake.shed else ""),
        " · queue ",
        Text(
            f"{intake.queue_depth:,}/{intake.queue_capacity:,}", style="red" if queue_full else ""
        ),
    )
    return _panel(Group(table, summary, pools_line(status)), "Intake", height)


_LATENCY_COLUMNS: tuple[Column, ...] = (
    ("stage", 13, False), ("p50 ms", 8, True), ("p99 ms", 8, True), ("n", None, True),
)  # fmt: skip
LATENCY_WIDTH = 44  # the latency panel's width beside the intake panel


# Seven stage rows keep the dashboard within 120x40: the finer stages are in /metrics and the
# bench only.
_FINE_STAGES = frozenset({"intake", "queue"})


def _stages(latency: dict[str, Timing]) -> list[str]:
    """The stages this process timed, in path order (wire to relay always): a bot fed by its
    intake never times ``decode``, a worker never ``handover``."""
    shown = [s for s in STAGES if (s in latency and s not in _FINE_STAGES) or s == "wire_to_relay"]
    return [*shown, *sorted(set(latency) - set(STAGES))]


def latency_height(status: BotStatus) -> int:
    return _table_height(len(_stages(status.latency)))


def latency_panel(status: BotStatus, height: int | None = None) -> Panel:
    def row(stage: str) -> tuple[Text, ...]:
        timing = status.latency.get(stage)
        style = "bold" if stage == "wire_to_relay" else ""
        return (
            safe(stage, style=style, limit=30),
            Text(format_ms(timing.p50 if timing else None), style=style),
            Text(format_ms(timing.p99 if timing else None), style=style),
            Text(MISSING if timing is None else f"{timing.n:,}"),
        )

    table = _fill(_table(_LATENCY_COLUMNS), map(row, _stages(status.latency)), "stages")
    return _panel(table, "Stage latency (wire → relay)", height)


def _newest(items: Sequence[Row], rows: int | None, key: Callable[[Row], float]) -> list[Row]:
    return sorted(items, key=key, reverse=True)[:rows]


def _opportunity_row(row: OpportunityRow, now: float, compact: bool) -> list[Text]:
    cells = [
        Text(format_relative(row.at, now)),
        safe(row.strategy, limit=30),
        Text(f"{row.target_block:,}"),
        Text(format_eth(row.expected_profit_wei)),
        safe(row.verdict, style=_VERDICT_STYLES.get(row.verdict, "yellow"), limit=30),
        safe(row.detail or None, limit=160),
    ]
    if not compact:
        cells.insert(2, safe(short_hash(row.trigger) if row.trigger else None))
    return cells


def opportunities_panel(
    status: BotStatus, now: float, rows: int | None = None, compact: bool = False
) -> Panel:
    """Newest first; ``compact`` (narrow terminals) leaves out the trigger tx column."""
    columns: list[Column] = [
        ("when", 9, False), ("strategy", 12, False), ("block", 10, True),
        ("expected", 13, True), ("verdict", 12, False), ("detail", None, False),
    ]  # fmt: skip
    if not compact:
        columns.insert(2, ("trigger", 13, False))
    newest = _newest(status.opportunities, rows, key=lambda o: o.at)
    table = _fill(
        _table(columns), (_opportunity_row(r, now, compact) for r in newest), "opportunities"
    )
    return _panel(table, "Opportunities")


_BUNDLE_COLUMNS: tuple[Column, ...] = (
    ("block", 10, True), ("members", 24, False), ("bid", 13, True), ("status", 14, False),
    ("realized", 13, True), ("bundles", None, False),
)  # fmt: skip


def _block_row(block: int, members: Sequence[BundleRow]) -> list[Text]:
    """One target block's bundle: its members (each candidate's own bundle in the ledger)."""
    statuses = Counter(m.status for m in members)
    status = ", ".join(f"{name} {n}" if n > 1 else name for name, n in sorted(statuses.items()))
    settled = [m.realized_profit_wei for m in members if m.realized_profit_wei is not None]
    realized = sum(settled) if settled else None
    realized_style = "" if realized is None else ("green" if realized >= 0 else "red")
    strategies = Counter(m.strategy for m in members)
    names = ", ".join(f"{n}× {name}" if n > 1 else name for name, n in strategies.items())
    return [
        Text(f"{block:,}"),
        safe(names, limit=60),
        Text(format_eth(sum(m.bid_wei for m in members))),
        safe(status, style=_BUNDLE_STYLES.get(max(statuses, key=statuses.get), "yellow")),
        Text(format_eth(realized), style=realized_style),
        safe(" ".join(short_hash(m.bundle_hash) for m in members), limit=120),
    ]


def bundles_panel(status: BotStatus, rows: int | None = None) -> Panel:
    """One line per target block, newest first: the block's bundle and its members."""
    by_block: dict[int, list[BundleRow]] = {}
    for row in status.bundles:
        by_block.setdefault(row.target_block, []).append(row)
    blocks = sorted(by_block, reverse=True)[:rows]
    lines = (_block_row(block, by_block[block]) for block in blocks)
    return _panel(_fill(_table(_BUNDLE_COLUMNS), lines, "bundles"), "Bundles, one per block")


_RESULT_COLUMNS: tuple[Column, ...] = (
    ("strategy", 14, False), ("candidates", 10, True), ("sent", 7, True), ("landed", 7, True),
    ("net", 14, True), ("gas", 14, True), ("tips", 14, True),
)  # fmt: skip


def _strategies(tally: Tally) -> list[str]:
    counted = (*tally.opportunities, *tally.bundles, *tally.gas_paid_wei)
    return sorted({count.labels[0] for count in counted})


def _result_row(tally: Tally, strategy: str) -> list[Text]:
    candidates = total(tally.opportunities, strategy)
    net = total(tally.realized_profit_wei, strategy) - total(tally.realized_loss_wei, strategy)
    return [
        safe(strategy, limit=30),
        _num(candidates - total(tally.opportunities, strategy, "duplicate")),
        _num(total(tally.opportunities, strategy, "sent")),
        _num(total(tally.bundles, strategy, "landed")),
        Text(format_eth(net), style="green" if net > 0 else "red" if net < 0 else ""),
        Text(format_eth(total(tally.gas_paid_wei, strategy))),
        Text(format_eth(total(tally.tips_paid_wei, strategy))),
    ]


def results_height(status: BotStatus, rows: int | None) -> int:
    return _table_height(len(_strategies(status.tally)[:rows]))


def results_panel(status: BotStatus, rows: int | None = None) -> Panel:
    """Since start, per strategy: candidates (repeats of a key left out), sent, bundles landed,
    realized profit net of losses, gas and tips paid; and the totals."""
    tally = status.tally
    table = _fill(
        _table(_RESULT_COLUMNS),
        (_result_row(tally, strategy) for strategy in _strategies(tally)[:rows]),
        "results",
    )
    title = f"Results · PnL {format_eth(tally.net_profit_wei)} {sparkline(status.pnl_by_block)}"
    return _panel(table, title.rstrip(), subtitle=result_totals(tally))


SPARKS = "▁▂▃▄▅▆▇█"


def sparkline(points: Sequence[tuple[int, int]], width: int = 24) -> str:
    """The last ``width`` values as bars scaled between their minimum and maximum."""
    values = [value for _, value in points[-width:]]
    if len(values) < 2:
        return ""
    low, high = min(values), max(values)
    if high == low:
        return SPARKS[0] * len(values)
    top = len(SPARKS) - 1
    return "".join(SPARKS[(v - low) * top // (high - low)] for v in values)


def result_totals(tally: Tally) -> str:
    """Since start: bundles sent and landed, realized profit net of losses, gas and tips paid."""
    return (
        f"sent {total(tally.bundles, None, 'sent'):,}"
        f" · landed {total(tally.bundles, None, 'landed'):,}"
        f" · net {format_eth(tally.net_profit_wei)} · gas {format_eth(total(tally.gas_paid_wei))}"
        f" · tips {format_eth(total(tally.tips_paid_wei))}"
    )


_MEVSHARE_COLUMNS: tuple[Column, ...] = (
    ("block", 9, True), ("hint", 12, False), ("sizing", 8, False), ("expected", 14, True),
    ("bid", 14, True), ("status", None, False),
)  # fmt: skip


MEVSHARE_LINES = 2  # the summary lines above the table


def mevshare_summary(mevshare: MevShareStatus) -> tuple[str, str]:
    """The source's totals: hints and candidates by sizing; backruns by outcome and paid."""
    sizing = " ".join(f"{k} {v:,}" for k, v in sorted(mevshare.candidates.items())) or "none"
    return (
        f"hints {mevshare.hints:,} (malformed {mevshare.malformed:,}) · candidates {sizing}",
        f"backruns sent {mevshare.sent:,} · landed {mevshare.landed:,}"
        f" · refused {mevshare.refused:,} · missed {mevshare.missed:,}"
        f" · paid {format_eth(mevshare.coinbase_paid_wei)}"
        f" · users' refunds {format_eth(mevshare.user_refunds_wei)}",
    )


def mevshare_panel(mevshare: MevShareStatus, rows: int | None = None) -> Panel:
    """The MEV-Share source (the node's stream), its hints and the bundles sent for them."""
    table = _fill(
        _table(_MEVSHARE_COLUMNS),
        (
            (
                _num(row.target_block),
                safe(short_hash(row.hint_hash)),
                safe(row.sizing, limit=10),
                Text(format_eth(row.expected_profit_wei)),
                Text(format_eth(row.coinbase_wei)),
                safe(row.status, style=_BUNDLE_STYLES.get(row.status, "yellow"), limit=20),
            )
            for row in _newest(mevshare.rows, rows, lambda row: row.target_block)
        ),
        "MEV-Share backruns",
    )
    state = "connected" if mevshare.connected else "disconnected"
    title = f"MEV-Share · {printable(mevshare.url, 60)} · {state}"
    lines = [_line(line) for line in mevshare_summary(mevshare)]
    return _panel(Group(*lines, table), title)


_KEEPER_COLUMNS: tuple[Column, ...] = (
    ("job", 14, False), ("state", 7, False), ("last run", 9, False), ("next run", 8, False),
    ("fail", 4, True), ("last action", None, False),
)  # fmt: skip


def keepers_panel(
    status: BotStatus, now: float, rows: int | None = None, height: int | None = None
) -> Panel:
    table = _fill(
        _table(_KEEPER_COLUMNS),
        (
            (
                safe(keeper.job, limit=40),
                safe(keeper.state, style="" if keeper.state == "ok" else "yellow", limit=20),
                Text(format_relative(keeper.last_run, now)),
                Text(format_relative(keeper.next_run, now)),
                Text(f"{keeper.failures:,}", style="red" if keeper.failures else ""),
                safe(keeper.last_action, limit=160),
            )
            for keeper in status.keepers[:rows]
        ),
        "keepers",
    )
    return _panel(table, "Keepers", height)


_TASK_COLUMNS: tuple[Column, ...] = (
    ("task", 16, False), ("state", 8, False), ("restarts", 8, True), ("last error", None, False),
)  # fmt: skip


def tasks_panel(status: BotStatus, rows: int | None = None, height: int | None = None) -> Panel:
    table = _fill(
        _table(_TASK_COLUMNS),
        (
            (
                safe(task.name, limit=40),
                safe(task.state, style=_TASK_STYLES.get(task.state, "yellow"), limit=20),
                Text(f"{task.restarts:,}", style="yellow" if task.restarts else ""),
                safe(task.last_error, style="dim", limit=200),
            )
            for task in status.tasks[:rows]
        ),
        "tasks",
    )
    return _panel(table, "Tasks", height)


def _tail(status: BotStatus, rows: int | None) -> tuple[str, ...]:
    lines = status.log_tail
    return lines if rows is None else lines[max(0, len(lines) - rows) :]


def log_panel(status: BotStatus, rows: int | None = None) -> Panel:
    """The newest ``rows`` log lines (all when None), one terminal row each."""
    lines = _tail(status, rows)
    if not lines:
        return _panel(Text("no log lines yet", style="dim"), "Log")
    return _panel(Group(*(_line(safe(line, limit=400)) for line in lines)), "Log")


# --- fitting the panels into the space ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Section:
    """One band of the dashboard (a panel, or two side by side) and its list-row budget."""

    name: str
    priority: int  # lower stays on screen longer
    build: Callable[[int | None], RenderableType]  # row limit (None: all) -> renderable
    height: Callable[[int | None], int]  # row limit -> lines
    want: int  # list rows it would show
    least: int  # fewest list rows worth showing


def _side_by_side(left: Panel, right: Panel, right_width: int | None = None) -> Table:
    """Two panels in one band; the right one ``right_width`` wide, or the band split 3:2."""
    grid = Table.grid(expand=True)
    grid.add_column(ratio=3 if right_width is None else 1)
    grid.add_column(ratio=2 if right_width is None else None, width=right_width)
    grid.add_row(left, right)
    return grid


def _sections(status: BotStatus, now: float, wide: bool) -> list[_Section]:
    n_sources, n_keepers, n_tasks = (
        len(status.intake.sources),
        len(status.keepers),
        len(status.tasks),
    )
    n_opportunities, n_bundles = len(status.opportunities), len(status.bundles)
    n_strategies = len(_strategies(status.tally))

    def shown(count: int, rows: int | None) -> int:
        return count if rows is None else min(count, rows)

    def table_height(count: int) -> Callable[[int | None], int]:
        return lambda rows: _table_height(shown(count, rows))

    sections = [
        _Section(
            "header", 0, lambda rows: header_panel(status), lambda rows: header_height(status), 0, 0
        ),
        _Section(
            "opportunities",
            2,
            lambda rows: opportunities_panel(status, now, rows, compact=not wide),
            table_height(n_opportunities),
            n_opportunities,
            min(n_opportunities, 3),
        ),
        _Section(  # before the bundles: of the same importance, kept when one must go
            "results",
            3,
            lambda rows: results_panel(status, rows),
            lambda rows: results_height(status, rows),
            n_strategies,
            min(n_strategies, 1),
        ),
        _Section(
            "bundles",
            3,
            lambda rows: bundles_panel(status, rows),
            table_height(n_bundles),
            n_bundles,
            min(n_bundles, 2),
        ),
        _Section(
            "log",
            7,
            lambda rows: log_panel(status, rows),
            lambda rows: _BORDERS + max(1, len(_tail(status, rows))),
            len(status.log_tail),
            min(len(status.log_tail), 2),
        ),
    ]
    mevshare = status.mevshare
    if mevshare is not None:
        n_mevshare = len(mevshare.rows)
        sections.append(
            _Section(
                "mevshare",
                3,
                lambda rows: mevshare_panel(mevshare, rows),
                lambda rows: MEVSHARE_LINES + _table_height(shown(n_mevshare, rows)),
                n_mevshare,
                min(n_mevshare, 2),
            )
        )
    if wide:

        def intake_and_latency_height(rows: int | None) -> int:
            return max(intake_height(status, rows), latency_height(status))

        def intake_and_latency(rows: int | None) -> RenderableType:
            height = intake_and_latency_height(rows)
            return _side_by_side(
                intake_panel(status, rows, height), latency_panel(status, height), LATENCY_WIDTH
            )

        def keepers_and_tasks_height(rows: int | None) -> int:
            return _table_height(max(shown(n_keepers, rows), shown(n_tasks, rows)))

        def keepers_and_tasks(rows: int | None) -> RenderableType:
            height = keepers_and_tasks_height(rows)
            return _side_by_side(
                keepers_panel(status, now, rows, height), tasks_panel(status, rows, height)
            )

        sections += [
            _Section(
                "intake",
                1,
                intake_and_latency,
                intake_and_latency_height,
                n_sources,
                min(n_sources, 4),
            ),
            _Section(
                "keepers+tasks",
                4,
                keepers_and_tasks,
                keepers_and_tasks_height,
                max(n_keepers, n_tasks),
                min(max(n_keepers, n_tasks), 3),
            ),
        ]
    else:
        sections += [
            _Section(
                "intake",
                1,
                lambda rows: intake_panel(status, rows),
                lambda rows: intake_height(status, rows),
                n_sources,
                min(n_sources, 4),
            ),
            _Section(
                "latency",
                4,
                lambda rows: latency_panel(status),
                lambda rows: latency_height(status),
                0,
                0,
            ),
            _Section(
                "tasks",
                5,
                lambda rows: tasks_panel(status, rows),
                table_height(n_tasks),
                n_tasks,
                min(n_tasks, 3),
            ),
            _Section(
                "keepers",
                6,
                lambda rows: keepers_panel(status, now, rows),
                table_height(n_keepers),
                n_keepers,
                min(n_keepers, 3),
            ),
        ]
    return sections


_DISPLAY_ORDER = (
    "header", "results", "intake", "latency", "opportunities", "bundles", "mevshare",
    "keepers+tasks",
    "tasks", "keepers", "log",
)  # fmt: skip


def _fit(sections: list[_Section], height: int) -> tuple[list[tuple[_Section, int]], list[str]]:
    """Row limits per section so the whole takes at most ``height`` lines, and what was left out.

    The least important sections are dropped until the rest fit at their smallest; the spare
    lines then go first as a fair share to every list (a long list must not starve the log),
    then in order of importance.
    """
    kept = sorted(sections, key=lambda s: s.priority)
    hidden: list[str] = []

    def smallest() -> int:
        return sum(s.height(s.least) for s in kept) + (1 if hidden else 0)

    while len(kept) > 1 and smallest() > height:
        hidden.insert(0, kept.pop().name)
    spare = height - smallest()
    rows = {s.name: s.least for s in kept}
    for cap in (6, None):
        for section in kept:
            while spare > 0 and rows[section.name] < section.want:
                if cap is not None and rows[section.name] >= cap:
                    break
                grown = section.height(rows[section.name] + 1) - section.height(rows[section.name])
                if grown > spare:
                    break
                rows[section.name] += 1
                spare -= grown
    return [(s, rows[s.name]) for s in kept], hidden


def _display_order(section: _Section) -> int:
    return _DISPLAY_ORDER.index(section.name)


class DashboardView:
    """The whole dashboard for one snapshot; lays itself out for the width and height given."""

    def __init__(
        self,
        status: BotStatus,
        now: float,
        notices: Sequence[Text] = (),
        max_height: int | None = None,
    ) -> None:
        self.status = status
        self.now = now
        self.notices = tuple(notices)
        self.max_height = max_height

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield from self.notices
        sections = _sections(self.status, self.now, wide=options.max_width >= WIDE_FROM)
        height = options.height or self.max_height
        if height is None:
            for section in sorted(sections, key=_display_order):
                yield section.build(UNBOUNDED_ROWS)
            return
        placed, hidden = _fit(sections, height - len(self.notices))
        for section, rows in sorted(placed, key=lambda placed: _display_order(placed[0])):
            yield section.build(rows)
        if hidden:
            yield Text(f"hidden (terminal too small): {', '.join(hidden)}", style="dim")


def render(
    status: BotStatus,
    now: float | None = None,
    *,
    notices: Sequence[Text] = (),
    max_height: int | None = None,
) -> DashboardView:
    """The dashboard for ``status`` (relative times against ``now``, default the clock)."""
    return DashboardView(status, time.time() if now is None else now, notices, max_height)


# --- the live display -------------------------------------------------------------------------


class _Guarded:
    """Renders ``inner``, or one line saying why it could not: the refresh thread must not die."""

    def __init__(self, inner: RenderableType) -> None:
        self.inner = inner

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        try:
            lines = console.render_lines(self.inner, options, pad=False)
        except Exception as error:
            line = Text("⚠ the dashboard could not be drawn: ", style="red")
            line.append_text(safe(f"{type(error).__name__}: {error}"))
            yield line
            return
        for line in lines:
            yield from line
            yield Segment.line()


class Dashboard:
    """A rich Live showing ``snapshot()`` about ``refresh_per_second`` times a second.

    :meth:`run` (a coroutine, until cancelled) calls ``snapshot`` in the event loop, so it sees
    the runtime's state consistently; it must be cheap and never do network I/O. Rendering
    happens in rich's refresh thread from the latest good snapshot, so a slow snapshot freezes
    nothing on screen but its numbers, and a raising one is reported on screen.
    """

    def __init__(
        self,
        snapshot: Callable[[], BotStatus],
        console: Console | None = None,
        refresh_per_second: float = 4.0,
        clock: Callable[[], float] = time.time,
        stale_after: float = 2.0,
    ) -> None:
        self.snapshot = snapshot
        self.console = console or Console()
        self.refresh_per_second = refresh_per_second
        self.stale_after = stale_after
        self.clock = clock
        self._last: BotStatus | None = None
        self._last_at: float | None = None
        self._error: str | None = None
        self._failures = 0

    def poll(self) -> None:
        """Take one snapshot; on failure keep the last good one and remember why."""
        try:
            status = self.snapshot()
        except Exception as error:
            self._failures += 1
            self._error = f"{type(error).__name__}: {error}"
            return
        self._last, self._last_at = status, self.clock()
        self._error, self._failures = None, 0

    def notices(self, now: float) -> list[Text]:
        """Warning lines: a failing snapshot, or one that has not been refreshed for a while."""
        out = []
        if self._error is not None:
            line = Text(f"⚠ status snapshot failed ({self._failures}× in a row): ", style="red")
            line.append_text(safe(self._error, limit=200))
            if self._last_at is not None:
                line.append(f"; showing the last good one from {format_age(now - self._last_at)}")
            out.append(line)
        elif self._last_at is not None and now - self._last_at > self.stale_after:
            age = format_duration(now - self._last_at)
            out.append(Text(f"⚠ status not refreshed for {age}", style="yellow"))
        return out

    def view(self) -> RenderableType:
        """What the screen shows now (called from rich's refresh thread)."""
        now = self.clock()
        notices = self.notices(now)
        if self._last is None:
            return Group(*notices, Text("waiting for the first status snapshot…", style="dim"))
        view = render(self._last, now, notices=notices, max_height=self.console.size.height)
        return _Guarded(view)

    async def run(self) -> None:
        """Show the dashboard until cancelled; the terminal is restored on the way out."""
        interval = 1.0 / self.refresh_per_second
        self.poll()
        live = Live(
            console=self.console,
            get_renderable=self.view,
            refresh_per_second=self.refresh_per_second,
            screen=self.console.is_terminal,
            vertical_overflow="crop",
        )
        with live:
            while True:
                await asyncio.sleep(interval)
                self.poll()
