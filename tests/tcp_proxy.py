"""A small asyncio TCP proxy on a free loopback port, for fault-injection tests.

``async with TcpProxy(target_port) as proxy`` forwards every connection to 127.0.0.1:target_port.
``await proxy.cut()`` resets every open connection at once (both sides see the connection drop,
as when a network path fails); new connections are accepted again right away unless
``refuse=True`` was passed, in which case they are refused until :meth:`restore`.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from typing import Self

from chain.node import free_port


class TcpProxy:
    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        self.target_host = target_host
        self.target_port = target_port
        self.port = 0
        self.accepted = 0
        self.cuts = 0
        self._refusing = False
        self._server: asyncio.Server | None = None
        self._links: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> Self:
        self.port = free_port()
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)
        return self

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        await self.cut()
        if self._server is not None:
            await self._server.wait_closed()

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def cut(self, *, refuse: bool = False) -> None:
        """Reset all open connections (RST, not a polite FIN)."""
        self._refusing = refuse
        self.cuts += 1
        for writer in list(self._writers):
            sock = writer.get_extra_info("socket")
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
        links = list(self._links)
        for link in links:
            link.cancel()
        for link in links:
            with contextlib.suppress(asyncio.CancelledError):
                await link
        self._writers.clear()

    def restore(self) -> None:
        self._refusing = False

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._refusing:
            writer.transport.abort()
            return
        try:
            target_reader, target_writer = await asyncio.open_connection(
                self.target_host, self.target_port
            )
        except OSError:
            writer.transport.abort()
            return
        self.accepted += 1
        self._writers.update((writer, target_writer))
        link = asyncio.current_task()
        assert link is not None
        self._links.add(link)
        try:
            await asyncio.gather(_pipe(reader, target_writer), _pipe(target_reader, writer))
        finally:
            self._links.discard(link)
            for end in (writer, target_writer):
                self._writers.discard(end)
                end.transport.abort()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.transport.abort()
