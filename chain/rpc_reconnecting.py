"""A JSON-RPC client that survives its connection: reconnects on the next call after a drop.

Long-lived components (the engine, keepers, the builder) hold one client for hours; a node
restart or a cut WebSocket must not leave them with a dead one. :class:`ReconnectingRpc` opens
the transport lazily, and when a call fails with :class:`~chain.errors.ConnectionLost` it
reconnects and retries that call once. Retrying is safe for what goes through it: reads are
idempotent, and re-sending a signed raw transaction is answered "already known" at worst.
Subscriptions are not offered here: sources own their streams and their recovery.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, Self

from chain.errors import ConnectionLost
from chain.rpc import Rpc, connect
from chain.rpc_codec import BatchCall, Params


class ReconnectingRpc:
    """``call`` and ``batch`` like any :class:`~chain.rpc.Rpc`; ``reconnects`` counts drops."""

    def __init__(self, url: str, *, timeout: float = 10.0) -> None:
        self.url = url
        self.default_timeout = timeout
        self.reconnects = 0
        self._client: Rpc | None = None
        self._lock = asyncio.Lock()

    async def _current(self) -> Rpc:
        if self._client is None:
            async with self._lock:
                if self._client is None:
                    self._client = await connect(self.url, timeout=self.default_timeout)
        return self._client

    async def _drop(self, broken: Rpc) -> None:
        async with self._lock:
            if self._client is broken:
                self._client = None
                self.reconnects += 1
        await broken.close()

    async def call(self, method: str, params: Params = (), *, timeout: float | None = None) -> Any:
        client = await self._current()
        try:
            return await client.call(method, params, timeout=timeout)
        except ConnectionLost:
            await self._drop(client)
            return await (await self._current()).call(method, params, timeout=timeout)

    async def batch(self, calls: Sequence[BatchCall], *, timeout: float | None = None) -> list[Any]:
        client = await self._current()
        try:
            return await client.batch(calls, timeout=timeout)
        except ConnectionLost:
            await self._drop(client)
            return await (await self._current()).batch(calls, timeout=timeout)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None

    async def __aenter__(self) -> Self:
        await self._current()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
