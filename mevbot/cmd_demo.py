"""``mevbot demo``: the devnet, traffic, the bot and its keepers, the dashboard; then a summary."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import tempfile
from pathlib import Path
from typing import Any

from anvil.mix import DEFAULT_MIX, mix_argument


def cmd_demo(args: argparse.Namespace) -> int:
    from anvil.devnet import DEFAULT_STATE_DIR
    from chain.node import AnvilNotFound, NodeStartError
    from mevbot.console import dashboard, log_output, stop_event
    from mevbot.demo import run_demo
    from mevbot.exit_summary import print_summary, write_summary

    log_output(args.no_tui)

    async def main() -> Any:
        stop = stop_event()
        async with contextlib.AsyncExitStack() as ui:

            async def started(bot: Any, stack: Any) -> None:
                url = bot.status_server.url if bot.status_server else None
                print(f"devnet {stack.world.rpc['http']}  relay {stack.relay_url}  status {url}")
                await ui.enter_async_context(dashboard(None if args.no_tui else bot.snapshot))

            with tempfile.TemporaryDirectory(prefix="mevbot-demo-") as workdir:
                return await run_demo(
                    blocks=args.blocks,
                    block_time=args.block_time,
                    workdir=Path(workdir),
                    state_dir=DEFAULT_STATE_DIR,
                    metrics_port=args.metrics_port,
                    on_started=started,
                    stop=stop,
                    mix=args.mix,
                    private_share=args.private_share,
                )

    try:
        summary = asyncio.run(main())
    except (AnvilNotFound, NodeStartError) as error:
        print(f"mevbot demo: {error}", file=sys.stderr)
        return 1
    data = summary.to_json()
    print_summary(f"mevbot demo: {data['blocks']} blocks", data)
    if args.summary:
        write_summary(args.summary, data)
        print(f"summary written to {args.summary}")
    return 0


def register(commands: Any) -> None:
    demo = commands.add_parser(
        "demo",
        help="run the devnet, traffic and the bot with its keepers, with the terminal UI",
        description=(
            "Everything on this machine, no configuration: start the devnet (anvil with the "
            "world, a local relay and block builder), send traders' swaps every block (part of "
            "them privately to the devnet's MEV-Share node), move the oracle's reference price "
            "so that borrowers become liquidatable, and run the bot: backrun arbitrage, "
            "backruns of MEV-Share hints, liquidation backruns, the oracle and liquidation "
            "keepers. The "
            "terminal UI shows it live. After --blocks blocks (or Ctrl-C) it prints a summary "
            "measured on chain (bundles landed, realized profit, liquidations, oracle updates, "
            "stage latencies) and writes it to --summary."
        ),
    )
    demo.add_argument(
        "--blocks", type=int, default=30, help="stop after this many blocks (default: 30)"
    )
    demo.add_argument(
        "--block-time",
        type=float,
        default=1.0,
        metavar="SECONDS",
        help="seconds between devnet blocks (default: 1.0)",
    )
    demo.add_argument(
        "--no-tui", action="store_true", help="structured log lines instead of the dashboard"
    )
    demo.add_argument("--summary", metavar="PATH", help="also write the summary JSON here")
    demo.add_argument(
        "--mix",
        type=mix_argument,
        default=DEFAULT_MIX,
        help=(
            "shares of the traffic's swaps by router family: v2 (Router02, which the bot "
            "backruns), v3 (V3 SwapRouter, SwapRouter02), universal (Universal Router); "
            f"default {DEFAULT_MIX}"
        ),
    )
    demo.add_argument(
        "--private-share",
        type=float,
        default=0.5,
        metavar="SHARE",
        help=(
            "share of the swaps sent privately to the devnet's MEV-Share node, whose hints the "
            "bot backruns (0..1, default 0.5)"
        ),
    )
    demo.add_argument(
        "--metrics-port",
        type=int,
        default=0,
        help="port of the bot's /metrics and /status endpoint (default: a free one)",
    )
    demo.set_defaults(handler=cmd_demo)
