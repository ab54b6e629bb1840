"""The SQLite ledger: idempotent candidates, bundles and outcomes, history across restarts and
across a SIGKILL in the middle of writing."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from execution_values import OURS, candidate, plan_for

from execution.ledger import (
    MIGRATIONS,
    SCHEMA_VERSION,
    Ledger,
    LedgerError,
    OutcomeStatus,
    PublicTxStatus,
    RefundSums,
    Settlement,
)
from execution.refunds import Refund, RefundSource, RefundStatus

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def test_candidates_are_idempotent_across_restarts(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    with Ledger.open(path) as ledger:
        assert ledger.record_candidate(candidate("arb:100:0xaa"))
        assert not ledger.record_candidate(candidate("arb:100:0xaa"))
        ledger.mark_candidate("arb:100:0xaa", "rejected", "below_minimum")
    with Ledger.open(path) as ledger:
        assert not ledger.record_candidate(candidate("arb:100:0xaa"))
        assert ledger.candidate_known("arb:100:0xaa")
        assert not ledger.candidate_known("arb:100:0xbb")
        assert ledger.candidate_counts() == {"rejected": 1}
        mode = ledger._read("PRAGMA journal_mode")[0][0]
        assert mode == "wal"


def test_a_verdict_is_written_once_and_a_settled_row_keeps_its_own(tmp_path: Path) -> None:
    """What the submitter writes off the hot path: a dropped candidate with its reason; a row
    still `new` (its bundle was being sent) takes the verdict; a row that has one keeps it when
    the same key turns up again (a restart seeing the trigger once its block has passed)."""
    path = tmp_path / "ledger.sqlite"
    with Ledger.open(path) as ledger:
        ledger.record_verdict(candidate("arb:100:0xaa", 100), "dropped", "below_minimum: x")
        assert ledger.record_candidate(candidate("arb:101:0xbb", 101))
        ledger.record_verdict(candidate("arb:101:0xbb", 101), "dropped", "relays: none")
        ledger.record_candidate(candidate("arb:102:0xcc", 102))
        ledger.mark_candidate("arb:102:0xcc", "sent")
    with Ledger.open(path) as ledger:
        ledger.record_verdict(candidate("arb:102:0xcc", 102), "dropped", "stale: block 102")
        rows = ledger._read("SELECT key, status, reason FROM candidates ORDER BY key")
        assert rows == [
            ("arb:100:0xaa", "dropped", "below_minimum: x"),
            ("arb:101:0xbb", "dropped", "relays: none"),
            ("arb:102:0xcc", "sent", None),
        ]
        assert ledger.candidate_keys(after_block=100) == {
            101: {"arb:101:0xbb"},
            102: {"arb:102:0xcc"},
        }


def test_bundles_outcomes_and_queries_survive_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    first, second = candidate("a", 100), candidate("b", 101)
    plan_a, plan_b = plan_for(first, 0, blocks=3), plan_for(second, 1)
    with Ledger.open(path) as ledger:
        for item, plan in ((first, plan_a), (second, plan_b)):
            ledger.record_candidate(item)
            ledger.record_bundles(plan)
        ledger.record_relay_answer(plan_a.bundle_hash, 100, "flashbots", ok=True)
        ledger.record_relay_answer(
            plan_a.bundle_hash, 100, "titan", ok=False, error_kind="error", message="nonce too low"
        )
        assert [p.target_block for p in ledger.pending_bundles(101)] == [100, 101, 101]
        landed = Settlement(OutcomeStatus.LANDED, 101, 260_891, 10**19)
        assert ledger.settle(plan_a.bundle_hash, 100, Settlement(OutcomeStatus.MISSED))
        assert ledger.settle(plan_a.bundle_hash, 101, landed)
        assert not ledger.settle(plan_a.bundle_hash, 101, Settlement(OutcomeStatus.MISSED))
        failed = Settlement(OutcomeStatus.FAILED, 101, 50_000, -(10**15))
        assert ledger.settle(plan_b.bundle_hash, 101, failed)
        ledger.record_public_tx(
            tx_hash="0x" + "01" * 32,
            key="oracle:WETH:7",
            sender=OURS.address,
            nonce=4,
            max_fee_per_gas=10,
            max_priority_fee_per_gas=1,
        )
        ledger.record_public_tx(
            tx_hash="0x" + "02" * 32,
            key="oracle:WETH:7",
            sender=OURS.address,
            nonce=4,
            max_fee_per_gas=12,
            max_priority_fee_per_gas=2,
            replaces="0x" + "01" * 32,
        )
    with Ledger.open(path) as ledger:
        assert ledger.counts_by_status() == {
            "pending": 1,
            "landed": 1,
            "missed": 1,
            "failed": 1,
            "unbundled": 0,
            "superseded": 0,
        }
        assert ledger.realized_profit_total() == 10**19 - 10**15
        assert ledger.outcome(plan_a.bundle_hash, 101) == landed
        assert ledger.pending_for_tx(plan_a.our_tx.hash) == [(plan_a.bundle_hash, 102)]
        answers = ledger.relay_answers(plan_a.bundle_hash, 100)
        assert [(a.relay, a.ok, a.message) for a in answers] == [
            ("flashbots", True, None),
            ("titan", False, "nonce too low"),
        ]
        recent = ledger.recent_bundles(10)
        assert len(recent) == 4
        assert {(r.candidate_key, r.target_block, r.status) for r in recent} == {
            ("a", 100, OutcomeStatus.MISSED),
            ("a", 101, OutcomeStatus.LANDED),
            ("a", 102, OutcomeStatus.PENDING),
            ("b", 101, OutcomeStatus.FAILED),
        }
        assert all(r.coinbase_wei == 9 * 10**18 for r in recent)
        (pending_tx,) = ledger.pending_public_txs()
        assert (pending_tx.hash, pending_tx.max_fee_per_gas) == ("0x" + "02" * 32, 12)
        ledger.update_public_tx(pending_tx.hash, PublicTxStatus.MINED, 105)
        assert ledger.pending_public_txs() == []
        (pending,) = ledger.pending_bundles(200)
        assert pending.tx_hashes == (plan_a.bundles[0].txs[0].hash, plan_a.our_tx.hash)
        assert pending.expected_profit_wei == 10 * 10**18


def test_a_newer_schema_is_refused_and_an_empty_file_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    sqlite3.connect(path).close()
    with Ledger.open(path) as ledger:
        assert ledger._read("SELECT version FROM schema_version") == [(SCHEMA_VERSION,)]
    db = sqlite3.connect(path)
    db.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION + 1,))
    db.commit()
    db.close()
    with pytest.raises(LedgerError, match="newer"):
        Ledger.open(path)


WRITER = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, sys.argv[2])
    from execution_values import candidate, plan_for
    from execution.ledger import Ledger

    ledger = Ledger.open(sys.argv[1])
    index = 0
    while True:
        item = candidate(f"key-{index}", 1000 + index)
        ledger.record_candidate(item)
        ledger.record_bundles(plan_for(item, index))
        print(index, flush=True)
        index += 1
    """
)


def test_sigkill_mid_write_keeps_every_committed_row(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path), str(PROJECT_ROOT / "tests")],
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert writer.stdout is not None
        committed = -1
        while committed < 300:
            line = writer.stdout.readline()
            assert line, "the writer died on its own"
            committed = int(line)
    finally:
        os.kill(writer.pid, signal.SIGKILL)
        writer.wait(timeout=10)
    assert writer.returncode == -signal.SIGKILL
    with Ledger.open(path) as ledger:
        assert ledger._read("PRAGMA integrity_check") == [("ok",)]
        for index in range(committed + 1):
            assert ledger.candidate_known(f"key-{index}")
        pending = ledger.pending_bundles(10**9)
        assert len(pending) >= committed + 1
        # A candidate and its bundle are written in separate transactions; at most one
        # candidate (the one being written when killed) may lack its bundle.
        candidates = ledger._read("SELECT COUNT(*) FROM candidates")[0][0]
        assert candidates - len(pending) in (0, 1)
        assert ledger.record_candidate(candidate("after-restart", 5))


def _refund(status: RefundStatus, amount: int = 3 * 10**19, block: int = 7) -> Refund:
    return Refund(RefundSource.FEE, "0x" + "ab" * 32, amount, block, status, "0x" + "cd" * 20)


def test_refunds_are_one_row_each_and_never_go_back_to_pending(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    with Ledger.open(path) as ledger:
        assert ledger.record_refund(_refund(RefundStatus.PENDING), "flashbots") == "new"
        assert ledger.record_refund(_refund(RefundStatus.PENDING), "buildernet") == "same"
        assert ledger.refund_totals() == RefundSums(pending_wei=3 * 10**19, received_wei=0)
        assert ledger.record_refund(_refund(RefundStatus.RECEIVED), "flashbots") == "changed"
        assert ledger.record_refund(_refund(RefundStatus.PENDING), "flashbots") == "same"
        assert ledger.record_refund(_refund(RefundStatus.PENDING, block=8), "flashbots") == "new"
    with Ledger.open(path) as ledger:  # amounts beyond 64 bits, summed exactly after a restart
        assert ledger.refund_totals("0x" + "CD" * 20) == RefundSums(3 * 10**19, 3 * 10**19)
        assert ledger.refund_totals("0x" + "ee" * 20) == RefundSums(0, 0)


def test_the_ledger_remembers_the_searcher_identity(tmp_path: Path) -> None:
    with Ledger.open(tmp_path / "ledger.sqlite") as ledger:
        assert ledger.note_searcher("0x" + "AA" * 20) is None
        assert ledger.note_searcher("0x" + "aa" * 20) is None
        assert ledger.note_searcher("0x" + "bb" * 20) == "0x" + "aa" * 20


def test_a_version_1_ledger_is_upgraded_with_its_history(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    db.execute("INSERT INTO schema_version VALUES (1)")
    for statement in MIGRATIONS[1]:
        db.execute(statement)
    db.close()
    with Ledger.open(path) as ledger:
        assert ledger.record_refund(_refund(RefundStatus.PENDING), "flashbots") == "new"
        assert ledger._read("SELECT version FROM schema_version") == [(SCHEMA_VERSION,)]
