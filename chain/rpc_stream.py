"""The multiplexing core of the streaming transports (WebSocket, IPC): many calls, one connection.

A reader task takes each incoming message, resolves the caller's future by integer id (batch
answers by any of their ids) or routes ``eth_subscription`` notifications to their
:class:`Subscription`. Garbage is counted in ``malformed_frames`` and skipped; only the loss of
the transport ends the client, and then every pending call and every subscription fails with
:class:`~chain.errors.ConnectionLost`. Reconnecting is the caller's business.
"""

from __future__ import annotations

import asyncio
import contextlib
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Sequence
from typing import Any, Self

import orjson

from chain.errors import ConnectionLost, MalformedResponse, RpcTimeout
from chain.rpc_codec import BatchCall, Params, batch_outcomes, encode_batch, encode_call, result_of

DEFAULT_TIMEOUT = 10.0
DEFAULT_QUEUE_CAPACITY = 10_000
# Notifications for subscription ids we do not know yet (the eth_subscribe answer is still on its
# way to the caller) are held, at most this many ids, oldest id evicted first.
_EARLY_IDS = 16


class Subscription:
    """An ``eth_subscribe`` stream: an async iterator of notification payloads.

    The queue holds at most ``capacity`` payloads; when full, the oldest is dropped and counted in
    ``dropped``. Iteration ends with :class:`StopAsyncIteration` after :meth:`unsubscribe` or
    ``close()``, and raises :class:`ConnectionLost` (after the queued payloads) when the transport
    drops. Meant for one consumer.
    """

    def __init__(self, client: StreamRpc, subscription_id: str, kind: str, capacity: int) -> None:
        self.id = subscription_id
        self.kind = kind
        self.capacity = capacity
        self.received = 0
        self.dropped = 0
        self._client = client
        self._queue: deque[Any] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._ended = False
        self._error: ConnectionLost | None = None

    def __repr__(self) -> str:
        return f"Subscription({self.kind!r}, id={self.id!r}, queued={len(self._queue)})"

    @property
    def queued(self) -> int:
        return len(self._queue)

    def _push(self, payload: Any) -> None:
        self.received += 1
        if len(self._queue) >= self.capacity:
            self._queue.popleft()
            self.dropped += 1
        self._queue.append(payload)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _end(self, error: ConnectionLost | None) -> None:
        if self._ended:
            return
        self._ended = True
        self._error = error
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Any:
        while not self._queue:
            if self._ended:
                if self._error is not None:
                    raise ConnectionLost(str(self._error))
                raise StopAsyncIteration
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._queue.popleft()

    async def unsubscribe(self, *, timeout: float | None = None) -> None:
        """End the stream here and at the node (if connected); queued payloads stay readable."""
        self._end(None)
        if self._client._subscriptions.pop(self.id, None) is not None and self._client.connected:
            await self._client.call("eth_unsubscribe", (self.id,), timeout=timeout)


class StreamRpc(ABC):
    """JSON-RPC over one persistent, full-duplex connection; subclasses supply the framing."""

    def __init__(self, *, timeout: float, queue_capacity: int) -> None:
        self.default_timeout = timeout
        self.queue_capacity = queue_capacity
        self.malformed_frames = 0
        self.late_responses = 0
        self.closed = asyncio.Event()
        self.close_reason: ConnectionLost | None = None
        self._loop = asyncio.get_running_loop()
        self._next_id = 1
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._subscriptions: dict[str, Subscription] = {}
        self._early: dict[str, deque[Any]] = {}
        self._reader: asyncio.Task[None] | None = None

    # -- transport hooks -------------------------------------------------------------------
    @abstractmethod
    async def _send(self, data: bytes) -> None:
        """Write one message; raise :class:`ConnectionLost` if the transport is gone."""

    @abstractmethod
    async def _receive(self) -> str | bytes | None:
        """The next message, or ``None`` when the peer closed the connection."""

    @abstractmethod
    async def _close_transport(self) -> None:
        """Release the connection; idempotent."""

    def _start_reader(self) -> None:
        self._reader = asyncio.create_task(self._read_loop(), name=f"{type(self).__name__}.reader")

    # -- public API --------------------------------------------------------------------------
    @property
    def connected(self) -> bool:
        return not self.closed.is_set()

    @property
    def in_flight(self) -> int:
        return len(self._pending)

    async def call(
        self,
        method: str,
        params: Params = (),
        *,
        timeout: float | None = None,
    ) -> Any:
        """The result; else :class:`RpcError`, :class:`RpcTimeout` or :class:`ConnectionLost`."""
        request_id = self._next_id
        self._next_id = request_id + 1
        response = await self._request(
            (request_id,), encode_call(request_id, method, params), method, timeout
        )
        return result_of(response, method)

    async def batch(
        self,
        calls: Sequence[BatchCall],
        *,
        timeout: float | None = None,
    ) -> list[Any]:
        """One JSON array request; results in request order, per-item :class:`RpcError` in place."""
        if not calls:
            return []
        first_id = self._next_id
        self._next_id = first_id + len(calls)
        ids = range(first_id, first_id + len(calls))
        response = await self._request(ids, encode_batch(first_id, calls), "batch", timeout)
        return batch_outcomes(response, first_id, calls)

    async def subscribe(
        self,
        kind: str,
        *args: Any,
        capacity: int | None = None,
        timeout: float | None = None,
    ) -> Subscription:
        """``eth_subscribe(kind, *args)``: ``("newPendingTransactions", True)``, ``("logs", f)``."""
        subscription_id = await self.call("eth_subscribe", (kind, *args), timeout=timeout)
        if not isinstance(subscription_id, str):
            raise MalformedResponse("eth_subscribe: id is not a string", repr(subscription_id))
        subscription = Subscription(self, subscription_id, kind, capacity or self.queue_capacity)
        for payload in self._early.pop(subscription_id, ()):
            subscription._push(payload)
        if self.close_reason is not None:
            subscription._end(self.close_reason)
        else:
            self._subscriptions[subscription_id] = subscription
        return subscription

    async def close(self) -> None:
        """Fail pending calls, end subscriptions cleanly, close the connection."""
        self._shut(ConnectionLost("client closed"), subscriptions_fail=False)
        if self._reader is not None and self._reader is not asyncio.current_task():
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        await self._close_transport()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- internals ---------------------------------------------------------------------------
    async def _request(
        self, ids: Sequence[int], data: bytes, method: str, limit: float | None
    ) -> Any:
        if self.close_reason is not None:
            raise ConnectionLost(f"{method}: {self.close_reason}")
        seconds = self.default_timeout if limit is None else limit
        future: asyncio.Future[Any] = self._loop.create_future()
        pending = self._pending
        for request_id in ids:
            pending[request_id] = future
        try:
            async with asyncio.timeout(seconds):
                await self._send(data)
                return await future
        except TimeoutError:
            raise RpcTimeout(method, seconds) from None
        finally:
            for request_id in ids:
                pending.pop(request_id, None)

    async def _read_loop(self) -> None:
        reason = "connection closed by the node"
        try:
            while (data := await self._receive()) is not None:
                self._dispatch(data)
        except ConnectionLost as lost:
            reason = str(lost)
        except Exception as exc:  # the reader must end the client, not die silently
            reason = f"reader failed: {exc!r}"
        finally:
            self._shut(ConnectionLost(reason), subscriptions_fail=True)
        await self._close_transport()

    def _dispatch(self, data: str | bytes) -> None:
        try:
            message = orjson.loads(data)
        except orjson.JSONDecodeError:
            self.malformed_frames += 1
            return
        if type(message) is dict:
            request_id = message.get("id")
            if type(request_id) is int:
                self._resolve(request_id, message)
            elif message.get("method") == "eth_subscription":
                self._notify(message.get("params"))
            else:
                self.malformed_frames += 1
        elif type(message) is list:
            # A batch answer: any item's id names the batch (items may lack ids on parse errors).
            for item in message:
                request_id = item.get("id") if type(item) is dict else None
                if type(request_id) is int:
                    self._resolve(request_id, message)
                    return
            self.malformed_frames += 1
        else:
            self.malformed_frames += 1

    def _resolve(self, request_id: int, message: Any) -> None:
        future = self._pending.get(request_id)
        if future is None:
            # Our ids only grow: an id we issued is an answer after its caller gave up.
            if 0 < request_id < self._next_id:
                self.late_responses += 1
            else:
                self.malformed_frames += 1
        elif not future.done():
            future.set_result(message)

    def _notify(self, params: Any) -> None:
        if type(params) is not dict or not isinstance(params.get("subscription"), str):
            self.malformed_frames += 1
            return
        subscription_id = params["subscription"]
        payload = params.get("result")
        subscription = self._subscriptions.get(subscription_id)
        if subscription is not None:
            subscription._push(payload)
            return
        early = self._early.get(subscription_id)
        if early is None:
            if len(self._early) >= _EARLY_IDS:
                del self._early[next(iter(self._early))]
            early = self._early[subscription_id] = deque(maxlen=self.queue_capacity)
        early.append(payload)

    def _shut(self, reason: ConnectionLost, *, subscriptions_fail: bool) -> None:
        if self.close_reason is not None:
            return
        self.close_reason = reason
        self.closed.set()
        for future in self._pending.values():
            if not future.done():
                future.set_exception(ConnectionLost(str(reason)))
        for subscription in self._subscriptions.values():
            subscription._end(reason if subscriptions_fail else None)
        self._subscriptions.clear()
        self._early.clear()
