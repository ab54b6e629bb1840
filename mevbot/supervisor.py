"""Supervision of the bot's long-lived tasks: restart with jittered backoff, status for the UI.

Every source, worker and keeper loop runs under :class:`Supervisor`. A task that raises is
restarted after a delay that doubles (with jitter) up to a cap and resets once the task has
stayed up for a while; a task that returns is finished. Cancellation (shutdown) is never
treated as a crash. :meth:`Supervisor.status` gives frozen snapshots the terminal UI and
``mevbot status`` render.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

log = logging.getLogger("mevbot.supervisor")

TaskFactory = Callable[[], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class TaskStatus:
    """One supervised task as the UI shows it."""

    name: str
    state: str  # running | backoff | finished | stopped
    restarts: int
    last_error: str | None
    up_since: float | None  # time.time() of the current start


@dataclass
class _Task:
    name: str
    factory: TaskFactory
    state: str = "running"
    restarts: int = 0
    last_error: str | None = None
    up_since: float | None = None
    handle: asyncio.Task[None] | None = field(default=None, repr=False)


class Supervisor:
    """Runs named tasks; restarts crashed ones with backoff (``initial`` doubling to ``cap``)."""

    def __init__(
        self, *, initial: float = 0.2, cap: float = 10.0, stable_after: float = 30.0
    ) -> None:
        self.initial = initial
        self.cap = cap
        self.stable_after = stable_after
        self._tasks: dict[str, _Task] = {}
        self._rng = random.Random()

    def spawn(self, name: str, factory: TaskFactory) -> None:
        """Start ``factory()`` under supervision; ``name`` must be unique."""
        if name in self._tasks:
            raise ValueError(f"a task named {name!r} is already supervised")
        task = _Task(name, factory)
        self._tasks[name] = task
        task.handle = asyncio.create_task(self._run(task), name=f"supervised:{name}")

    async def _run(self, task: _Task) -> None:
        delay = self.initial
        while True:
            task.state, task.up_since = "running", time.time()
            started = time.monotonic()
            try:
                await task.factory()
            except asyncio.CancelledError:
                task.state = "stopped"
                raise
            except Exception as error:
                task.last_error = f"{type(error).__name__}: {error}"[:500]
                task.restarts += 1
                if time.monotonic() - started >= self.stable_after:
                    delay = self.initial
                wait = delay * (0.5 + self._rng.random())
                log.warning(
                    "task %s crashed (%s); restart %d in %.2f s",
                    task.name,
                    task.last_error,
                    task.restarts,
                    wait,
                )
                task.state, task.up_since = "backoff", None
                await asyncio.sleep(wait)
                delay = min(self.cap, delay * 2)
            else:
                task.state, task.up_since = "finished", None
                return

    def status(self) -> list[TaskStatus]:
        return [
            TaskStatus(t.name, t.state, t.restarts, t.last_error, t.up_since)
            for t in self._tasks.values()
        ]

    @property
    def total_restarts(self) -> int:
        return sum(t.restarts for t in self._tasks.values())

    async def stop(self, timeout: float = 5.0) -> None:
        """Cancel every task and wait (at most ``timeout``) for them to unwind."""
        handles = [t.handle for t in self._tasks.values() if t.handle and not t.handle.done()]
        for handle in handles:
            handle.cancel()
        if handles:
            await asyncio.wait(handles, timeout=timeout)
        for task in self._tasks.values():
            if task.state in ("running", "backoff"):
                task.state = "stopped"
