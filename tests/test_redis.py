"""The Redis backend against a real redis-server: keeper leases and claims (the same behaviour as
the SQLite store), nonce reservations across processes, the shared ledger view, and the event bus
(a group of workers sharing 10,000 events, a SIGKILLed worker, a restarted Redis, a bounded
stream); and two keeper instances on the devnet that act once."""

from __future__ import annotations

import asyncio
import inspect
import itertools
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_account.typed_transactions import TypedTransaction
from redis_fixture import RedisServer, redis_server  # noqa: F401 (a fixture)

from chain.node import ANVIL_DEV_KEYS
from chain.rpc import connect, eth_get_block
from chain.topics import ANSWER_UPDATED
from chain.types import BlockHeader, PendingTx
from execution.ledger import Ledger
from execution.nonces import InMemoryNonceStore, NonceManager, NonceState, Reservation
from execution.sender import FeePolicy, TxSender
from execution.signer import LocalSigner
from keepers.oracle import OracleFeed, OracleKeeper, SeriesPrice
from keepers.scheduler import Scheduler
from keepers.store import SqliteKeeperStore
from mevbot.redis_bus import RedisBus
from mevbot.redis_store import (
    RedisKeeperStore,
    RedisNonceStore,
    SharedLedger,
    connect_redis,
    read_shared_ledger,
)
from watcher.events import NewHead
from watcher.journal import decode_line, encode_event

ROOT = Path(__file__).resolve().parents[1]
GROUP = "workers"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def pending_tx(i: int) -> PendingTx:
    return PendingTx(
        hash=f"0x{i:064x}",
        sender="0x" + "aa" * 20,
        to="0x" + "bb" * 20,
        value=i,
        input=bytes.fromhex("7ff36ab5") + i.to_bytes(32, "big"),
        nonce=i,
        gas=200_000,
        chain_id=1,
        max_fee_per_gas=30 * 10**9,
        max_priority_fee_per_gas=10**9,
        received_at=time.monotonic_ns(),
        source="ws-full",
    )


def new_head(number: int) -> NewHead:
    received_at = time.monotonic_ns()
    header = BlockHeader(
        number=number,
        hash=f"0x{number:064x}",
        parent_hash=f"0x{number - 1:064x}",
        timestamp=1_700_000_000 + 12 * number,
        base_fee=7 * 10**9,
        gas_limit=30_000_000,
        gas_used=12_000_000,
        miner="0x" + "cc" * 20,
        received_at=received_at,
    )
    return NewHead(header, (), received_at, "ws-heads")


async def wait_until(condition: Callable[[], Any], timeout_s: float, what: str) -> None:
    """Poll ``condition`` (plain or async) until it holds."""
    deadline = time.monotonic() + timeout_s
    while not await _holds(condition):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def _holds(condition: Callable[[], Any]) -> bool:
    result = condition()
    return bool(await result if inspect.isawaitable(result) else result)


async def stop(*tasks: asyncio.Task[Any]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def run_children(script: str, *argument_lists: list[str]) -> list[str]:
    """Run ``script`` once per argument list, all at once; their stdouts."""
    children = [
        subprocess.Popen(
            [sys.executable, "-c", script, *arguments], stdout=subprocess.PIPE, text=True, cwd=ROOT
        )
        for arguments in argument_lists
    ]
    outputs = []
    for child in children:
        out, _ = child.communicate(timeout=30)
        assert child.returncode == 0
        outputs.append(out)
    return outputs


@pytest.fixture
async def client(redis_server: RedisServer) -> AsyncIterator[Any]:  # noqa: F811
    redis = connect_redis(redis_server.url)
    yield redis
    await redis.aclose()


# ---------------------------------------------------------------- keeper store, both backends


@pytest.fixture(params=["sqlite", "redis"])
async def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Callable]:
    """Open keeper stores of one backend that share their data (one file, one Redis)."""
    opened: list[Any] = []

    def make(clock: Callable[[], float] | None = None) -> Any:
        if request.param == "sqlite":
            store = SqliteKeeperStore.open(tmp_path / "k.db", **({"clock": clock} if clock else {}))
        else:
            url = request.getfixturevalue("redis_server").url
            store = RedisKeeperStore.connect(url, clock=clock)
        opened.append(store)
        return store

    make.backend = request.param  # type: ignore[attr-defined]
    make.target = (  # type: ignore[attr-defined]
        str(tmp_path / "k.db")
        if request.param == "sqlite"
        else request.getfixturevalue("redis_server").url
    )
    yield make
    for store in opened:
        await store.close()


async def test_a_lease_is_held_until_it_expires_and_only_its_owner_renews_or_releases(open_store):
    clock = FakeClock()
    store, other = open_store(clock), open_store(clock)
    first = await store.acquire_lease("job", "a", 10.0)
    assert first is not None and first.expires_at == 1_010.0
    assert await other.acquire_lease("job", "b", 10.0) is None
    assert not await other.release_lease("job", "b")
    clock.now += 5
    renewed = await store.acquire_lease("job", "a", 10.0)
    assert renewed is not None and renewed.expires_at == 1_015.0
    clock.now += 9.9
    assert await other.acquire_lease("job", "b", 10.0) is None
    assert (await other.lease("job")).owner == "a"
    clock.now += 0.2  # past 1015: expired
    assert (await other.lease("job")) is None
    taken = await other.acquire_lease("job", "b", 10.0)
    assert taken is not None and taken.owner == "b"
    assert not await store.release_lease("job", "a")
    assert (await store.lease("job")).owner == "b"
    assert await other.release_lease("job", "b")
    assert await store.lease("job") is None


async def test_a_claim_wins_once_and_only_its_owner_gives_it_back(open_store):
    clock = FakeClock()
    store, other = open_store(clock), open_store(clock)
    assert await store.claim("oracle:0xfeed:7", "a")
    assert not await store.claim("oracle:0xfeed:7", "a")
    assert not await other.claim("oracle:0xfeed:7", "b")
    assert not await other.release_claim("oracle:0xfeed:7", "b")
    assert await other.claim_owner("oracle:0xfeed:7") == "a"
    assert await store.release_claim("oracle:0xfeed:7", "a")
    assert await other.claim_owner("oracle:0xfeed:7") is None
    assert await other.claim("oracle:0xfeed:7", "b")
    assert await store.claim("short", "a", ttl_s=5.0)
    clock.now += 4.9
    assert not await other.claim("short", "b")
    clock.now += 0.1
    assert await store.claim_owner("short") is None
    assert await other.claim("short", "b")


_CLAIMER = """
import asyncio, sys
from keepers.store import SqliteKeeperStore
from mevbot.redis_store import RedisKeeperStore
async def main():
    backend, target, owner = sys.argv[1:]
    store = (SqliteKeeperStore.open(target) if backend == "sqlite"
             else RedisKeeperStore.connect(target))
    won = [k for k in range(300) if await store.claim(f"key:{k}", owner)]
    await store.close()
    print(",".join(map(str, won)))
asyncio.run(main())
"""


async def test_claims_are_won_once_across_two_processes(open_store):
    await open_store().close()  # the schema exists before both start
    outputs = run_children(
        _CLAIMER,
        *([open_store.backend, open_store.target, owner] for owner in ("p1", "p2")),
    )
    won = [{int(k) for k in out.strip().split(",") if k} for out in outputs]
    assert won[0].isdisjoint(won[1])
    assert won[0] | won[1] == set(range(300))


async def test_by_default_redis_time_ends_a_lease_and_redis_drops_the_key(client):
    store = RedisKeeperStore(client)
    lease = await store.acquire_lease("job", "a", 0.3)
    assert lease is not None and abs(lease.expires_at - (time.time() + 0.3)) < 1.0
    assert await store.acquire_lease("job", "b", 0.3) is None
    assert 0 < await client.pttl("mevbot:lease:job") <= 300
    await asyncio.sleep(0.35)
    assert await client.exists("mevbot:lease:job") == 0
    assert (await store.acquire_lease("job", "b", 0.3)).owner == "b"
    assert await store.claim("forever", "a")
    assert await client.pttl("mevbot:claim:forever") == -1  # no ttl: remembered for good


# ---------------------------------------------------------------- nonces


@pytest.fixture(params=["memory", "redis"])
def nonce_store(request: pytest.FixtureRequest) -> Any:
    if request.param == "memory":
        return InMemoryNonceStore()
    return RedisNonceStore(connect_redis(request.getfixturevalue("redis_server").url), "0xAB")


async def test_nonce_state_is_a_versioned_compare_and_set_cell(nonce_store):
    assert await nonce_store.load() == NonceState()
    state = NonceState(
        version=1,
        chain_nonce=7,
        synced_block=100,
        reserved=(Reservation(7, "arb-1", 101, 103), Reservation(8, "pub", 101, None)),
        confirmed=(Reservation(6, "arb-0", 99, 100, confirmed_at=100),),
    )
    assert await nonce_store.compare_and_set(0, state)
    assert await nonce_store.load() == state
    assert not await nonce_store.compare_and_set(0, NonceState(version=1, chain_nonce=9))
    assert await nonce_store.load() == state
    later = NonceState(version=2, chain_nonce=9, synced_block=101)
    assert await nonce_store.compare_and_set(1, later)
    assert await nonce_store.load() == later


async def test_two_managers_on_one_redis_cell_see_each_others_reservations(client):
    first = NonceManager("0xab", RedisNonceStore(client, "0xab"))
    second = NonceManager("0xab", RedisNonceStore(client, "0xab"))
    await first.on_block(100, 7)
    assert await first.reserve(101, 101, "a") == 7
    assert await second.reserve(101, 103, "b") == 8
    sync = await second.on_block(101, 7)  # "a" missed its only block: "b" moves down to 7
    assert [r.key for r in sync.released] == ["a"]
    assert [(r.key, r.nonce) for r in (await first.state()).reserved] == [("b", 7)]


_RESERVER = """
import asyncio, sys
from execution.nonces import NonceManager
from mevbot.redis_store import RedisNonceStore, connect_redis
async def main():
    client = connect_redis(sys.argv[1])
    await client.incr("ready")
    while int(await client.get("ready")) < 2:  # both start reserving at the same moment
        await asyncio.sleep(0.001)
    store = RedisNonceStore(client, "0xab")
    manager = NonceManager("0xab", store)
    got = [await manager.reserve(101, None, f"{sys.argv[2]}-{k}") for k in range(150)]
    await client.aclose()
    print(",".join(map(str, got)), store.conflicts)
asyncio.run(main())
"""


async def test_two_processes_reserving_at_once_never_get_the_same_nonce(redis_server, client):  # noqa: F811
    await NonceManager("0xab", RedisNonceStore(client, "0xab")).on_block(100, 40)
    outputs = run_children(_RESERVER, [redis_server.url, "p1"], [redis_server.url, "p2"])
    got = [[int(n) for n in out.split()[0].split(",")] for out in outputs]
    conflicts = sum(int(out.split()[1]) for out in outputs)
    print(f"\n300 nonces reserved by 2 processes at once: {conflicts} lost compare-and-sets")
    assert conflicts > 0  # they did contend
    assert sorted(got[0] + got[1]) == list(range(40, 340))
    assert all(a < b for nonces in got for a, b in itertools.pairwise(nonces))
    state = await RedisNonceStore(client, "0xab").load()
    assert len(state.reserved) == 300 and state.version == 301


# ---------------------------------------------------------------- shared ledger view


async def test_the_shared_ledger_sums_every_instance_exactly(client):
    east, west = SharedLedger(client, "east"), SharedLedger(client, "west")
    await east.record_sent(3)
    await east.record_outcome("landed", 12_345_678_901_234_567_891)  # ~12.3 ETH: past 2**63 wei
    await east.record_outcome("missed")
    await west.record_sent()
    await west.record_outcome("landed", 10**19 + 7)
    await west.record_outcome("failed", -2_100_000_000_000_001)  # gas burnt
    summary = await read_shared_ledger(client)
    by_name = {i.instance: i for i in summary.instances}
    assert by_name["east"].counts == {"sent": 3, "landed": 1, "missed": 1}
    assert by_name["east"].realized_profit_wei == 12_345_678_901_234_567_891
    assert by_name["west"].realized_profit_wei == 10**19 + 7 - 2_100_000_000_000_001
    assert summary.counts == {"sent": 4, "landed": 2, "missed": 1, "failed": 1}
    assert summary.realized_profit_wei == (
        12_345_678_901_234_567_891 + 10**19 + 7 - 2_100_000_000_000_001
    )
    assert time.time() - by_name["west"].updated_at < 5


# ---------------------------------------------------------------- the bus


def claiming_worker(client: Any, name: str, handled: list[str]) -> Callable:
    """A handler whose effect (a "bundle", counted in Redis) is claimed first, as the engine's."""
    store = RedisKeeperStore(client)

    async def handle(event: Any) -> None:
        handled.append(event.hash)
        if await store.claim(f"bundle:{event.hash}", name):
            await client.hincrby("effects", event.hash, 1)

    return handle


async def collect(reader: AsyncIterator[Any], into: list[Any]) -> None:
    async for event in reader:
        into.append(event)


async def test_one_publisher_and_two_workers_handle_10000_events_once(redis_server):  # noqa: F811
    clients = [connect_redis(redis_server.url) for _ in range(3)]
    publisher = RedisBus(clients[0])
    handled: dict[str, list[str]] = {"w1": [], "w2": []}
    heads_seen: dict[str, list[NewHead]] = {"w1": [], "w2": []}
    tasks = []
    for name, redis in zip(handled, clients[1:], strict=True):
        bus = RedisBus(redis)
        worker = bus.worker(GROUP, name, claiming_worker(redis, name, handled[name]))
        tasks.append(asyncio.create_task(worker.run()))

        tasks.append(asyncio.create_task(collect(bus.heads(start_id="0"), heads_seen[name])))
    txs = [pending_tx(i) for i in range(10_000)]
    heads = [new_head(n) for n in range(1, 51)]
    started = time.monotonic()
    for i, tx in enumerate(txs):
        await publisher.publish(tx)
        if i % 200 == 0:
            await publisher.publish(heads[i // 200])

    async def all_effects() -> bool:
        return await clients[0].hlen("effects") == len(txs)

    await wait_until(all_effects, 40, "10,000 effects")
    elapsed = time.monotonic() - started
    await wait_until(lambda: all(len(s) == 50 for s in heads_seen.values()), 5, "heads")
    backlog = await publisher.backlog(GROUP)
    await stop(*tasks)
    try:
        both = handled["w1"] + handled["w2"]
        assert len(both) == len(set(both)) == 10_000  # every event, once, by the group
        assert min(len(h) for h in handled.values()) > 1_000  # both really worked
        effects = await clients[0].hgetall("effects")
        assert set(effects.values()) == {b"1"}
        assert (backlog.lag, backlog.pending) == (0, 0)
        # Every worker got every head, in order, equal to what was published.
        assert heads_seen["w1"] == heads_seen["w2"] == heads
        assert publisher.published == {"mevbot:bus:pending": 10_000, "mevbot:bus:heads": 50}
        print(f"\n10,000 events through 2 workers in {elapsed:.2f} s")
    finally:
        for redis in clients:
            await redis.aclose()


async def test_the_bus_carries_journal_lines(client):
    bus = RedisBus(client)
    tx = pending_tx(5)
    await bus.publish(tx)
    head = new_head(9)
    await bus.publish(head)
    ((_, fields),) = await client.xrange("mevbot:bus:pending")
    assert fields == {b"e": encode_event(tx)} and decode_line(fields[b"e"]) == tx
    ((_, head_fields),) = await client.xrange("mevbot:bus:heads")
    assert decode_line(head_fields[b"e"]) == head


async def test_a_worker_gets_the_signed_bytes_of_a_tx_the_node_sent_without_them(client):
    account = Account.from_key(ANVIL_DEV_KEYS[1])
    fields = {
        "type": 2,
        "chainId": 31337,
        "nonce": 4,
        "to": Account.from_key(ANVIL_DEV_KEYS[2]).address,
        "value": 10**18,
        "gas": 21_000,
        "maxFeePerGas": 30 * 10**9,
        "maxPriorityFeePerGas": 10**9,
        "data": b"",
    }
    signed = account.sign_transaction(fields)
    decoded = TypedTransaction.from_bytes(signed.raw_transaction).as_dict()
    rpc_object = {  # what a node's eth_getTransactionByHash gives: signature, no raw bytes
        "hash": "0x" + signed.hash.hex().removeprefix("0x"),
        "from": account.address.lower(),
        "to": fields["to"].lower(),
        "value": hex(fields["value"]),
        "input": "0x",
        "nonce": hex(4),
        "gas": hex(21_000),
        "type": "0x2",
        "chainId": hex(31337),
        "maxFeePerGas": hex(fields["maxFeePerGas"]),
        "maxPriorityFeePerGas": hex(fields["maxPriorityFeePerGas"]),
        "accessList": [],
        "yParity": hex(decoded["v"]),
        "v": hex(decoded["v"]),
        "r": hex(decoded["r"]),
        "s": hex(decoded["s"]),
    }
    tx = PendingTx.from_rpc(rpc_object, source="ws-full", received_at=1)
    assert tx.raw is None
    bus = RedisBus(client)
    await bus.publish(tx)
    got: list[PendingTx] = []

    async def keep(event: Any) -> None:
        got.append(event)

    task = asyncio.create_task(bus.worker(GROUP, "w", keep, block_s=0.05).run())
    await wait_until(lambda: got, 5, "the tx")
    await stop(task)
    assert got[0].raw == bytes(signed.raw_transaction)
    assert got[0].hash == tx.hash and got[0].sender == tx.sender


_DOOMED_WORKER = """
import asyncio, sys
from mevbot.redis_bus import RedisBus
from mevbot.redis_store import RedisKeeperStore, connect_redis
async def main():
    client = connect_redis(sys.argv[1])
    store = RedisKeeperStore(client)
    async def handle(event):
        if await store.claim("bundle:" + event.hash, "doomed"):
            await client.hincrby("effects", event.hash, 1)
        await asyncio.sleep(0.002)
    await RedisBus(client).worker("workers", "doomed", handle, batch=50, claim_idle_s=60).run()
asyncio.run(main())
"""


async def test_a_killed_workers_entries_are_reclaimed_and_handled_by_the_other(
    redis_server,  # noqa: F811
    client,
):
    bus = RedisBus(client)
    await bus.ensure_group(GROUP)
    for start in range(0, 2_000, 250):
        await bus.publish_many(pending_tx(i) for i in range(start, start + 250))
    doomed = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _DOOMED_WORKER, redis_server.url, cwd=ROOT
    )
    survivor_handled: list[str] = []
    survivor = bus.worker(
        GROUP,
        "survivor",
        claiming_worker(connect_redis(redis_server.url), "survivor", survivor_handled),
        batch=50,
        claim_idle_s=0.5,
        block_s=0.2,
    )
    try:

        async def doomed_is_mid_batch() -> bool:
            holding = {
                c["name"]: c["pending"]
                for c in await client.xinfo_consumers(bus.streams.pending, GROUP)
            }
            return holding.get(b"doomed", 0) >= 10 and await client.hlen("effects") >= 100

        await wait_until(doomed_is_mid_batch, 20, "the doomed worker to be busy")
        doomed.send_signal(signal.SIGKILL)
        assert await asyncio.wait_for(doomed.wait(), 10) == -signal.SIGKILL
        left = next(
            c["pending"]
            for c in await client.xinfo_consumers(bus.streams.pending, GROUP)
            if c["name"] == b"doomed"
        )
        assert left > 0
        task = asyncio.create_task(survivor.run())

        async def drained() -> bool:
            backlog = await bus.backlog(GROUP)
            return backlog.lag == 0 and backlog.pending == 0

        await wait_until(drained, 20, "the group to drain")
        await stop(task)
    finally:
        if doomed.returncode is None:
            doomed.kill()
            await doomed.wait()
    assert survivor.counts["reclaimed"] >= left
    effects = {k.decode(): int(v) for k, v in (await client.hgetall("effects")).items()}
    assert set(effects.values()) == {1}  # never an effect twice
    store = RedisKeeperStore(client)
    without_effect = [pending_tx(i).hash for i in range(2_000) if pending_tx(i).hash not in effects]
    # At most the one event the doomed worker had claimed when it died has no effect: its claim
    # stands, so nobody else sends it (at-most-once effects).
    assert len(without_effect) <= 1
    for key in without_effect:
        assert await store.claim_owner(f"bundle:{key}") == "doomed"
    for i in range(2_000):
        assert await store.claim_owner(f"bundle:{pending_tx(i).hash}") in {"doomed", "survivor"}


async def test_redis_restarted_mid_run_the_bus_reconnects_and_goes_on(redis_server):  # noqa: F811
    publisher = RedisBus(connect_redis(redis_server.url))
    handled: set[str] = set()
    heads: list[int] = []
    consumers = []
    tasks = []
    for name in ("w1", "w2"):
        bus = RedisBus(connect_redis(redis_server.url))

        async def handle(event: Any) -> None:
            handled.add(event.hash)

        consumers.append(bus.worker(GROUP, name, handle, block_s=0.2, claim_idle_s=1.0))
        tasks.append(asyncio.create_task(consumers[-1].run()))
    reader = RedisBus(connect_redis(redis_server.url)).heads(start_id="0", block_s=0.2)

    async def follow() -> None:
        async for event in reader:
            heads.append(event.number)

    tasks.append(asyncio.create_task(follow()))
    returned_at: dict[str, float] = {}
    head_returned_at: dict[int, float] = {}

    async def publish() -> None:
        for i in range(1_500):
            tx = pending_tx(i)
            await publisher.publish(tx)
            returned_at[tx.hash] = time.monotonic()
            if i % 100 == 99:
                await publisher.publish(new_head(i // 100))
                head_returned_at[i // 100] = time.monotonic()
            await asyncio.sleep(0.001)

    publishing = asyncio.create_task(publish())
    await wait_until(lambda: len(returned_at) >= 400, 20, "400 published")
    restarted_at = time.monotonic()
    await asyncio.to_thread(redis_server.stop)
    await asyncio.sleep(1.0)  # down long enough that the client's quick retries give up
    await asyncio.to_thread(redis_server.start)
    await publishing
    after = {h for h, at in returned_at.items() if at > restarted_at}
    await wait_until(lambda: after <= handled, 20, "events after the restart")
    await wait_until(lambda: heads[-1:] == [14], 10, "the last head")
    await stop(*tasks)
    assert len(after) > 1_000
    assert publisher.publish_retries > 0
    assert all(c.counts["reconnects"] + c.counts["regroups"] > 0 for c in consumers)
    assert reader.counts["reconnects"] > 0
    # Heads published after the restart all arrive, in order (earlier ones may be lost with the
    # old server's memory).
    heads_after = sorted(n for n, at in head_returned_at.items() if at > restarted_at)
    assert [n for n in heads if n in heads_after] == heads_after
    assert heads == sorted(heads)
    for bus in (publisher, reader, *(c.bus for c in consumers)):
        await bus.redis.aclose()


async def test_maxlen_bounds_the_stream_under_a_burst_and_counts_what_it_trimmed(client):
    bus = RedisBus(client, max_pending=1_000)
    await bus.ensure_group(GROUP)
    failing_calls = 0

    async def refuse(event: Any) -> None:
        nonlocal failing_calls
        failing_calls += 1
        raise RuntimeError("relay down")

    # A worker takes 40 entries and fails them all: they stay pending...
    stuck = bus.worker(GROUP, "stuck", refuse, batch=40, block_s=0.05, claim_idle_s=60)
    task = asyncio.create_task(stuck.run())
    await bus.publish_many(pending_tx(i) for i in range(40))
    await wait_until(lambda: failing_calls == 40, 5, "40 failures")
    await stop(task)
    assert stuck.counts["failed"] == 40 and stuck.handler_errors.counts == {
        "RuntimeError: relay down": 40
    }
    # ...then a burst of 20,000 more, in batches and one by one.
    for start in range(40, 19_040, 500):
        await bus.publish_many(pending_tx(i) for i in range(start, start + 500))
    for i in range(19_040, 20_040):
        await bus.publish(pending_tx(i))
    length = await bus.length(bus.streams.pending)
    assert 1_000 <= length <= 1_100  # MAXLEN ~ trims whole nodes of 100 entries
    assert bus.trimmed[bus.streams.pending] == 20_040 - length
    # The 40 pending entries were trimmed away: whoever reclaims them counts them as lost.
    recovered: list[str] = []

    async def keep(event: Any) -> None:
        recovered.append(event.hash)

    rescuer = bus.worker(GROUP, "rescuer", keep, block_s=0.05, claim_idle_s=0.001)
    task = asyncio.create_task(rescuer.run())
    await wait_until(lambda: rescuer.counts["lost"] == 40, 5, "40 lost")
    await stop(task)
    assert (await bus.backlog(GROUP)).pending <= rescuer.batch


async def test_garbage_is_skipped_and_a_poison_entry_is_given_up_after_max_deliveries(client):
    bus = RedisBus(client)
    await bus.ensure_group(GROUP)
    await client.xadd(bus.streams.pending, {b"e": b'{"t": 1, "src": "x", "kind": "tx"}'})
    await client.xadd(bus.streams.pending, {b"e": b"\xff not json"})
    await client.xadd(bus.streams.pending, {b"other": b"field"})
    poison, fine = pending_tx(1), pending_tx(2)
    await bus.publish_many([poison, fine])
    calls: dict[str, int] = {poison.hash: 0, fine.hash: 0}

    async def handle(event: Any) -> None:
        calls[event.hash] += 1
        if event.hash == poison.hash:
            raise ValueError("cannot simulate")

    worker = bus.worker(GROUP, "w", handle, block_s=0.05, claim_idle_s=0.1, max_deliveries=3)
    task = asyncio.create_task(worker.run())
    await wait_until(lambda: worker.counts["dead"] == 1, 10, "the poison entry to be dropped")
    await stop(task)
    assert calls == {poison.hash: 3, fine.hash: 1}
    assert worker.counts["handled"] == 1 and worker.counts["failed"] == 3
    assert worker.malformed.total == 3 and "no event field" in worker.malformed.counts
    backlog = await bus.backlog(GROUP)
    assert (backlog.lag, backlog.pending) == (0, 0)


# ---------------------------------------------------------------- keepers on the devnet

START_PRICE = 3_000 * 10**8
GWEI = 10**9


async def test_two_keeper_instances_on_one_redis_act_once(devnet_factory, redis_server):  # noqa: F811
    world = devnet_factory(block_time=None).world
    feed = world.feeds["WETH"]["address"]
    updater = LocalSigner(world.roles["oracle_updater"].private_key)
    async with connect(world.rpc["http"]) as rpc:
        head = await eth_get_block(rpc, "latest")
        moved_at = head.number + 1

        async def updates() -> int:
            query = {
                "address": world.feeds["WETH"]["aggregator"],  # the aggregator emits the answers
                "fromBlock": "0x0",
                "toBlock": "latest",
                "topics": ["0x" + ANSWER_UPDATED.hex()],
            }
            return len(await rpc.call("eth_getLogs", [query]))

        before = await updates()
        instances = []
        for owner in ("a", "b"):
            redis = connect_redis(redis_server.url)
            store = RedisKeeperStore(redis)
            sender = TxSender(
                rpc,
                updater,
                NonceManager(updater.address, RedisNonceStore(redis, updater.address)),
                Ledger.open(":memory:"),
                chain_id=world.chain_id,
                policy=FeePolicy(priority_fee_wei=GWEI, max_fee_cap_wei=200 * GWEI),
            )
            price = SeriesPrice(
                "devnet-eth", lambda b: START_PRICE if b < moved_at else START_PRICE * 96 // 100
            )
            keeper = OracleKeeper(
                "oracle",
                rpc=rpc,
                sender=sender,
                store=store,
                owner=owner,
                feeds=[OracleFeed(feed, price, deviation_bps=100, heartbeat_s=3600)],
            )
            await keeper.recover()
            scheduler = Scheduler(store, owner)
            scheduler.add(keeper)
            instances.append((scheduler, redis))
        for _ in range(4):
            head = await eth_get_block(rpc, "latest")
            await asyncio.gather(*(s.on_block(head) for s, _ in instances))
            await rpc.call("evm_mine")
        assert await updates() == before + 1
        # Whichever took the lease first acted; the other stood by.
        rows = sorted(((s.status()[0], s) for s, _ in instances), key=lambda r: r[0].state)
        (acted, holder), (stood_by, standby) = rows
        assert acted.state == "idle" and acted.last_action.startswith("deviation transmit")
        assert stood_by.state == "standby" and stood_by.last_action is None
        # The holder shuts down cleanly: the other takes the lease at once, and finds nothing
        # left to do.
        await holder.release()
        await standby.on_block(await eth_get_block(rpc, "latest"))
        assert standby.status()[0].state == "idle"
        assert await updates() == before + 1
        for _, redis in instances:
            await redis.aclose()


def test_the_fixture_fails_rather_than_skips_without_redis_server(monkeypatch):
    monkeypatch.setenv("PATH", str(ROOT / "no-such-dir"))
    with pytest.raises(pytest.fail.Exception, match="make setup"):
        RedisServer()
