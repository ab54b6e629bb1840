"""The ledger: every candidate, bundle, relay answer, per-block outcome, public tx, builder
refund, and the refunds the users of our landed MEV-Share backruns were paid, in SQLite.

SQLite in WAL mode with ``synchronous=NORMAL``: a commit appends to the write-ahead log without
an fsync, so a process crash (even SIGKILL mid-write) loses nothing committed and never corrupts
the file; only a power loss can drop the last commits. Every write is one small transaction
(tens of microseconds), so callers on the event loop may call it directly. One connection, one
writer; a lock makes calls from worker threads safe too.

The candidate key is the idempotency key: :meth:`Ledger.record_candidate` returns False for a
key already known, so a restarted bot never sends the same effect twice (the submitter checks
the keys in memory and loads those of the blocks ahead at start: :meth:`Ledger.candidate_keys`).
Wei amounts exceed SQLite's 64-bit integers, so they are stored as decimal text and summed by a
Python aggregate.
The schema carries its version; :data:`MIGRATIONS` upgrades an older file step by step.
"""

from __future__ import annotations

import enum
import json
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from execution.bundler import BundlePlan
from execution.refunds import Refund, RefundStatus
from simulation.candidates import Candidate


class OutcomeStatus(enum.StrEnum):
    """What happened to a bundle at one target block."""

    PENDING = "pending"
    LANDED = "landed"  # all bundle txs in the block, ours right after the backrun txs
    MISSED = "missed"  # the target block passed without our tx
    FAILED = "failed"  # our tx included but reverted
    UNBUNDLED = "unbundled"  # our tx included and succeeded, but not in bundle order
    SUPERSEDED = "superseded"  # our tx already landed in an earlier target block


class PublicTxStatus(enum.StrEnum):
    PENDING = "pending"
    MINED = "mined"
    FAILED = "failed"
    REPLACED = "replaced"
    DROPPED = "dropped"


class LedgerError(RuntimeError):
    """The ledger file cannot be used (newer schema, not a ledger)."""


MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: (
        """CREATE TABLE candidates (
            key TEXT PRIMARY KEY,
            strategy TEXT NOT NULL,
            target_block INTEGER NOT NULL,
            trigger_hash TEXT,
            profit_token TEXT NOT NULL,
            expected_profit TEXT NOT NULL,
            expected_profit_wei TEXT NOT NULL,
            status TEXT NOT NULL,
            reason TEXT,
            created_at REAL NOT NULL
        )""",
        """CREATE TABLE bundles (
            bundle_hash TEXT NOT NULL,
            target_block INTEGER NOT NULL,
            candidate_key TEXT NOT NULL REFERENCES candidates(key),
            tx_hashes TEXT NOT NULL,
            raw_txs TEXT NOT NULL,
            our_tx_hash TEXT NOT NULL,
            our_nonce INTEGER NOT NULL,
            coinbase_wei TEXT NOT NULL,
            max_fee_per_gas TEXT NOT NULL,
            max_priority_fee_per_gas TEXT NOT NULL,
            gas_cost_wei TEXT NOT NULL,
            expected_net_wei TEXT NOT NULL,
            created_at REAL NOT NULL,
            PRIMARY KEY (bundle_hash, target_block)
        )""",
        "CREATE INDEX bundles_by_our_tx ON bundles(our_tx_hash)",
        "CREATE INDEX bundles_by_time ON bundles(created_at)",
        """CREATE TABLE relay_answers (
            id INTEGER PRIMARY KEY,
            bundle_hash TEXT NOT NULL,
            target_block INTEGER NOT NULL,
            relay TEXT NOT NULL,
            ok INTEGER NOT NULL,
            error_kind TEXT,
            message TEXT,
            at REAL NOT NULL
        )""",
        "CREATE INDEX relay_answers_by_bundle ON relay_answers(bundle_hash, target_block)",
        """CREATE TABLE outcomes (
            bundle_hash TEXT NOT NULL,
            target_block INTEGER NOT NULL,
            status TEXT NOT NULL,
            included_block INTEGER,
            gas_used INTEGER,
            realized_profit_wei TEXT,
            detail TEXT,
            settled_at REAL,
            PRIMARY KEY (bundle_hash, target_block)
        )""",
        "CREATE INDEX outcomes_by_status ON outcomes(status, target_block)",
        """CREATE TABLE public_txs (
            hash TEXT PRIMARY KEY,
            key TEXT NOT NULL,
            sender TEXT NOT NULL,
            nonce INTEGER NOT NULL,
            max_fee_per_gas TEXT NOT NULL,
            max_priority_fee_per_gas TEXT NOT NULL,
            status TEXT NOT NULL,
            replaced_by TEXT,
            block_number INTEGER,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL
        )""",
        "CREATE INDEX public_txs_by_status ON public_txs(status)",
    ),
    2: (
        # One row per refund: (source, hash, block, recipient) is how the refund methods name
        # one, so reconciling the same answer again changes nothing. ``relay`` is where it was
        # first seen (the same BuilderNet refund can be reported by more than one endpoint).
        """CREATE TABLE refunds (
            source TEXT NOT NULL,
            hash TEXT NOT NULL,
            block_number INTEGER NOT NULL,
            recipient TEXT NOT NULL,
            amount_wei TEXT NOT NULL,
            status TEXT NOT NULL,
            relay TEXT NOT NULL,
            first_seen REAL NOT NULL,
            updated_at REAL NOT NULL,
            PRIMARY KEY (source, hash, block_number, recipient)
        )""",
        "CREATE INDEX refunds_by_recipient ON refunds(recipient, status)",
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    ),
    # Inclusion truth: who built a block our bundle missed, and whether its victim got in
    # without us.
    3: (
        "ALTER TABLE outcomes ADD COLUMN lost_to TEXT",
        "ALTER TABLE outcomes ADD COLUMN victim_landed INTEGER",
    ),
    # What the user of a private tx got back in the block where our backrun of it landed, as
    # read from that block (one row per backrun tx).
    4: (
        """CREATE TABLE user_refunds (
            our_tx_hash TEXT PRIMARY KEY,
            candidate_key TEXT NOT NULL,
            block_number INTEGER NOT NULL,
            payout_tx TEXT,
            amount_wei TEXT NOT NULL,
            recorded_at REAL NOT NULL
        )""",
    ),
}
SCHEMA_VERSION = max(MIGRATIONS)


class _BigSum:
    """SUM over decimal-text wei amounts, exact at any size."""

    def __init__(self) -> None:
        self.total = 0

    def step(self, value: str | None) -> None:
        if value is not None:
            self.total += int(value)

    def finalize(self) -> str:
        return str(self.total)


@dataclass(frozen=True, slots=True)
class PendingBundle:
    """A bundle at one target block, waiting to be settled by the inclusion tracker."""

    bundle_hash: str
    target_block: int
    tx_hashes: tuple[str, ...]
    our_tx_hash: str
    profit_token: str
    expected_profit: int
    expected_profit_wei: int


@dataclass(frozen=True, slots=True)
class BundleRecord:
    """A bundle with its outcome, for the UI."""

    bundle_hash: str
    target_block: int
    candidate_key: str
    strategy: str
    our_tx_hash: str
    coinbase_wei: int
    expected_net_wei: int
    status: OutcomeStatus
    realized_profit_wei: int | None
    detail: str | None
    created_at: float


@dataclass(frozen=True, slots=True)
class RelayAnswer:
    relay: str
    ok: bool
    error_kind: str | None
    message: str | None
    at: float


@dataclass(frozen=True, slots=True)
class PublicTx:
    hash: str
    key: str
    sender: str
    nonce: int
    max_fee_per_gas: int
    max_priority_fee_per_gas: int
    status: PublicTxStatus
    replaced_by: str | None
    block_number: int | None


@dataclass(frozen=True, slots=True)
class Settlement:
    """The verdict on one bundle at one target block."""

    status: OutcomeStatus
    included_block: int | None = None
    gas_used: int | None = None
    realized_profit_wei: int | None = None
    detail: str | None = None
    lost_to: str | None = None  # a missed bundle: who built the block (extra data or miner)
    victim_landed: bool | None = None  # a missed backrun: whether its victim got in without us
    # What our included tx paid (gas used x effective price, and the Executor's coinbase
    # transfer): counted by the live bot, not kept in the ledger file.
    gas_cost_wei: int | None = None
    coinbase_paid_wei: int | None = None


@dataclass(frozen=True, slots=True)
class RefundSums:
    """Refunds in the ledger (wei): earned and not yet paid, and paid."""

    pending_wei: int
    received_wei: int


@dataclass(frozen=True, slots=True)
class UserRefund:
    """What the user of a private tx was paid back in the block where our backrun of it landed:
    ``payout_tx`` is the builder's transfer (None and 0 when the block holds none)."""

    our_tx_hash: str
    candidate_key: str
    block_number: int
    payout_tx: str | None
    amount_wei: int


RefundChange = Literal["new", "changed", "same"]


def _candidate_row(candidate: Candidate, status: str) -> tuple[Any, ...]:
    return (
        candidate.key,
        candidate.strategy,
        candidate.target_block,
        candidate.trigger_hash,
        candidate.profit_token.lower(),
        str(candidate.expected_profit),
        str(candidate.expected_profit_wei),
        status,
    )


def _opt_int(value: str | None) -> int | None:
    return None if value is None else int(value)


class Ledger:
    """Open with :meth:`open` (creates or upgrades the file); close with :meth:`close`."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._db = connection
        self._lock = threading.Lock()

    @classmethod
    def open(cls, path: str | Path) -> Ledger:
        connection = sqlite3.connect(
            str(path), isolation_level=None, check_same_thread=False, timeout=5.0
        )
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
            connection.execute("PRAGMA foreign_keys=ON")
            connection.create_aggregate("bigsum", 1, _BigSum)
            _migrate(connection)
        except BaseException:
            connection.close()
            raise
        return cls(connection)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

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

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    # --- writes ---------------------------------------------------------------------------------

    def record_candidate(self, candidate: Candidate, status: str = "new") -> bool:
        """Insert ``candidate``; False when its key is already known (do not act on it again)."""
        with self._write() as db:
            cursor = db.execute(
                "INSERT INTO candidates (key, strategy, target_block, trigger_hash, profit_token,"
                " expected_profit, expected_profit_wei, status, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(key) DO NOTHING",
                (*_candidate_row(candidate, status), time.time()),
            )
            return cursor.rowcount == 1

    def record_verdict(self, candidate: Candidate, status: str, reason: str | None = None) -> None:
        """``candidate`` with what became of it: inserted when its key is new, updated while its
        row is still ``new`` (written for the send in progress); a row with a verdict already
        (from an earlier run, say) keeps it."""
        with self._write() as db:
            db.execute(
                "INSERT INTO candidates (key, strategy, target_block, trigger_hash, profit_token,"
                " expected_profit, expected_profit_wei, status, reason, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(key) DO UPDATE"
                " SET status = excluded.status, reason = excluded.reason"
                " WHERE candidates.status = 'new'",
                (*_candidate_row(candidate, status), reason, time.time()),
            )

    def mark_candidate(self, key: str, status: str, reason: str | None = None) -> None:
        """Record what became of a candidate (``bundled``, ``rejected``, ``failed_simulation``…)."""
        with self._write() as db:
            db.execute(
                "UPDATE candidates SET status = ?, reason = ? WHERE key = ?", (status, reason, key)
            )

    def record_bundles(self, plan: BundlePlan) -> None:
        """Every bundle of ``plan`` (one per target block), each with a pending outcome.

        Recording the same bundle for the same block again changes nothing (idempotent)."""
        now = time.time()
        bid = plan.bid
        with self._write() as db:
            for bundle in plan.bundles:
                db.execute(
                    "INSERT OR IGNORE INTO bundles (bundle_hash, target_block, candidate_key,"
                    " tx_hashes,"
                    " raw_txs, our_tx_hash, our_nonce, coinbase_wei, max_fee_per_gas,"
                    " max_priority_fee_per_gas, gas_cost_wei, expected_net_wei, created_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        bundle.bundle_hash,
                        bundle.block_number,
                        plan.candidate_key,
                        json.dumps([tx.hash for tx in bundle.txs]),
                        json.dumps([tx.raw_hex for tx in bundle.txs]),
                        plan.our_tx.hash,
                        plan.our_tx.nonce,
                        str(bid.coinbase_wei),
                        str(bid.max_fee_per_gas),
                        str(bid.max_priority_fee_per_gas),
                        str(bid.gas_cost_wei),
                        str(bid.net_profit_wei),
                        now,
                    ),
                )
                db.execute(
                    "INSERT OR IGNORE INTO outcomes (bundle_hash, target_block, status)"
                    " VALUES (?, ?, ?)",
                    (bundle.bundle_hash, bundle.block_number, OutcomeStatus.PENDING.value),
                )

    def record_relay_answer(
        self,
        bundle_hash: str,
        target_block: int,
        relay: str,
        *,
        ok: bool,
        error_kind: str | None = None,
        message: str | None = None,
    ) -> None:
        """One relay's answer to one bundle; ``message`` is the relay's text verbatim."""
        with self._write() as db:
            db.execute(
                "INSERT INTO relay_answers (bundle_hash, target_block, relay, ok, error_kind,"
                " message, at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (bundle_hash, target_block, relay, int(ok), error_kind, message, time.time()),
            )

    def settle(self, bundle_hash: str, target_block: int, settlement: Settlement) -> bool:
        """Record the outcome of a pending bundle; False if it was already settled."""
        with self._write() as db:
            cursor = db.execute(
                "UPDATE outcomes SET status = ?, included_block = ?, gas_used = ?,"
                " realized_profit_wei = ?, detail = ?, lost_to = ?, victim_landed = ?,"
                " settled_at = ? WHERE bundle_hash = ? AND target_block = ? AND status = ?",
                (
                    settlement.status.value,
                    settlement.included_block,
                    settlement.gas_used,
                    None
                    if settlement.realized_profit_wei is None
                    else str(settlement.realized_profit_wei),
                    settlement.detail,
                    settlement.lost_to,
                    None if settlement.victim_landed is None else int(settlement.victim_landed),
                    time.time(),
                    bundle_hash,
                    target_block,
                    OutcomeStatus.PENDING.value,
                ),
            )
            return cursor.rowcount == 1

    def record_public_tx(
        self,
        *,
        tx_hash: str,
        key: str,
        sender: str,
        nonce: int,
        max_fee_per_gas: int,
        max_priority_fee_per_gas: int,
        replaces: str | None = None,
    ) -> None:
        """A keeper tx sent to the public mempool; ``replaces`` marks an earlier one replaced."""
        now = time.time()
        with self._write() as db:
            db.execute(
                "INSERT INTO public_txs (hash, key, sender, nonce, max_fee_per_gas,"
                " max_priority_fee_per_gas, status, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    tx_hash,
                    key,
                    sender,
                    nonce,
                    str(max_fee_per_gas),
                    str(max_priority_fee_per_gas),
                    PublicTxStatus.PENDING.value,
                    now,
                    now,
                ),
            )
            if replaces is not None:
                db.execute(
                    "UPDATE public_txs SET status = ?, replaced_by = ?, updated_at = ?"
                    " WHERE hash = ?",
                    (PublicTxStatus.REPLACED.value, tx_hash, now, replaces),
                )

    def update_public_tx(
        self, tx_hash: str, status: PublicTxStatus, block_number: int | None = None
    ) -> None:
        with self._write() as db:
            db.execute(
                "UPDATE public_txs SET status = ?, block_number = ?, updated_at = ? WHERE hash = ?",
                (status.value, block_number, time.time(), tx_hash),
            )

    def record_refund(self, refund: Refund, relay: str) -> RefundChange:
        """Write one reported refund: ``new`` the first time, ``changed`` when its amount or
        status moved (a received refund never goes back to pending), else ``same``."""
        now = time.time()
        key = (refund.source.value, refund.hash, refund.block_number, refund.recipient)
        with self._write() as db:
            row = db.execute(
                "SELECT amount_wei, status FROM refunds"
                " WHERE source = ? AND hash = ? AND block_number = ? AND recipient = ?",
                key,
            ).fetchone()
            if row is None:
                db.execute(
                    "INSERT INTO refunds (source, hash, block_number, recipient, amount_wei,"
                    " status, relay, first_seen, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (*key, str(refund.amount), refund.status.value, relay, now, now),
                )
                return "new"
            status = RefundStatus.RECEIVED if row[1] == RefundStatus.RECEIVED else refund.status
            if (int(row[0]), row[1]) == (refund.amount, status.value):
                return "same"
            db.execute(
                "UPDATE refunds SET amount_wei = ?, status = ?, updated_at = ?"
                " WHERE source = ? AND hash = ? AND block_number = ? AND recipient = ?",
                (str(refund.amount), status.value, now, *key),
            )
            return "changed"

    def record_user_refund(self, refund: UserRefund) -> None:
        """Write what a user got back for one of our landed backruns (once per backrun tx)."""
        with self._write() as db:
            db.execute(
                "INSERT INTO user_refunds (our_tx_hash, candidate_key, block_number, payout_tx,"
                " amount_wei, recorded_at) VALUES (?, ?, ?, ?, ?, ?)"
                " ON CONFLICT(our_tx_hash) DO NOTHING",
                (
                    refund.our_tx_hash,
                    refund.candidate_key,
                    refund.block_number,
                    refund.payout_tx,
                    str(refund.amount_wei),
                    time.time(),
                ),
            )

    def note_searcher(self, address: str) -> str | None:
        """Remember the searcher identity; the previous one when it was a different address."""
        address = address.lower()
        with self._write() as db:
            row = db.execute("SELECT value FROM meta WHERE key = 'searcher'").fetchone()
            db.execute(
                "INSERT INTO meta (key, value) VALUES ('searcher', ?)"
                " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (address,),
            )
        return row[0] if row is not None and row[0] != address else None

    # --- reads ----------------------------------------------------------------------------------

    def refund_totals(self, recipient: str | None = None) -> RefundSums:
        """Pending and received refunds, of one recipient or of all."""
        where, params = ("WHERE recipient = ?", (recipient.lower(),)) if recipient else ("", ())
        sums = dict.fromkeys(RefundStatus, 0)
        for status, total in self._read(
            f"SELECT status, bigsum(amount_wei) FROM refunds {where} GROUP BY status", params
        ):
            sums[RefundStatus(status)] = int(total)
        return RefundSums(sums[RefundStatus.PENDING], sums[RefundStatus.RECEIVED])

    def user_refunds_wei(self) -> int:
        """What the users of our landed MEV-Share backruns were paid back, in all."""
        ((total,),) = self._read("SELECT bigsum(amount_wei) FROM user_refunds")
        return int(total or 0)

    def candidate_known(self, key: str) -> bool:
        return bool(self._read("SELECT 1 FROM candidates WHERE key = ?", (key,)))

    def candidate_keys(self, after_block: int) -> dict[int, set[str]]:
        """The keys of the candidates for blocks after ``after_block``, by target block."""
        keys: dict[int, set[str]] = {}
        rows = self._read(
            "SELECT target_block, key FROM candidates WHERE target_block > ?", (after_block,)
        )
        for block, key in rows:
            keys.setdefault(block, set()).add(key)
        return keys

    def pending_bundles(self, up_to_block: int) -> list[PendingBundle]:
        """Bundles still pending whose target block is ``up_to_block`` or earlier."""
        rows = self._read(
            "SELECT o.bundle_hash, o.target_block, b.tx_hashes, b.our_tx_hash, c.profit_token,"
            " c.expected_profit, c.expected_profit_wei"
            " FROM outcomes o JOIN bundles b USING (bundle_hash, target_block)"
            " JOIN candidates c ON c.key = b.candidate_key"
            " WHERE o.status = ? AND o.target_block <= ? ORDER BY o.target_block",
            (OutcomeStatus.PENDING.value, up_to_block),
        )
        return [
            PendingBundle(
                bundle_hash=row[0],
                target_block=row[1],
                tx_hashes=tuple(json.loads(row[2])),
                our_tx_hash=row[3],
                profit_token=row[4],
                expected_profit=int(row[5]),
                expected_profit_wei=int(row[6]),
            )
            for row in rows
        ]

    def pending_for_tx(self, our_tx_hash: str) -> list[tuple[str, int]]:
        """(bundle hash, target block) of the still-pending bundles carrying ``our_tx_hash``."""
        rows = self._read(
            "SELECT o.bundle_hash, o.target_block FROM outcomes o"
            " JOIN bundles b USING (bundle_hash, target_block)"
            " WHERE b.our_tx_hash = ? AND o.status = ? ORDER BY o.target_block",
            (our_tx_hash, OutcomeStatus.PENDING.value),
        )
        return [(row[0], row[1]) for row in rows]

    def outcome(self, bundle_hash: str, target_block: int) -> Settlement | None:
        rows = self._read(
            "SELECT status, included_block, gas_used, realized_profit_wei, detail, lost_to,"
            " victim_landed FROM outcomes WHERE bundle_hash = ? AND target_block = ?",
            (bundle_hash, target_block),
        )
        if not rows:
            return None
        status, included, gas_used, profit, detail, lost_to, victim = rows[0]
        return Settlement(
            OutcomeStatus(status),
            included,
            gas_used,
            _opt_int(profit),
            detail,
            lost_to,
            None if victim is None else bool(victim),
        )

    def inclusion_by_relay(self) -> dict[str, dict[str, int]]:
        """Per relay that accepted our bundles: how many settled as each status, plus
        ``victim_landed_without_us`` among the missed ones."""
        found: dict[str, dict[str, int]] = {}
        rows = self._read(
            "SELECT a.relay, o.status, COUNT(*), SUM(COALESCE(o.victim_landed, 0))"
            " FROM (SELECT DISTINCT relay, bundle_hash, target_block FROM relay_answers"
            " WHERE ok) a JOIN outcomes o"
            " ON o.bundle_hash = a.bundle_hash AND o.target_block = a.target_block"
            " GROUP BY a.relay, o.status",
        )
        for relay, status, count, victim_landed in rows:
            counts = found.setdefault(relay, {})
            counts[status] = count
            if victim_landed:
                counts["victim_landed_without_us"] = (
                    counts.get("victim_landed_without_us", 0) + victim_landed
                )
        return found

    def counts_by_status(self) -> dict[str, int]:
        """Outcome counts per status (every status present, zero when none)."""
        counts = {status.value: 0 for status in OutcomeStatus}
        for status, count in self._read("SELECT status, COUNT(*) FROM outcomes GROUP BY status"):
            counts[status] = count
        return counts

    def blocks_landed(self, first: int, last: int) -> tuple[int, int]:
        """(target blocks ``first``..``last`` that a bundle of ours was accepted for, those of
        them in which one of our bundles landed)."""
        ((sent, landed),) = self._read(
            "SELECT COUNT(DISTINCT a.target_block),"
            " COUNT(DISTINCT CASE WHEN o.status = ? THEN o.included_block END)"
            " FROM relay_answers a JOIN outcomes o"
            " ON o.bundle_hash = a.bundle_hash AND o.target_block = a.target_block"
            " WHERE a.ok AND a.target_block BETWEEN ? AND ?",
            (OutcomeStatus.LANDED.value, first, last),
        )
        return sent, landed

    def candidate_counts(self) -> dict[str, int]:
        return dict(self._read("SELECT status, COUNT(*) FROM candidates GROUP BY status"))

    def realized_profit_total(self) -> int:
        """Sum of realized profit (wei) over every settled bundle, losses included."""
        ((total,),) = self._read("SELECT bigsum(realized_profit_wei) FROM outcomes")
        return int(total)

    def recent_bundles(self, limit: int = 20) -> list[BundleRecord]:
        rows = self._read(
            "SELECT b.bundle_hash, b.target_block, b.candidate_key, c.strategy, b.our_tx_hash,"
            " b.coinbase_wei, b.expected_net_wei, o.status, o.realized_profit_wei, o.detail,"
            " b.created_at"
            " FROM bundles b JOIN outcomes o USING (bundle_hash, target_block)"
            " JOIN candidates c ON c.key = b.candidate_key"
            " ORDER BY b.created_at DESC, b.target_block DESC LIMIT ?",
            (limit,),
        )
        return [
            BundleRecord(
                bundle_hash=row[0],
                target_block=row[1],
                candidate_key=row[2],
                strategy=row[3],
                our_tx_hash=row[4],
                coinbase_wei=int(row[5]),
                expected_net_wei=int(row[6]),
                status=OutcomeStatus(row[7]),
                realized_profit_wei=_opt_int(row[8]),
                detail=row[9],
                created_at=row[10],
            )
            for row in rows
        ]

    def relay_answers(self, bundle_hash: str, target_block: int) -> list[RelayAnswer]:
        rows = self._read(
            "SELECT relay, ok, error_kind, message, at FROM relay_answers"
            " WHERE bundle_hash = ? AND target_block = ? ORDER BY id",
            (bundle_hash, target_block),
        )
        return [RelayAnswer(row[0], bool(row[1]), row[2], row[3], row[4]) for row in rows]

    def pending_public_txs(self) -> list[PublicTx]:
        rows = self._read(
            "SELECT hash, key, sender, nonce, max_fee_per_gas, max_priority_fee_per_gas, status,"
            " replaced_by, block_number FROM public_txs WHERE status = ?"
            " ORDER BY nonce, created_at",
            (PublicTxStatus.PENDING.value,),
        )
        return [
            PublicTx(
                hash=row[0],
                key=row[1],
                sender=row[2],
                nonce=row[3],
                max_fee_per_gas=int(row[4]),
                max_priority_fee_per_gas=int(row[5]),
                status=PublicTxStatus(row[6]),
                replaced_by=row[7],
                block_number=row[8],
            )
            for row in rows
        ]


def _migrate(db: sqlite3.Connection) -> None:
    db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
    rows = db.execute("SELECT version FROM schema_version").fetchall()
    current = rows[0][0] if rows else 0
    if current > SCHEMA_VERSION:
        raise LedgerError(
            f"ledger schema version {current} is newer than this program's {SCHEMA_VERSION}"
        )
    for version in range(current + 1, SCHEMA_VERSION + 1):
        db.execute("BEGIN IMMEDIATE")
        try:
            for statement in MIGRATIONS[version]:
                db.execute(statement)
            db.execute("DELETE FROM schema_version")
            db.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
