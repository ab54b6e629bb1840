"""JSON-RPC over HTTP(S): one POST per call or batch, on one reused aiohttp session.

No subscriptions (HTTP cannot push); use :class:`~chain.rpc_ws.WsRpc` or
:class:`~chain.rpc_ipc.IpcRpc` for those.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, Self

import aiohttp
import orjson

from chain.errors import ConnectionLost, MalformedResponse, RpcTimeout
from chain.rpc_codec import BatchCall, Params, batch_outcomes, encode_batch, encode_call, result_of
from chain.rpc_stream import DEFAULT_TIMEOUT

_HEADERS = {"Content-Type": "application/json"}


class HttpRpc:
    """An HTTP JSON-RPC client. Create inside a running event loop; ``close()`` when done."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        headers: dict[str, str] | None = None,
        connections: int = 32,
    ) -> None:
        self.url = url
        self.default_timeout = timeout
        self._headers = {**_HEADERS, **(headers or {})}
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=connections), skip_auto_headers=("User-Agent",)
        )
        self._next_id = 1

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
        response = await self._post(encode_call(request_id, method, params), method, timeout)
        if type(response) is dict and response.get("id") not in (request_id, None):
            raise MalformedResponse(f"{method}: answer for another id", orjson.dumps(response))
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
        response = await self._post(encode_batch(first_id, calls), "batch", timeout)
        return batch_outcomes(response, first_id, calls)

    async def _post(self, body: bytes, method: str, limit: float | None) -> Any:
        seconds = self.default_timeout if limit is None else limit
        try:
            async with (
                asyncio.timeout(seconds),
                self._session.post(self.url, data=body, headers=self._headers) as reply,
            ):
                raw = await reply.read()
                status = reply.status
        except TimeoutError:
            raise RpcTimeout(method, seconds) from None
        except (aiohttp.ClientError, OSError) as exc:
            raise ConnectionLost(f"{method}: {self.url}: {exc or type(exc).__name__}") from exc
        try:
            # Nodes send JSON-RPC errors with 4xx/5xx too; the body says more than the status.
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise MalformedResponse(f"{method}: HTTP {status}, body is not JSON", raw) from None

    async def close(self) -> None:
        await self._session.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
