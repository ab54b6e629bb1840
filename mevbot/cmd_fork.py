"""``mevbot fork --rpc URL [--block N] --world FILE [--out FILE] [--replay-journal FILE]``: an anvil
fork of a chain at a block with the local relay and block builder on top, until Ctrl-C.

``--world`` is the upstream's world JSON (what ``mevbot devnet --out`` wrote): the fork writes the
same description to ``--out``, pointed at the fork's node and relay, so ``mevbot run`` with
``devnet_json`` set to it works against the fork unchanged. ``--replay-journal`` pushes a recorded
journal's pending transactions into the fork's mempool at their recorded pace.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any


def _fail(message: str, code: int) -> int:
    print(f"mevbot fork: {message}", file=sys.stderr)
    return code


def cmd_fork(args: argparse.Namespace) -> int:
    from anvil.fork import ForkStack, push_pending
    from anvil.world import World
    from chain.errors import ChainError
    from chain.node import AnvilNotFound, NodeStartError
    from chain.rpc import eth_block_number, eth_chain_id
    from mevbot.console import stop_event
    from mevbot.preflight import origin
    from watcher.journal import JournalError, read_journal

    try:
        upstream_world = World.from_json(json.loads(Path(args.world).read_text()))
    except FileNotFoundError:
        return _fail(f"--world: {args.world} does not exist", 2)
    except (ValueError, KeyError, TypeError) as error:
        return _fail(f"--world: {args.world} is not a world description ({error})", 2)
    try:
        journal = list(read_journal(args.replay_journal)) if args.replay_journal else []
    except OSError as error:
        return _fail(f"--replay-journal: {error.strerror}: {args.replay_journal}", 2)
    except JournalError as error:
        return _fail(f"--replay-journal: {args.replay_journal}: {error}", 2)
    out = Path(args.out).resolve()

    async def main() -> int:
        stop = stop_event()
        stack = ForkStack(
            args.rpc,
            block=args.block,
            block_time=None if args.manual_mining else args.block_time,
            relay_port=args.relay_port,
        )
        try:
            await stack.start()
        except (AnvilNotFound, NodeStartError) as error:
            return _fail(str(error), 1)
        try:
            assert stack.node is not None
            chain_id, head = await eth_chain_id(stack.rpc), await eth_block_number(stack.rpc)
            world = World.from_json(upstream_world.to_json())
            world.chain_id = chain_id
            world.rpc = {"http": stack.node.http_url, "ws": stack.node.ws_url}
            world.extra["relay"] = stack.relay_url
            world.extra["forked_from"] = {"rpc": origin(args.rpc), "block": head}
            await asyncio.to_thread(out.write_text, json.dumps(world.to_json(), indent=1) + "\n")
            where = f"{stack.node.http_url}  {stack.node.ws_url}"
            print(f"fork of {origin(args.rpc)} at block {head}: {where}  chain id {chain_id}")
            print(f"relay {stack.relay_url}; world description written to {out}")
            print("Ctrl-C to stop", flush=True)
            if journal:
                pushed = await push_pending(stack.rpc, journal, args.speed)
                refused = ", ".join(f"{n} {why}" for why, n in pushed.refused.items()) or "none"
                print(
                    f"pushed {pushed.sent} pending txs from {args.replay_journal} "
                    f"(refused: {refused}; without a signed envelope: {pushed.without_raw})",
                    flush=True,
                )
            await stop.wait()
        except ChainError as error:
            return _fail(f"{type(error).__name__}: {error}", 1)
        finally:
            stats = stack.stats()
            await stack.stop()
        print(
            f"fork stopped: {stats.blocks_built} blocks built, {stats.bundles_included} of "
            f"{stats.bundles_received} bundles included, {stats.public_txs_mined} public txs mined"
        )
        return 0

    return asyncio.run(main())


def register(commands: Any) -> None:
    fork = commands.add_parser(
        "fork",
        help="fork a chain at a block with the local relay and builder; write its world JSON",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    fork.add_argument("--rpc", required=True, metavar="URL", help="the node to fork (http://)")
    fork.add_argument("--block", type=int, metavar="N", help="fork at block N (default: head)")
    fork.add_argument(
        "--world", required=True, metavar="FILE", help="the upstream's world JSON (mevbot devnet)"
    )
    fork.add_argument(
        "--out", default="fork.json", help="where to write the fork's world JSON (fork.json)"
    )
    fork.add_argument(
        "--block-time", type=float, default=2.0, metavar="S", help="a block every S s (2)"
    )
    fork.add_argument(
        "--manual-mining", action="store_true", help="build no blocks (mine with evm_mine)"
    )
    fork.add_argument("--relay-port", type=int, default=0, help="the relay's port (a free one)")
    fork.add_argument(
        "--replay-journal",
        metavar="FILE",
        help="push this journal's pending txs (mevbot watch --record) into the fork's mempool",
    )
    fork.add_argument(
        "--speed", type=float, default=1.0, help="replay pace: 2 is twice as fast as recorded"
    )
    fork.set_defaults(handler=cmd_fork)
