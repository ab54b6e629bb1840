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
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from mevbot.latency import STAGES
from mevbot.logfmt import printable
from mevbot.status import BotStatus, BundleRow, OpportunityRow, RelayHealth, Timing

MISSING = "—"
WIDE_FROM = 100  # columns from which panels go side by side
STALE_AFTER_S = 2.0  # a snapshot older than this is flagged on screen
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
    if abs(amount) >= _WEI_PER_ETH / 1_000_000:
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


def _table(*columns: str, right: Iterable[str] = ()) -> Table:
    table = Table(box=None, expand=True, pad_edge=False, header_style="bold", padding=(0, 1))
    right_aligned = set(right)
    for name in columns:
        justify = "right" if name in right_aligned else "left"
        table.add_column(name, justify=justify, no_wrap=True, overflow="ellipsis")
    return table


def _placeholder(table: Table, what: str) -> Table:
    if not table.row_count:
        table.add_row(Text(f"no {what} yet", style="dim"))
    return table


def _relay_summary(relay: RelayHealth) -> Text:
    if relay.sent and not relay.ok:
        style = "red"
    elif relay.errors:
        style = "yellow"
    else:
        style = "green"
    text = Text("● ", style=style)
    text.append_text(safe(relay.name, limit=40))
    text.append(f" {relay.ok:,}/{relay.sent:,} ok")
    if relay.errors:
        text.append(f", {relay.errors:,} err", style=style)
    if relay.latency is not None:
        text.append(f", p50 {format_ms(relay.latency.p50)} ms")
    if relay.last_error:
        text.append(" last: ")
        text.append_text(safe(relay.last_error, style="dim", limit=80))
    return text


def header_panel(status: BotStatus) -> Panel:
    line = Text()
    line.append_text(safe(status.network, style="bold", limit=30))
    line.append(f" · chain {status.chain_id} · head ")
    line.append(f"#{status.head_block:,}", style="bold")
    head_style = "red" if (status.head_age_s or 0) > HEAD_STALE_AFTER_S else ""
    line.append(f" ({format_age(status.head_age_s)})", style=head_style)
    if status.dry_run:
        line.append(" · ")
        line.append(" DRY RUN ", style="bold black on yellow")
    relays = Text("relays: ")
    if status.relays:
        relays.append_text(Text("  ").join(_relay_summary(relay) for relay in status.relays))
    else:
        relays.append(MISSING, style="dim")
    return Panel(Group(line, relays), title="mevbot", title_align="left", border_style="blue")


def intake_panel(status: BotStatus, rows: int | None = None) -> Panel:
    intake = status.intake
    table = _table(
        "source", "state", "tx/s", "seen", "first", "dup", "lag p50", "reconn", "bad",
        right=("tx/s", "seen", "first", "dup", "lag p50", "reconn", "bad"),
    )  # fmt: skip
    firsts = sum(source.first_seen for source in intake.sources)
    for source in intake.sources[:rows]:
        lag = MISSING if source.lag_p50_ms is None else f"{format_ms(source.lag_p50_ms)} ms"
        table.add_row(
            safe(source.name, limit=40),
            safe(source.state, limit=20),
            Text(f"{source.tx_per_s:,.1f}"),
            _num(source.seen),
            Text(format_share(source.first_seen, firsts)),
            _num(source.duplicates),
            Text(lag),
            _num(source.reconnects),
            Text(f"{source.malformed:,}", style="red" if source.malformed else ""),
        )
    _placeholder(table, "sources")
    summary = Text(f"pending {intake.pending_seen:,} · decoded ")
    summary.append(format_share(intake.decoded, intake.decoded + intake.undecoded))
    summary.append(f" ({intake.decoded:,}/{intake.decoded + intake.undecoded:,}) · shed ")
    summary.append(f"{intake.shed:,}", style="yellow" if intake.shed else "")
    queue_style = "red" if intake.queue_depth >= intake.queue_capacity > 0 else ""
    summary.append(" · queue ")
    summary.append(f"{intake.queue_depth:,}/{intake.queue_capacity:,}", style=queue_style)
    return Panel(Group(table, summary), title="Intake", title_align="left")


def _stages(latency: dict[str, Timing]) -> list[str]:
    return [*STAGES, *sorted(set(latency) - set(STAGES))]


def latency_panel(status: BotStatus, rows: int | None = None) -> Panel:
    table = _table("stage", "p50 ms", "p99 ms", "n", right=("p50 ms", "p99 ms", "n"))
    for stage in _stages(status.latency)[:rows]:
        timing = status.latency.get(stage)
        style = "bold" if stage == "wire_to_relay" else ""
        table.add_row(
            safe(stage, style=style, limit=30),
            Text(format_ms(timing.p50 if timing else None), style=style),
            Text(format_ms(timing.p99 if timing else None), style=style),
            Text(MISSING if timing is None else f"{timing.n:,}"),
        )
    return Panel(table, title="Stage latency (wire → relay)", title_align="left")


def _opportunity_row(row: OpportunityRow, now: float) -> list[Text]:
    return [
        Text(format_relative(row.at, now)),
        safe(row.strategy, limit=30),
        safe(short_hash(row.trigger) if row.trigger else None),
        Text(f"{row.target_block:,}"),
        Text(format_eth(row.expected_profit_wei)),
        safe(row.verdict, style=_VERDICT_STYLES.get(row.verdict, "yellow"), limit=30),
        safe(row.detail, style="dim", limit=120),
    ]


def opportunities_panel(status: BotStatus, now: float, rows: int | None = None) -> Panel:
    table = _table(
        "when", "strategy", "trigger", "block", "expected", "verdict", "detail",
        right=("block", "expected"),
    )  # fmt: skip
    for row in _newest(status.opportunities, rows, key=lambda o: o.at):
        table.add_row(*_opportunity_row(row, now))
    return Panel(_placeholder(table, "opportunities"), title="Opportunities", title_align="left")


def _bundle_row(row: BundleRow) -> list[Text]:
    realized = row.realized_profit_wei
    realized_style = "" if realized is None else ("green" if realized >= 0 else "red")
    return [
        Text(f"{row.target_block:,}"),
        safe(row.strategy, limit=30),
        Text(format_eth(row.bid_wei)),
        safe(row.status, style=_BUNDLE_STYLES.get(row.status, "yellow"), limit=20),
        Text(format_eth(realized), style=realized_style),
        safe(short_hash(row.bundle_hash)),
    ]


def bundles_panel(status: BotStatus, rows: int | None = None) -> Panel:
    table = _table(
        "block", "strategy", "bid", "status", "realized", "bundle",
        right=("block", "bid", "realized"),
    )  # fmt: skip
    for row in _newest(status.bundles, rows, key=lambda b: b.target_block):
        table.add_row(*_bundle_row(row))
    return Panel(_placeholder(table, "bundles"), title="Bundles", title_align="left")


def keepers_panel(status: BotStatus, now: float, rows: int | None = None) -> Panel:
    table = _table("job", "state", "last run", "next run", "last action", "fail", right=("fail",))
    for keeper in status.keepers[:rows]:
        table.add_row(
            safe(keeper.job, limit=40),
            safe(keeper.state, style="" if keeper.state == "ok" else "yellow", limit=20),
            Text(format_relative(keeper.last_run, now)),
            Text(format_relative(keeper.next_run, now)),
            safe(keeper.last_action, limit=120),
            Text(f"{keeper.failures:,}", style="red" if keeper.failures else ""),
        )
    return Panel(_placeholder(table, "keepers"), title="Keepers", title_align="left")


def tasks_panel(status: BotStatus, rows: int | None = None) -> Panel:
    table = _table("task", "state", "restarts", "last error", right=("restarts",))
    for task in status.tasks[:rows]:
        table.add_row(
            safe(task.name, limit=40),
            safe(task.state, style=_TASK_STYLES.get(task.state, "yellow"), limit=20),
            Text(f"{task.restarts:,}", style="yellow" if task.restarts else ""),
            safe(task.last_error, style="dim", limit=160),
        )
    return Panel(_placeholder(table, "tasks"), title="Tasks", title_align="left")


def log_panel(status: BotStatus, rows: int | None = None) -> Panel:
    lines = status.log_tail[-rows:] if rows else status.log_tail if rows is None else ()
    body = Group(*(safe(line, limit=400) for line in lines)) if lines else safe(None)
    for line in body.renderables if isinstance(body, Group) else ():
        line.no_wrap, line.overflow = True, "ellipsis"
    return Panel(body, title="Log", title_align="left")


def _newest[Row](items: Sequence[Row], rows: int | None, key: Callable[[Row], float]) -> list[Row]:
    return sorted(items, key=key, reverse=True)[:rows]


# --- fitting the panels into the space ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Section:
    """One band of the dashboard: one panel, or two side by side, sharing a row budget."""

    name: str
    priority: int  # lower stays on screen longer
    build: Callable[[int | None], RenderableType]  # row limit (None: all) -> renderable
    want: int  # list rows it would show
    least: int  # fewest list rows worth showing


def _pair(
    left: Callable[[int | None], Panel],
    right: Callable[[int | None], Panel],
    ratio: tuple[int, int],
    console: Console,
    options: ConsoleOptions,
) -> Callable[[int | None], RenderableType]:
    """Two panels side by side, given the same height so their borders line up."""

    def build(rows: int | None) -> RenderableType:
        panels = [left(rows), right(rows)]
        total = options.max_width
        widths = [total * ratio[0] // sum(ratio)]
        widths.append(total - widths[0])
        height = max(
            len(console.render_lines(panel, options.update(width=width, height=None)))
            for panel, width in zip(panels, widths, strict=True)
        )
        grid = Table.grid(expand=True)
        for share in ratio:
            grid.add_column(ratio=share)
        for panel in panels:
            panel.height = height
        grid.add_row(*panels)
        return grid

    return build


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

    def _sections(self, console: Console, options: ConsoleOptions) -> list[_Section]:
        status, now = self.status, self.now
        longest_list = max(len(status.opportunities), len(status.bundles))
        n_stages = len(_stages(status.latency))
        sources, keepers, tasks = (
            len(status.intake.sources),
            len(status.keepers),
            len(status.tasks),
        )

        def intake(rows: int | None) -> Panel:
            return intake_panel(status, rows)

        def latency(rows: int | None) -> Panel:
            return latency_panel(status)

        def opportunities(rows: int | None) -> Panel:
            return opportunities_panel(status, now, rows)

        def bundles(rows: int | None) -> Panel:
            return bundles_panel(status, rows)

        def keeper_jobs(rows: int | None) -> Panel:
            return keepers_panel(status, now, rows)

        def supervised(rows: int | None) -> Panel:
            return tasks_panel(status, rows)

        def log(rows: int | None) -> Panel:
            return log_panel(status, rows)

        def header(rows: int | None) -> Panel:
            return header_panel(status)

        sections = [_Section("header", 0, header, 0, 0)]
        if options.max_width >= WIDE_FROM:
            pair = _pair
            sections += [
                _Section(
                    "intake+latency",
                    1,
                    pair(intake, latency, (3, 2), console, options),
                    max(sources, n_stages - 1),
                    max(min(sources, 4), n_stages - 1),
                ),
                _Section(
                    "opportunities+bundles",
                    2,
                    pair(opportunities, bundles, (11, 9), console, options),
                    longest_list,
                    min(longest_list, 3),
                ),
                _Section(
                    "keepers+tasks",
                    3,
                    pair(keeper_jobs, supervised, (1, 1), console, options),
                    max(keepers, tasks),
                    min(max(keepers, tasks), 3),
                ),
            ]
        else:
            sections += [
                _Section("intake", 1, intake, sources, min(sources, 4)),
                _Section("opportunities", 2, opportunities, longest_list, min(longest_list, 3)),
                _Section("bundles", 3, bundles, len(status.bundles), min(len(status.bundles), 3)),
                _Section("latency", 4, latency, 0, 0),
                _Section("tasks", 5, supervised, tasks, min(tasks, 3)),
                _Section("keepers", 6, keeper_jobs, keepers, min(keepers, 3)),
            ]
        log_lines = len(status.log_tail)
        sections.append(_Section("log", 7, log, log_lines, min(log_lines, 2)))
        return sections

    def _fit(
        self, sections: list[_Section], console: Console, options: ConsoleOptions, height: int
    ) -> tuple[list[tuple[_Section, int]], list[str]]:
        """Row limits per section for ``height`` lines, and the names of sections left out."""
        measure = options.update(height=None)

        def lines(section: _Section, rows: int) -> int:
            return len(console.render_lines(section.build(rows), measure))

        base = {s.name: lines(s, s.least) for s in sections}
        budget = height - len(self.notices)
        kept = sorted(sections, key=lambda s: s.priority)
        hidden: list[str] = []
        while len(kept) > 1 and sum(base[s.name] for s in kept) + (1 if hidden else 0) > budget:
            hidden.insert(0, kept.pop().name)
        spare = budget - sum(base[s.name] for s in kept) - (1 if hidden else 0)
        rows = {s.name: s.least for s in kept}
        # First a fair share each (a long list must not starve the log), then the rest in order.
        for cap in (6, None):
            for section in kept:
                grow = min(spare, section.want - rows[section.name])
                if cap is not None:
                    grow = min(grow, cap - rows[section.name])
                if grow > 0:
                    rows[section.name] += grow
                    spare -= grow
        ordered = [s for s in sections if s in kept]
        return [(s, rows[s.name]) for s in ordered], hidden

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield from self.notices
        sections = self._sections(console, options)
        height = options.height or self.max_height
        if height is None:
            for section in sections:
                yield section.build(UNBOUNDED_ROWS)
            return
        placed, hidden = self._fit(sections, console, options, height)
        for section, rows in placed:
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
    ) -> None:
        self.snapshot = snapshot
        self.console = console or Console()
        self.refresh_per_second = refresh_per_second
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
        elif self._last_at is not None and now - self._last_at > STALE_AFTER_S:
            age = format_duration(now - self._last_at)
            out.append(Text(f"⚠ status not refreshed for {age}", style="yellow"))
        return out

    def view(self) -> RenderableType:
        """What the screen shows now (called from rich's refresh thread)."""
        now = self.clock()
        notices = self.notices(now)
        if self._last is None:
            return Group(*notices, Text("waiting for the first status snapshot…", style="dim"))
        return render(self._last, now, notices=notices, max_height=self.console.size.height)

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
