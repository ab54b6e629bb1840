"""Supervision: crashed tasks come back with backoff and counted restarts; shutdown is not a crash."""

from __future__ import annotations

import asyncio
import itertools

from mevbot.supervisor import Supervisor


async def test_a_crashing_task_is_restarted_and_the_others_keep_running():
    supervisor = Supervisor(initial=0.01, cap=0.05)
    runs = {"flaky": 0, "steady": 0}
    steady_ticks = []

    async def flaky() -> None:
        runs["flaky"] += 1
        if runs["flaky"] <= 3:
            raise ConnectionError(f"node went away #{runs['flaky']}")
        await asyncio.sleep(3600)

    async def steady() -> None:
        runs["steady"] += 1
        while True:
            steady_ticks.append(1)
            await asyncio.sleep(0.005)

    supervisor.spawn("flaky", flaky)
    supervisor.spawn("steady", steady)
    for _ in range(200):
        await asyncio.sleep(0.01)
        if runs["flaky"] == 4:
            break
    status = {s.name: s for s in supervisor.status()}
    assert runs["flaky"] == 4 and status["flaky"].restarts == 3
    assert status["flaky"].state == "running"
    assert status["flaky"].last_error == "ConnectionError: node went away #3"
    assert runs["steady"] == 1 and status["steady"].restarts == 0 and len(steady_ticks) > 5
    assert supervisor.total_restarts == 3
    await supervisor.stop()
    assert {s.state for s in supervisor.status()} == {"stopped"}


async def test_backoff_doubles_up_to_the_cap():
    supervisor = Supervisor(initial=0.02, cap=0.08)
    starts: list[float] = []
    loop = asyncio.get_running_loop()

    async def always_fails() -> None:
        starts.append(loop.time())
        raise RuntimeError("boom")

    supervisor.spawn("bad", always_fails)
    await asyncio.sleep(0.6)
    await supervisor.stop()
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert len(gaps) >= 4
    # jitter is 0.5x..1.5x of 0.02, 0.04, 0.08, 0.08 ...
    assert 0.009 <= gaps[0] <= 0.04 and all(g <= 0.13 for g in gaps)
    assert max(gaps[2:]) >= 0.039, "later gaps grew towards the cap"


async def test_a_task_that_returns_is_finished_not_restarted():
    supervisor = Supervisor(initial=0.01)
    calls = []

    async def once() -> None:
        calls.append(1)

    supervisor.spawn("once", once)
    await asyncio.sleep(0.05)
    assert calls == [1] and supervisor.status()[0].state == "finished"
    await supervisor.stop()
