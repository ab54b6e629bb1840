"""Bounded intake between the watcher and the consumers: sheds the least valuable work first.

At most ``capacity`` pending txs wait. Each tx is decoded once (the intent travels with it) and
judged by ``relevant(tx, intent)`` (does it touch a tracked pool, feed or market?). When full:
an incoming or queued *irrelevant* tx goes first (the oldest irrelevant one is evicted so the
queue holds the freshest); only when every queued tx is relevant does the oldest relevant one go.
Sheds are counted by reason (``irrelevant``, ``relevant``). A node delivers in clumps (a stall,
then a block's worth of txs at once) faster than any consumer on another thread can be
scheduled: when every slot holds a relevant tx, ``offer`` on another thread than the consumer's
waits up to ``patience_s`` for the consumer to take one before the oldest is shed (and, once a
wait ran out, waits no more until the consumer takes something). Heads, reorgs and hints are control
events: they are never displaced by txs and are delivered first, in their own bounded queue
(overflow drops the oldest, counted as ``control``). Consumers receive :class:`Admitted` items:
control events first, then relevant txs, then irrelevant ones, FIFO within each.

``offer`` may be called from another thread (the bot reads the node on a thread of its own, so
that its engine's work never delays draining the node's stream): the queues are guarded by a
lock and the consumer's loop is woken with at most one pending callback, so a consumer that
falls behind costs no memory beyond the bounded queues.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass

from chain.intents import AuxiliaryIntent, Intent
from chain.types import PendingTx
from watcher.decode import Decoder
from watcher.events import Event

Relevance = Callable[[PendingTx, Intent | None], bool]


def decoded_trade(tx: PendingTx, intent: Intent | None) -> bool:
    """Default relevance: the decoder recognised a call that can move a pool."""
    return intent is not None and not isinstance(intent, AuxiliaryIntent)


@dataclass(frozen=True, slots=True)
class Admitted:
    """An event let through; ``intent`` is the decoded call for pending txs (None otherwise),
    ``decode_ms`` what decoding it took, ``at`` the ``time.monotonic_ns()`` it was let in (the
    hand-over to the consumer starts)."""

    event: Event
    intent: Intent | None
    relevant: bool
    decode_ms: float = 0.0
    at: int = 0


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


class Intake:
    """``offer`` never blocks (it sheds); ``get`` waits for the next admitted event."""

    def __init__(
        self,
        capacity: int,
        decoder: Decoder,
        relevant: Relevance = decoded_trade,
        control_capacity: int = 1024,
        patience_s: float = 0.5,
    ) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self.decoder = decoder
        self.relevant = relevant
        self.patience_s = patience_s
        self.offered = 0
        # Pending txs offered, by whether the decoder recognised them (each is decoded once).
        self.decoded = 0
        self.undecoded = 0
        self.shed: Counter[str] = Counter()
        self.waits = 0  # offers that waited for the consumer to make room
        self._relevant: deque[Admitted] = deque()
        self._irrelevant: deque[Admitted] = deque()
        self._control: deque[Admitted] = deque(maxlen=control_capacity)
        self._ready = asyncio.Event()
        self._lock = threading.Lock()
        self._room = threading.Condition(self._lock)  # the consumer took a relevant tx
        self._consumer_stuck = False
        self._loop: asyncio.AbstractEventLoop | None = None  # the consumer's, once it waits
        self._wakeup_pending = False

    def __len__(self) -> int:
        return len(self._relevant) + len(self._irrelevant) + len(self._control)

    def offer(self, event: Event) -> bool:
        """Queue ``event`` unless it is the least valuable thing here; False when shed."""
        if not isinstance(event, PendingTx):
            with self._lock:
                self.offered += 1
                if len(self._control) == self._control.maxlen:
                    self.shed["control"] += 1
                self._control.append(Admitted(event, None, True, at=time.monotonic_ns()))
            self._wake()
            return True
        start = time.monotonic_ns()
        intent = self.decoder.decode_tx(event)
        decode_ms = (time.monotonic_ns() - start) / 1e6
        is_relevant = self.relevant(event, intent)
        if is_relevant:
            self._await_room()
        with self._lock:
            self.offered += 1
            if intent is None:
                self.undecoded += 1
            else:
                self.decoded += 1
            if len(self._relevant) + len(self._irrelevant) >= self.capacity:
                if self._irrelevant:
                    self._irrelevant.popleft()
                    self.shed["irrelevant"] += 1
                elif not is_relevant:
                    self.shed["irrelevant"] += 1
                    return False
                else:
                    self._relevant.popleft()
                    self.shed["relevant"] += 1
            admitted = Admitted(event, intent, is_relevant, decode_ms, time.monotonic_ns())
            (self._relevant if is_relevant else self._irrelevant).append(admitted)
        self._wake()
        return True

    def _await_room(self) -> None:
        """Give a consumer on another thread the chance to take a relevant tx when nothing else
        could make room for one."""
        if self._loop is None or self.patience_s <= 0 or _running_loop() is self._loop:
            return
        with self._lock:
            if self._consumer_stuck or len(self._relevant) < self.capacity:
                return
            self.waits += 1
        self._wake()
        with self._room:
            if not self._room.wait_for(
                lambda: len(self._relevant) < self.capacity, self.patience_s
            ):
                self._consumer_stuck = True

    def _wake(self) -> None:
        loop = self._loop
        if loop is None or _running_loop() is loop:
            self._ready.set()
            return
        with self._lock:
            if self._wakeup_pending:
                return
            self._wakeup_pending = True
        loop.call_soon_threadsafe(self._woken)

    def _woken(self) -> None:
        with self._lock:
            self._wakeup_pending = False
        self._ready.set()

    async def put(self, event: Event) -> None:
        """:meth:`offer` as an :data:`~watcher.source.Emit` sink."""
        self.offer(event)

    def get_nowait(self) -> Admitted | None:
        with self._lock:
            self._consumer_stuck = False
            for queue in (self._control, self._relevant, self._irrelevant):
                if queue:
                    if queue is self._relevant:
                        self._room.notify()
                    return queue.popleft()
            self._ready.clear()
        return None

    async def get(self) -> Admitted:
        self._loop = asyncio.get_running_loop()
        while (item := self.get_nowait()) is None:
            await self._ready.wait()
        return item
