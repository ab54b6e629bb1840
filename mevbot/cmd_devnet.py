"""``mevbot devnet``: start anvil with the devnet world deployed, until Ctrl-C."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any


def cmd_devnet(args: argparse.Namespace) -> int:
    from anvil.devnet import DEFAULT_STATE_DIR
    from anvil.stack import DevnetStack
    from anvil.world import World
    from mevbot.serve import serve_stack

    state_dir = None if args.no_cache else (args.state_dir or DEFAULT_STATE_DIR)
    stack = DevnetStack(
        block_time=None if args.manual_mining else args.block_time,
        state_dir=state_dir,
        relay_port=args.relay_port,
    )

    async def describe() -> tuple[World, list[str]]:
        world = stack.world
        how = "loaded from cache" if stack.devnet.loaded_from_cache else "deployed"
        mining = "manual (evm_mine)" if args.manual_mining else f"every {args.block_time} s"
        endpoints = f"{world.rpc['http']}  {world.rpc['ws']}"
        return world, [
            f"devnet up ({how}): {endpoints}  chain id {world.chain_id}; blocks {mining}"
        ]

    return asyncio.run(serve_stack("devnet", stack, Path(args.out).resolve(), describe))


def register(commands: Any) -> None:
    devnet = commands.add_parser(
        "devnet",
        help="start the local devnet (anvil, world, relay, block builder); write its JSON",
        description=(
            "Start anvil on a free loopback port and deploy the devnet world from Uniswap's "
            "official bytecode (npm packages): WETH9 and three tokens, two Uniswap V2 DEXes "
            "(factory + Router02) and Uniswap V3 pools at 0.05/0.3/1% holding the same pairs at "
            "slightly different prices, the V3 SwapRouter, SwapRouter02, QuoterV2 and the "
            "Universal Router; OCR price feeds behind proxies, Aave V3 from @aave/core-v3 with "
            "borrowers near liquidation, and the bot's funded executor; serve a local "
            "Flashbots-compatible relay and build blocks from public txs and the best bundles. "
            "Writes the addresses (every router by kind, every V3 pool), RPC and relay URLs and "
            "keys by role (anvil's public development keys) to --out, then runs until Ctrl-C or "
            "SIGTERM and stops everything on exit."
        ),
    )
    devnet.add_argument(
        "--out", default="devnet.json", help="where to write the world JSON (default: devnet.json)"
    )
    devnet.add_argument(
        "--block-time",
        type=float,
        default=2.0,
        metavar="SECONDS",
        help="the builder makes a block every SECONDS (default: 2)",
    )
    devnet.add_argument(
        "--manual-mining",
        action="store_true",
        help="build no blocks by itself (mine with evm_mine over RPC)",
    )
    devnet.add_argument(
        "--relay-port", type=int, default=0, help="port of the local relay (default: a free one)"
    )
    devnet.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        help="where deployed states are cached for fast restarts (default: .devnet-state/)",
    )
    devnet.add_argument(
        "--no-cache", action="store_true", help="always deploy from scratch; write no cache"
    )
    devnet.set_defaults(handler=cmd_devnet)
