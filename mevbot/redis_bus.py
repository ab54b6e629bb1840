"""The event bus across processes: Redis Streams from watcher processes to worker processes.

Two streams per namespace, each entry one field ``e`` holding one journal line
(:func:`watcher.journal.encode_event`), so the bus, the journal and replay share one format:

* ``{ns}:bus:pending`` carries pending txs (and MEV-Share hints). Workers read it through one
  consumer *group*, so each entry goes to one worker (:class:`GroupConsumer`).
* ``{ns}:bus:heads`` carries heads and reorgs. Every worker needs every head for its state, so
  each reads the whole stream on its own, with no group, from the last id it saw
  (:class:`HeadReader`).

Delivery is at-least-once with idempotent effects (the handler claims its effect's key in
:class:`~mevbot.redis_store.RedisKeeperStore` before acting):

* An entry is acknowledged (``XACK``) right after its handler returned; a handler that raises
  leaves it pending, and it is handled again later: a group never handles an entry twice unless
  a handler failed or a worker died while holding it.
* Entries left pending longer than ``claim_idle_s`` (a dead worker's, or a failed handler's) are
  taken over with ``XAUTOCLAIM`` by whichever worker looks first; one delivered more than
  ``max_deliveries`` times is acknowledged and counted as dead, so a poison entry cannot loop.
* Streams are bounded: every publish trims with ``XTRIM MAXLEN ~`` and counts what it trimmed.
  Entries trimmed before a worker handled them are counted as lost.
* Redis going away (a restart, a network cut) never ends a loop: publishers retry with backoff up
  to ``publish_timeout_s``, then raise :class:`BusUnavailable` for the caller to count and drop;
  consumers back off and reconnect for as long as it takes. A restarted Redis without
  persistence comes back empty: the group is created again (from the stream's start, so nothing
  published after the restart is missed) and head readers start from the new stream's start.

Needs Redis 7 or later (``XAUTOCLAIM`` reporting deleted entries, ``XINFO GROUPS`` lag).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from chain.envelope import signed_envelope
from chain.types import PendingTx
from mevbot.redis_store import raise_if_cancelled
from watcher.events import Event, NewHead, Reorg
from watcher.journal import JournalError, decode_line, encode_event
from watcher.resilience import Backoff, ReasonCounter

log = logging.getLogger("mevbot.redis_bus")

FIELD = b"e"
REDIS_DOWN = (RedisConnectionError, RedisTimeoutError, OSError)

Handler = Callable[[Event], Awaitable[None]]
Entry = tuple[bytes, dict[bytes, bytes] | None]


class BusUnavailable(ConnectionError):
    """Redis did not take a publish within the publish timeout."""


@dataclass(frozen=True, slots=True)
class StreamNames:
    pending: str
    heads: str

    @classmethod
    def for_namespace(cls, namespace: str) -> StreamNames:
        return cls(f"{namespace}:bus:pending", f"{namespace}:bus:heads")


@dataclass(frozen=True, slots=True)
class GroupBacklog:
    """A consumer group's work not yet done: ``lag`` entries never delivered (None when Redis
    cannot tell, after entries were trimmed), ``pending`` delivered but not acknowledged."""

    lag: int | None
    pending: int
    consumers: int


def _id_key(entry_id: bytes | str) -> tuple[int, int]:
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)


def _is_nogroup(error: ResponseError) -> bool:
    return str(error).startswith("NOGROUP")


def _decode_entry(fields: dict[bytes, bytes], malformed: ReasonCounter) -> Event | None:
    """The event of a stream entry, or None (counted in ``malformed`` with the reason)."""
    line = fields.get(FIELD)
    if line is None:
        malformed.add("no event field")
        return None
    try:
        return decode_line(line)
    except JournalError as error:
        malformed.add(error.reason)
        return None


def _with_envelope(event: Event) -> Event:
    """A pending tx with its signed bytes attached when they can be rebuilt: the journal line
    keeps ``raw`` but not the signature fields, and a worker needs the bytes to backrun it."""
    if isinstance(event, PendingTx) and event.raw is None:
        raw = signed_envelope(event)
        if raw is not None:
            return replace(event, raw=raw)
    return event


class RedisBus:
    """Publishes events to the streams, and makes the consumers that read them."""

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        namespace: str = "mevbot",
        max_pending: int = 100_000,
        max_heads: int = 10_000,
        publish_timeout_s: float = 10.0,
    ) -> None:
        self.redis = client
        self.streams = StreamNames.for_namespace(namespace)
        self.max_len = {self.streams.pending: max_pending, self.streams.heads: max_heads}
        self.publish_timeout_s = publish_timeout_s
        self.published: Counter[str] = Counter()
        self.trimmed: Counter[str] = Counter()
        self.publish_retries = 0

    def stream_of(self, event: Event) -> str:
        return self.streams.heads if isinstance(event, NewHead | Reorg) else self.streams.pending

    async def publish(self, event: Event) -> None:
        await self.publish_many((event,))

    async def publish_many(self, events: Iterable[Event]) -> None:
        """Append ``events`` in order (one round trip), then trim each stream touched."""
        lines = [(self.stream_of(e), encode_event(_with_envelope(e))) for e in events]
        streams = sorted({stream for stream, _ in lines})
        backoff = Backoff(base=0.02, cap=0.5)
        deadline = time.monotonic() + self.publish_timeout_s
        while True:
            try:
                async with self.redis.pipeline(transaction=True) as pipe:
                    for stream, line in lines:
                        pipe.xadd(stream, {FIELD: line})
                    for stream in streams:
                        pipe.xtrim(stream, maxlen=self.max_len[stream], approximate=True)
                    results = await pipe.execute()
                raise_if_cancelled()
                break
            except REDIS_DOWN as error:
                if time.monotonic() >= deadline:
                    raise BusUnavailable(f"redis bus: publish failed: {error}") from error
                self.publish_retries += 1
                await backoff.sleep()
        self.published.update(stream for stream, _ in lines)
        for stream, trimmed in zip(streams, results[len(lines) :], strict=True):
            self.trimmed[stream] += trimmed

    async def ensure_group(self, group: str) -> None:
        """Create ``group`` on the pending stream (and the stream) if missing; a new group starts
        at the stream's first entry, so nothing already published is skipped."""
        try:
            await self.redis.xgroup_create(self.streams.pending, group, id="0", mkstream=True)
        except ResponseError as error:
            if not str(error).startswith("BUSYGROUP"):
                raise

    async def backlog(self, group: str) -> GroupBacklog:
        for info in await self.redis.xinfo_groups(self.streams.pending):
            if info["name"].decode() == group:
                return GroupBacklog(info["lag"], info["pending"], info["consumers"])
        return GroupBacklog(0, 0, 0)

    async def length(self, stream: str) -> int:
        return int(await self.redis.xlen(stream))

    def worker(self, group: str, consumer: str, handler: Handler, **options: Any) -> GroupConsumer:
        return GroupConsumer(self, group, consumer, handler, **options)

    def heads(self, **options: Any) -> HeadReader:
        return HeadReader(self, **options)


class GroupConsumer:
    """One worker of a consumer group on the pending stream: :meth:`run` handles entries until
    cancelled. ``consumer`` names this worker; a restarted worker should keep its name, so that
    it first takes back what it held."""

    def __init__(
        self,
        bus: RedisBus,
        group: str,
        consumer: str,
        handler: Handler,
        *,
        batch: int = 64,
        block_s: float = 1.0,
        claim_idle_s: float = 30.0,
        max_deliveries: int = 5,
    ) -> None:
        self.bus = bus
        self.redis = bus.redis
        self.stream = bus.streams.pending
        self.group = group
        self.consumer = consumer
        self.handler = handler
        self.batch = batch
        self.block_ms = max(1, int(block_s * 1000))
        self.claim_idle_ms = max(1, int(claim_idle_s * 1000))
        self.claim_every_s = claim_idle_s / 2
        self.max_deliveries = max_deliveries
        # handled, failed, reclaimed, lost (trimmed before handled), dead, reconnects, regroups
        self.counts: Counter[str] = Counter()
        self.malformed = ReasonCounter(f"redis bus {group}/{consumer}: malformed entry")
        self.handler_errors = ReasonCounter(f"redis bus {group}/{consumer}: handler failed")
        self._next_claim = 0.0

    async def run(self) -> None:
        backoff = Backoff(base=0.05, cap=1.0)
        resume = True
        while True:
            raise_if_cancelled()
            try:
                if resume:
                    await self.bus.ensure_group(self.group)
                    await self._take_back_own()
                    resume = False
                if time.monotonic() >= self._next_claim:
                    await self._reclaim()
                    self._next_claim = time.monotonic() + self.claim_every_s
                await self._handle(await self._read(">"))
                backoff.reset()
            except ResponseError as error:
                if not _is_nogroup(error):
                    raise
                self.counts["regroups"] += 1  # the stream is gone: Redis restarted empty
                resume = True
            except REDIS_DOWN as error:
                self.counts["reconnects"] += 1
                log.warning("redis bus %s/%s: %s; reconnecting", self.group, self.consumer, error)
                resume = True
                await backoff.sleep()

    async def _read(self, start: str) -> list[Entry]:
        reply = await self.redis.xreadgroup(
            self.group,
            self.consumer,
            {self.stream: start},
            count=self.batch,
            block=self.block_ms if start == ">" else None,
        )
        return reply[0][1] if reply else []

    async def _take_back_own(self) -> None:
        """Handle what this consumer name was given but never acknowledged (a lost reply, or a
        previous life of this worker)."""
        start = "0"
        while entries := await self._read(start):
            raise_if_cancelled()
            start = entries[-1][0].decode()
            await self._handle(entries)

    async def _reclaim(self) -> None:
        """Take over entries idle longer than ``claim_idle_s``, whoever held them."""
        cursor = "0-0"
        while True:
            cursor_id, entries, deleted = await self.redis.xautoclaim(
                self.stream, self.group, self.consumer, self.claim_idle_ms, cursor, self.batch
            )
            raise_if_cancelled()
            self.counts["lost"] += len(deleted)
            if entries:
                self.counts["reclaimed"] += len(entries)
                await self._handle(await self._drop_dead(entries))
            cursor = cursor_id.decode()
            if cursor == "0-0":
                return

    async def _drop_dead(self, entries: list[Entry]) -> list[Entry]:
        """Acknowledge (and count) entries delivered more than ``max_deliveries`` times."""
        pending = await self.redis.xpending_range(
            self.stream,
            self.group,
            min=entries[0][0],
            max=entries[-1][0],
            count=len(entries),
            consumername=self.consumer,
        )
        deliveries = {p["message_id"]: p["times_delivered"] for p in pending}
        alive = []
        for entry in entries:
            if deliveries.get(entry[0], 0) > self.max_deliveries:
                self.counts["dead"] += 1
                log.error(
                    "redis bus %s: entry %s dropped after %d deliveries",
                    self.group,
                    entry[0].decode(),
                    deliveries[entry[0]],
                )
                await self.redis.xack(self.stream, self.group, entry[0])
            else:
                alive.append(entry)
        return alive

    async def _handle(self, entries: Sequence[Entry]) -> None:
        for entry_id, fields in entries:
            raise_if_cancelled()
            if not fields:
                self.counts["lost"] += 1  # trimmed away while pending
            elif (event := _decode_entry(fields, self.malformed)) is not None and not (
                await self._run_handler(event)
            ):
                continue  # left pending: handled again after claim_idle_s
            await self.redis.xack(self.stream, self.group, entry_id)

    async def _run_handler(self, event: Event) -> bool:
        try:
            await self.handler(event)
        except asyncio.CancelledError:
            raise
        except Exception as error:  # a failed handler never ends the worker
            self.counts["failed"] += 1
            self.handler_errors.add(f"{type(error).__name__}: {error}")
            return False
        self.counts["handled"] += 1
        return True


class HeadReader:
    """Every head and reorg on the heads stream, in order, for one worker: iterate it.

    ``start_id="$"`` starts with the next head published; ``"0"`` with the oldest one kept.
    """

    def __init__(
        self,
        bus: RedisBus,
        *,
        start_id: str = "$",
        batch: int = 100,
        block_s: float = 1.0,
    ) -> None:
        self.redis = bus.redis
        self.stream = bus.streams.heads
        self.last_id = start_id
        self.batch = batch
        self.block_ms = max(1, int(block_s * 1000))
        self.counts: Counter[str] = Counter()  # read, reconnects, restarts
        self.malformed = ReasonCounter(f"redis bus {self.stream}: malformed entry")

    def __aiter__(self) -> AsyncIterator[NewHead | Reorg]:
        return self._events()

    async def _events(self) -> AsyncIterator[NewHead | Reorg]:
        backoff = Backoff(base=0.05, cap=1.0)
        resume = True
        while True:
            raise_if_cancelled()
            try:
                if resume:
                    self.last_id = await self._resume_point()
                    resume = False
                reply = await self.redis.xread(
                    {self.stream: self.last_id}, count=self.batch, block=self.block_ms
                )
                backoff.reset()
            except REDIS_DOWN:
                self.counts["reconnects"] += 1
                resume = True
                await backoff.sleep()
                continue
            for entry_id, fields in reply[0][1] if reply else ():
                self.last_id = entry_id.decode()
                event = _decode_entry(fields, self.malformed)
                if event is None:
                    continue
                if isinstance(event, NewHead | Reorg):
                    self.counts["read"] += 1
                    yield event
                else:
                    self.malformed.add(f"not a head or reorg: {type(event).__name__}")

    async def _resume_point(self) -> str:
        """Where to read from after (re)connecting: ``$`` becomes the stream's newest id; a
        stream that is gone or went back (Redis restarted empty) is read from its start."""
        try:
            newest = (await self.redis.xinfo_stream(self.stream))["last-generated-id"].decode()
        except ResponseError:  # no such stream (yet, or any more)
            newest = None
        if self.last_id == "$":
            return newest or "0-0"
        if newest is None or _id_key(newest) < _id_key(self.last_id):
            if _id_key(self.last_id) != (0, 0):
                self.counts["restarts"] += 1
            return "0-0"
        return self.last_id
