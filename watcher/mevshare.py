"""The MEV-Share event stream: Server-Sent Events over an HTTP GET, parsed into hints.

Wire format (Flashbots docs, event-stream.mdx and ``mev-share/specs/events/v0.1.md``): lines of
``data: {json}`` separated by blank lines, and a ``:ping`` comment every 15 s when nothing else
was sent. An event is ``{hash, logs, txs, mevGasPrice?, gasUsed?}``: ``hash`` is the double hash
(keccak of the tx or bundle hash); ``logs`` and ``txs`` may be null; every tx field (``hash``,
``to``, ``functionSelector``, ``callData``) is optional. The SSE fields ``id`` (sent back as
``Last-Event-ID`` on reconnect) and ``retry`` (the server's reconnect delay in ms) are honoured as
the SSE specification says; multi-line ``data`` is joined with newlines; lines end with LF or
CRLF.

Reconnect: when the stream ends, errs, or is silent for ``stale_after`` seconds (three missed
pings by default), the source waits the server's ``retry`` delay or a jittered exponential
backoff, whichever is longer, and reconnects. Bad events are counted by reason, never fatal.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson

from chain.types import MalformedError, hex_to_bytes, hex_to_int, norm_address, norm_hash
from watcher.events import HintLog, HintTx, MevShareHint
from watcher.resilience import Backoff, log
from watcher.source import Emit, Source, describe

FLASHBOTS_MAINNET_STREAM = "https://mev-share.flashbots.net"
# A line longer than this is garbage, not an event; it is counted and the connection dropped.
MAX_LINE_BYTES = 1 << 20


class StreamBroken(Exception):
    """The SSE connection cannot continue (status, oversize line, silence)."""


def _optional(obj: dict[str, Any], key: str, parse: Any, name: str) -> Any:
    value = obj.get(key)
    return None if value is None else parse(value, name)


def _hint_log(obj: Any) -> HintLog:
    if not isinstance(obj, dict):
        raise MalformedError("hint log: not an object")
    topics = obj.get("topics")
    if not isinstance(topics, list):
        raise MalformedError("hint log: topics is not a list")
    return HintLog(
        address=norm_address(obj.get("address"), "log address"),
        topics=tuple(hex_to_bytes(topic, "log topic") for topic in topics),
        data=hex_to_bytes(obj.get("data", "0x"), "log data"),
    )


def _hint_tx(obj: Any) -> HintTx:
    if not isinstance(obj, dict):
        raise MalformedError("hint tx: not an object")
    selector = _optional(obj, "functionSelector", hex_to_bytes, "functionSelector")
    if selector is not None and len(selector) != 4:
        raise MalformedError(f"hint tx: functionSelector of {len(selector)} bytes")
    return HintTx(
        hash=_optional(obj, "hash", norm_hash, "tx hash"),
        to=_optional(obj, "to", norm_address, "to"),
        function_selector=selector,
        call_data=_optional(obj, "callData", hex_to_bytes, "callData"),
    )


def parse_hint(obj: Any, *, source: str, received_at: int) -> MevShareHint:
    """A :class:`MevShareHint` from a decoded event, or :class:`MalformedError`."""
    if not isinstance(obj, dict):
        raise MalformedError(f"event: expected an object, got {type(obj).__name__}")
    logs = obj.get("logs")
    txs = obj.get("txs")
    if logs is not None and not isinstance(logs, list):
        raise MalformedError("event: logs is neither a list nor null")
    if txs is not None and not isinstance(txs, list):
        raise MalformedError("event: txs is neither a list nor null")
    return MevShareHint(
        hash=norm_hash(obj.get("hash"), "event hash"),
        logs=None if logs is None else tuple(_hint_log(item) for item in logs),
        txs=() if txs is None else tuple(_hint_tx(item) for item in txs),
        mev_gas_price=_optional(obj, "mevGasPrice", hex_to_int, "mevGasPrice"),
        gas_used=_optional(obj, "gasUsed", hex_to_int, "gasUsed"),
        received_at=received_at,
        source=source,
    )


class MevShareSource(Source):
    """Supervised SSE client of a MEV-Share event stream."""

    def __init__(
        self,
        url: str = FLASHBOTS_MAINNET_STREAM,
        *,
        name: str = "mevshare",
        stale_after: float = 45.0,
        connect_timeout: float = 10.0,
        backoff: Backoff | None = None,
    ) -> None:
        super().__init__(name)
        self.url = url
        self.stale_after = stale_after
        self.connect_timeout = connect_timeout
        self.pings = 0
        self.last_event_id: str | None = None
        self.retry_seconds: float | None = None
        self._backoff = backoff or Backoff(base=0.5, cap=30.0)

    async def run(self, emit: Emit) -> None:
        stats = self.stats
        async with aiohttp.ClientSession() as session:
            first = True
            while True:
                if not first:
                    stats.reconnects += 1
                    delay = max(self.retry_seconds or 0.0, self._backoff.next_delay())
                    await asyncio.sleep(delay)
                first = False
                try:
                    await self._stream(session, emit)
                    stats.last_error = "stream ended by the server"
                except (aiohttp.ClientError, OSError, TimeoutError, StreamBroken) as error:
                    stats.last_error = describe(error)
                finally:
                    stats.connected = False
                log.info("%s: %s; reconnecting", self.name, stats.last_error)

    async def _stream(self, session: aiohttp.ClientSession, emit: Emit) -> None:
        headers = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}
        if self.last_event_id is not None:
            headers["Last-Event-ID"] = self.last_event_id
        async with asyncio.timeout(self.connect_timeout):
            response = await session.get(
                self.url, headers=headers, timeout=aiohttp.ClientTimeout(total=None)
            )
        async with response:
            if response.status != 200:
                self.stats.connect_failures += 1
                raise StreamBroken(f"HTTP {response.status} from {self.url}")
            self.stats.connected = True
            data: list[str] = []
            async for line in self._lines(response):
                if line:
                    self._field(line, data)
                elif data:
                    await self._dispatch("\n".join(data), emit)
                    data.clear()

    async def _lines(self, response: aiohttp.ClientResponse) -> AsyncIterator[str]:
        """Decoded lines (without their end), waiting at most ``stale_after`` for bytes."""
        buffer = b""
        while True:
            try:
                async with asyncio.timeout(self.stale_after):
                    chunk = await response.content.readany()
            except TimeoutError:
                self.stats.stale += 1
                raise StreamBroken(f"no bytes for {self.stale_after:g} s (pings missing)") from None
            if not chunk:
                return
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            if len(buffer) > MAX_LINE_BYTES:
                self.stats.malformed.add(f"line longer than {MAX_LINE_BYTES} bytes")
                raise StreamBroken("oversize line")
            for line in lines:
                yield line.removesuffix(b"\r").decode("utf-8", errors="replace")

    def _field(self, line: str, data: list[str]) -> None:
        if line.startswith(":"):
            self.pings += 1
            return
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            data.append(value)
        elif name == "id" and "\0" not in value:
            self.last_event_id = value
        elif name == "retry" and value.isdigit():
            self.retry_seconds = int(value) / 1000

    async def _dispatch(self, text: str, emit: Emit) -> None:
        received_at = time.monotonic_ns()
        stats = self.stats
        try:
            hint = parse_hint(orjson.loads(text), source=self.name, received_at=received_at)
        except orjson.JSONDecodeError:
            stats.malformed.add("event data is not JSON")
            return
        except MalformedError as error:
            stats.malformed.add(error.reason)
            return
        self._backoff.reset()
        stats.delivered += 1
        stats.by_path["stream"] += 1
        await emit(hint)
