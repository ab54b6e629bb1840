"""What a run amounted to, printed on exit as a table in ETH and written as JSON on request.

The JSON keeps every amount in wei (exact integers); the table shows the keys ending in
``_wei`` in ETH, other numbers with thousands separators, nested figures (per kind) one per line.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO

from rich.console import Console
from rich.table import Table

from mevbot.counters import total
from mevbot.status import BotStatus
from mevbot.tui import format_eth


def run_summary(status: BotStatus) -> dict[str, Any]:
    """A running bot's totals since it started, from its last status."""
    tally = status.tally
    return {
        "network": status.network,
        "head_block": status.head_block,
        "blocks": tally.blocks,
        "pending_seen": status.intake.pending_seen,
        "opportunities": tally.candidates() - tally.candidates("duplicate"),
        "bundles_submitted": tally.candidates("sent"),
        "bundles_landed": total(tally.bundles, None, "landed"),
        "landed_by_venue": {c.labels[0]: c.value for c in tally.landed_by_venue},
        "realized_profit_wei": tally.net_profit_wei,
        "gas_paid_wei": total(tally.gas_paid_wei),
        "coinbase_tips_wei": total(tally.tips_paid_wei),
        "keeper_actions": total(tally.keeper_actions),
        "errors": total(tally.errors),
    }


def _cell(key: str, value: Any) -> str:
    if isinstance(value, Mapping):
        return "\n".join(f"{k}: {_cell(key, v)}" for k, v in value.items()) or "-"
    if isinstance(value, bool) or not isinstance(value, int):
        return str(value)
    return format_eth(value) if key.endswith("_wei") else f"{value:,}"


def print_summary(title: str, data: Mapping[str, Any], file: TextIO | None = None) -> None:
    """The summary as a two-column table (``latency_ms`` and other nested tables of timings
    are left to the JSON)."""
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column(justify="right")
    for key, value in data.items():
        if key != "latency_ms":
            table.add_row(key.removesuffix("_wei").replace("_", " "), _cell(key, value))
    Console(file=file or sys.stdout, width=100).print(table)


def write_summary(path: str | Path, data: Mapping[str, Any]) -> None:
    Path(path).write_text(json.dumps(data, indent=1) + "\n")
