"""JSON-RPC 2.0 wire format shared by every transport: encode requests, interpret answers.

Requests carry integer ids and are serialised with orjson; answers are checked only as far as
needed to hand back a result, a :class:`~chain.errors.RpcError`, or a
:class:`~chain.errors.MalformedResponse` — nothing else runs per call.
"""

from __future__ import annotations

import reprlib
from collections.abc import Sequence
from typing import Any

import orjson

from chain.errors import MalformedResponse, RpcError

Params = Sequence[Any]
BatchCall = tuple[str, Params]


def encode_call(request_id: int, method: str, params: Params) -> bytes:
    return orjson.dumps({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params})


def encode_batch(first_id: int, calls: Sequence[BatchCall]) -> bytes:
    """One JSON array; item ``i`` gets id ``first_id + i``."""
    return orjson.dumps(
        [
            {"jsonrpc": "2.0", "id": first_id + index, "method": method, "params": params}
            for index, (method, params) in enumerate(calls)
        ]
    )


def _error_of(error: Any, method: str) -> RpcError:
    if not isinstance(error, dict):
        raise MalformedResponse(f"{method}: error is not an object", reprlib.repr(error))
    code = error.get("code")
    message = error.get("message")
    if type(code) is not int or not isinstance(message, str):
        raise MalformedResponse(f"{method}: error without code/message", reprlib.repr(error))
    return RpcError(code, message, error.get("data"))


def outcome_of(response: Any, method: str) -> Any:
    """The ``result`` of one response object, or the :class:`RpcError` it carries (returned)."""
    if type(response) is not dict:
        raise MalformedResponse(f"{method}: response is not an object", reprlib.repr(response))
    if "result" in response:
        return response["result"]
    if "error" in response:
        return _error_of(response["error"], method)
    raise MalformedResponse(
        f"{method}: response has neither result nor error", reprlib.repr(response)
    )


def result_of(response: Any, method: str) -> Any:
    """The ``result`` of one response object; raises the node's error as :class:`RpcError`."""
    outcome = outcome_of(response, method)
    if type(outcome) is RpcError:
        raise outcome
    return outcome


def batch_outcomes(response: Any, first_id: int, calls: Sequence[BatchCall]) -> list[Any]:
    """Results (or :class:`RpcError` in place) in request order, whatever order the node used."""
    if type(response) is dict:
        # Some nodes refuse a whole batch (too large, rate limited) with a single error object.
        result_of(response, "batch")
        raise MalformedResponse("batch: answered with a single object", reprlib.repr(response))
    if type(response) is not list:
        raise MalformedResponse("batch: answer is not an array", reprlib.repr(response))
    missing = object()
    outcomes: list[Any] = [missing] * len(calls)
    for item in response:
        index = (
            item.get("id") - first_id if type(item) is dict and type(item.get("id")) is int else -1
        )
        if not 0 <= index < len(calls):
            raise MalformedResponse("batch: item with an unknown id", reprlib.repr(item))
        outcomes[index] = outcome_of(item, calls[index][0])
    if any(outcome is missing for outcome in outcomes):
        absent = [calls[i][0] for i, outcome in enumerate(outcomes) if outcome is missing]
        raise MalformedResponse(
            f"batch: no answer for {len(absent)} of {len(calls)} calls", str(absent)
        )
    return outcomes
