"""Keep a fork warm: move it to the next upstream heads by writing what the blocks changed.

Forking again at every new head throws away all the state the fork fetched, so the first
bundles after a head fetch it again from the upstream. Instead, :func:`changes_since` asks the
upstream for the new blocks' headers and prestate diff traces in one batch
(:mod:`simulation.block_diff`) and re-reads what a diff leaves open; the fork writes the final
values (an anvil fork with ``anvil_setBalance`` / ``anvil_setNonce`` / ``anvil_setCode`` /
``anvil_setStorageAt`` in one batch, :func:`write`; the in-process revm fork into its cache).
The fork's own block stays where it was forked: what it has not fetched yet it fetches at that
block, which is right because every later change was written.

:func:`drift` is the differential check: a sample of reads (pieces of state the blocks changed,
and the hot calls the bundles make) on the fork and on the upstream at the same block; any
difference means the fork drifted (a change no trace showed), and the caller forks again.
:class:`Follower` is the policy both forks share: the counters, the time limit on the upstream's
traces, and when to give up on staying warm.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from chain.errors import ChainError, RpcError
from chain.rpc import Rpc
from chain.rpc_reconnecting import ReconnectingRpc
from chain.types import BlockHeader, MalformedError
from simulation.block_diff import DIFF_TRACER, BlockChanges, StateKey, Value, block_changes
from simulation.simulator import UpstreamSimulator

Probe = tuple[str, list[Any]]  # a read: method and params without the block tag
Writer = Callable[["Advance"], Awaitable[None]]  # writes the values and takes the new head
Reader = Callable[[Sequence[Probe]], Awaitable[list[Any]]]  # the fork's answers to probes


class WarmUnavailable(Exception):
    """The upstream cannot give what keeping the fork warm needs (no diff traces, bad answers)."""


@dataclass(frozen=True, slots=True)
class Advance:
    """What some blocks changed: the new head, the changes, and the final ``values`` to write."""

    head: BlockHeader
    changes: BlockChanges
    values: Mapping[StateKey, Value]


def _check(answer: Any, what: str) -> Any:
    if isinstance(answer, RpcError):
        raise WarmUnavailable(f"{what}: {answer}")
    return answer


async def changes_since(
    upstream: Rpc, head: BlockHeader, number: int, timeout: float
) -> Advance | None:
    """What blocks ``head.number + 1 .. number`` changed; None when they do not continue
    ``head`` (a reorg: the caller forks again). :class:`WarmUnavailable` when the upstream
    cannot tell."""
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
    return Advance(parent, changes, values)


async def write(fork: Rpc, values: Mapping[StateKey, Value], timeout: float) -> None:
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


def rpc_reader(fork: Rpc, timeout: float) -> Reader:
    """Probes answered by a fork process at its latest block, in one batch."""

    async def read(probes: Sequence[Probe]) -> list[Any]:
        return await fork.batch([(m, [*p, "latest"]) for m, p in probes], timeout=timeout)

    return read


async def drift(
    upstream: Rpc, read: Reader, probes: Sequence[Probe], number: int, timeout: float
) -> int:
    """How many ``probes`` read differently on the fork (``read``) and on the upstream at
    block ``number``."""
    if not probes:
        return 0
    theirs, ours = await asyncio.gather(
        upstream.batch([(m, [*p, hex(number)]) for m, p in probes], timeout=timeout),
        read(probes),
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


class Follower:
    """Moves a fork over new heads by writing their changes, and counts what it did.

    ``warm_timeout`` bounds reading the blocks' traces and writing them (an upstream too slow
    counts in ``warm_timeouts`` and the caller forks again, or, with ``retry_on_timeout``, stays
    at its head and tries again from there at the next one: for a fork whose writes the timeout
    cannot cut short and which is costly to fork again); an upstream that cannot give diff
    traces sets ``warm_unavailable`` for good. After each move ``check_sample`` reads (half from
    what the blocks changed, half from ``hot``) are compared with the upstream.
    """

    def __init__(
        self,
        upstream: Rpc,
        *,
        warm_timeout: float,
        call_timeout: float,
        check_sample: int,
        retry_on_timeout: bool = False,
    ) -> None:
        self.upstream = upstream
        self.retry_on_timeout = retry_on_timeout
        self.warm_timeout = warm_timeout
        self.call_timeout = call_timeout
        self.check_sample = check_sample
        self.warm_timeouts = 0  # moves the upstream's traces were too slow for
        self.warm_unavailable = ""
        self.heads_warm = 0  # heads reached by writing the blocks' changes
        self.heads_reset = 0  # heads reached by forking again
        self.keys_written = 0  # balances, nonces, codes and slots written by warm heads
        self.drift_checks = 0
        self.drift_mismatches = 0
        self._rng = random.Random(0)

    COUNTERS = (
        "heads_warm",
        "heads_reset",
        "keys_written",
        "warm_timeouts",
        "drift_checks",
        "drift_mismatches",
    )

    def counts(self) -> dict[str, int]:
        """The counters, for reports."""
        return {name: getattr(self, name) for name in self.COUNTERS}

    async def move(
        self,
        head: BlockHeader,
        number: int,
        write: Writer,
        read: Reader,
        hot: Sequence[Probe] = (),
    ) -> BlockHeader | None:
        """The new head once blocks ``head.number + 1 .. number`` are written and the sample
        agrees with the upstream; ``head`` itself when the upstream was too slow and
        ``retry_on_timeout``; None when the caller must fork again instead (a reorg, a drift,
        an upstream that cannot or is too slow)."""
        try:
            async with asyncio.timeout(self.warm_timeout):
                moved = await changes_since(self.upstream, head, number, self.call_timeout)
                if moved is not None:
                    await write(moved)
        except WarmUnavailable as error:
            self.warm_unavailable = str(error)
            return None
        except TimeoutError:
            self.warm_timeouts += 1
            return head if self.retry_on_timeout else None
        except ChainError:
            return None
        if moved is None:
            return None
        self.heads_warm += 1
        self.keys_written += len(moved.values)
        if self.check_sample <= 0:
            return moved.head
        probes = sample_probes(moved.changes, hot, self.check_sample, self._rng)
        try:
            mismatches = await drift(self.upstream, read, probes, number, self.call_timeout)
        except ChainError:
            return moved.head  # the check could not run; the next head checks again
        self.drift_checks += 1
        self.drift_mismatches += mismatches
        return moved.head if mismatches == 0 else None


class WarmFork(UpstreamSimulator):
    """What the forks that follow heads warm share (anvil's process, revm's cache): the
    upstream connection, the :class:`Follower` and its settings, and the hot calls.

    ``keep_warm`` False forks again at every head, as does a gap of more than ``max_gap``
    blocks; ``check_sample`` reads are compared with the upstream at every warm head;
    ``warm_timeout`` bounds reading and writing a head's changes. ``warmup`` lists
    ``(to, calldata)`` reads that pull the state bundles read into a fresh fork.
    """

    def __init__(
        self,
        upstream_url: str,
        *,
        keep_warm: bool = True,
        check_sample: int = 8,
        max_gap: int = 16,
        warm_timeout: float = 0.25,
        **options: Any,
    ) -> None:
        super().__init__(upstream_url, **options)  # block_interval, coinbase, call_timeout
        self.keep_warm = keep_warm
        self.max_gap = max_gap
        self._upstream = ReconnectingRpc(upstream_url, timeout=self.call_timeout)
        self.warm = Follower(
            self._upstream,
            warm_timeout=warm_timeout,
            call_timeout=self.call_timeout,
            check_sample=check_sample,
        )
        self.warmup: list[tuple[str, bytes]] = []

    def _hot_probes(self) -> list[Probe]:
        return [("eth_call", [{"to": to, "data": "0x" + data.hex()}]) for to, data in self.warmup]
