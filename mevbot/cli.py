"""The ``mevbot`` command line: one sub-command per way of using the bot."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import version

from mevbot.logfmt import FORMATTERS, LOG_LEVELS, LogSettings, configure_logging

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

# The long-running commands: they log (as structured lines with --no-tui, else in the dashboard).
LOGGING_COMMANDS = ("run", "demo")


def _add_log_options(command: argparse.ArgumentParser) -> None:
    group = command.add_argument_group("logging")
    group.add_argument(
        "--log-level",
        choices=LOG_LEVELS,
        default="info",
        help="the least severe records our packages log (default: info)",
    )
    group.add_argument(
        "--log-format",
        choices=tuple(FORMATTERS),
        default="logfmt",
        help="log lines as key=value pairs (logfmt, the default) or one JSON object each",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mevbot", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"mevbot {version('mevbot')}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(commands)
    for name in LOGGING_COMMANDS:
        _add_log_options(commands.choices[name])
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        handler: Callable[[argparse.Namespace], int] | None = getattr(args, "handler", None)
        if handler is None:
            parser.print_help()
            return 2
        if args.command in LOGGING_COMMANDS:
            configure_logging(LogSettings(args.log_level, args.log_format))
        return handler(args)
    except KeyboardInterrupt:  # Ctrl-C before the command handles signals itself (start-up)
        print("mevbot: interrupted", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
