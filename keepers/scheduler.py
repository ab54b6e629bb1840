"""The keeper scheduler: runs jobs per block and/or by interval, supervised, under a lease.

Each job runs when a new head arrives (``every_block``) and/or every ``interval_s`` seconds.
A run first takes (or renews) the job's lease in the :class:`~keepers.store.KeeperStore`: when
several bot instances share a store, exactly one holds it and acts, the others stand by and take
over once it expires. A job that raises is reported (failure count, last error) and backs off,
its delay doubling up to a cap; the other jobs keep running. A job never overlaps itself: a tick
that arrives while it still runs is skipped, as pymaker's lifecycle does.

Jobs name their effects with :func:`action_key` (job, target, round or block) and claim the key
in the store before acting, so no effect is taken twice. :meth:`Scheduler.status` gives one
frozen :class:`KeeperStatus` row per job (the fields of ``mevbot.status.KeeperRow``), with the
runs that acted; each such run is logged as a ``keeper_action`` event.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Protocol

from chain.types import BlockHeader
from keepers.store import KeeperStore

Clock = Callable[[], float]
log = logging.getLogger("keepers.scheduler")


def action_key(job: str, target: str, round_or_block: int | str) -> str:
    """The idempotency key of one effect: ``job:target:round`` (or block)."""
    return f"{job}:{target.lower()}:{round_or_block}"


@dataclass(frozen=True, slots=True)
class Tick:
    """Why a job runs now: the head it runs on (None for an interval tick before any head)."""

    header: BlockHeader | None
    at: float  # wall clock, time.time()


class Job(Protocol):
    """A keeper job: ``run`` acts on one tick and describes what it did (None: nothing)."""

    name: str

    async def run(self, tick: Tick) -> str | None: ...


@dataclass(frozen=True, slots=True)
class KeeperStatus:
    """One job as the terminal UI shows it (``mevbot.status.KeeperRow``'s fields)."""

    job: str
    last_run: float | None
    next_run: float | None
    last_action: str | None
    failures: int
    state: str  # idle | running | standby | backoff
    actions: int = 0  # runs that took an action


@dataclass
class _Entry:
    job: Job
    every_block: bool
    interval_s: float | None
    lease_ttl_s: float
    timeout_s: float
    last_run: float | None = None
    next_run: float | None = None
    last_action: str | None = None
    last_error: str | None = None
    failures: int = 0
    actions: int = 0
    consecutive_failures: int = 0
    backoff_until: float = 0.0
    state: str = "idle"
    running: bool = False


class Scheduler:
    """Runs jobs for one bot instance (``owner`` names it in leases and claims)."""

    def __init__(
        self,
        store: KeeperStore,
        owner: str,
        *,
        backoff_initial_s: float = 1.0,
        backoff_cap_s: float = 60.0,
        clock: Clock = time.time,
    ) -> None:
        self.store = store
        self.owner = owner
        self.backoff_initial_s = backoff_initial_s
        self.backoff_cap_s = backoff_cap_s
        self.clock = clock
        self._entries: dict[str, _Entry] = {}
        self._last_header: BlockHeader | None = None

    def add(
        self,
        job: Job,
        *,
        every_block: bool = True,
        interval_s: float | None = None,
        lease_ttl_s: float = 30.0,
        timeout_s: float = 20.0,
    ) -> None:
        if not every_block and interval_s is None:
            raise ValueError(f"job {job.name!r} has neither a block nor an interval trigger")
        if job.name in self._entries:
            raise ValueError(f"a job named {job.name!r} is already scheduled")
        self._entries[job.name] = _Entry(job, every_block, interval_s, lease_ttl_s, timeout_s)

    def status(self) -> tuple[KeeperStatus, ...]:
        return tuple(
            KeeperStatus(
                e.job.name, e.last_run, e.next_run, e.last_action, e.failures, e.state, e.actions
            )
            for e in self._entries.values()
        )

    def last_error(self, job: str) -> str | None:
        return self._entries[job].last_error

    async def on_block(self, header: BlockHeader) -> None:
        """Run every per-block job on ``header``, concurrently; returns when all are done."""
        self._last_header = header
        tick = Tick(header, self.clock())
        await asyncio.gather(*(self._run(e, tick) for e in self._entries.values() if e.every_block))

    async def run_interval(self, name: str) -> None:
        """Run one interval job on the latest head seen."""
        await self._run(self._entries[name], Tick(self._last_header, self.clock()))

    async def run(self, heads: AsyncIterator[BlockHeader]) -> None:
        """Drive every job: per-block jobs from ``heads``, interval jobs from timers."""
        timers = [
            asyncio.create_task(self._interval_loop(e), name=f"keeper:{e.job.name}")
            for e in self._entries.values()
            if e.interval_s is not None
        ]
        try:
            async for header in heads:
                await self.on_block(header)
        finally:
            for timer in timers:
                timer.cancel()
            await asyncio.gather(*timers, return_exceptions=True)

    async def release(self) -> None:
        """Give up every lease (clean shutdown: another instance takes over at once)."""
        for name in self._entries:
            await self.store.release_lease(_lease_name(name), self.owner)

    async def _interval_loop(self, entry: _Entry) -> None:
        assert entry.interval_s is not None
        while True:
            entry.next_run = self.clock() + entry.interval_s
            await asyncio.sleep(entry.interval_s)
            await self._run(entry, Tick(self._last_header, self.clock()))

    async def _run(self, entry: _Entry, tick: Tick) -> None:
        """One supervised run: lease, backoff, timeout; never raises (except cancellation)."""
        now = tick.at
        if entry.running or now < entry.backoff_until:
            return
        entry.running = True
        try:
            lease = await self.store.acquire_lease(
                _lease_name(entry.job.name), self.owner, entry.lease_ttl_s
            )
            if lease is None:
                entry.state = "standby"
                return
            entry.state = "running"
            action = await asyncio.wait_for(entry.job.run(tick), entry.timeout_s)
        except asyncio.CancelledError:
            raise
        except Exception as error:  # a failing job is reported and backs off; the rest go on
            entry.failures += 1
            entry.consecutive_failures += 1
            entry.last_error = f"{type(error).__name__}: {error}"[:500]
            delay = min(
                self.backoff_cap_s,
                self.backoff_initial_s * 2 ** (entry.consecutive_failures - 1),
            )
            entry.backoff_until = self.clock() + delay
            entry.next_run = entry.backoff_until
            entry.state = "backoff"
            entry.last_run = now
        else:
            entry.consecutive_failures = 0
            entry.last_run = now
            entry.state = "idle"
            if action is not None:
                entry.last_action = action
                entry.actions += 1
                log.info(
                    "%s: %s",
                    entry.job.name,
                    action,
                    extra={
                        "event": "keeper_action",
                        "fields": {"job": entry.job.name, "action": action},
                    },
                )
            if entry.interval_s is not None and not entry.every_block:
                entry.next_run = now + entry.interval_s
        finally:
            entry.running = False


def _lease_name(job: str) -> str:
    return f"keeper-job:{job}"
