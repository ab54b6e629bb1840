"""JSON-RPC over WebSocket (aiohttp): calls, batches and ``eth_subscribe`` on one connection.

The socket gets TCP_NODELAY and, on Linux, TCP_QUICKACK re-armed after every received message:
the kernel leaves quick-ack mode on its own. Measured with ``bench.rpc`` (full-tx pending
notifications from anvil at 100 tx/s, 200 txs): without quick-ACK 51–63 arrived more than 20 ms
late (p99 ~40 ms, delayed ACKs); set once at connect, no better; re-armed per message, none
(p99 ~10 ms).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from typing import Any

import aiohttp

from chain.errors import ConnectionLost
from chain.rpc_stream import DEFAULT_QUEUE_CAPACITY, DEFAULT_TIMEOUT, StreamRpc

_QUICKACK: int | None = getattr(socket, "TCP_QUICKACK", None)
_DATA_TYPES = (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY)


class WsRpc(StreamRpc):
    """A WebSocket JSON-RPC client. Create with ``await WsRpc.connect(url)``."""

    def __init__(
        self,
        url: str,
        session: aiohttp.ClientSession,
        ws: aiohttp.ClientWebSocketResponse,
        *,
        timeout: float,
        queue_capacity: int,
        quickack: bool,
    ) -> None:
        super().__init__(timeout=timeout, queue_capacity=queue_capacity)
        self.url = url
        self._session = session
        self._ws = ws
        self._socket: Any = ws.get_extra_info("socket")
        self._quickack = quickack and _QUICKACK is not None and self._socket is not None
        if self._socket is not None:
            with contextlib.suppress(OSError):
                self._socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._arm_quickack()
        self._start_reader()

    @classmethod
    async def connect(
        cls,
        url: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        connect_timeout: float = DEFAULT_TIMEOUT,
        queue_capacity: int = DEFAULT_QUEUE_CAPACITY,
        headers: dict[str, str] | None = None,
        quickack: bool = True,
        heartbeat: float | None = None,
    ) -> WsRpc:
        """Open the connection; :class:`ConnectionLost` if the node cannot be reached.

        ``heartbeat`` (seconds) pings the node and drops the connection when no pong comes back
        within half of it: the way to notice a half-open connection that only carries
        subscriptions.
        """
        session = aiohttp.ClientSession()
        try:
            async with asyncio.timeout(connect_timeout):
                # max_msg_size=0: no limit, txpool_content on a busy node runs to hundreds of MB.
                ws = await session.ws_connect(
                    url, max_msg_size=0, headers=headers, heartbeat=heartbeat
                )
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            await session.close()
            raise ConnectionLost(f"cannot connect to {url}: {exc or type(exc).__name__}") from exc
        except BaseException:
            await session.close()
            raise
        return cls(
            url, session, ws, timeout=timeout, queue_capacity=queue_capacity, quickack=quickack
        )

    def _arm_quickack(self) -> None:
        if self._quickack:
            try:
                self._socket.setsockopt(socket.IPPROTO_TCP, _QUICKACK, 1)
            except OSError:
                self._quickack = False

    async def _send(self, data: bytes) -> None:
        try:
            await self._ws.send_frame(data, aiohttp.WSMsgType.TEXT)
        except (aiohttp.ClientError, OSError) as exc:
            raise ConnectionLost(f"{self.url}: send failed: {exc}") from exc

    async def _receive(self) -> str | bytes | None:
        message = await self._ws.receive()
        if message.type in _DATA_TYPES:
            self._arm_quickack()
            return message.data
        if message.type is aiohttp.WSMsgType.ERROR:
            raise ConnectionLost(f"{self.url}: {message.data}")
        return None

    async def _close_transport(self) -> None:
        with contextlib.suppress(aiohttp.ClientError, OSError):
            await self._ws.close()
        await self._session.close()
