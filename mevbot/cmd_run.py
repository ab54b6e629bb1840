"""``mevbot run --config FILE``: the bot against a node and relays, until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections.abc import Awaitable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


class _Interrupted(Exception):
    """SIGINT/SIGTERM arrived before the bot was running."""


async def _unless_stopped(stop: asyncio.Event, work: Awaitable[T]) -> T:
    """``work``'s result; :class:`_Interrupted` (``work`` cancelled) if ``stop`` is set first."""
    task = asyncio.ensure_future(work)
    waiter = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
    if not task.done():
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
        raise _Interrupted
    return task.result()


def _oracle_feeds(config: Any) -> list[Any]:
    """The oracle keeper's feeds from ``[[keepers.oracle]]`` (HTTP JSON reference prices)."""
    from keepers.oracle import HttpJsonPrice, OracleFeed

    return [
        OracleFeed(
            feed.feed,
            HttpJsonPrice(
                f"{feed.source.url} {feed.source.json_path}", feed.source.url, feed.source.json_path
            ),
            feed.deviation_bps,
            feed.heartbeat_s,
        )
        for feed in config.keepers.oracle
    ]


def _say(message: object) -> None:
    from mevbot.logfmt import printable

    print(f"mevbot run: {printable(str(message), 1000)}", file=sys.stderr)


def _fail(message: object, code: int) -> int:
    _say(message)
    return code


def cmd_run(args: argparse.Namespace) -> int:
    try:
        return _run(args)
    except KeyboardInterrupt:  # before the signal handlers are in place
        return _fail("interrupted during start-up", 1)


def _run(args: argparse.Namespace) -> int:
    from chain.errors import ChainError
    from chain.types import MalformedError
    from mevbot.config import ConfigError, load_config
    from mevbot.console import dashboard, log_output, stop_event
    from mevbot.deployment import chain_state
    from mevbot.exit_summary import print_summary, run_summary, write_summary
    from mevbot.networks import limits
    from mevbot.preflight import exit_code, run_checks
    from mevbot.resolve import resolve_deployment, resolve_keys
    from mevbot.runtime import Bot
    from simulation.backends import choose_backend
    from simulation.loader import LoadError
    from simulation.simulator import SimulationError

    try:
        config = load_config(Path(args.config))
        if args.dry_run:
            config = config.model_copy(update={"dry_run": True})
        redis_url = args.redis or config.store.redis_url
        if args.role != "all" and not redis_url:
            raise ConfigError(
                f"--role {args.role} shares its work through Redis: give --redis URL "
                "(or store.redis_url)"
            )
        deployment = resolve_deployment(config)
        keys = resolve_keys(config)
        feeds = _oracle_feeds(config)
    except ConfigError as error:
        return _fail(error, 2)
    log_output(args.no_tui)

    async def main() -> int:
        stop = stop_event()
        relays = "no relay (dry run)" if config.dry_run else f"{len(deployment.relays)} relay(s)"
        _say(f"checking the node, the executor, the keys and {relays}")
        state = chain_state(deployment)  # the checks load pools and positions into it
        # "auto" is chosen once, here: the checks verify the backend the bot will run. A node
        # that does not answer is the checks' to report.
        choice = None
        if config.simulation.backend == "auto":
            with contextlib.suppress(SimulationError):
                choice = await _unless_stopped(
                    stop,
                    choose_backend(
                        deployment.node_http,
                        avoid=config.simulation.final_check,
                        timeout=config.node.timeout_s,
                    ),
                )
        checked = config
        if choice is not None:
            simulation = config.simulation.model_copy(update={"backend": choice.backend})
            checked = config.model_copy(update={"simulation": simulation})
        checks = await _unless_stopped(
            stop, run_checks(checked, deployment, keys, redis_url, state)
        )
        for check in checks:
            if not check.ok:
                _say(check.line())
        if all(check.ok for check in checks if check.name == "node"):  # the right chain
            for limit in limits(deployment):
                _say(f"on {deployment.network}: {limit}")
        if exit_code(checks) and not args.force:
            return exit_code(checks)
        if exit_code(checks):
            failed = sum(not check.ok for check in checks)
            _say(f"going live with {failed} failed check(s) (--force)")
        bot = Bot(
            config,
            deployment,
            keys,
            journal_path=args.journal,
            oracle_feeds=feeds,
            role=args.role,
            redis_url=redis_url,
            name=args.name,
            preloaded=state if state.block_number else None,
            simulator_choice=choice,
        )
        try:
            await _unless_stopped(stop, bot.start())
        except (ChainError, LoadError, MalformedError, SimulationError, OSError) as error:
            await bot.stop()
            return _fail(f"could not start: {type(error).__name__}: {error}", 1)
        except _Interrupted:
            await bot.stop()
            raise
        try:
            async with dashboard(None if args.no_tui else bot.snapshot):
                await stop.wait()
            summary = run_summary(bot.snapshot())
        finally:
            await bot.stop()
        print("mevbot stopped: tasks ended, ledger closed, fork stopped", file=sys.stderr)
        print_summary(f"mevbot run on {summary['network']}", summary)
        if args.summary:
            write_summary(args.summary, summary)
            print(f"summary written to {args.summary}")
        return 0

    try:
        return asyncio.run(main())
    except _Interrupted:
        return _fail("interrupted during start-up", 1)


def register(commands: Any) -> None:
    run = commands.add_parser(
        "run",
        help="run the bot: watcher, strategies, fork verification, relays, keepers",
        description=(
            "Run the bot with the given config (TOML; see README): watch pending txs and blocks, "
            "keep local state, run the backrun and liquidation strategies, verify every candidate "
            "bundle (by default on the node itself when it is local, else on an in-process revm "
            "fork; [simulation] backend), send the profitable ones to the configured relays, and "
            "run the oracle and liquidation keepers. Keys come from environment variables or an "
            "encrypted keystore, never from the config. Before it starts it makes the checks of "
            "`mevbot doctor` (the node's chain, methods and head, the executor's code, owner and "
            "funds, distinct keys holding gas, every relay answering and taking our signature, "
            "pools and positions): each failure is one line; exit 2 for a configuration problem, 1 "
            "for something down, unless --force. SIGINT/SIGTERM stop it cleanly (in-flight work "
            "finished, ledger closed, simulator stopped)."
        ),
    )
    run.add_argument("--config", required=True, metavar="FILE", help="the TOML config file")
    run.add_argument("--dry-run", action="store_true", help="simulate everything, submit nothing")
    run.add_argument(
        "--force",
        action="store_true",
        help="start even when a start-up check fails (each failure is still printed)",
    )
    run.add_argument(
        "--no-tui", action="store_true", help="structured log lines instead of the dashboard"
    )
    run.add_argument(
        "--summary",
        metavar="PATH",
        help="on exit, also write the summary (printed as a table in ETH) as JSON to PATH",
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
