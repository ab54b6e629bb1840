"""What ``mevbot devnet`` and ``mevbot fork`` share: start a node with the local relay, builder
and MEV-Share node on top, write its world description, say what is up, run until Ctrl-C or
SIGTERM, then stop everything and print what the builder did."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

from anvil.deployer import DeployError
from anvil.stack import BuilderStack
from anvil.world import World
from chain.errors import ChainError
from chain.node import AnvilNotFound, NodeStartError
from mevbot.console import stop_event
from simulation.calls import LoadError

Describe = Callable[[], Awaitable[tuple[World, list[str]]]]


def _fail(command: str, message: str) -> int:
    print(f"mevbot {command}: {message}", file=sys.stderr)
    return 1


async def serve_stack(
    command: str,
    stack: BuilderStack,
    out: Path,
    describe: Describe,
    while_up: Callable[[], Awaitable[None]] | None = None,
) -> int:
    """Start ``stack``; ``describe()`` gives its world and the lines that say what is up; the
    world, with the relay's URL, is written to ``out``; ``while_up()`` runs once all is said."""
    stop = stop_event()
    try:
        await stack.start()
    except (AnvilNotFound, NodeStartError, DeployError, LoadError, ChainError) as error:
        return _fail(command, str(error))
    try:
        world, lines = await describe()
        world.extra["relay"] = stack.relay_url
        world.extra["mevshare"] = stack.matchmaker_url
        await asyncio.to_thread(out.write_text, json.dumps(world.to_json(), indent=1) + "\n")
        print("\n".join(lines))
        print(f"relay {stack.relay_url}; world description written to {out}")
        print(f"mev-share node {stack.matchmaker_url} (JSON-RPC on POST, hints on GET)")
        print("Ctrl-C to stop", flush=True)
        if while_up is not None:
            await while_up()
        await stop.wait()
    except ChainError as error:
        return _fail(command, f"{type(error).__name__}: {error}")
    finally:
        stats = stack.stats()
        await stack.stop()
    print(
        f"{command} stopped: {stats.blocks_built} blocks built, {stats.bundles_included} of "
        f"{stats.bundles_received} bundles included, {stats.public_txs_mined} public txs "
        f"mined, {stats.restored} sent again after the pool forgot them, "
        f"anomalies {dict(stats.anomalies) or 'none'}"
    )
    return 0
