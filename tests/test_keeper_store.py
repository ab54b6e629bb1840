"""The embedded keeper store: leases expire and belong to their owner; a claim wins once,
across processes sharing the SQLite file."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

from keepers.store import SqliteKeeperStore


class FakeClock:
    """A settable wall clock, so that lease expiry is exact."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


async def test_a_lease_is_held_until_it_expires_and_only_its_owner_renews_or_releases(tmp_path):
    clock = FakeClock()
    store = SqliteKeeperStore.open(tmp_path / "k.db", clock=clock)
    other = SqliteKeeperStore.open(tmp_path / "k.db", clock=clock)
    try:
        first = await store.acquire_lease("job", "a", 10.0)
        assert first is not None and first.expires_at == 1_010.0
        assert await other.acquire_lease("job", "b", 10.0) is None
        assert not await other.release_lease("job", "b")
        clock.now += 5
        renewed = await store.acquire_lease("job", "a", 10.0)
        assert renewed is not None and renewed.expires_at == 1_015.0
        clock.now += 9.9
        assert await other.acquire_lease("job", "b", 10.0) is None
        clock.now += 0.2  # past 1015: expired
        assert (await other.lease("job")) is None
        taken = await other.acquire_lease("job", "b", 10.0)
        assert taken is not None and taken.owner == "b"
        assert not await store.release_lease("job", "a")
        assert (await store.lease("job")).owner == "b"
        assert await other.release_lease("job", "b")
        assert await store.lease("job") is None
    finally:
        await store.close()
        await other.close()


async def test_a_claim_wins_once_and_only_its_owner_gives_it_back(tmp_path):
    clock = FakeClock()
    store = SqliteKeeperStore.open(tmp_path / "k.db", clock=clock)
    try:
        assert await store.claim("oracle:0xfeed:7", "a")
        assert not await store.claim("oracle:0xfeed:7", "a")
        assert not await store.claim("oracle:0xfeed:7", "b")
        assert not await store.release_claim("oracle:0xfeed:7", "b")
        assert await store.claim_owner("oracle:0xfeed:7") == "a"
        assert await store.release_claim("oracle:0xfeed:7", "a")
        assert await store.claim("oracle:0xfeed:7", "b")
        assert await store.claim("short", "a", ttl_s=5.0)
        clock.now += 5.0
        assert await store.claim_owner("short") is None
        assert await store.claim("short", "b")
    finally:
        await store.close()


_CLAIMER = """
import asyncio, sys
from keepers.store import SqliteKeeperStore
async def main():
    store = SqliteKeeperStore.open(sys.argv[1])
    won = [k for k in range(200) if await store.claim(f"key:{k}", sys.argv[2])]
    await store.close()
    print(",".join(map(str, won)))
asyncio.run(main())
"""


def test_claims_are_won_once_across_two_processes(tmp_path: Path):
    path = str(tmp_path / "k.db")
    asyncio.run(SqliteKeeperStore.open(path).close())  # the schema exists before both start
    children = [
        subprocess.Popen(
            [sys.executable, "-c", _CLAIMER, path, owner],
            stdout=subprocess.PIPE,
            text=True,
            cwd=Path(__file__).resolve().parents[1],
        )
        for owner in ("p1", "p2")
    ]
    won = []
    for child in children:
        out, _ = child.communicate(timeout=30)
        assert child.returncode == 0
        won.append({int(k) for k in out.strip().split(",") if k})
    assert won[0].isdisjoint(won[1])
    assert won[0] | won[1] == set(range(200))
