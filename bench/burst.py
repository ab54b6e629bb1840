"""Wire -> relay during a burst of 10x the demo's pending rate: ``python -m bench.burst
[--seconds 15] [--backend anvil]`` prints JSON.

The scenario of tests/test_load.py without its assertions: ``mevbot devnet`` in its own process
(a block every second, builder and relay out of the bot's event loop), the full bot here, and
``anvil.traffic`` in a third process sending 30 Router02 swaps/s (10x the demo's ~3 per block,
every one a backrun candidate) and 150 plain transfers/s for ``--seconds``. The figure is the
bot's own ``wire_to_relay`` over the burst, with what the intake shed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

from anvil.world import World
from mevbot.config import load_config
from mevbot.deployment import deployment_from_world, devnet_keys
from mevbot.runtime import Bot
from simulation.fork_warm import WarmFork

SWAPS_PER_S = 30  # 10x the demo's ~3 swaps per 1 s block
TRANSFERS_PER_S = 150
RESEND_AFTER_S = 1.0  # the traffic's wallet re-sends what sits unmined one block time
CLI = [sys.executable, "-m", "mevbot.cli"]


@contextlib.contextmanager
def devnet_process(state_dir: Path, workdir: Path) -> Iterator[World]:
    """`mevbot devnet` in its own process, as a user runs it: builder and relay out of the bot's
    event loop (in one process they starve its WebSocket reader and anvil drops the laggard).
    Its output goes to a file (a pipe nobody reads would fill up and stall the builder) and its
    last line is printed at the end: the builder's summary says how many txs it sent again."""
    out, log = workdir / "devnet.json", workdir / "devnet.log"
    command = [*CLI, "devnet", "--out", str(out), "--block-time", "1"]
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [*command, "--state-dir", str(state_dir)], stdout=sink, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 60
        while "Ctrl-C" not in log.read_text(errors="replace"):
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"mevbot devnet did not come up:\n{log.read_text()}")
            time.sleep(0.1)
        yield World.from_json(json.loads(out.read_text()))
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
        print(*log.read_text(errors="replace").splitlines()[-1:], file=sys.stderr)


async def start_traffic(world: World, workdir: Path, seconds: float) -> asyncio.subprocess.Process:
    """``anvil.traffic`` at 10x for ``seconds``, Router02 swaps only; what it sent goes to
    ``workdir/sent.json``."""
    world_json = workdir / "devnet-world.json"
    world_json.write_text(json.dumps(world.to_json()))
    return await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "anvil.traffic", "--world", str(world_json)),
        *("--seconds", str(seconds), "--swaps-per-s", str(SWAPS_PER_S)),
        *("--transfers-per-s", str(TRANSFERS_PER_S), "--seed", "17"),
        *("--out", str(workdir / "sent.json"), "--resend-after", str(RESEND_AFTER_S)),
        *("--mix", "v2=1"),
    )


async def _drained(bot: Bot, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while len(bot.intake) and time.monotonic() < deadline:  # noqa: ASYNC110 (a counter)
        await asyncio.sleep(0.05)


async def run(
    seconds: float = 15.0, backend: str | None = None, keep_warm: bool = True
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-burst-") as scratch:
        workdir = Path(scratch)
        with devnet_process(workdir / "state", workdir) as world:
            config = load_config(
                network="devnet",
                environ={
                    "MEVBOT_STORE__LEDGER_PATH": str(workdir / "ledger.sqlite"),
                    "MEVBOT_STRATEGIES__TARGET_BLOCKS": "1",
                    "MEVBOT_METRICS__ENABLED": "false",
                    **({"MEVBOT_SIMULATION__BACKEND": backend} if backend else {}),
                },
            )
            bot = Bot(
                config, deployment_from_world(world, world.extra["relay"]), devnet_keys(world)
            )
            await bot.start()
            simulator = bot.engine.simulator
            if isinstance(simulator, WarmFork):
                simulator.keep_warm = keep_warm
            try:
                while bot.engine.head is None:  # noqa: ASYNC110 (the bot's first head)
                    await asyncio.sleep(0.02)
                traffic = await start_traffic(world, workdir, seconds)
                # The traffic waits out a saturated devnet (node_timeouts); should it fail anyway,
                # the bot's figures for what it did send are reported with its exit code.
                traffic_exit = await traffic.wait()
                await _drained(bot, timeout=20)
                wire = bot.latency.timing("wire_to_relay")
                simulate = bot.latency.timing("simulate")
                counts = bot.engine.counts
                sent_file = workdir / "sent.json"
                sent = json.loads(sent_file.read_text()) if sent_file.exists() else {}
                return {
                    "backend": bot.simulator_backend,
                    "keep_warm": keep_warm,
                    "seconds": seconds,
                    "swaps_per_s": SWAPS_PER_S,
                    "transfers_per_s": TRANSFERS_PER_S,
                    "traffic_exit": traffic_exit,
                    "swaps_sent": len(sent.get("swaps", ())),
                    "traffic_node_timeouts": sent.get("node_timeouts", 0),
                    "wire_to_relay": None if wire is None else asdict(wire),
                    "simulate": None if simulate is None else asdict(simulate),
                    "relevant_handled": counts.pending_relevant,
                    "reverting_handled": counts.pending_reverting,
                    "candidates_sent": counts.tally().candidates("sent"),
                    "shed": dict(bot.intake.shed),
                    "intake_waits": bot.intake.waits,
                    **(
                        {"fork": simulator.warm.counts()} if isinstance(simulator, WarmFork) else {}
                    ),
                }
            finally:
                await bot.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.burst", description=__doc__)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument(
        "--backend", choices=("anvil", "revm", "node"), help="default: the config's simulator"
    )
    parser.add_argument("--reset-fork", action="store_true", help="fork again at every head")
    args = parser.parse_args(argv)
    result = asyncio.run(run(args.seconds, args.backend, keep_warm=not args.reset_fork))
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
