"""``mevbot status``: the running bot's state, once: the dashboard as text, or ``--json``.

It reads ``GET /status`` from the bot's HTTP endpoint (the one that also serves ``/metrics``;
see :mod:`mevbot.endpoint`). Exit codes: 0 shown, 1 the bot could not be reached or answered
something that is not a status.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from mevbot.config import MetricsConfig
from mevbot.logfmt import printable

_DEFAULTS = MetricsConfig()
DEFAULT_URL = f"http://{_DEFAULTS.host}:{_DEFAULTS.port}"


async def _shared_ledger(url: str, timeout: float) -> dict[str, Any]:
    from mevbot.redis_store import connect_redis, read_shared_ledger

    client = connect_redis(url, command_timeout_s=timeout)
    try:
        summary = await read_shared_ledger(client)
    finally:
        await client.aclose()
    return {
        "instances": [
            {
                "instance": i.instance,
                "counts": i.counts,
                "realized_profit_wei": i.realized_profit_wei,
                "updated_at": i.updated_at,
            }
            for i in summary.instances
        ],
        "counts": summary.counts,
        "realized_profit_wei": summary.realized_profit_wei,
    }


def cmd_shared(args: argparse.Namespace) -> int:
    """Every instance's bundles from the shared ledger view in Redis."""
    from redis.exceptions import RedisError

    try:
        data = asyncio.run(_shared_ledger(args.redis, args.timeout))
    except (RedisError, OSError) as error:
        print(f"mevbot status: redis {args.redis}: {printable(error, limit=300)}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    for row in data["instances"]:
        counts = " ".join(f"{k}={v}" for k, v in sorted(row["counts"].items()))
        print(f"{printable(row['instance'], 80)}: {counts} profit={row['realized_profit_wei']} wei")
    total = " ".join(f"{k}={v}" for k, v in sorted(data["counts"].items()))
    print(f"all instances: {total} profit={data['realized_profit_wei']} wei")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from rich.console import Console

    from mevbot.endpoint import StatusFetchError, fetch_status, status_from_json
    from mevbot.tui import render

    if args.redis:
        return cmd_shared(args)
    try:
        data = asyncio.run(fetch_status(args.url, timeout=args.timeout))
        status = status_from_json(data)
    except StatusFetchError as error:
        print(f"mevbot status: {printable(error, limit=500)}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        Console().print(render(status))
    return 0


def register(commands: Any) -> None:
    status = commands.add_parser(
        "status",
        help="show a running bot's state once (the dashboard as text, or --json)",
        description=(
            "Ask a running bot for its state over its HTTP endpoint (GET /status, served beside "
            "/metrics on the [metrics] host and port) and print it once: the terminal dashboard "
            "as text, or with --json the same state machine-readably. Exit code 1 when the bot "
            "cannot be reached or answers something that is not a status."
        ),
    )
    status.add_argument(
        "--json", action="store_true", help="print the status as JSON (wei amounts as integers)"
    )
    status.add_argument(
        "--url",
        default=DEFAULT_URL,
        help=f"the bot's HTTP endpoint (default: {DEFAULT_URL})",
    )
    status.add_argument(
        "--redis",
        metavar="URL",
        help="instead: every instance's bundles and profit from the shared ledger in Redis",
    )
    status.add_argument(
        "--timeout",
        type=float,
        default=5.0,
        metavar="SECONDS",
        help="give up after SECONDS (default: 5)",
    )
    status.set_defaults(handler=cmd_status)
