"""Keep an anvil fork warm: move it to the next upstream heads by writing what the blocks changed.

``anvil_reset`` to every new head throws away all the state the fork fetched, so the first
bundles after a head fetch it again from the upstream. Instead, :func:`advance` asks the upstream
for the new blocks' headers and prestate diff traces in one batch (:mod:`simulation.block_diff`),
re-reads what a diff leaves open, and writes the final values onto the fork with
``anvil_setBalance`` / ``anvil_setNonce`` / ``anvil_setCode`` / ``anvil_setStorageAt`` in one
batch. The fork's own block stays where it was forked: what it has not fetched yet it fetches at
that block, which is right because every later change was written. The simulated block's env
(number, timestamp, base fee, coinbase) comes from the upstream header through
``eth_simulateV1``'s block overrides, as before.

:func:`drift` is the differential check: a sample of reads (pieces of state the blocks changed,
and the hot calls the bundles make) on the fork and on the upstream at the same block; any
difference means the fork drifted (a change no trace showed), and the caller resets it.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from chain.errors import RpcError
from chain.rpc import Rpc
from chain.types import BlockHeader, MalformedError
from simulation.block_diff import DIFF_TRACER, BlockChanges, StateKey, Value, block_changes

Probe = tuple[str, list[Any]]  # a read: method and params without the block tag


class WarmUnavailable(Exception):
    """The upstream cannot give what keeping the fork warm needs (no diff traces, bad answers)."""


@dataclass(frozen=True, slots=True)
class Advance:
    """What moving the fork over some blocks did: the new head and what was written."""

    head: BlockHeader
    changes: BlockChanges
    written: int


def _check(answer: Any, what: str) -> Any:
    if isinstance(answer, RpcError):
        raise WarmUnavailable(f"{what}: {answer}")
    return answer


async def advance(
    upstream: Rpc, fork: Rpc, head: BlockHeader, number: int, timeout: float
) -> Advance | None:
    """Write blocks ``head.number + 1 .. number`` onto ``fork``; None when they do not continue
    ``head`` (a reorg: the caller resets). :class:`WarmUnavailable` when the upstream cannot."""
    numbers = range(head.number + 1, number + 1)
    calls: list[tuple[str, list[Any]]] = []
    for n in numbers:
        calls.append(("eth_getBlockByNumber", [hex(n), False]))
        calls.append(("debug_traceBlockByNumber", [hex(n), DIFF_TRACER]))
    answers = await upstream.batch(calls, timeout=timeout)
    traces: list[Any] = []
    withdrawals: list[str] = []
    parent = head
    try:
        for n, block, trace in zip(numbers, answers[::2], answers[1::2], strict=True):
            header = BlockHeader.from_rpc(_check(block, f"block {n}"))
            if header.parent_hash != parent.hash:
                return None
            results = _check(trace, f"diff trace of block {n}")
            if not isinstance(results, list):
                raise MalformedError(f"diff trace of block {n} is not a list")
            traces += [r.get("result") if isinstance(r, dict) else r for r in results]
            withdrawals += [w.get("address") for w in block.get("withdrawals") or ()]
            parent = header
        changes = block_changes(traces, withdrawals)
    except MalformedError as error:
        raise WarmUnavailable(error.reason) from None
    values = dict(changes.known)
    if changes.unsure:
        keys = sorted(changes.unsure)
        reads = await upstream.batch([key.read(hex(number)) for key in keys], timeout=timeout)
        try:
            for key, answer in zip(keys, reads, strict=True):
                values[key] = key.parse(_check(answer, f"re-read of {key}"))
        except MalformedError as error:
            raise WarmUnavailable(error.reason) from None
    await write(fork, values, timeout)
    return Advance(parent, changes, len(values))


async def write(fork: Rpc, values: dict[StateKey, Value], timeout: float) -> None:
    """Set every value on the fork in one batch; a refused write is a :class:`WarmUnavailable`."""
    if not values:
        return
    answers = await fork.batch([key.write(value) for key, value in values.items()], timeout=timeout)
    for key, answer in zip(values, answers, strict=True):
        _check(answer, f"fork refused the write of {key}")


def sample_probes(
    changes: BlockChanges, hot: Sequence[Probe], size: int, rng: random.Random
) -> list[Probe]:
    """Up to ``size`` reads: half from what the blocks changed, the rest from the hot calls."""
    changed = sorted({*changes.known, *changes.unsure})
    picked = rng.sample(changed, min(len(changed), size // 2))
    probes: list[Probe] = [(m, p[:-1]) for m, p in (key.read("latest") for key in picked)]
    probes += rng.sample(list(hot), min(len(hot), size - len(probes)))
    return probes


async def drift(
    upstream: Rpc, fork: Rpc, probes: Sequence[Probe], number: int, timeout: float
) -> int:
    """How many ``probes`` read differently on the fork and on the upstream at block ``number``."""
    if not probes:
        return 0
    theirs, ours = await asyncio.gather(
        upstream.batch([(m, [*p, hex(number)]) for m, p in probes], timeout=timeout),
        fork.batch([(m, [*p, "latest"]) for m, p in probes], timeout=timeout),
    )
    return sum(
        1
        for a, b in zip(theirs, ours, strict=True)
        if isinstance(a, RpcError) or isinstance(b, RpcError) or _norm(a) != _norm(b)
    )


def _norm(answer: Any) -> Any:
    """Quantities compare by value (nodes differ in leading zeros), data by its hex."""
    if isinstance(answer, str) and answer.startswith("0x") and len(answer) <= 66:
        try:
            return int(answer, 16)
        except ValueError:
            return answer
    return answer.lower() if isinstance(answer, str) else answer
