"""``mevbot run --config FILE``: the bot against a node and relays, until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
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
    from mevbot.console import dashboard, log_output, stop_event
    from mevbot.logfmt import printable
    from mevbot.resolve import resolve_deployment, resolve_keys
    from mevbot.runtime import Bot

    try:
        config = load_config(Path(args.config))
        if args.dry_run:
            config = config.model_copy(update={"dry_run": True})
        deployment = resolve_deployment(config)
        keys = resolve_keys(config)
        feeds = _oracle_feeds(config)
        if args.role != "all" and not args.redis:
            raise ValueError(f"--role {args.role} shares its work through Redis: give --redis URL")
    except (ConfigError, ValueError) as error:
        print(f"mevbot run: {printable(str(error), 1000)}", file=sys.stderr)
        return 2
    log_output(args.no_tui)

    async def main() -> int:
        stop = stop_event()
        bot = Bot(
            config,
            deployment,
            keys,
            journal_path=args.journal,
            oracle_feeds=feeds,
            role=args.role,
            redis_url=args.redis,
            name=args.name,
        )
        await bot.start()
        try:
            async with dashboard(None if args.no_tui else bot.snapshot):
                await stop.wait()
        finally:
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
    run.add_argument(
        "--role",
        choices=("all", "watcher", "worker", "keeper"),
        default="all",
        help=(
            "all (default): everything in this process; watcher: watch the node and publish "
            "pending txs and heads to Redis; worker: verify and send bundles for txs from "
            "Redis (several workers share the stream); keeper: run the keeper jobs "
            "(leases in Redis: one keeper acts)"
        ),
    )
    run.add_argument(
        "--redis", metavar="URL", help="redis://host:port/db shared by the instances (roles)"
    )
    run.add_argument(
        "--name",
        help="this instance's stable name (a restarted worker takes back its own pending work)",
    )
    run.set_defaults(handler=cmd_run)
