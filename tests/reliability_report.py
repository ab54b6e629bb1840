"""A pytest plugin that prints the reliability table: one row per scenario, what was injected
and what survived, at the end of the session.

Scenarios record their two lines with pytest's ``record_property`` fixture::

    record_property("injected", "3 WebSocket resets during 120 pending txs")
    record_property("survived", "120/120 seen, 0 task restarts")

Load it with ``-p reliability_report`` (tests/ on ``sys.path``, as ``make reliability`` does).
Without the plugin the properties are harmless (junit XML carries them).
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

INJECTED = "injected"
SURVIVED = "survived"


@dataclass(frozen=True, slots=True)
class Row:
    scenario: str
    outcome: str
    injected: str
    survived: str


class ReliabilityTable:
    """Collects rows from test reports; renders them as a plain-text table."""

    def __init__(self) -> None:
        self.rows: dict[str, Row] = {}

    @pytest.hookimpl
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        properties = dict(report.user_properties)
        if INJECTED not in properties:
            return
        failed_before = self.rows.get(report.nodeid)
        if report.when != "call" and not report.failed:
            return
        if failed_before is not None and failed_before.outcome != "passed":
            return  # keep the first failure (a teardown error after a failed call adds nothing)
        outcome = report.outcome
        if hasattr(report, "wasxfail"):
            outcome = "xfailed" if report.skipped else "xpassed"
        elif report.when != "call":
            outcome = f"{report.when} error"
        self.rows[report.nodeid] = Row(
            scenario=report.nodeid.split("::")[-1].removeprefix("test_"),
            outcome=outcome,
            injected=str(properties[INJECTED]),
            survived=str(properties.get(SURVIVED, "(did not finish)")),
        )

    def render(self) -> list[str]:
        headers = ("scenario", "result", "injected", "survived")
        cells = [(r.scenario, r.outcome, r.injected, r.survived) for r in self.rows.values()]
        widths = [max(len(row[i]) for row in [headers, *cells]) for i in range(len(headers))]

        def line(row: tuple[str, ...]) -> str:
            return " | ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))

        rule = "-+-".join("-" * width for width in widths)
        return [line(headers), rule, *(line(row) for row in cells)]

    @pytest.hookimpl
    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if not self.rows:
            return
        terminalreporter.section("reliability: injected faults and what survived")
        for text in self.render():
            terminalreporter.write_line(text)


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(ReliabilityTable(), "reliability-table")
