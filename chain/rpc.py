"""The JSON-RPC client interface, ``connect(url)``, and the few typed helpers most callers need.

``connect`` picks the transport from the address: ``ws://``/``wss://`` → :class:`WsRpc`,
``http://``/``https://`` → :class:`HttpRpc`, ``ipc://PATH`` or a filesystem path → :class:`IpcRpc`.
It works both as ``rpc = await connect(url)`` and ``async with connect(url) as rpc``.

The helpers are thin: one round trip, then a ``chain.types`` parser; an answer that does not
parse raises :class:`~chain.errors.MalformedResponse`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Generator, Sequence
from typing import Any, Protocol, Self

from chain.errors import ChainError, ConnectionLost, MalformedResponse, RpcError, RpcTimeout
from chain.rpc_codec import BatchCall, Params
from chain.rpc_http import HttpRpc
from chain.rpc_ipc import IpcRpc
from chain.rpc_stream import DEFAULT_QUEUE_CAPACITY, DEFAULT_TIMEOUT, StreamRpc, Subscription
from chain.rpc_ws import WsRpc
from chain.types import BlockHeader, Log, MalformedError, hex_to_bytes, hex_to_int, norm_hash

__all__ = [
    "ChainError",
    "Connecting",
    "ConnectionLost",
    "HttpRpc",
    "IpcRpc",
    "MalformedResponse",
    "Rpc",
    "RpcError",
    "RpcTimeout",
    "StreamRpc",
    "Subscription",
    "WsRpc",
    "connect",
    "eth_block_number",
    "eth_call",
    "eth_chain_id",
    "eth_get_balance",
    "eth_get_block",
    "eth_get_logs",
    "eth_get_transaction_count",
    "eth_send_raw_transaction",
]


class Rpc(Protocol):
    """What every transport offers. Streaming transports (:class:`StreamRpc`) add ``subscribe``."""

    default_timeout: float

    async def call(
        self,
        method: str,
        params: Params = (),
        *,
        timeout: float | None = None,
    ) -> Any: ...

    async def batch(
        self,
        calls: Sequence[BatchCall],
        *,
        timeout: float | None = None,
    ) -> list[Any]: ...

    async def close(self) -> None: ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(self, *exc: object) -> None: ...


class Connecting:
    """The pending result of :func:`connect`: await it, or use it as an async context manager."""

    def __init__(self, open_client: Callable[[], Awaitable[Rpc]]) -> None:
        self._open = open_client
        self._client: Rpc | None = None

    def __await__(self) -> Generator[Any, None, Rpc]:
        return self._open().__await__()

    async def __aenter__(self) -> Rpc:
        self._client = await self._open()
        return self._client

    async def __aexit__(self, *exc: object) -> None:
        if self._client is not None:
            await self._client.close()


def connect(
    url: str,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    queue_capacity: int = DEFAULT_QUEUE_CAPACITY,
    headers: dict[str, str] | None = None,
) -> Connecting:
    """A client for ``url``, transport chosen by scheme; ``timeout`` is the default per call."""
    if url.startswith(("ws://", "wss://")):
        return Connecting(
            lambda: WsRpc.connect(
                url, timeout=timeout, queue_capacity=queue_capacity, headers=headers
            )
        )
    if url.startswith(("http://", "https://")):
        return Connecting(lambda: _open_http(url, timeout, headers))
    path = url.removeprefix("ipc://")
    if path != url or path.startswith(("/", "./", "../")) or path.endswith(".ipc"):
        return Connecting(
            lambda: IpcRpc.connect(path, timeout=timeout, queue_capacity=queue_capacity)
        )
    raise ValueError(
        f"cannot tell the transport of {url!r}: use ws://, wss://, http://, https://, "
        "ipc://PATH or a filesystem path to a node's IPC socket"
    )


async def _open_http(url: str, call_timeout: float, headers: dict[str, str] | None) -> HttpRpc:
    return HttpRpc(url, timeout=call_timeout, headers=headers)


def block_tag(block: int | str) -> str:
    """A block parameter: a number becomes a quantity, a tag (``latest``, ``pending``) stays."""
    return hex(block) if isinstance(block, int) else block


def _parse(method: str, parse: Callable[..., Any], value: Any, *args: Any) -> Any:
    try:
        return parse(value, *args)
    except MalformedError as exc:
        raise MalformedResponse(f"{method}: {exc.reason}") from None


async def eth_chain_id(rpc: Rpc) -> int:
    return _parse("eth_chainId", hex_to_int, await rpc.call("eth_chainId"))


async def eth_block_number(rpc: Rpc) -> int:
    return _parse("eth_blockNumber", hex_to_int, await rpc.call("eth_blockNumber"))


async def eth_get_block(
    rpc: Rpc, block: int | str = "latest", full: bool = False
) -> BlockHeader | None:
    """The header of a block, or ``None`` when the node does not have that block (yet)."""
    result = await rpc.call("eth_getBlockByNumber", (block_tag(block), full))
    return None if result is None else _parse("eth_getBlockByNumber", BlockHeader.from_rpc, result)


async def eth_get_logs(rpc: Rpc, log_filter: dict[str, Any]) -> list[Log]:
    """Logs matching an ``eth_getLogs`` filter object (block numbers as ints or hex both work)."""
    params = {
        key: block_tag(value) if key in ("fromBlock", "toBlock") else value
        for key, value in log_filter.items()
    }
    result = await rpc.call("eth_getLogs", (params,))
    if not isinstance(result, list):
        raise MalformedResponse("eth_getLogs: result is not a list", repr(result))
    return [_parse("eth_getLogs", Log.from_rpc, item) for item in result]


async def eth_call(rpc: Rpc, to: str, data: bytes, block: int | str = "latest") -> bytes:
    """Return data of a read-only call; a revert arrives as :class:`RpcError`."""
    result = await rpc.call("eth_call", ({"to": to, "data": "0x" + data.hex()}, block_tag(block)))
    return _parse("eth_call", hex_to_bytes, result)


async def eth_send_raw_transaction(rpc: Rpc, raw: bytes) -> str:
    """Broadcast a signed envelope; the tx hash (lowercase 0x)."""
    result = await rpc.call("eth_sendRawTransaction", ("0x" + raw.hex(),))
    return _parse("eth_sendRawTransaction", norm_hash, result)


async def eth_get_transaction_count(rpc: Rpc, address: str, block: int | str = "latest") -> int:
    """The account nonce at ``block`` (``"pending"`` counts txs in the node's pool too)."""
    result = await rpc.call("eth_getTransactionCount", (address, block_tag(block)))
    return _parse("eth_getTransactionCount", hex_to_int, result)


async def eth_get_balance(rpc: Rpc, address: str, block: int | str = "latest") -> int:
    """Balance in wei."""
    result = await rpc.call("eth_getBalance", (address, block_tag(block)))
    return _parse("eth_getBalance", hex_to_int, result)
