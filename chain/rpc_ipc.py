"""JSON-RPC over a unix domain socket (``anvil --ipc PATH``, geth's ``geth.ipc``).

Nodes write one JSON message per line; requests are written back to back. A local node over
IPC has no TCP delayed-ACK stalls and the shortest round trip of the three transports.
"""

from __future__ import annotations

import asyncio
import contextlib

from chain.errors import ConnectionLost
from chain.rpc_stream import DEFAULT_QUEUE_CAPACITY, DEFAULT_TIMEOUT, StreamRpc

# One line is one message; txpool_content of a busy node is large, so allow up to 256 MB.
_MAX_MESSAGE = 256 * 1024 * 1024


class IpcRpc(StreamRpc):
    """A unix-socket JSON-RPC client. Create with ``await IpcRpc.connect(path)``."""

    def __init__(
        self,
        path: str,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        timeout: float,
        queue_capacity: int,
    ) -> None:
        super().__init__(timeout=timeout, queue_capacity=queue_capacity)
        self.url = path
        self._stream = reader
        self._writer = writer
        self._start_reader()

    @classmethod
    async def connect(
        cls,
        path: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        connect_timeout: float = DEFAULT_TIMEOUT,
        queue_capacity: int = DEFAULT_QUEUE_CAPACITY,
    ) -> IpcRpc:
        """Open the socket; :class:`ConnectionLost` if nothing listens there."""
        try:
            async with asyncio.timeout(connect_timeout):
                reader, writer = await asyncio.open_unix_connection(path, limit=_MAX_MESSAGE)
        except (OSError, TimeoutError) as exc:
            raise ConnectionLost(f"cannot connect to {path}: {exc or type(exc).__name__}") from exc
        return cls(path, reader, writer, timeout=timeout, queue_capacity=queue_capacity)

    async def _send(self, data: bytes) -> None:
        if self._writer.is_closing():
            raise ConnectionLost(f"{self.url}: socket closed")
        self._writer.write(data)
        try:
            await self._writer.drain()
        except OSError as exc:
            raise ConnectionLost(f"{self.url}: send failed: {exc}") from exc

    async def _receive(self) -> bytes | None:
        try:
            return await self._stream.readuntil(b"\n")
        except asyncio.IncompleteReadError:
            return None
        except (asyncio.LimitOverrunError, OSError) as exc:
            raise ConnectionLost(f"{self.url}: {exc}") from exc

    async def _close_transport(self) -> None:
        self._writer.close()
        with contextlib.suppress(OSError):
            await self._writer.wait_closed()
