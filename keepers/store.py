"""What keepers share between bot instances: leases (who runs a job) and idempotency claims.

A *lease* names one holder of a job for ``ttl_s`` seconds: the holder renews it on every run,
nobody else may take it until it expires, and only the holder may release it. A *claim* marks an
effect (a keeper transaction for one round, a liquidation of one position state) as taken: the
first claimer wins and every later claim of the same key fails, in any process. A claim is given
back only by its claimer, and only when the effect provably never happened (the transaction never
reached a node), so the action can be taken again.

:class:`KeeperStore` is the interface; :class:`SqliteKeeperStore` is the embedded default: one
SQLite file in WAL mode shared by the processes of one machine, where each operation is one
``BEGIN IMMEDIATE`` transaction (SQLite's write lock makes check-and-set atomic across processes).
The Redis store of the scale-out issue implements the same Protocol (``SET NX PX`` and a Lua
compare-and-delete). Times are wall-clock seconds (``time.time``): leases must mean the same
instant in every process.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

Clock = Callable[[], float]

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS leases (
        name TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        expires_at REAL NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS claims (
        key TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        claimed_at REAL NOT NULL,
        expires_at REAL
    )""",
)


@dataclass(frozen=True, slots=True)
class Lease:
    name: str
    owner: str
    expires_at: float


class KeeperStore(Protocol):
    """Leases and idempotency claims shared by every instance of the bot."""

    async def acquire_lease(self, name: str, owner: str, ttl_s: float) -> Lease | None:
        """Take the lease if it is free or expired, or renew it if ``owner`` holds it; None when
        another owner holds it."""
        ...

    async def release_lease(self, name: str, owner: str) -> bool:
        """Give the lease up; False unless ``owner`` holds it."""
        ...

    async def lease(self, name: str) -> Lease | None:
        """The unexpired holder of ``name``, if any."""
        ...

    async def claim(self, key: str, owner: str, ttl_s: float | None = None) -> bool:
        """True for the first claim of ``key``; False forever after (or until ``ttl_s``, which
        only bounds how long the key is remembered)."""
        ...

    async def release_claim(self, key: str, owner: str) -> bool:
        """Forget a claim whose effect never happened; False unless ``owner`` made it."""
        ...

    async def claim_owner(self, key: str) -> str | None: ...

    async def close(self) -> None: ...


class SqliteKeeperStore:
    """The embedded store: one SQLite file, safe for several processes on one machine.

    Each call is one short write transaction (tens of microseconds), run inline on the event
    loop as the ledger does; ``busy_timeout_s`` bounds the wait for another process's lock.
    """

    def __init__(self, connection: sqlite3.Connection, clock: Clock = time.time) -> None:
        self._db = connection
        self._lock = threading.Lock()
        self._clock = clock

    @classmethod
    def open(
        cls, path: str | Path, *, clock: Clock = time.time, busy_timeout_s: float = 5.0
    ) -> SqliteKeeperStore:
        connection = sqlite3.connect(
            str(path), isolation_level=None, check_same_thread=False, timeout=busy_timeout_s
        )
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
            for statement in _SCHEMA:
                connection.execute(statement)
        except BaseException:
            connection.close()
            raise
        return cls(connection, clock)

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    async def acquire_lease(self, name: str, owner: str, ttl_s: float) -> Lease | None:
        now = self._clock()
        with self._write() as db:
            row = db.execute(
                "SELECT owner, expires_at FROM leases WHERE name = ?", (name,)
            ).fetchone()
            if row is not None and row[0] != owner and row[1] > now:
                return None
            db.execute(
                "INSERT INTO leases (name, owner, expires_at) VALUES (?, ?, ?)"
                " ON CONFLICT(name) DO UPDATE SET owner = excluded.owner,"
                " expires_at = excluded.expires_at",
                (name, owner, now + ttl_s),
            )
        return Lease(name, owner, now + ttl_s)

    async def release_lease(self, name: str, owner: str) -> bool:
        with self._write() as db:
            cursor = db.execute("DELETE FROM leases WHERE name = ? AND owner = ?", (name, owner))
            return cursor.rowcount == 1

    async def lease(self, name: str) -> Lease | None:
        with self._lock:
            row = self._db.execute(
                "SELECT owner, expires_at FROM leases WHERE name = ? AND expires_at > ?",
                (name, self._clock()),
            ).fetchone()
        return None if row is None else Lease(name, row[0], row[1])

    async def claim(self, key: str, owner: str, ttl_s: float | None = None) -> bool:
        now = self._clock()
        with self._write() as db:
            db.execute(
                "DELETE FROM claims WHERE key = ? AND expires_at IS NOT NULL AND expires_at <= ?",
                (key, now),
            )
            cursor = db.execute(
                "INSERT INTO claims (key, owner, claimed_at, expires_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT(key) DO NOTHING",
                (key, owner, now, None if ttl_s is None else now + ttl_s),
            )
            return cursor.rowcount == 1

    async def release_claim(self, key: str, owner: str) -> bool:
        with self._write() as db:
            cursor = db.execute("DELETE FROM claims WHERE key = ? AND owner = ?", (key, owner))
            return cursor.rowcount == 1

    async def claim_owner(self, key: str) -> str | None:
        with self._lock:
            row = self._db.execute(
                "SELECT owner FROM claims WHERE key = ? AND (expires_at IS NULL OR expires_at > ?)",
                (key, self._clock()),
            ).fetchone()
        return None if row is None else row[0]

    async def close(self) -> None:
        with self._lock:
            self._db.close()
