"""``mevbot devnet``: start anvil with the devnet world deployed, until Ctrl-C."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any


def cmd_devnet(args: argparse.Namespace) -> int:
    from anvil.devnet import DEFAULT_STATE_DIR
    from anvil.stack import DevnetStack
    from chain.node import AnvilNotFound, NodeStartError
    from mevbot.console import stop_event

    state_dir = None if args.no_cache else (args.state_dir or DEFAULT_STATE_DIR)
    out = Path(args.out).resolve()

    async def main() -> int:
        stop = stop_event()
        stack = DevnetStack(
            block_time=None if args.manual_mining else args.block_time,
            state_dir=state_dir,
            relay_port=args.relay_port,
        )
        try:
            await stack.start()
        except (AnvilNotFound, NodeStartError) as error:
            print(f"mevbot devnet: {error}", file=sys.stderr)
            return 1
        try:
            world = stack.world
            world.extra["relay"] = stack.relay_url
            await asyncio.to_thread(out.write_text, json.dumps(world.to_json(), indent=1) + "\n")
            how = "loaded from cache" if stack.devnet.loaded_from_cache else "deployed"
            mining = "manual (evm_mine)" if args.manual_mining else f"every {args.block_time} s"
            endpoints = f"{world.rpc['http']}  {world.rpc['ws']}"
            print(f"devnet up ({how}): {endpoints}  chain id {world.chain_id}")
            print(f"relay {stack.relay_url}; blocks {mining}")
            print(f"world description written to {out}")
            print("Ctrl-C to stop", flush=True)
            await stop.wait()
        finally:
            stats = stack.stats()
            await stack.stop()
        print(
            f"devnet stopped: {stats.blocks_built} blocks built, {stats.bundles_included} of "
            f"{stats.bundles_received} bundles included, {stats.public_txs_mined} public txs "
            f"mined, {stats.restored} sent again after the pool forgot them, "
            f"anomalies {dict(stats.anomalies) or 'none'}"
        )
        return 0

    return asyncio.run(main())


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
