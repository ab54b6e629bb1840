"""``mevbot watch`` (stream pending txs with decoded intents) and ``mevbot decode`` (calldata).

JSON output (``watch --jsonl`` and ``decode``): an intent is an object with ``"type"`` (the
intent class: SwapIntent, PairSwapIntent, LiquidityIntent, AuxiliaryIntent, MulticallIntent,
CommandIntent, V4SwapIntent) and its fields; ``decode`` adds ``"swaps"``, the V2/V3 swaps the
call makes, in order; integers (amounts, deadlines, fees) are decimal strings so that uint256 values
survive any JSON parser; booleans stay booleans, tuples are arrays, bytes are 0x hex.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
from collections.abc import Mapping
from dataclasses import fields, is_dataclass
from typing import IO, Any

import orjson

from chain.intents import Intent, MulticallIntent, SwapIntent
from chain.types import MalformedError, PendingTx, hex_to_bytes, hex_to_int
from mevbot.config import check_stream_url
from mevbot.console import stop_event
from mevbot.preflight import Check, check_reachable
from simulation.pool_kinds import POOL_KINDS
from simulation.state import state_topics
from watcher.decode import MAINNET_ROUTERS, Decoder, RouterKind
from watcher.events import MevShareHint, NewHead, Reorg
from watcher.heads import HeadSource
from watcher.journal import JournalWriter
from watcher.merge import Merger
from watcher.mevshare import FLASHBOTS_MAINNET_STREAM, MevShareSource
from watcher.pending import PendingSource
from watcher.source import Source
from watcher.txpool import TxpoolSource

SOURCES = ("ws-hashes", "ws-full", "txpool", "mevshare")
NODE_TIMEOUT_S = 10.0


def to_json(value: Any) -> Any:
    """A JSON-ready copy of an intent (see the module docstring for the conventions)."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, tuple | list):
        return [to_json(item) for item in value]
    if is_dataclass(value) and not isinstance(value, type):
        body = {field.name: to_json(getattr(value, field.name)) for field in fields(value)}
        return {"type": type(value).__name__, **body}
    raise TypeError(f"cannot render {type(value).__name__} as JSON")


def parse_routers(specs: list[str]) -> Mapping[str, RouterKind]:
    """``ADDR=KIND`` pairs; none given means the mainnet routers."""
    if not specs:
        return MAINNET_ROUTERS
    routers = {}
    kinds = {kind.value: kind for kind in RouterKind}
    for spec in specs:
        address, _, kind = spec.partition("=")
        if kind not in kinds or len(address) != 42 or not address.startswith("0x"):
            raise argparse.ArgumentTypeError(
                f"--router {spec!r}: expected 0xADDRESS=KIND, KIND one of {', '.join(kinds)}"
            )
        routers[address.lower()] = kinds[kind]
    return routers


def _summary(intent: Intent | None) -> str:
    if intent is None:
        return "-"
    method = getattr(intent, "method", "swap")
    return f"{type(intent).__name__}.{method}"


def _tx_line(tx: PendingTx, intent: Intent | None, jsonl: bool) -> str:
    if jsonl:
        record = {
            "kind": "tx",
            "hash": tx.hash,
            "from": tx.sender,
            "to": tx.to,
            "intent": None if intent is None else to_json(intent),
            "source": tx.source,
            "received_at": tx.received_at,
        }
        return orjson.dumps(record).decode()
    return f"{tx.received_at} {tx.source} {tx.hash} {tx.sender} -> {tx.to} {_summary(intent)}"


def _hint_line(hint: MevShareHint, decoder: Decoder, jsonl: bool) -> str:
    first = hint.txs[0] if hint.txs else None
    to = first.to if first else None
    intent = None
    if first is not None and first.call_data is not None:
        intent = decoder.decode(to, first.call_data)
    if jsonl:
        record = {
            "kind": "hint",
            "hash": hint.hash,
            "from": None,
            "to": to,
            "intent": None if intent is None else to_json(intent),
            "source": hint.source,
            "received_at": hint.received_at,
        }
        return orjson.dumps(record).decode()
    return f"{hint.received_at} {hint.source} {hint.hash} (hint) -> {to} {_summary(intent)}"


def _chain_line(event: NewHead | Reorg, jsonl: bool) -> str:
    """A head (or reorg) being journaled: ``--record`` shows what it writes besides txs."""
    if isinstance(event, NewHead):
        fields = {"number": event.number, "hash": event.hash, "logs": len(event.logs)}
        text = f"head {event.number} {event.hash} ({len(event.logs)} logs)"
    else:
        fields = {"depth": event.depth, "common_ancestor": event.common_ancestor}
        text = f"reorg: {event.depth} blocks above {event.common_ancestor} replaced"
    if jsonl:
        kind = "head" if isinstance(event, NewHead) else "reorg"
        record = {"kind": kind, **fields, "source": event.source, "received_at": event.received_at}
        return orjson.dumps(record).decode()
    return f"{event.received_at} {event.source} {text}"


def _build_sources(args: argparse.Namespace) -> list[Source]:
    """The pending sources asked for; with ``--record``, the heads (with the logs state needs,
    as the bot's head source delivers them) too, so that the journal replays."""
    sources: list[Source] = []
    for kind in dict.fromkeys(args.source or ["ws-hashes"]):
        if kind == "mevshare":
            sources.append(MevShareSource(args.mevshare_url))
        elif kind == "txpool":
            sources.append(TxpoolSource(args.rpc))
        else:
            sources.append(PendingSource(args.rpc, mode="full" if kind == "ws-full" else "hashes"))
    if args.record and args.rpc:
        # What a replay's state follows: every registered pool kind's logs, feeds, lending.
        sources.append(HeadSource(args.rpc, topics=state_topics(POOL_KINDS.values())))
    return sources


def _check_rpc(args: argparse.Namespace) -> tuple[str, int] | None:
    """(the problem, the exit code) when ``--rpc`` cannot serve the sources, else None."""
    kinds = set(args.source or ["ws-hashes"])
    streams = sorted(kinds & {"ws-hashes", "ws-full"}) + (["--record"] if args.record else [])
    needs_rpc = sorted(kinds & {"ws-hashes", "ws-full", "txpool"})
    if needs_rpc and not args.rpc:
        return "--rpc URL is needed for " + ", ".join(needs_rpc), 2
    if not args.rpc:
        return None
    if streams:
        try:
            check_stream_url(args.rpc)
        except ValueError as error:
            return f"--rpc {error} (for {', '.join(streams)})", 2
    found = asyncio.run(check_reachable("--rpc", args.rpc, "--rpc", NODE_TIMEOUT_S))
    return (found.line(), 1) if isinstance(found, Check) else None


async def _watch(args: argparse.Namespace, decoder: Decoder, out: IO[str]) -> int:
    merger = Merger(_build_sources(args))
    journal = JournalWriter(args.record) if args.record else None
    printed = 0
    # Our own handlers: a watch started in the background of a script inherits SIGINT ignored,
    # and SIGTERM would otherwise end it without closing the journal or printing the coverage.
    stop = stop_event()
    watching = asyncio.current_task()
    assert watching is not None
    stopper = asyncio.create_task(stop.wait())
    stopper.add_done_callback(lambda done: None if done.cancelled() else watching.cancel())
    try:
        async with contextlib.aclosing(merger.iterate()) as events:
            async for event in events:
                if journal is not None:
                    journal.write(event)
                if isinstance(event, PendingTx):
                    line = _tx_line(event, decoder.decode_tx(event), args.jsonl)
                elif isinstance(event, MevShareHint):
                    line = _hint_line(event, decoder, args.jsonl)
                else:
                    out.write(_chain_line(event, args.jsonl) + "\n")
                    out.flush()
                    continue
                out.write(line + "\n")
                out.flush()
                printed += 1
                if args.count and printed >= args.count:
                    break
    except asyncio.CancelledError:
        if not stop.is_set():
            raise
    finally:
        stopper.cancel()
        if journal is not None:
            journal.close()
        _print_coverage(merger, printed)
    return 0


def _print_coverage(merger: Merger, printed: int) -> None:
    coverage = merger.coverage()
    print(f"mevbot watch: {printed} printed, {coverage.unique} unique events", file=sys.stderr)
    for entry in coverage.sources:
        health = entry.health
        lag = "-" if entry.lag_p50_ms is None else f"{entry.lag_p50_ms:.2f}/{entry.lag_p99_ms:.2f}"
        print(
            f"  {entry.name}: seen {entry.seen} first {entry.first_seen} dup {entry.duplicates}"
            f" lag p50/p99 ms {lag} paths {dict(health.by_path)} reconnects {health.reconnects}"
            f" stale {health.stale} malformed {sum(health.malformed.values())}"
            + (f" last error: {health.last_error}" if health.last_error else ""),
            file=sys.stderr,
        )


def cmd_watch(args: argparse.Namespace) -> int:
    try:
        decoder = Decoder(parse_routers(args.router))
    except argparse.ArgumentTypeError as error:
        print(f"mevbot watch: {error}", file=sys.stderr)
        return 2
    try:
        problem = _check_rpc(args)
        if problem is not None:
            print(f"mevbot watch: {problem[0]}", file=sys.stderr)
            return problem[1]
        return asyncio.run(_watch(args, decoder, sys.stdout))
    except KeyboardInterrupt:
        return 0
    except ValueError as error:
        print(f"mevbot watch: {error}", file=sys.stderr)
        return 2


def _quantity(value: Any, name: str) -> int:
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return hex_to_int(value, name)


def _swaps(intent: Intent | None) -> tuple[SwapIntent, ...]:
    if isinstance(intent, SwapIntent):
        return (intent,)
    return intent.swaps if isinstance(intent, MulticallIntent) else ()


def decode_stream(lines: IO[str], out: IO[str], err: IO[str], decoder: Decoder) -> tuple[int, int]:
    """Decode JSON lines; returns (lines decoded to an intent, bad lines)."""
    decoded = bad = 0
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            # json, not orjson: a value given as a JSON number may exceed 64 bits.
            record = json.loads(line)
            if not isinstance(record, dict):
                raise MalformedError("not a JSON object")
            to = record.get("to")
            if to is not None and not isinstance(to, str):
                raise MalformedError("to: not a string")
            calldata = hex_to_bytes(record.get("input"), "input")
            value = _quantity(record.get("value", 0), "value")
        except (json.JSONDecodeError, MalformedError) as error:
            bad += 1
            print(f"line {number}: {error}", file=err)
            continue
        intent = decoder.decode(to, calldata, value)
        decoded += intent is not None
        record["decoded"] = None if intent is None else to_json(intent)
        record["swaps"] = to_json(_swaps(intent))
        out.write(json.dumps(record, separators=(",", ":")) + "\n")
    return decoded, bad


def cmd_decode(args: argparse.Namespace) -> int:
    try:
        decoder = Decoder(parse_routers(args.router))
    except argparse.ArgumentTypeError as error:
        print(f"mevbot decode: {error}", file=sys.stderr)
        return 2
    try:
        source = sys.stdin if args.file == "-" else open(args.file, encoding="utf-8")  # noqa: SIM115
    except OSError as error:
        print(f"mevbot decode: cannot read {args.file}: {error.strerror}", file=sys.stderr)
        return 2
    try:
        decoded, bad = decode_stream(source, sys.stdout, sys.stderr, decoder)
    finally:
        if source is not sys.stdin:
            source.close()
    stats = decoder.stats
    print(
        f"mevbot decode: {decoded} decoded, {stats.undecoded} undecoded, "
        f"{stats.malformed} malformed calldata, {bad} bad lines",
        file=sys.stderr,
    )
    return 0


def register(commands: Any) -> None:
    router_help = (
        "a router to decode: 0xADDRESS=KIND, KIND one of "
        + ", ".join(kind.value for kind in RouterKind)
        + " (repeatable; default: the mainnet Uniswap/SushiSwap routers)"
    )
    watch = commands.add_parser(
        "watch",
        help="stream pending transactions with decoded intents",
        description=(
            "Watch pending transactions from one or more sources at once (deduplicated, first "
            "seen wins) and print one line per tx (with --record, per head too); coverage per "
            "source is printed on exit. "
            "Ctrl-C or SIGTERM stops it: the journal is closed and the coverage printed, exit 0."
        ),
    )
    watch.add_argument("--rpc", help="node URL: ws://, wss:// or IPC path (http:// for txpool)")
    watch.add_argument(
        "--source",
        action="append",
        choices=SOURCES,
        help="repeatable; default ws-hashes (hash subscription + batched lookups + txpool "
        "reconciliation)",
    )
    watch.add_argument(
        "--mevshare-url",
        default=FLASHBOTS_MAINNET_STREAM,
        help=f"MEV-Share SSE stream (default {FLASHBOTS_MAINNET_STREAM})",
    )
    watch.add_argument(
        "--router", action="append", default=[], metavar="ADDR=KIND", help=router_help
    )
    watch.add_argument("--jsonl", action="store_true", help="one JSON object per line")
    watch.add_argument(
        "--record",
        metavar="FILE",
        help="journal every event to FILE (JSON lines): pending txs, and the heads with their "
        "logs from --rpc, so that `mevbot replay` can replay it",
    )
    watch.add_argument("--count", type=int, default=0, metavar="N", help="exit after N txs")
    watch.set_defaults(handler=cmd_watch)

    decode = commands.add_parser(
        "decode",
        help="decode router calldata from JSON lines",
        description=(
            "Read JSON lines with at least to, input and value (hex or decimal), print each with "
            "a 'decoded' field (null when not decoded) and a 'swaps' field (the V2/V3 swaps it "
            "makes, in order, with amounts, paths and fees). Bad lines are reported on stderr with "
            "their line number and skipped."
        ),
    )
    decode.add_argument("file", nargs="?", default="-", help="input file (default: - = stdin)")
    decode.add_argument(
        "--router", action="append", default=[], metavar="ADDR=KIND", help=router_help
    )
    decode.set_defaults(handler=cmd_decode)
