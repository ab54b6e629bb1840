"""The journal: every event the watcher delivered, as JSON lines, to replay later.

One JSON object per line, in the order received::

    {"t": 8123456789012, "src": "ws-hashes", "kind": "tx", "data": {...}}

``t`` is ``received_at`` (``time.monotonic_ns()`` of the recording process), ``src`` the source
name, ``kind`` one of ``tx`` / ``head`` / ``reorg`` / ``hint``. ``data`` is what the node sent,
in JSON-RPC shape: for ``tx`` the transaction object (``eth_getTransactionByHash`` shape, quantities
as hex, plus ``"raw"``: the signed envelope as 0x hex, as received or rebuilt from the tx's
signature fields by :func:`chain.envelope.signed_envelope`, so that a replay can backrun it;
absent when neither is possible); for ``head``
``{"header": block object, "logs": [log objects]}``; for ``reorg`` ``{"depth", "commonAncestor",
"old", "new"}`` (hash lists, lowest block first); for ``hint`` the MEV-Share event object. The
reader parses lines with the same parsers as the live sources, so a replayed event equals the
recorded one, except that a tx whose envelope was rebuilt comes back with ``raw`` in place of
its signature fields.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

import orjson

from chain.envelope import signed_envelope
from chain.types import BlockHeader, Log, MalformedError, PendingTx, hex_to_bytes
from watcher.events import Event, HintLog, HintTx, MevShareHint, NewHead, Reorg
from watcher.mevshare import parse_hint

_FLUSH_EVERY = 256


class JournalError(ValueError):
    """A journal line that cannot be read back; says which line and why."""

    def __init__(self, line_number: int, reason: str) -> None:
        super().__init__(f"line {line_number}: {reason}")
        self.line_number = line_number
        self.reason = reason


class JournalTruncated(JournalError):
    """The last line is cut short (no newline, not JSON): the recorder stopped mid-write.
    Raised only after every complete line before it was read."""


def _hex(data: bytes) -> str:
    return "0x" + data.hex()


def _tx_object(tx: PendingTx) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "hash": tx.hash,
        "from": tx.sender,
        "to": tx.to,
        "value": hex(tx.value),
        "input": _hex(tx.input),
        "nonce": hex(tx.nonce),
        "gas": hex(tx.gas),
        "type": hex(tx.type),
    }
    optional = {
        "chainId": tx.chain_id,
        "gasPrice": tx.gas_price,
        "maxFeePerGas": tx.max_fee_per_gas,
        "maxPriorityFeePerGas": tx.max_priority_fee_per_gas,
    }
    obj.update({key: hex(value) for key, value in optional.items() if value is not None})
    raw = signed_envelope(tx)
    if raw is not None:
        obj["raw"] = _hex(raw)
    return obj


def _block_object(header: BlockHeader) -> dict[str, Any]:
    return {
        "number": hex(header.number),
        "hash": header.hash,
        "parentHash": header.parent_hash,
        "timestamp": hex(header.timestamp),
        "baseFeePerGas": hex(header.base_fee),
        "gasLimit": hex(header.gas_limit),
        "gasUsed": hex(header.gas_used),
        "miner": header.miner,
    }


def _log_object(log: Log) -> dict[str, Any]:
    return {
        "address": log.address,
        "topics": [_hex(topic) for topic in log.topics],
        "data": _hex(log.data),
        "blockNumber": hex(log.block_number),
        "blockHash": log.block_hash,
        "transactionHash": log.tx_hash,
        "transactionIndex": hex(log.tx_index),
        "logIndex": hex(log.log_index),
        "removed": log.removed,
    }


def _hint_tx_object(tx: HintTx) -> dict[str, Any]:
    fields = {
        "hash": tx.hash,
        "to": tx.to,
        "functionSelector": None if tx.function_selector is None else _hex(tx.function_selector),
        "callData": None if tx.call_data is None else _hex(tx.call_data),
    }
    return {key: value for key, value in fields.items() if value is not None}


def _hint_log_object(log: HintLog) -> dict[str, Any]:
    return {
        "address": log.address,
        "topics": [_hex(topic) for topic in log.topics],
        "data": _hex(log.data),
    }


def _hint_object(hint: MevShareHint) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "hash": hint.hash,
        "logs": None if hint.logs is None else [_hint_log_object(log) for log in hint.logs],
        "txs": [_hint_tx_object(tx) for tx in hint.txs],
    }
    if hint.mev_gas_price is not None:
        obj["mevGasPrice"] = hex(hint.mev_gas_price)
    if hint.gas_used is not None:
        obj["gasUsed"] = hex(hint.gas_used)
    return obj


def encode_event(event: Event) -> bytes:
    """One journal line (with its newline)."""
    data: dict[str, Any]
    if isinstance(event, PendingTx):
        kind, data = "tx", _tx_object(event)
    elif isinstance(event, NewHead):
        kind = "head"
        data = {
            "header": _block_object(event.header),
            "logs": [_log_object(log) for log in event.logs],
        }
    elif isinstance(event, Reorg):
        kind = "reorg"
        data = {
            "depth": event.depth,
            "commonAncestor": event.common_ancestor,
            "old": list(event.old_hashes),
            "new": list(event.new_hashes),
        }
    else:
        kind, data = "hint", _hint_object(event)
    line = {"t": event.received_at, "src": event.source, "kind": kind, "data": data}
    return orjson.dumps(line) + b"\n"


def _decode_data(kind: Any, data: Any, received_at: int, source: str) -> Event:
    if not isinstance(data, dict):
        raise MalformedError("data is not an object")
    if kind == "tx":
        raw = data.get("raw")
        return PendingTx.from_rpc(
            data,
            source=source,
            received_at=received_at,
            raw=None if raw is None else hex_to_bytes(raw, "raw"),
        )
    if kind == "head":
        logs = data.get("logs")
        if not isinstance(logs, list):
            raise MalformedError("head: logs is not a list")
        header = BlockHeader.from_rpc(data.get("header"), received_at=received_at)
        return NewHead(header, tuple(Log.from_rpc(log) for log in logs), received_at, source)
    if kind == "reorg":
        try:
            return Reorg(
                depth=int(data["depth"]),
                common_ancestor=data["commonAncestor"],
                old_hashes=tuple(data["old"]),
                new_hashes=tuple(data["new"]),
                received_at=received_at,
                source=source,
            )
        except (KeyError, TypeError, ValueError) as error:
            raise MalformedError(f"reorg: {error!r}") from None
    if kind == "hint":
        return parse_hint(data, source=source, received_at=received_at)
    raise MalformedError(f"unknown kind {kind!r:.40}")


def decode_line(line: bytes | str, line_number: int = 0) -> Event:
    """The event of one journal line, or :class:`JournalError`."""
    try:
        record = orjson.loads(line)
    except orjson.JSONDecodeError as error:
        raise JournalError(line_number, f"not JSON: {error}") from None
    if not isinstance(record, dict):
        raise JournalError(line_number, "not a JSON object")
    received_at = record.get("t")
    source = record.get("src")
    if type(received_at) is not int or not isinstance(source, str):
        raise JournalError(line_number, "t must be an int and src a string")
    try:
        return _decode_data(record.get("kind"), record.get("data"), received_at, source)
    except MalformedError as error:
        raise JournalError(line_number, error.reason) from None


def journal_lines(path: str | Path) -> Iterator[tuple[int, Event]]:
    """(line number, event) of every non-blank line in recorded order; :class:`JournalError`
    names a bad line, :class:`JournalTruncated` a last line cut short."""
    with open(path, "rb") as journal:
        for line_number, line in enumerate(journal, start=1):
            if not line.strip():
                continue
            try:
                event = decode_line(line, line_number)
            except JournalError as error:
                if line.endswith(b"\n") or not error.reason.startswith("not JSON"):
                    raise
                raise JournalTruncated(
                    line_number, "cut short (the recorder stopped while writing it)"
                ) from None
            yield line_number, event


def read_journal(path: str | Path) -> Iterator[Event]:
    """Events of a journal file in recorded order (see :func:`journal_lines` for errors)."""
    for _, event in journal_lines(path):
        yield event


class JournalWriter:
    """Appends events to a journal file; use as a context manager or call :meth:`close`."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.written = 0
        self._file: IO[bytes] = open(self.path, "ab")  # noqa: SIM115 (closed by close())

    def write(self, event: Event) -> None:
        self._file.write(encode_event(event))
        self.written += 1
        if self.written % _FLUSH_EVERY == 0:
            self._file.flush()

    async def put(self, event: Event) -> None:
        """:meth:`write` as an :data:`~watcher.source.Emit` sink."""
        self.write(event)

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
