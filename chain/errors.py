"""Typed errors of the JSON-RPC clients: what a caller can catch and act on.

Every error raised by :mod:`chain.rpc` and its transports is a :class:`ChainError`, so a
supervisor can catch one family; the subclasses say what happened (the node refused, the node
was too slow, the connection is gone, the answer made no sense).
"""

from __future__ import annotations

from typing import Any


class ChainError(Exception):
    """Base of every error raised by the chain clients."""


class RpcError(ChainError):
    """A JSON-RPC error object returned by the node; ``message`` is the node's text verbatim."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(code, message, data)
        self.code = code
        self.message = message
        self.data = data

    def __str__(self) -> str:
        suffix = "" if self.data is None else f" (data: {self.data!r:.200})"
        return f"{self.message} [code {self.code}]{suffix}"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RpcError):
            return NotImplemented
        return (self.code, self.message, self.data) == (other.code, other.message, other.data)

    def __hash__(self) -> int:
        return hash((self.code, self.message))


class RpcTimeout(ChainError):
    """No answer within the timeout; names the method and the timeout."""

    def __init__(self, method: str, timeout: float) -> None:
        super().__init__(f"{method}: no answer within {timeout:g} s")
        self.method = method
        self.timeout = timeout


class ConnectionLost(ChainError):
    """The transport dropped (or the client was closed); pending calls fail with this."""


class MalformedResponse(ChainError):
    """The node answered with something that is not a well-formed JSON-RPC response."""

    def __init__(self, reason: str, excerpt: bytes | str | None = None) -> None:
        if excerpt is not None:
            text = excerpt.decode(errors="replace") if isinstance(excerpt, bytes) else excerpt
            reason = f"{reason}: {text[:120]!r}"
        super().__init__(reason)
        self.reason = reason
