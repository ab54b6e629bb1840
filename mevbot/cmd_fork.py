"""``mevbot fork --rpc URL [--block N] [--world FILE | --network NAME | protocol flags] [--out FILE]
[--replay-journal FILE]``: an anvil fork of a chain at a block with the local relay and block
builder on top, until Ctrl-C. It writes a world description in the shape ``mevbot devnet --out``
writes, pointed at the fork's node and relay, so ``mevbot run`` with ``devnet_json`` set to it
works against the fork unchanged.

With ``--world`` (the upstream's own world JSON) the description is that one. Without it, the
protocols' addresses come from the network preset (``--network``, else the one whose chain id the
node answers) and the flags (``--weth``, ``--v2 ROUTER=FACTORY``, ``--router KIND=ADDRESS``,
``--v3-factory``, ``--aave-provider``), which add to it or replace it; the
pools and positions are read from the chain, and a fresh Executor is deployed on the fork
(:mod:`anvil.discover`). ``--replay-journal`` pushes a recorded journal's pending transactions
into the fork's mempool at their recorded pace.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from anvil.discover import Venues
    from anvil.world import World


UPSTREAM_TIMEOUT_S = 10.0


class _Refused(Exception):
    """The arguments do not say what to fork: exit 2."""


def _fail(message: str, code: int) -> int:
    print(f"mevbot fork: {message}", file=sys.stderr)
    return code


def _address(text: str) -> str:
    from chain.types import MalformedError, norm_address

    try:
        return norm_address(text, "address")
    except MalformedError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _halves(text: str, left: str) -> tuple[str, str]:
    name, sep, address = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"{text!r}: expected {left}=ADDRESS")
    return name, _address(address)


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return int(text)


def _v2(text: str) -> tuple[str, str]:
    """``ROUTER=FACTORY``."""
    router, factory = _halves(text, "ROUTER")
    return _address(router), factory


def _router(text: str) -> tuple[str, str]:
    """``KIND=ADDRESS`` for a router that is not a V2 one."""
    from mevbot.deployment import ROUTER_KINDS

    kind, address = _halves(text, "KIND")
    if kind not in ROUTER_KINDS or kind == "uniswap-v2":
        known = ", ".join(k for k in ROUTER_KINDS if k != "uniswap-v2")
        raise argparse.ArgumentTypeError(f"{kind!r} is not a router kind ({known}; V2: --v2)")
    return kind, address


_PROTOCOL_FLAGS = ("network", "weth", "v2", "router", "v3_factory", "aave_provider")


def _venues(args: argparse.Namespace, chain_id: int) -> Venues:
    """The protocols on the forked chain: the network preset's, with the flags on top."""
    from anvil.discover import Venues
    from mevbot.config import PRESETS
    from mevbot.networks import NETWORKS, Protocols

    network = args.network or next(
        (name for name in NETWORKS if PRESETS[name]["chain_id"] == chain_id), None
    )
    known = NETWORKS[network] if network else Protocols()
    preset = PRESETS[network] if network else {}
    v2 = {**preset.get("v2_factories", {}), **dict(args.v2)}
    routers = {a: k for a, k in preset.get("routers", {}).items() if a not in v2}
    routers |= {address: kind for kind, address in args.router}
    weth = args.weth or known.weth
    if weth is None:
        raise _Refused(
            f"chain {chain_id} has no network preset with WETH: give --weth and the DEXes "
            "(--v2 ROUTER=FACTORY, --v3-factory), or --world FILE"
        )
    return Venues(
        weth=weth,
        v2=v2,
        routers=routers,
        v3_factory=args.v3_factory or known.uniswap_v3_factory,
        aave_provider=args.aave_provider or known.aave_v3_addresses_provider,
        max_pools=args.max_pools,
    )


def cmd_fork(args: argparse.Namespace) -> int:
    from anvil.fork import ForkStack, push_pending
    from anvil.world import World
    from chain.rpc import eth_block_number, eth_chain_id
    from mevbot.preflight import Check, check_reachable, origin
    from mevbot.serve import serve_stack
    from watcher.journal import JournalError, read_journal

    upstream_world: World | None = None
    if args.world is not None:
        if any(getattr(args, name) for name in _PROTOCOL_FLAGS):
            return _fail("give --world or the protocols (--network and flags), not both", 2)
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
        venues = None
        if upstream_world is None:
            chain_id = await check_reachable("--rpc", args.rpc, "--rpc", UPSTREAM_TIMEOUT_S)
            if isinstance(chain_id, Check):
                return _fail(chain_id.line(), 1)
            try:
                venues = _venues(args, chain_id)
            except _Refused as error:
                return _fail(str(error), 2)
        stack = ForkStack(
            args.rpc,
            block=args.block,
            block_time=None if args.manual_mining else args.block_time,
            relay_port=args.relay_port,
            venues=venues,
        )

        async def describe() -> tuple[World, list[str]]:
            assert stack.node is not None
            chain_id, head = await eth_chain_id(stack.rpc), await eth_block_number(stack.rpc)
            if upstream_world is not None:
                world = World.from_json(upstream_world.to_json())
                world.chain_id = chain_id
                world.rpc = {"http": stack.node.http_url, "ws": stack.node.ws_url}
                found = "the upstream's world description"
            else:
                assert stack.world is not None
                world = stack.world
                v2 = sum(len(d["pairs"]) for d in world.dexes.values())
                found = (
                    f"{v2} V2 pairs, {len(world.v3.get('pools', []))} V3 pools, "
                    f"{len(world.aave.get('borrowers', []))} Aave borrowers; "
                    f"executor {world.executor} deployed"
                )
            world.extra["forked_from"] = {"rpc": origin(args.rpc), "block": head}
            where = f"{stack.node.http_url}  {stack.node.ws_url}"
            return world, [
                f"fork of {origin(args.rpc)} at block {head}: {where}  chain id {chain_id}",
                found,
            ]

        async def replay() -> None:
            if not journal:
                return
            pushed = await push_pending(stack.rpc, journal, args.speed)
            refused = ", ".join(f"{n} {why}" for why, n in pushed.refused.items()) or "none"
            print(
                f"pushed {pushed.sent} pending txs from {args.replay_journal} "
                f"(refused: {refused}; without a signed envelope: {pushed.without_raw})",
                flush=True,
            )

        return await serve_stack("fork", stack, out, describe, replay)

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
        "--world", metavar="FILE", help="the upstream's own world JSON (what mevbot devnet wrote)"
    )
    fork.add_argument(
        "--network",
        choices=("mainnet", "sepolia", "hoodi"),
        help="the preset whose addresses to use (default: the one of the node's chain id)",
    )
    fork.add_argument("--weth", type=_address, metavar="ADDRESS", help="WETH on the chain")
    fork.add_argument(
        "--v2",
        type=_v2,
        action="append",
        default=[],
        metavar="ROUTER=FACTORY",
        help="a Uniswap V2 (or fork) router and its factory; the first is the V2 side of "
        "SwapRouter02 and the Universal Router (repeatable)",
    )
    fork.add_argument(
        "--router",
        type=_router,
        action="append",
        default=[],
        metavar="KIND=ADDRESS",
        help="a router of kind uniswap-v3, uniswap-v3-02 or universal-router[-vX] (repeatable)",
    )
    fork.add_argument("--v3-factory", type=_address, metavar="ADDRESS", help="Uniswap V3 factory")
    fork.add_argument(
        "--aave-provider", type=_address, metavar="ADDRESS", help="Aave V3 PoolAddressesProvider"
    )
    fork.add_argument(
        "--max-pools",
        type=_positive,
        metavar="N",
        help="describe at most N pools: the V2 factories' oldest pairs, then the V3 factory's "
        "oldest pools (default: every pool)",
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
