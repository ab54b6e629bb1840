"""Journal: every kind of event written as JSON lines reads back equal, in order; a bad line
is reported with its number."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from chain.topics import SYNC
from chain.types import BlockHeader, Log, PendingTx
from watcher.events import Event, HintLog, HintTx, MevShareHint, NewHead, Reorg
from watcher.journal import (
    JournalError,
    JournalTruncated,
    JournalWriter,
    journal_lines,
    read_journal,
)


def _sample_events() -> list[Event]:
    block_hash = "0x" + "ab" * 32
    header = BlockHeader(
        7,
        block_hash,
        "0x" + "cd" * 32,
        1_700_000_000,
        10**9,
        30_000_000,
        21_000,
        "0x" + "33" * 20,
        received_at=5,
    )
    log = Log("0x" + "44" * 20, (SYNC,), bytes(64), 7, block_hash, "0x" + "55" * 32, 0, 3)
    return [
        PendingTx(
            "0x" + "12" * 32,
            "0x" + "11" * 20,
            "0x" + "22" * 20,
            10**18,
            b"\x38\xed\x17\x39" + bytes(64),
            1,
            300_000,
            chain_id=31337,
            max_fee_per_gas=10**10,
            max_priority_fee_per_gas=10**9,
            received_at=3,
            source="ws-hashes",
        ),
        PendingTx(
            "0x" + "66" * 32,
            "0x" + "11" * 20,
            None,
            0,
            b"\x60\x80",
            4,
            90_000,
            type=0,
            gas_price=7,
            raw=b"\x01\x02",
            received_at=9,
            source="ws-full",
        ),
        NewHead(header, (log,), 5, "heads"),
        Reorg(2, 5, ("0x" + "01" * 32, "0x" + "02" * 32), ("0x" + "03" * 32,), 11, "heads"),
        MevShareHint(
            "0x" + "77" * 32,
            None,
            (HintTx(None, "0x" + "88" * 20, b"\x12\x34\x56\x78", None),),
            None,
            None,
            12,
            "mevshare",
        ),
        MevShareHint(
            "0x" + "99" * 32,
            (HintLog("0x" + "44" * 20, (SYNC,), b"\x00"),),
            (),
            3,
            21000,
            13,
            "mevshare",
        ),
    ]


def _written(tmp_path: Path) -> tuple[Path, list[Event]]:
    path = tmp_path / "journal.jsonl"
    events = _sample_events()
    with JournalWriter(path) as journal:
        for event in events:
            journal.write(event)
    return path, events


def test_journal_round_trip(tmp_path: Path) -> None:
    path, events = _written(tmp_path)
    assert list(read_journal(path)) == events
    lines = path.read_bytes().splitlines()
    assert [orjson.loads(line)["kind"] for line in lines] == [
        "tx",
        "tx",
        "head",
        "reorg",
        "hint",
        "hint",
    ]
    path.write_bytes(
        b"\n".join([*lines[:2], b'{"t": 1, "src": "x", "kind": "tx", "data": {"hash": 1}}'])
    )
    with pytest.raises(JournalError, match="line 3"):
        list(read_journal(path))


def test_a_last_line_cut_short_comes_after_every_complete_line(tmp_path: Path) -> None:
    path, events = _written(tmp_path)
    whole = path.read_bytes()
    path.write_bytes(whole[: len(whole) - 40])  # the writer stopped inside the last line
    read: list[Event] = []
    with pytest.raises(JournalTruncated, match="line 6: cut short"):
        for _, event in journal_lines(path):
            read.append(event)
    assert read == events[:5]
    path.write_bytes(whole[: len(whole) - 40] + b"\n")  # not the end: a bad line, not a cut
    with pytest.raises(JournalError) as raised:
        list(read_journal(path))
    assert not isinstance(raised.value, JournalTruncated)
