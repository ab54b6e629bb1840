"""A relay that refuses connections while the bot runs: its first failure is logged, the repeats
only counted (no flood), and `mevbot status` shows the count and the last error's text."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

from fault_support import bot_on, mine, push_victim, sent_for, until, with_relays

from anvil.stack import DevnetStack
from anvil.traffic import Traffic
from chain.node import free_port

CLI = [sys.executable, "-m", "mevbot.cli"]


async def test_a_dead_relay_is_logged_once_and_its_last_error_is_in_the_status(
    devnet_cache, tmp_path, caplog
):
    dead = free_port()
    status_port = free_port()
    async with (
        DevnetStack(block_time=None, state_dir=devnet_cache) as stack,
        bot_on(
            stack,
            tmp_path,
            deployment=with_relays(stack, {"closed": f"http://127.0.0.1:{dead}"}),
            MEVBOT_STRATEGIES__TARGET_BLOCKS="3",  # each bundle goes out for 3 blocks
            MEVBOT_METRICS__ENABLED="true",
            MEVBOT_METRICS__PORT=str(status_port),
        ) as bot,
    ):
        await mine(stack, bot)
        traffic = Traffic(stack.world, seed=7)
        await traffic.sync_nonces(stack.rpc)
        victim = await push_victim(stack, traffic)
        await until(lambda: sent_for(bot, victim.hash), 30, "a backrun bundle")
        status = await asyncio.create_subprocess_exec(
            *CLI,
            "status",
            "--json",
            "--url",
            f"http://127.0.0.1:{status_port}",
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(status.communicate(), 60)
        assert status.returncode == 0, err.decode()
    relays = {row["name"]: row for row in json.loads(out)["relays"]}
    relay, healthy = relays["closed"], relays["devnet"]
    refused = (
        f"eth_sendBundle: ClientConnectorError: Cannot connect to host 127.0.0.1:{dead} "
        f"ssl:default [Connect call failed ('127.0.0.1', {dead})]"
    )
    # Every bundle the healthy relay got failed here: 3 or more failures, one line in the log.
    assert relay["sent"] == relay["errors"] == healthy["sent"] >= 3 and relay["ok"] == 0
    assert relay["last_error"] == refused
    logged = [r.getMessage() for r in caplog.records if r.name == "execution.relay"]
    assert logged == [f"relay closed: {refused}"]
