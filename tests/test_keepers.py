"""Keepers on a real devnet: oracle deviation and heartbeat, liquidations (public and bundle),
a SIGKILLed keeper restarted with no duplicate, two instances sharing one store; plus the
scheduler's supervision and the reference-price sources."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path

from aiohttp import web
from devnet_txs import next_transmit
from hypothesis import given
from hypothesis import strategies as st

from anvil.world import World
from chain.abi import load_artifact
from chain.rpc import connect, eth_get_block
from chain.topics import ANSWER_UPDATED, LIQUIDATION_CALL, STATE_TOPICS
from chain.types import BlockHeader, Log
from execution.ledger import Ledger
from execution.nonces import NonceManager
from execution.sender import FeePolicy, TxSender
from execution.signer import LocalSigner
from keepers.liquidation import LiquidationKeeper
from keepers.oracle import HttpJsonPrice, OracleFeed, OracleKeeper, SeriesPrice, update_reason
from keepers.scheduler import Scheduler, Tick
from keepers.store import SqliteKeeperStore
from simulation.aave_v3 import WAD, health_factor
from simulation.candidates import Candidate
from simulation.fork import AnvilForkSimulator
from simulation.liquidation import find_liquidations
from simulation.loader import load_feeds, load_lending, load_pools
from simulation.state import ChainState
from simulation.uniswap_v2 import UNISWAP_V2

ROOT = Path(__file__).resolve().parents[1]
BALANCE_OF = load_artifact("ERC20Token").abi.function("balanceOf")
GWEI = 10**9
POLICY = FeePolicy(priority_fee_wei=GWEI, max_fee_cap_wei=200 * GWEI)


# ---------------------------------------------------------------- helpers


async def _state(rpc, world: World) -> ChainState:
    state = ChainState(
        routers={d["router"]: {"uniswap-v2": d["factory"]} for d in world.dexes.values()},
        factories={d["factory"]: UNISWAP_V2 for d in world.dexes.values()},
        lending_pool=world.aave["pool"],
    )
    await load_pools(rpc, state)
    await load_lending(rpc, state, from_block=0)
    await load_feeds(rpc, state, state.feed_assets)
    head = await eth_get_block(rpc, "latest")
    state.block_number, state.block_hash = head.number, head.hash
    return state


async def _mine(rpc, state: ChainState | None = None) -> BlockHeader:
    """One block; its logs applied to ``state`` as the block pipeline would."""
    await rpc.call("evm_mine")
    head = await eth_get_block(rpc, "latest")
    if state is not None:
        raw = await rpc.call(
            "eth_getLogs",
            [{"blockHash": head.hash, "topics": [["0x" + t.hex() for t in STATE_TOPICS]]}],
        )
        state.apply_block(head.number, head.hash, [Log.from_rpc(r) for r in raw], head.timestamp)
    return head


async def _count_logs(rpc, address: str, topic: bytes) -> int:
    logs = await rpc.call(
        "eth_getLogs",
        [
            {
                "address": address,
                "fromBlock": "0x0",
                "toBlock": "latest",
                "topics": ["0x" + topic.hex()],
            }
        ],
    )
    return len(logs)


async def _balance(rpc, token: str, holder: str) -> int:
    data = "0x" + BALANCE_OF.encode(holder).hex()
    return int(await rpc.call("eth_call", [{"to": token, "data": data}, "latest"]), 16)


def _sender(rpc, world: World, role: str, ledger: Ledger) -> TxSender:
    signer = LocalSigner(world.roles[role].private_key)
    return TxSender(
        rpc, signer, NonceManager(signer.address), ledger, chain_id=world.chain_id, policy=POLICY
    )


def _oracle(rpc, world, sender, store, owner, path: Callable[[int], int], **kw) -> OracleKeeper:
    feed = OracleFeed(
        world.feeds["WETH"]["address"],
        SeriesPrice("devnet-eth", path),
        deviation_bps=kw.get("deviation_bps", 100),
        heartbeat_s=kw.get("heartbeat_s", 3600),
    )
    return OracleKeeper("oracle", rpc=rpc, sender=sender, store=store, owner=owner, feeds=[feed])


async def _tick(job, rpc) -> str | None:
    head = await eth_get_block(rpc, "latest")
    return await job.run(Tick(head, 0.0))


START = 3_000 * 10**8


# ---------------------------------------------------------------- pure parts


@given(
    answer=st.integers(1, 10**15),
    reference=st.integers(1, 10**15),
    bps=st.integers(1, 5_000),
    age=st.integers(0, 10_000),
    heartbeat=st.integers(1, 10_000),
)
def test_update_rule_is_deviation_or_heartbeat(answer, reference, bps, age, heartbeat):
    reason = update_reason(
        reference, answer, 1_000, 1_000 + age, deviation_bps=bps, heartbeat_s=heartbeat
    )
    deviates = reference != answer and abs(reference - answer) * 10_000 >= bps * answer
    assert (reason == "deviation") == deviates
    assert (reason == "heartbeat") == (not deviates and age >= heartbeat)


def test_price_table_steps_at_each_point():
    series = SeriesPrice.table("t", [(10, 5), (20, 7)])
    assert [series.path(x) for x in (0, 10, 19, 20, 99)] == [5, 5, 5, 7, 7]


async def test_http_json_source_reads_the_path_and_counts_bad_answers():
    answers = iter(
        [
            (200, {"data": {"price": "2987.12345678"}}),
            (200, {"data": {}}),
            (500, {"error": "down"}),
            (200, {"data": {"price": -1}}),
            (200, {"data": {"price": 3001.5}}),
        ]
    )

    async def handler(request: web.Request) -> web.Response:
        status, body = next(answers)
        return web.json_response(body, status=status)

    app = web.Application()
    app.router.add_get("/price", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    try:
        source = HttpJsonPrice("http", f"http://127.0.0.1:{port}/price", "data.price", timeout_s=2)
        prices = [await source.price(Tick(None, 0.0)) for _ in range(5)]
        assert prices == [298712345678, None, None, None, 300150000000]
        assert source.errors == 3
    finally:
        await runner.cleanup()


class _Counting:
    def __init__(self, name: str, fail: bool) -> None:
        self.name, self.fail, self.runs = name, fail, 0

    async def run(self, tick: Tick) -> str | None:
        self.runs += 1
        if self.fail:
            raise RuntimeError("feed source exploded")
        return f"run {self.runs}"


async def test_a_failing_job_backs_off_and_is_reported_while_the_others_run(tmp_path):
    now = [100.0]
    store = SqliteKeeperStore.open(tmp_path / "k.db", clock=lambda: now[0])
    scheduler = Scheduler(store, "me", backoff_initial_s=10, backoff_cap_s=40, clock=lambda: now[0])
    good, bad = _Counting("good", False), _Counting("bad", True)
    scheduler.add(good)
    scheduler.add(bad)
    header = BlockHeader(
        1, "0x" + "11" * 32, "0x" + "00" * 32, 1, 7, 30_000_000, 0, "0x" + "00" * 20
    )
    for _ in range(6):  # 6 blocks, 5 s apart: bad runs at 100, 110 (after 10 s), 130 (after 20 s)
        await scheduler.on_block(header)
        now[0] += 5
    rows = {row.job: row for row in scheduler.status()}
    assert good.runs == 6 and rows["good"].failures == 0 and rows["good"].last_action == "run 6"
    assert bad.runs == 2 and rows["bad"].failures == 2 and rows["bad"].state == "backoff"
    assert rows["bad"].next_run == 110 + 20
    assert scheduler.last_error("bad") == "RuntimeError: feed source exploded"
    await store.close()


# ---------------------------------------------------------------- oracle keeper on the devnet


async def test_a_five_percent_move_gives_exactly_one_update(devnet_factory, tmp_path):
    world = devnet_factory(block_time=None).world
    feed = world.feeds["WETH"]["address"]
    aggregator = world.feeds["WETH"]["aggregator"]  # emits the answers, not the proxy
    async with connect(world.rpc["http"]) as rpc:
        head = await eth_get_block(rpc, "latest")
        moved_at = head.number + 2
        ledger = Ledger.open(tmp_path / "l.db")
        store = SqliteKeeperStore.open(tmp_path / "k.db")
        keeper = _oracle(
            rpc,
            world,
            _sender(rpc, world, "oracle_updater", ledger),
            store,
            "a",
            lambda block: START if block < moved_at else START * 95 // 100,
        )
        await keeper.recover()
        before = await _count_logs(rpc, aggregator, ANSWER_UPDATED)
        actions = []
        for _ in range(6):
            actions.append(await _tick(keeper, rpc))
            await _mine(rpc)
        assert await _count_logs(rpc, aggregator, ANSWER_UPDATED) == before + 1
        assert sum(a is not None for a in actions) == 1 and "deviation" in next(
            a for a in actions if a
        )
        assert (await keeper.read_rounds())[feed].answer == START * 95 // 100
        await store.close()
        ledger.close()


async def test_with_no_move_there_is_one_update_per_heartbeat(devnet_factory, tmp_path):
    world = devnet_factory(block_time=None).world
    aggregator = world.feeds["WETH"]["aggregator"]  # emits the answers, not the proxy
    async with connect(world.rpc["http"]) as rpc:
        ledger = Ledger.open(tmp_path / "l.db")
        store = SqliteKeeperStore.open(tmp_path / "k.db")
        keeper = _oracle(
            rpc,
            world,
            _sender(rpc, world, "oracle_updater", ledger),
            store,
            "a",
            lambda block: START,
            heartbeat_s=600,
        )
        await keeper.recover()
        before = await _count_logs(rpc, aggregator, ANSWER_UPDATED)
        counts = []
        for _ in range(2):
            for _ in range(3):
                await _tick(keeper, rpc)
                await _mine(rpc)
            counts.append(await _count_logs(rpc, aggregator, ANSWER_UPDATED) - before)
            await rpc.call("evm_increaseTime", [600])
            await _mine(rpc)
        for _ in range(3):
            await _tick(keeper, rpc)
            await _mine(rpc)
        counts.append(await _count_logs(rpc, aggregator, ANSWER_UPDATED) - before)
        assert counts == [0, 1, 2]
        await store.close()
        ledger.close()


_KILLED_KEEPER = """
import asyncio, json, sys, time
from anvil.world import World
from chain.rpc import connect, eth_get_block
from execution.ledger import Ledger
from keepers.scheduler import Tick
from keepers.store import SqliteKeeperStore
from tests.test_keepers import START, _oracle, _sender

async def main():
    world = World.from_json(json.loads(open(sys.argv[1]).read()))
    async with connect(world.rpc["http"]) as rpc:
        ledger = Ledger.open(sys.argv[2])
        store = SqliteKeeperStore.open(sys.argv[3])
        keeper = _oracle(rpc, world, _sender(rpc, world, "oracle_updater", ledger), store, "bot",
                         lambda block: START * 95 // 100)
        await keeper.recover()
        head = await eth_get_block(rpc, "latest")
        print("SENT", await keeper.run(Tick(head, time.time())), flush=True)
        await asyncio.sleep(3600)

asyncio.run(main())
"""


async def test_a_keeper_killed_after_sending_is_restarted_without_a_duplicate(
    devnet_factory, tmp_path
):
    world = devnet_factory(block_time=None).world
    aggregator = world.feeds["WETH"]["aggregator"]  # emits the answers, not the proxy
    world_file = tmp_path / "world.json"
    world_file.write_text(json.dumps(world.to_json()))
    ledger_path, store_path = tmp_path / "l.db", tmp_path / "k.db"
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _KILLED_KEEPER,
        str(world_file),
        str(ledger_path),
        str(store_path),
        stdout=asyncio.subprocess.PIPE,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'tests'}"},
    )
    try:
        line = (await asyncio.wait_for(child.stdout.readline(), 30)).decode()
        assert line.startswith("SENT deviation transmit to " + world.feeds["WETH"]["aggregator"]), (
            line
        )
        child.send_signal(signal.SIGKILL)  # before any block is mined
        assert await asyncio.wait_for(child.wait(), 10) == -signal.SIGKILL
    finally:
        if child.returncode is None:
            child.kill()
            await child.wait()
    async with connect(world.rpc["http"]) as rpc:
        pool = await rpc.call("txpool_content")
        assert len(pool["pending"]) == 1
        before = await _count_logs(rpc, aggregator, ANSWER_UPDATED)
        ledger = Ledger.open(ledger_path)
        store = SqliteKeeperStore.open(store_path)
        sender = _sender(rpc, world, "oracle_updater", ledger)
        keeper = _oracle(rpc, world, sender, store, "bot", lambda block: START * 95 // 100)
        recovery = await keeper.recover()
        assert len(recovery.adopted) == 1 and recovery.dropped == () and recovery.gaps_filled == ()
        assert await _tick(keeper, rpc) is None  # the round is taken: nothing new is sent
        assert len((await rpc.call("txpool_content"))["pending"]) == 1
        for _ in range(3):
            await _mine(rpc)
            await _tick(keeper, rpc)
        assert await _count_logs(rpc, aggregator, ANSWER_UPDATED) == before + 1
        assert sender.tracked == () and ledger.pending_public_txs() == []
        await store.close()
        ledger.close()


# ---------------------------------------------------------------- liquidation keeper


async def _drop_eth(rpc, world: World, state: ChainState, percent: int) -> None:
    """An oracle transmits ETH -percent%; the block is applied to the state."""
    updater = LocalSigner(world.roles["oracle_updater"].private_key)
    nonce = int(await rpc.call("eth_getTransactionCount", [updater.address, "latest"]), 16)
    aggregator, data = await next_transmit(rpc, world, "WETH", START * (100 - percent) // 100)
    signed = updater.sign_eip1559(
        chain_id=world.chain_id,
        nonce=nonce,
        to=aggregator,
        data=data,
        value=0,
        gas=200_000,
        max_fee_per_gas=10 * GWEI,
        max_priority_fee_per_gas=GWEI,
    )
    await rpc.call("eth_sendRawTransaction", [signed.raw_hex])
    await _mine(rpc, state)


async def test_public_liquidation_lands_once_and_earns_the_predicted_profit(
    devnet_factory, tmp_path
):
    world = devnet_factory(block_time=None).world
    usdc, weth = world.tokens["USDC"]["address"], world.tokens["WETH"]["address"]
    borrower = world.aave["borrowers"][0]["address"]
    async with connect(world.rpc["http"]) as rpc:
        state = await _state(rpc, world)
        await _drop_eth(rpc, world, state, 4)  # breaks the HF 1.035 borrower only
        inventory = await _balance(rpc, usdc, world.executor)
        (expected,) = find_liquidations(state, weth=weth)
        assert expected.user == borrower
        simulator = AnvilForkSimulator(world.rpc["http"])
        await simulator.start()
        ledger = Ledger.open(tmp_path / "l.db")
        store = SqliteKeeperStore.open(tmp_path / "k.db")
        keeper = LiquidationKeeper(
            "liquidation",
            state=state,
            rpc=rpc,
            simulator=simulator,
            store=store,
            owner="a",
            executor=world.executor,
            executor_owner=world.roles["executor"].address,
            weth=weth,
            mode="public",
            sender=_sender(rpc, world, "executor", ledger),
            reconcile_every=1,
        )
        try:
            await keeper.sender.recover()
            first = await _tick(keeper, rpc)
            assert first is not None and f"liquidation of {borrower} sent" in first
            assert keeper.stats.mismatches == 0 and keeper.chain_health[borrower] < WAD
            assert await _tick(keeper, rpc) is None  # in flight: not again
            for _ in range(3):
                await _mine(rpc, state)
                assert await _tick(keeper, rpc) is None
        finally:
            await simulator.close()
        assert await _count_logs(rpc, world.aave["pool"], LIQUIDATION_CALL) == 1
        gained = await _balance(rpc, usdc, world.executor) - inventory
        assert gained == expected.profit > 0
        position = state.positions[borrower]
        assert health_factor(position, state.reserves, state.prices, state.timestamp) >= WAD
        assert keeper.stats.mismatches == 0 and keeper.stats.sent == 1
        await store.close()
        ledger.close()


async def test_bundle_liquidation_hands_over_one_candidate_that_earns_its_profit(
    devnet_factory, tmp_path
):
    world = devnet_factory(block_time=None).world
    usdc, weth = world.tokens["USDC"]["address"], world.tokens["WETH"]["address"]
    submitted: list[Candidate] = []

    async def submit(candidate: Candidate) -> None:
        submitted.append(candidate)

    async with connect(world.rpc["http"]) as rpc:
        state = await _state(rpc, world)
        await _drop_eth(rpc, world, state, 4)
        inventory = await _balance(rpc, usdc, world.executor)
        simulator = AnvilForkSimulator(world.rpc["http"])
        await simulator.start()
        store = SqliteKeeperStore.open(tmp_path / "k.db")
        keeper = LiquidationKeeper(
            "liquidation",
            state=state,
            rpc=rpc,
            simulator=simulator,
            store=store,
            owner="a",
            executor=world.executor,
            executor_owner=world.roles["executor"].address,
            weth=weth,
            submit=submit,
        )
        try:
            await _tick(keeper, rpc)
            await _tick(keeper, rpc)  # the same block again: the key is taken
            (candidate,) = submitted
            assert (
                candidate.backrun == ()
                and candidate.action.user == world.aave["borrowers"][0]["address"]
            )
            owner = LocalSigner(world.roles["executor"].private_key)
            nonce = int(await rpc.call("eth_getTransactionCount", [owner.address, "latest"]), 16)
            signed = owner.sign_eip1559(
                chain_id=world.chain_id,
                nonce=nonce,
                to=world.executor,
                data=candidate.action.calldata(0, 0),
                value=0,
                gas=1_000_000,
                max_fee_per_gas=10 * GWEI,
                max_priority_fee_per_gas=GWEI,
            )
            await rpc.call("eth_sendRawTransaction", [signed.raw_hex])
            for _ in range(2):
                await _mine(rpc, state)
                await _tick(keeper, rpc)
        finally:
            await simulator.close()
        assert len(submitted) == 1
        assert await _count_logs(rpc, world.aave["pool"], LIQUIDATION_CALL) == 1
        gained = await _balance(rpc, usdc, world.executor) - inventory
        assert gained == candidate.expected_profit > 0
        await store.close()


async def test_two_instances_sharing_one_store_update_once_and_liquidate_once(
    devnet_factory, tmp_path
):
    world = devnet_factory(block_time=None).world
    weth = world.tokens["WETH"]["address"]
    aggregator = world.feeds["WETH"]["aggregator"]  # emits the answers, not the proxy
    async with connect(world.rpc["http"]) as rpc:
        head = await eth_get_block(rpc, "latest")
        moved_at = head.number + 1
        before = await _count_logs(rpc, aggregator, ANSWER_UPDATED)
        simulator = AnvilForkSimulator(world.rpc["http"])
        await simulator.start()
        instances = []
        for owner in ("a", "b"):
            state = await _state(rpc, world)
            ledger = Ledger.open(tmp_path / "ledger.db")
            store = SqliteKeeperStore.open(tmp_path / "keepers.db")
            scheduler = Scheduler(store, owner)
            scheduler.add(
                _oracle(
                    rpc,
                    world,
                    _sender(rpc, world, "oracle_updater", ledger),
                    store,
                    owner,
                    lambda block: START if block < moved_at else START * 96 // 100,
                )
            )
            liquidation = LiquidationKeeper(
                "liquidation",
                state=state,
                rpc=rpc,
                simulator=simulator,
                store=store,
                owner=owner,
                executor=world.executor,
                executor_owner=world.roles["executor"].address,
                weth=weth,
                mode="public",
                sender=_sender(rpc, world, "executor", ledger),
            )
            await liquidation.sender.recover()
            scheduler.add(liquidation)
            instances.append((scheduler, state, ledger, store))
        try:
            for _ in range(5):
                head = await eth_get_block(rpc, "latest")
                await asyncio.gather(*(s.on_block(head) for s, *_ in instances))
                await rpc.call("evm_mine")
                head = await eth_get_block(rpc, "latest")
                raw = await rpc.call(
                    "eth_getLogs",
                    [{"blockHash": head.hash, "topics": [["0x" + t.hex() for t in STATE_TOPICS]]}],
                )
                for _, state, *_ in instances:
                    state.apply_block(
                        head.number, head.hash, [Log.from_rpc(r) for r in raw], head.timestamp
                    )
        finally:
            await simulator.close()
        assert await _count_logs(rpc, aggregator, ANSWER_UPDATED) == before + 1
        assert await _count_logs(rpc, world.aave["pool"], LIQUIDATION_CALL) == 1
        rows = {(s.owner, row.job): row for s, *_ in instances for row in s.status()}
        assert rows[("a", "oracle")].last_action.startswith("deviation transmit")
        assert rows[("a", "liquidation")].last_action.startswith("liquidation of")
        assert rows[("b", "oracle")].state == rows[("b", "liquidation")].state == "standby"
        assert rows[("b", "oracle")].last_action is None
        for _, _, ledger, store in instances:
            await store.close()
            ledger.close()
