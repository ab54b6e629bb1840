"""``mevbot run --config FILE``: the bot against a node and relays, until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from pathlib import Path
from typing import Any


def _oracle_feeds(config: Any) -> list[Any]:
    """The oracle keeper's feeds from ``[[keepers.oracle]]`` (HTTP JSON reference prices)."""
    from keepers.oracle import HttpJsonPrice, OracleFeed

    feeds = []
    for feed in config.keepers.oracle:
        source = feed.source
        if source.kind != "http" or not source.url or not source.json_path:
            raise ValueError(
                f'keepers.oracle feed {feed.feed}: mevbot run supports source kind "http" '
                "with url and json_path (the devnet's reference path runs in `mevbot demo`)"
            )
        reference = HttpJsonPrice(f"{source.url} {source.json_path}", source.url, source.json_path)
        feeds.append(OracleFeed(feed.feed, reference, feed.deviation_bps, feed.heartbeat_s))
    return feeds


def cmd_run(args: argparse.Namespace) -> int:
    from mevbot.config import ConfigError, load_config
    from mevbot.logfmt import EventFormatter, printable
    from mevbot.resolve import resolve_deployment, resolve_keys
    from mevbot.runtime import Bot
    from mevbot.tui import Dashboard

    try:
        config = load_config(Path(args.config))
        if args.dry_run:
            config = config.model_copy(update={"dry_run": True})
        deployment = resolve_deployment(config)
        keys = resolve_keys(config)
        feeds = _oracle_feeds(config)
    except (ConfigError, ValueError) as error:
        print(f"mevbot run: {printable(str(error), 1000)}", file=sys.stderr)
        return 2
    root = logging.getLogger("mevbot")
    root.setLevel(logging.INFO)
    if args.no_tui:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(EventFormatter())
        root.addHandler(handler)

    async def main() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        bot = Bot(config, deployment, keys, journal_path=args.journal, oracle_feeds=feeds)
        await bot.start()
        dashboard = None if args.no_tui else asyncio.create_task(Dashboard(bot.snapshot).run())
        try:
            await stop.wait()
        finally:
            if dashboard is not None:
                dashboard.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await dashboard
            await bot.stop()
        print("mevbot stopped: tasks ended, ledger closed, fork stopped", file=sys.stderr)
        return 0

    return asyncio.run(main())


def register(commands: Any) -> None:
    run = commands.add_parser(
        "run",
        help="run the bot: watcher, strategies, fork verification, relays, keepers",
        description=(
            "Run the bot with the given config (TOML; see README): watch pending txs and "
            "blocks, keep local state, run the backrun and liquidation strategies, verify every "
            "candidate bundle on an anvil fork, send the profitable ones to the configured "
            "relays, and run the oracle and liquidation keepers. Keys come from environment "
            "variables or an encrypted keystore, never from the config. SIGINT/SIGTERM stop it "
            "cleanly (in-flight work finished, ledger closed, fork process stopped)."
        ),
    )
    run.add_argument("--config", required=True, metavar="FILE", help="the TOML config file")
    run.add_argument("--dry-run", action="store_true", help="simulate everything, submit nothing")
    run.add_argument(
        "--no-tui", action="store_true", help="structured log lines instead of the dashboard"
    )
    run.add_argument("--journal", metavar="FILE", help="record every event received (JSON lines)")
    run.set_defaults(handler=cmd_run)
