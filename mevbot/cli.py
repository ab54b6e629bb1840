"""The ``mevbot`` command line: one sub-command per way of using the bot."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence

DESCRIPTION = """\
mevbot: a DeFi mempool watcher and MEV bundle bot (good MEV only: backrun arbitrage,
liquidations, oracle upkeep; never front-running or sandwiching a user).
"""


# Each command lives in its own module with ``register(commands)``; this list is the menu.
COMMAND_MODULES = (
    "mevbot.cmd_devnet",
    "mevbot.cmd_demo",
    "mevbot.cmd_run",
    "mevbot.cmd_watch",
    "mevbot.cmd_status",
    "mevbot.cmd_replay",
    "mevbot.cmd_keys",
    "mevbot.cmd_executor",
    "mevbot.cmd_doctor",
    "mevbot.cmd_fork",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mevbot", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace], int] | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    return handler(args)


if __name__ == "__main__":
    sys.exit(main())
