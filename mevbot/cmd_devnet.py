"""``mevbot devnet``: start anvil with the devnet world deployed, until Ctrl-C."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path
from typing import Any


def _wait_for_shutdown() -> None:
    """Block until SIGINT or SIGTERM."""
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    while not stop.wait(0.5):
        pass


def cmd_devnet(args: argparse.Namespace) -> int:
    from anvil.devnet import DEFAULT_STATE_DIR, Devnet
    from chain.node import AnvilNotFound, NodeStartError

    devnet = Devnet(
        block_time=None if args.manual_mining else args.block_time,
        state_dir=None if args.no_cache else (args.state_dir or DEFAULT_STATE_DIR),
    )
    try:
        world = devnet.start()
    except (AnvilNotFound, NodeStartError) as error:
        print(f"mevbot devnet: {error}", file=sys.stderr)
        return 1
    try:
        out = Path(args.out).resolve()
        out.write_text(json.dumps(world.to_json(), indent=1) + "\n")
        how = "loaded from cache" if devnet.loaded_from_cache else "deployed"
        print(
            f"devnet up ({how}): {world.rpc['http']}  {world.rpc['ws']}  chain id {world.chain_id}"
        )
        print(f"world description written to {out}")
        print("Ctrl-C to stop")
        sys.stdout.flush()
        _wait_for_shutdown()
    finally:
        devnet.stop()
    print("devnet stopped")
    return 0


def register(commands: Any) -> None:
    devnet = commands.add_parser(
        "devnet",
        help="start a local devnet (anvil + deployed world) and write its JSON description",
        description=(
            "Start anvil on a free loopback port and deploy the devnet world: WETH and three "
            "tokens, two Uniswap-V2-style DEXes holding the same pairs at slightly different "
            "prices, Chainlink-style price feeds, an Aave-V3-shaped lending market with borrowers "
            "near liquidation, and the bot's funded executor. Writes the addresses, RPC URLs and "
            "keys by role (anvil's public development keys) to --out, then runs until Ctrl-C or "
            "SIGTERM and stops anvil on exit."
        ),
    )
    devnet.add_argument(
        "--out", default="devnet.json", help="where to write the world JSON (default: devnet.json)"
    )
    devnet.add_argument(
        "--block-time",
        type=int,
        default=2,
        metavar="SECONDS",
        help="mine a block every SECONDS once deployed; 0 = a block per transaction (default: 2)",
    )
    devnet.add_argument(
        "--manual-mining",
        action="store_true",
        help="do not mine by itself (a block builder mines with evm_mine)",
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
