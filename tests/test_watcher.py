"""Watcher sources against real anvil processes and local fault-injecting servers.

Pending txs: 5,000 signed txs into ``anvil --no-mining`` reach the merged watcher exactly once;
a cut WebSocket loses none (txpool backfill); a malformed frame and a silent subscription are
counted and survived. Heads: a reorg made by ``anvil_reorg`` yields a Reorg of the right depth,
and tracked logs ride on their head. Also: bounded intake, journal, and the CLI commands.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import subprocess
import sys
import time
import tracemalloc
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from eth_account import Account
from eth_utils import to_checksum_address
from hypothesis import given, settings
from hypothesis import strategies as st
from tcp_proxy import TcpProxy

from chain.node import ANVIL_DEV_KEYS, AnvilProcess
from chain.ocr import transmit_answer
from chain.rpc import connect
from chain.topics import ANSWER_UPDATED
from chain.types import PendingTx
from watcher.decode import Decoder
from watcher.events import (
    Event,
    NewHead,
    Reorg,
)
from watcher.heads import HeadSource
from watcher.intake import Intake
from watcher.journal import read_journal
from watcher.merge import Merger
from watcher.pending import PendingSource
from watcher.resilience import Backoff
from watcher.source import Source

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = Path("/work/shared/fixtures/mainnet/router_calls.jsonl")
CHAIN_ID = 31337
TXS_PER_SENDER = 500
V2_ROUTER = "0x7a250d5630b4cf539739df2c5dacb4c659f2488d"
FAST = Backoff(base=0.05, cap=0.2)


def _router_calls() -> list[dict[str, Any]]:
    return [json.loads(line) for line in FIXTURE.read_text().splitlines() if line.strip()]


def _v2_calls() -> list[dict[str, Any]]:
    """The fixture's Uniswap V2 Router02 calls (decoded as trades when sent to V2_ROUTER)."""
    return [call for call in _router_calls() if call["to"] == V2_ROUTER]


@pytest.fixture(scope="module")
def signed() -> list[tuple[str, str]]:
    """5,000 (hash, raw hex) EIP-1559 txs: 10 dev senders x 500 nonces, sent in this order.

    Signed once: every fresh anvil has the same chain id and funded dev accounts. Every 10th tx
    calls the mainnet V2 router (no code on anvil; the tx is still valid) with real calldata.
    """
    calls = _v2_calls()
    accounts = [Account.from_key(key) for key in ANVIL_DEV_KEYS]
    out = []
    for nonce in range(TXS_PER_SENDER):
        for index, account in enumerate(accounts):
            router_call = (nonce * len(accounts) + index) % 10 == 0
            call = calls[nonce % len(calls)]
            tx = {
                "type": 2,
                "chainId": CHAIN_ID,
                "nonce": nonce,
                "to": to_checksum_address(V2_ROUTER if router_call else "0x" + "ee" * 20),
                "value": int(call["value"], 16) if router_call else 1,
                "data": call["input"] if router_call else "0x",
                "gas": 400_000,
                "maxFeePerGas": 10**10,
                "maxPriorityFeePerGas": 10**9,
            }
            signed_tx = account.sign_transaction(tx)
            out.append(
                (
                    "0x" + signed_tx.hash.hex().removeprefix("0x"),
                    "0x" + signed_tx.raw_transaction.hex().removeprefix("0x"),
                )
            )
    return out


async def send_all(url: str, raws: list[str], chunk: int = 250) -> None:
    async with connect(url, timeout=60) as rpc:
        for start in range(0, len(raws), chunk):
            calls = [("eth_sendRawTransaction", (raw,)) for raw in raws[start : start + chunk]]
            results = await rpc.batch(calls)
            errors = [r for r in results if not isinstance(r, str)]
            assert not errors, errors[:3]


async def wait_for(condition: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def running(source: Source) -> AsyncIterator[list[Event]]:
    """Run ``source`` in a task, collecting its events; cancelled on exit."""
    events: list[Event] = []

    async def collect(event: Event) -> None:
        events.append(event)

    task = asyncio.create_task(source.run(collect))
    try:
        yield events
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def tx_hashes(events: list[Event]) -> list[str]:
    return [event.hash for event in events if isinstance(event, PendingTx)]


# -- pending txs on anvil ----------------------------------------------------------------------


async def test_merged_watcher_receives_a_5000_tx_burst_exactly_once(
    anvil_factory: Callable[..., AnvilProcess], signed: list[tuple[str, str]]
) -> None:
    node = anvil_factory("--no-mining")
    hashes_source = PendingSource(node.ws_url, mode="hashes")
    full_source = PendingSource(node.ws_url, mode="full")
    merger = Merger([hashes_source, full_source])
    async with running(merger) as events:
        await wait_for(
            lambda: hashes_source.stats.connected and full_source.stats.connected,
            10,
            "subscriptions",
        )
        await send_all(node.ws_url, [raw for _, raw in signed])
        await wait_for(lambda: len(events) >= len(signed), 30, "5,000 txs")
        await asyncio.sleep(0.3)  # late duplicates must not come through either
    received = tx_hashes(events)
    assert len(received) == len(signed)
    assert set(received) == {tx_hash for tx_hash, _ in signed}
    coverage = merger.coverage()
    assert coverage.unique == len(signed)
    assert sum(entry.first_seen for entry in coverage.sources) == len(signed)
    for entry in coverage.sources:
        assert entry.seen == entry.first_seen + entry.duplicates
        assert entry.health.delivered == entry.seen
        assert sum(entry.health.by_path.values()) == entry.seen
        assert entry.lag_p50_ms is not None and entry.lag_p99_ms is not None
    hashes_health = coverage.source("ws-hashes").health
    assert hashes_health.by_path.get("lookup", 0) + hashes_health.by_path.get("txpool", 0) == len(
        signed
    )
    assert hashes_health.malformed == {}


async def test_cut_websocket_loses_no_tx(
    anvil_factory: Callable[..., AnvilProcess], signed: list[tuple[str, str]]
) -> None:
    node = anvil_factory("--no-mining")
    batch = signed[:3000]
    async with TcpProxy(node.port) as proxy:
        source = PendingSource(f"ws://127.0.0.1:{proxy.port}", backoff=FAST)
        async with running(source) as events:
            await wait_for(lambda: source.stats.connected, 10, "subscription")
            await send_all(node.ws_url, [raw for _, raw in batch[:1500]])
            await wait_for(lambda: len(events) >= 500, 10, "the first txs")
            await proxy.cut()
            await send_all(node.ws_url, [raw for _, raw in batch[1500:]])
            await wait_for(lambda: len(events) >= len(batch), 30, "all 3,000 txs")
            await asyncio.sleep(0.3)
    received = tx_hashes(events)
    assert len(received) == len(batch)
    assert set(received) == {tx_hash for tx_hash, _ in batch}
    assert source.stats.reconnects >= 1
    assert proxy.accepted >= 2
    assert source.stats.by_path["txpool"] > 0  # the backfill recovered what the cut hid


# -- a local node that misbehaves ---------------------------------------------------------------


def _tx_object(nonce: int) -> dict[str, Any]:
    return {
        "hash": "0x" + f"{nonce + 1:064x}",
        "from": "0x" + "11" * 20,
        "to": "0x" + "22" * 20,
        "value": "0x1",
        "input": "0x",
        "nonce": hex(nonce),
        "gas": "0x5208",
        "type": "0x2",
        "maxFeePerGas": "0x2540be400",
        "maxPriorityFeePerGas": "0x3b9aca00",
        "chainId": "0x7a69",
    }


@contextlib.asynccontextmanager
async def serve(app: web.Application) -> AsyncIterator[int]:
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield port
    finally:
        await runner.cleanup()


def misbehaving_node() -> tuple[web.Application, dict[str, int]]:
    """Answers eth_subscribe, pushes garbage, a bad tx and a good one, then goes silent.

    Its block number grows on every eth_blockNumber call, as a chain that keeps making blocks.
    """
    state = {"connections": 0, "block": 100}

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        state["connections"] += 1
        async for message in ws:
            call = json.loads(message.data)
            method, call_id = call["method"], call["id"]
            if method == "eth_subscribe":
                await ws.send_str(json.dumps({"jsonrpc": "2.0", "id": call_id, "result": "0xabc"}))
                await ws.send_str("this is {not json")
                for payload in ({"hash": "0x12", "from": "nope"}, _tx_object(0)):
                    note = {"subscription": "0xabc", "result": payload}
                    await ws.send_str(
                        json.dumps({"jsonrpc": "2.0", "method": "eth_subscription", "params": note})
                    )
            elif method == "txpool_content":
                await ws.send_str(
                    json.dumps(
                        {"jsonrpc": "2.0", "id": call_id, "result": {"pending": {}, "queued": {}}}
                    )
                )
            elif method == "eth_blockNumber":
                state["block"] += 1
                await ws.send_str(
                    json.dumps({"jsonrpc": "2.0", "id": call_id, "result": hex(state["block"])})
                )
        return ws

    app = web.Application()
    app.router.add_get("/", handler)
    return app, state


async def test_malformed_frames_are_counted_and_a_silent_subscription_is_replaced() -> None:
    app, state = misbehaving_node()
    async with serve(app) as port:
        source = PendingSource(f"ws://127.0.0.1:{port}", mode="full", stale_after=0.2, backoff=FAST)
        async with running(source) as events:
            await wait_for(
                lambda: state["connections"] >= 3 and source.stats.stale >= 2,
                10,
                "two stale reconnects",
            )
    assert tx_hashes(events) == [_tx_object(0)["hash"]]  # once, though sent on every connection
    stats = source.stats
    assert stats.stale >= 2
    assert state["connections"] >= 3
    assert stats.malformed.counts["frame is not JSON-RPC"] >= 2
    assert any(reason.startswith("hash") for reason in stats.malformed.counts)
    assert "StaleSubscription" in stats.last_error


# -- heads --------------------------------------------------------------------------------------


def _deploy_feed(http_url: str) -> tuple[str, bytes]:
    """An OCR aggregator (deployed, configured, first answer transmitted: blocks 1-3) and its
    config digest."""
    from web3 import Web3

    artifact = json.loads((ROOT / "chain/artifacts/OffchainAggregator.json").read_text())
    w3 = Web3(Web3.HTTPProvider(http_url))
    owner = w3.eth.accounts[0]
    contract = w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
    receipt = w3.eth.wait_for_transaction_receipt(
        contract.constructor(1, 10**30, 8, "ETH / USD").transact({"from": owner})
    )
    feed = contract(address=receipt["contractAddress"])
    oracles = w3.eth.accounts[:4]
    w3.eth.wait_for_transaction_receipt(
        feed.functions.setConfig(oracles, oracles, 1, 1, b"").transact({"from": owner})
    )
    digest = feed.functions.latestConfigDetails().call()[2]
    _update_feed(http_url, feed.address.lower(), digest, 1, 2000 * 10**8)
    return feed.address.lower(), digest


def _update_feed(http_url: str, feed: str, digest: bytes, epoch: int, answer: int) -> None:
    from web3 import Web3

    w3 = Web3(Web3.HTTPProvider(http_url))
    data = transmit_answer(answer, digest, epoch)
    tx = w3.eth.send_transaction(
        {"from": w3.eth.accounts[0], "to": Web3.to_checksum_address(feed), "data": data}
    )
    w3.eth.wait_for_transaction_receipt(tx)


async def test_heads_carry_tracked_logs_and_a_reorg_has_the_right_depth(
    anvil: AnvilProcess,
) -> None:
    feed, digest = await asyncio.to_thread(_deploy_feed, anvil.http_url)
    source = HeadSource(anvil.ws_url, addresses=[feed], backoff=FAST)
    async with running(source) as events, connect(anvil.ws_url) as rpc:
        await wait_for(lambda: any(isinstance(e, NewHead) for e in events), 10, "the first head")
        await asyncio.to_thread(_update_feed, anvil.http_url, feed, digest, 2, 2100 * 10**8)
        for _ in range(4):
            await rpc.call("evm_mine")
        tip = int(await rpc.call("eth_blockNumber"), 16)
        await wait_for(
            lambda: any(isinstance(e, NewHead) and e.number == tip for e in events), 10, "tip"
        )
        held = {e.number: e.hash for e in events if isinstance(e, NewHead)}
        await rpc.call("anvil_reorg", (3, []))
        await rpc.call("evm_mine")
        await wait_for(
            lambda: any(isinstance(e, NewHead) and e.number == tip + 1 for e in events),
            10,
            "new tip",
        )
    # The first transmission's block (caught up at start) and the update's carry AnswerUpdated.
    with_logs = [e for e in events if isinstance(e, NewHead) and e.logs]
    assert [e.number for e in with_logs] == [3, 4]
    answers = []
    for head in with_logs:
        (log,) = head.logs
        assert log.address == feed and log.topic0 == ANSWER_UPDATED and log.block_hash == head.hash
        answers.append(int.from_bytes(log.topics[1], "big"))
    assert answers == [2000 * 10**8, 2100 * 10**8]
    reorgs = [e for e in events if isinstance(e, Reorg)]
    assert len(reorgs) == 1
    (reorg,) = reorgs
    assert reorg.depth == 3
    assert reorg.common_ancestor == tip - 3
    assert reorg.old_hashes == tuple(held[n] for n in range(tip - 2, tip + 1))
    after = events[events.index(reorg) + 1 :]
    new_heads = [e for e in after if isinstance(e, NewHead)]
    assert [h.number for h in new_heads] == [tip - 2, tip - 1, tip, tip + 1]
    assert new_heads[0].hash == reorg.new_hashes[0] and new_heads[0].hash != held[tip - 2]
    assert new_heads[0].header.parent_hash == held[tip - 3]


# -- bounded intake -----------------------------------------------------------------------------


def _pending(index: int, relevant: bool) -> PendingTx:
    calls = _CALLS
    return PendingTx(
        hash="0x" + f"{index:064x}",
        sender="0x" + "11" * 20,
        to=V2_ROUTER if relevant else "0x" + "ee" * 20,
        value=int(calls[index % len(calls)]["value"], 16) if relevant else 0,
        input=bytes.fromhex(calls[index % len(calls)]["input"][2:]) if relevant else b"",
        nonce=index,
        gas=21000,
        received_at=index,
        source="test",
    )


_CALLS = _v2_calls()


def test_intake_sheds_irrelevant_txs_first_with_exact_counts() -> None:
    intake = Intake(100, Decoder())
    for index in range(5050):
        intake.offer(_pending(index, relevant=index % 101 == 0))  # 50 relevant among 5,050
    assert intake.offered == 5050
    assert intake.shed == {"irrelevant": 4950}
    items = [intake.get_nowait() for _ in range(len(intake))]
    relevant = [item for item in items if item is not None and item.relevant]
    assert len(relevant) == 50 and all(item.intent is not None for item in relevant)
    irrelevant = [item.event.nonce for item in items if item is not None and not item.relevant]
    assert irrelevant == [i for i in range(5050) if i % 101][-50:]  # the freshest irrelevant ones
    assert intake.get_nowait() is None

    full_of_relevant = Intake(100, Decoder())
    for index in range(250):
        full_of_relevant.offer(_pending(index, relevant=True))
    assert full_of_relevant.shed == {"relevant": 150}
    assert full_of_relevant.get_nowait().event.nonce == 150  # type: ignore[union-attr]


def test_intake_memory_stays_flat_under_a_burst() -> None:
    def burst(size: int) -> int:
        intake = Intake(1000, Decoder())
        tracemalloc.start()
        for index in range(size):
            intake.offer(_pending(index, relevant=index % 7 == 0))
        current, _ = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert len(intake) == 1000
        return current

    small, large = burst(5_000), burst(50_000)
    assert large < small * 1.5


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 20), st.lists(st.booleans(), max_size=200))
def test_intake_never_exceeds_capacity_and_accounts_for_every_tx(
    capacity: int, flags: list[bool]
) -> None:
    intake = Intake(capacity, Decoder())
    for index, relevant in enumerate(flags):
        intake.offer(_pending(index, relevant))
        assert len(intake) <= capacity
    assert len(intake) + sum(intake.shed.values()) == len(flags)
    kept_relevant = min(capacity, sum(flags))
    assert intake.shed["relevant"] == sum(flags) - kept_relevant


# -- CLI ------------------------------------------------------------------------------------------

_RUN_COMMAND = (
    "import argparse, sys\n"
    "from mevbot import cmd_watch\n"
    "parser = argparse.ArgumentParser(prog='mevbot')\n"
    "cmd_watch.register(parser.add_subparsers(dest='command'))\n"
    "args = parser.parse_args(sys.argv[1:])\n"
    "sys.exit(args.handler(args))\n"
)


def mevbot(*argv: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-c", _RUN_COMMAND, *argv],
        input=stdin,
        capture_output=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    )


def test_decode_command_decodes_every_fixture_call() -> None:
    result = mevbot("decode", str(FIXTURE))
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(records) == 210
    assert all(record["decoded"] is not None for record in records)
    first = records[0]
    assert first["decoded"]["type"] == "SwapIntent"
    assert first["decoded"]["method"] == "swapExactETHForTokens"
    assert first["decoded"]["amount_in"] == str(int(first["value"], 16))
    assert b"210 decoded" in result.stderr


def test_decode_command_reports_bad_lines_and_goes_on() -> None:
    good = json.dumps(
        {"to": V2_ROUTER, "input": _CALLS[0]["input"], "value": int(_CALLS[0]["value"], 16)}
    )
    unknown = json.dumps({"to": "0x" + "ee" * 20, "input": "0x12345678", "value": "0x0"})
    text = (
        "\n".join([good, "{broken", json.dumps({"to": V2_ROUTER, "input": "zz"}), unknown]) + "\n"
    )
    result = mevbot("decode", "-", stdin=text.encode())
    assert result.returncode == 0
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [record["decoded"] is not None for record in records] == [True, False]
    errors = result.stderr.decode().splitlines()
    assert errors[0].startswith("line 2:") and errors[1].startswith("line 3:")
    assert "2 bad lines" in errors[-1]


@contextlib.asynccontextmanager
async def _watch_process(
    node: AnvilProcess, journal: Path, *options: str, **popen: Any
) -> AsyncIterator[asyncio.subprocess.Process]:
    """``mevbot watch --jsonl --record journal`` on ``node`` with ``options``, its output piped;
    killed on the way out if it is still running."""
    argv = ["watch", "--rpc", node.ws_url, "--jsonl", "--record", str(journal), *options]
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _RUN_COMMAND,
        *argv,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        **popen,
    )
    try:
        yield process
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_watch_command_prints_decoded_txs_and_records_a_journal(
    anvil_factory: Callable[..., AnvilProcess], signed: list[tuple[str, str]], tmp_path: Path
) -> None:
    node = anvil_factory("--no-mining")
    journal = tmp_path / "watch.jsonl"
    async with _watch_process(node, journal, "--count", "40") as process:
        await asyncio.sleep(1.5)  # let it subscribe; txs sent earlier would come by backfill anyway
        await send_all(node.ws_url, [raw for _, raw in signed[:40]])
        stdout, stderr = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0, stderr
    printed = [json.loads(line) for line in stdout.splitlines()]
    records = [record for record in printed if record["kind"] == "tx"]
    assert {record["hash"] for record in records} == {tx_hash for tx_hash, _ in signed[:40]}
    decoded = [record for record in records if record["intent"] is not None]
    assert len(decoded) == 4  # every 10th tx calls the router
    assert all(record["to"] == V2_ROUTER and record["source"] == "ws-hashes" for record in decoded)
    journaled = list(read_journal(journal))
    replayed = [event for event in journaled if isinstance(event, PendingTx)]
    assert [tx.hash for tx in replayed] == [record["hash"] for record in records]
    # --record follows heads too and prints them (tests/test_watch_record.py waits for them).
    heads = [(e.number, e.hash) for e in journaled if isinstance(e, NewHead)]
    assert heads == [(r["number"], r["hash"]) for r in printed if r["kind"] == "head"]


def _as_a_background_job() -> None:
    """What a non-interactive shell does to a job it starts with ``&``."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
async def test_watch_stops_on_a_signal_with_its_journal_whole(
    anvil_factory: Callable[..., AnvilProcess],
    signed: list[tuple[str, str]],
    tmp_path: Path,
    signum: signal.Signals,
) -> None:
    """Started as a background job (SIGINT inherited ignored), the watch still stops on
    SIGINT, and on SIGTERM: exit 0, the coverage printed, every printed tx in the journal."""
    node = anvil_factory("--no-mining")
    journal = tmp_path / "watch.jsonl"
    async with _watch_process(node, journal, preexec_fn=_as_a_background_job) as process:
        assert process.stdout is not None
        await send_all(node.ws_url, [raw for _, raw in signed[:10]])
        printed: set[str] = set()
        while len(printed) < 10:
            line = await asyncio.wait_for(process.stdout.readline(), 30)
            assert line, "the watch ended early"
            record = json.loads(line)
            if record["kind"] == "tx":
                printed.add(record["hash"])
        process.send_signal(signum)
        _, stderr = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0, stderr
    # 10 txs and the head --record follows (no block mined: --no-mining)
    assert "mevbot watch: 10 printed, 11 unique events" in stderr.decode().splitlines()
    assert {e.hash for e in read_journal(journal) if isinstance(e, PendingTx)} == printed
