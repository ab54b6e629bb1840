"""Replay: a journal recorded by the live bot on the devnet replays to the same candidates, every
time, as the live bot found; a bad journal line is named; the command explains itself."""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from devnet_txs import feed_update, swap
from eth_account import Account

from anvil.stack import DevnetStack
from anvil.traffic import Traffic
from chain.node import AnvilProcess
from chain.rpc import connect
from mevbot import cmd_replay
from mevbot.config import Config, load_config
from mevbot.deployment import deployment_from_world, devnet_keys
from mevbot.replay import ReplayCandidate, ReplayError, replay_journal
from mevbot.runtime import Bot
from watcher.journal import JournalError


@dataclass(frozen=True, slots=True)
class Recording:
    stack: DevnetStack
    journal: Path
    config: Config
    live: tuple[tuple[str, str, str], ...]  # (key, outcome, reason) in the order the bot noted
    triggers: tuple[str, ...]  # the pending txs sent (two swaps, one feed update)


async def _until(predicate: Callable[[], object], what: str, timeout: float = 15.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def _mine(stack: DevnetStack, bot: Bot) -> None:
    report = await stack.builder.build_block()
    await _until(lambda: bot.engine.processed_block >= report.number, f"block {report.number}")


def _seen(bot: Bot, tx_hash: str) -> bool:
    return any(c.trigger_hash == tx_hash for c, _ in bot.engine.submitter.verdicts)


@pytest.fixture(scope="module")
async def recording(devnet_cache: Path, tmp_path_factory) -> AsyncIterator[Recording]:
    """The live bot (dry run) journals a devnet run: two big swaps and a feed update, 5 blocks."""
    workdir = tmp_path_factory.mktemp("replay")
    journal = workdir / "journal.jsonl"
    config = load_config(
        network="devnet",
        environ={
            "MEVBOT_STORE__LEDGER_PATH": str(workdir / "ledger.sqlite"),
            "MEVBOT_DRY_RUN": "true",
            "MEVBOT_METRICS__ENABLED": "false",
            "MEVBOT_KEEPERS__LIQUIDATION": "false",
            "MEVBOT_STRATEGIES__TARGET_BLOCKS": "1",
            "MEVBOT_METRICS__PORT": "0",
        },
    )
    async with DevnetStack(block_time=None, state_dir=devnet_cache) as stack:
        world = stack.world
        bot = Bot(
            config,
            deployment_from_world(world, None),
            devnet_keys(world),
            journal_path=str(journal),
        )
        await bot.start()
        try:
            async with connect(world.rpc["ws"]) as rpc:
                await _mine(stack, bot)
                traffic = Traffic(world, seed=5)
                await traffic.sync_nonces(rpc)
                weth = world.tokens["WETH"]["address"]
                pair = world.dexes["uniswap"]["pairs"]["WETH/USDC"]["address"]
                amount = bot.state.pools[pair].reserves_for(weth)[0] * 3 // 100
                fee = bot.engine.head.base_fee
                updater = Account.from_key(world.roles["oracle_updater"].private_key).address
                nonce = int(await rpc.call("eth_getTransactionCount", [updater, "pending"]), 16)
                triggers = []
                for raw in (
                    swap(traffic, world, "uniswap", 0, amount, fee),
                    feed_update(world, nonce, fee),
                ):
                    tx_hash = await rpc.call("eth_sendRawTransaction", [raw])
                    await _until(lambda h=tx_hash: _seen(bot, h), f"candidates behind {tx_hash}")
                    triggers.append(tx_hash)
                await _mine(stack, bot)
                raw = swap(traffic, world, "sushiswap", 1, amount, bot.engine.head.base_fee)
                tx_hash = await rpc.call("eth_sendRawTransaction", [raw])
                await _until(lambda: _seen(bot, tx_hash), f"candidates behind {tx_hash}")
                triggers.append(tx_hash)
                await _mine(stack, bot)
                await _mine(stack, bot)
        finally:
            await bot.stop()
        live = tuple((c.key, v.outcome, v.reason) for c, v in bot.engine.submitter.verdicts)
        yield Recording(stack, journal, config, live, tuple(triggers))


async def _replay(recording: Recording, journal: Path | None = None):
    world = recording.stack.world
    return await replay_journal(
        journal or recording.journal,
        upstream_url=recording.stack.rpc_url,
        deployment=deployment_from_world(world, None),
        config=recording.config,
        signer=devnet_keys(world).executor,
    )


def _noted(candidates: tuple[ReplayCandidate, ...]) -> tuple[tuple[str, str, str], ...]:
    """What the engine notes in its verdict history (duplicates and no-head drops are not)."""
    return tuple((c.key, c.verdict, c.reason) for c in candidates if c.verdict != "duplicate")


async def test_the_same_journal_replays_to_the_live_bots_candidates_every_time(recording):
    first = await _replay(recording)
    second = await _replay(recording)
    assert first.candidates == second.candidates
    assert first.candidates, "the journal holds opportunities"

    # Every pending trigger got a candidate that the fork simulation would have sent.
    simulated = {c.trigger for c in first.candidates if c.verdict == "simulated"}
    assert set(recording.triggers) <= simulated
    assert {"backrun", "liquidation"} <= {c.strategy for c in first.candidates}
    assert all(c.gas_used for c in first.candidates if c.verdict == "simulated")
    # ... and the replay decided exactly what the live bot decided, in the same order.
    assert _noted(first.candidates) == recording.live

    # Four mined blocks, and the block the bot started at when its head stream connected first.
    heads = first.events["head"]
    assert heads in (4, 5) and first.events["tx"] >= 3
    assert first.last_block == first.start_block + heads - 1  # the start block is the first head
    assert first.off_chain_heads == 0


def _config_file(recording: Recording, directory: Path) -> Path:
    """The bot's config as a user would write it (the same strategy settings as recorded)."""
    world_json = directory / "devnet.json"
    world_json.write_text(json.dumps(recording.stack.world.to_json()))
    path = directory / "mevbot.toml"
    target_blocks = recording.config.strategies.target_blocks
    path.write_text(
        f'network = "devnet"\ndevnet_json = "{world_json}"\n'
        f"[strategies]\ntarget_blocks = {target_blocks}\n"
    )
    return path


async def test_the_command_prints_the_same_candidates_as_json_lines(recording, tmp_path, capsys):
    config = _config_file(recording, tmp_path)
    parser = argparse.ArgumentParser(prog="mevbot")
    cmd_replay.register(parser.add_subparsers())
    args = parser.parse_args(
        ["replay", "--journal", str(recording.journal), "--config", str(config), "--jsonl"]
    )
    assert await asyncio.to_thread(args.handler, args) == 0
    out, err = capsys.readouterr()
    printed = [json.loads(line) for line in out.splitlines()]
    expected = await _replay(recording)
    assert printed == [c.to_json() for c in expected.candidates]
    assert f"{len(expected.candidates)} candidates" in err
    assert f"from block {expected.start_block} to {expected.last_block}" in err

    args.jsonl = False
    assert await asyncio.to_thread(args.handler, args) == 0
    table = capsys.readouterr().out.splitlines()
    rows = [r for r in map(str.split, table) if len(r) == 6 and r[0].isdigit()]
    assert [(int(r[0]), r[1], int(r[2]), r[3], int(r[4]), r[5]) for r in rows] == [
        (c.line, c.strategy, c.target_block, c.verdict, c.expected_profit_wei, c.key)
        for c in expected.candidates
    ]
    assert f"{len(expected.candidates)} candidates" in table


async def test_a_corrupted_line_is_named_before_anything_starts(recording, tmp_path, capsys):
    lines = recording.journal.read_bytes().splitlines(keepends=True)
    broken = tmp_path / "broken.jsonl"
    broken.write_bytes(b"".join([*lines[:2], b'{"t": 1, "src": "x", "kind": "tx", "dat\n']))
    with pytest.raises(JournalError, match="line 3: not JSON"):
        await _replay(recording, broken)

    parser = argparse.ArgumentParser(prog="mevbot")
    cmd_replay.register(parser.add_subparsers())
    config = _config_file(recording, tmp_path)
    args = parser.parse_args(["replay", "--journal", str(broken), "--config", str(config)])
    assert await asyncio.to_thread(args.handler, args) == 1
    assert f"mevbot replay: {broken}: line 3: not JSON" in capsys.readouterr().err

    no_heads = tmp_path / "no-heads.jsonl"
    no_heads.write_bytes(b"".join(line for line in lines if b'"kind":"head"' not in line))
    with pytest.raises(ReplayError, match="holds no head"):
        await _replay(recording, no_heads)


async def test_an_upstream_without_the_recorded_chain_is_refused(recording, anvil: AnvilProcess):
    world = recording.stack.world
    with pytest.raises(ReplayError, match=r"does not have block|not the chain that was recorded"):
        await replay_journal(
            recording.journal,
            upstream_url=anvil.http_url,
            deployment=deployment_from_world(world, None),
            config=recording.config,
            signer=devnet_keys(world).executor,
        )


def test_replay_help_explains_itself(capsys):
    parser = argparse.ArgumentParser(prog="mevbot")
    cmd_replay.register(parser.add_subparsers())
    with pytest.raises(SystemExit) as exit_:
        parser.parse_args(["replay", "--help"])
    assert exit_.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    for phrase in ("--journal FILE", "--rpc URL", "--jsonl", "same candidates on every run"):
        assert phrase in text
