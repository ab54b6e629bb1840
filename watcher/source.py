"""The shape every watcher source shares: ``run(emit)`` under supervision, counters, iteration.

A source's :meth:`Source.run` runs until cancelled: it connects, subscribes, reconnects with
backoff, and awaits ``emit(event)`` for each event (awaiting lets a slow consumer push back).
``async for event in source`` runs it in a task behind a bounded queue. :class:`SourceStats`
holds what a user needs to trust the stream: what arrived by which path, reconnects, stale
subscriptions, drops and malformed input by reason.
"""

from __future__ import annotations

import asyncio
import contextlib
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from chain.errors import ChainError
from chain.rpc import Rpc, StreamRpc, connect
from chain.types import MalformedError, PendingTx
from watcher.events import Event
from watcher.recent import RecentHashes
from watcher.resilience import Backoff, ReasonCounter, log

Emit = Callable[[Event], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class SourceHealth:
    """A frozen copy of :class:`SourceStats` for display and tests."""

    name: str
    connected: bool
    delivered: int
    by_path: MappingProxyType[str, int]
    reconnects: int
    connect_failures: int
    stale: int
    subscription_dropped: int
    lookup_missing: int
    lookup_failed: int
    malformed: MappingProxyType[str, int]
    last_error: str


@dataclass(slots=True)
class SourceStats:
    """Live counters of one source.

    ``by_path`` splits ``delivered`` by how an event arrived: ``subscription`` (pushed by the
    node), ``lookup`` (a hash looked up), ``txpool`` (recovered by txpool reconciliation or
    backfill), ``poll``, ``stream``. ``subscription_dropped`` counts notifications our client
    discarded from a full queue; ``lookup_missing`` hashes the node no longer had when asked.
    """

    name: str
    connected: bool = False
    delivered: int = 0
    by_path: Counter[str] = field(default_factory=Counter)
    reconnects: int = 0
    connect_failures: int = 0
    stale: int = 0
    subscription_dropped: int = 0
    lookup_missing: int = 0
    lookup_failed: int = 0
    malformed: ReasonCounter = field(init=False)
    last_error: str = ""

    def __post_init__(self) -> None:
        self.malformed = ReasonCounter(f"{self.name}: malformed input")

    def snapshot(self) -> SourceHealth:
        return SourceHealth(
            name=self.name,
            connected=self.connected,
            delivered=self.delivered,
            by_path=MappingProxyType(dict(self.by_path)),
            reconnects=self.reconnects,
            connect_failures=self.connect_failures,
            stale=self.stale,
            subscription_dropped=self.subscription_dropped,
            lookup_missing=self.lookup_missing,
            lookup_failed=self.lookup_failed,
            malformed=MappingProxyType(dict(self.malformed.counts)),
            last_error=self.last_error,
        )


class Source(ABC):
    """Base of the sources: a name, counters, and iteration over :meth:`run`."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.stats = SourceStats(name)

    @abstractmethod
    async def run(self, emit: Emit) -> None:
        """Deliver events to ``emit`` until cancelled, reconnecting as needed."""

    async def iterate(self, capacity: int = 10_000) -> AsyncIterator[Event]:
        """Events as they arrive; a full queue makes the source wait (it never drops here)."""
        queue: asyncio.Queue[Event] = asyncio.Queue(capacity)
        task = asyncio.create_task(self.run(queue.put), name=f"source {self.name}")
        try:
            while True:
                getter = asyncio.ensure_future(queue.get())
                done, _ = await asyncio.wait({getter, task}, return_when=asyncio.FIRST_COMPLETED)
                if getter in done:
                    yield getter.result()
                    continue
                getter.cancel()
                task.result()  # run() ended: re-raise what ended it
                return
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def __aiter__(self) -> AsyncIterator[Event]:
        return self.iterate()

    async def supervise(
        self,
        url: str,
        session: Callable[[Rpc], Awaitable[None]],
        backoff: Backoff,
        *,
        call_timeout: float,
        streaming: bool,
    ) -> None:
        """Connect, run ``session`` until the connection fails, back off, repeat; forever.

        ``session`` ends by raising a :class:`ChainError` (lost, timed out, stale); the error is
        recorded in ``last_error``. ``streaming`` sources need ``eth_subscribe`` (WS or IPC).
        """
        stats = self.stats
        first = True
        while True:
            if not first:
                stats.reconnects += 1
                await backoff.sleep()
            first = False
            try:
                # queue_capacity bounds the early-notification buffer; subscriptions set their own.
                rpc = await connect(url, timeout=call_timeout, queue_capacity=64)
            except ChainError as error:
                stats.connect_failures += 1
                stats.last_error = describe(error)
                continue
            if streaming and not isinstance(rpc, StreamRpc):
                await rpc.close()
                raise ValueError(f"{self.name}: {url}: subscriptions need ws://, wss:// or IPC")
            try:
                await session(rpc)
            except ChainError as error:
                stats.last_error = describe(error)
                log.info("%s: %s; reconnecting", self.name, stats.last_error)
            finally:
                stats.connected = False
                if isinstance(rpc, StreamRpc) and rpc.malformed_frames:
                    stats.malformed.add("frame is not JSON-RPC", rpc.malformed_frames)
                await rpc.close()


class TxEmitter:
    """Emits each pending tx once per source (bounded memory) and counts the path it came by."""

    def __init__(self, stats: SourceStats, emit: Emit, seen: RecentHashes) -> None:
        self._stats = stats
        self._emit = emit
        self.seen = seen

    async def __call__(self, tx: PendingTx, path: str) -> bool:
        if not self.seen.add(tx.hash):
            return False
        try:
            await self._emit(tx)
        except asyncio.CancelledError:
            # Not delivered: forget it, so the backfill after a reconnect can deliver it.
            self.seen.discard(tx.hash)
            raise
        stats = self._stats
        stats.delivered += 1
        stats.by_path[path] += 1
        return True


def describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"[:300]


def parse_tx(stats: SourceStats, obj: Any, source: str, received_at: int) -> PendingTx | None:
    """A :class:`PendingTx` from an untrusted tx object, or None (counted with its reason)."""
    try:
        return PendingTx.from_rpc(obj, source=source, received_at=received_at)
    except MalformedError as error:
        stats.malformed.add(error.reason)
        return None
