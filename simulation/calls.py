"""Batched ``eth_call`` reads for loading state: one batch per kind of call, never one round
trip per pool."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from chain.errors import RpcError
from chain.types import MalformedError, hex_to_bytes

CHUNK = 500


class LoadError(RuntimeError):
    """A state read failed (which call, and the node's answer)."""


async def eth_calls(
    rpc: Any, calls: Sequence[tuple[str, bytes]], block: str = "latest"
) -> list[bytes]:
    """``eth_call`` each (to, data) in batches; any failure is a :class:`LoadError`."""
    results: list[bytes] = []
    for start in range(0, len(calls), CHUNK):
        chunk = calls[start : start + CHUNK]
        answers = await rpc.batch(
            [("eth_call", [{"to": to, "data": "0x" + data.hex()}, block]) for to, data in chunk]
        )
        for (to, data), answer in zip(chunk, answers, strict=True):
            if isinstance(answer, RpcError):
                raise LoadError(f"eth_call to {to} (0x{data[:4].hex()}) failed: {answer}")
            try:
                results.append(hex_to_bytes(answer))
            except MalformedError as error:
                raise LoadError(f"eth_call to {to}: {error.reason}") from None
    return results
