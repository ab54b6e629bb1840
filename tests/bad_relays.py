"""Misbehaving relays for fault and fuzz tests: real aiohttp HTTP servers on loopback ports.

``async with BadRelay("http500") as relay:`` serves ``relay.url`` until the block ends.
Behaviours: ``http500`` (every request gets HTTP 500 with a text body), ``timeout`` (holds the
request far longer than any client budget), ``garbage`` (HTTP 200 with random bytes), and
``scripted`` (answers each request with the next ``(status, body)`` from :meth:`BadRelay.queue`).
``requests`` counts what reached the server.
"""

from __future__ import annotations

import asyncio
import random
from collections import deque
from typing import Self

from aiohttp import web

from chain.node import free_port

BEHAVIOURS = ("http500", "timeout", "garbage", "scripted")
HOLD_S = 30.0


class BadRelay:
    def __init__(self, behaviour: str, seed: int = 0) -> None:
        if behaviour not in BEHAVIOURS:
            raise ValueError(f"behaviour must be one of {BEHAVIOURS}")
        self.behaviour = behaviour
        self.requests = 0
        self.port = 0
        self._rng = random.Random(seed)
        self._script: deque[tuple[int, bytes]] = deque()
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def queue(self, status: int, body: bytes) -> None:
        self._script.append((status, body))

    async def _answer(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        await request.read()
        if self.behaviour == "http500":
            return web.Response(status=500, text="internal error: the builder fell over")
        if self.behaviour == "timeout":
            await asyncio.sleep(HOLD_S)
            return web.Response(status=504)
        if self.behaviour == "garbage":
            size = self._rng.randint(1, 300)
            return web.Response(status=200, body=self._rng.randbytes(size))
        status, body = self._script.popleft() if self._script else (200, b"")
        return web.Response(status=status, body=body, content_type="application/json")

    async def start(self) -> Self:
        app = web.Application()
        app.router.add_post("/", self._answer)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.1)
        await self._runner.setup()
        self.port = free_port()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        return self

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
