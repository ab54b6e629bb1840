"""``mevbot doctor --config FILE``: every start-up check of ``mevbot run`` as a table, ✔ or ✖ with
the fix on each line; exit 1 on any ✖ (2 when the config itself does not load)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mevbot.preflight import Check

TABLE_WIDTH = 200  # when not a terminal: wide enough that a row stays on one line


def render(checks: Sequence[Check], title: str) -> None:
    from rich import box
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from mevbot.logfmt import printable

    table = Table(title=title, box=box.SIMPLE, title_justify="left")
    for column in ("", "check", "found", "fix"):
        table.add_column(column)
    for check in checks:
        table.add_row(
            "[green]✔[/]" if check.ok else "[red]✖[/]",
            escape(check.name),
            escape(printable(check.detail, 300)),
            escape(printable(check.fix, 300)),
        )
    console = Console(width=None if sys.stdout.isatty() else TABLE_WIDTH)
    console.print(table)


def cmd_doctor(args: argparse.Namespace) -> int:
    from mevbot.config import ConfigError, load_config
    from mevbot.networks import limits
    from mevbot.preflight import run_checks
    from mevbot.resolve import resolve_deployment, resolve_keys

    try:
        config = load_config(Path(args.config))
        deployment = resolve_deployment(config)
        keys = resolve_keys(config)
    except ConfigError as error:
        print(f"mevbot doctor: {error}", file=sys.stderr)
        return 2
    checks = asyncio.run(run_checks(config, deployment, keys))
    failed = sum(not check.ok for check in checks)
    render(checks, f"mevbot doctor: {deployment.network} (chain {deployment.chain_id})")
    missing = limits(deployment)
    if missing:
        print(f"what the bot does not do on {deployment.network}:")
        for limit in missing:
            print(f"  - {limit}")
    print(f"{len(checks) - failed} passed, {failed} failed" + ("" if failed else ": ready to run"))
    return 1 if failed else 0


def register(commands: Any) -> None:
    doctor = commands.add_parser(
        "doctor",
        help="check a config before running it: node, executor, keys, relays, pools",
        description=(
            "Run every check `mevbot run` makes at start and print them as a table, each ✔ or ✖ "
            "with its fix: the node over WebSocket and HTTP, its chain id, the subscriptions and "
            "methods the watcher and the simulator need, the head's age, the executor's code "
            "(the committed artifact), owner and funds, the keys (distinct, holding gas), each "
            "relay reachable and accepting the searcher's signature, the pools and lending "
            "positions that load. Exit 1 on any ✖, 2 when the config does not load."
        ),
    )
    doctor.add_argument("--config", required=True, metavar="FILE", help="the TOML config file")
    doctor.set_defaults(handler=cmd_doctor)
