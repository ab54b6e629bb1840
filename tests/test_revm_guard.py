"""The revm simulator's fetch guard: a stalled upstream costs a failed simulation in bounded
time, not a frozen bot, and a guard that died is replaced on the next bundle."""

from __future__ import annotations

import os
import signal
import time

import pytest

from chain.node import AnvilProcess
from chain.rpc import connect
from simulation.revm_backend import RevmSimulator
from simulation.simulator import SimCall, SimulationError

pytestmark = pytest.mark.timeout(60)
FUNDED = "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266"  # anvil's first default account


def _transfer_to(recipient: str) -> SimCall:
    """1 wei to ``recipient``: the simulation must fetch the recipient's account."""
    return SimCall(sender=FUNDED, to=recipient, value=1, gas=30_000)


async def test_a_stalled_upstream_fails_the_bundle_within_the_fetch_timeout(
    anvil: AnvilProcess,
) -> None:
    sim = RevmSimulator(anvil.http_url, fetch_timeout=0.5)
    await sim.start()
    assert anvil.process is not None
    try:
        assert (await sim.simulate([_transfer_to("0x" + "11" * 20)])).success
        os.kill(anvil.process.pid, signal.SIGSTOP)  # the node hangs, as a saturated one does
        try:
            started = time.monotonic()
            with pytest.raises(SimulationError) as failure:
                await sim.simulate([_transfer_to("0x" + "22" * 20)])
            elapsed = time.monotonic() - started
        finally:
            os.kill(anvil.process.pid, signal.SIGCONT)
        reason = "revm failed: fetch guard: upstream did not answer within 0.5 s"
        assert failure.value.reason == reason
        assert elapsed < 10  # not a speed figure: without the guard it waits as long as the node
        # The node answers again: the same bundle goes through, on the same warm cache.
        resets = sim.warm.heads_reset
        assert (await sim.simulate([_transfer_to("0x" + "22" * 20)])).success
        assert sim.warm.heads_reset == resets
    finally:
        await sim.close()


async def test_a_guard_that_died_is_replaced_and_the_bundle_runs(anvil: AnvilProcess) -> None:
    sim = RevmSimulator(anvil.http_url)
    await sim.start()
    try:
        guard = sim._guard
        assert guard is not None and guard.alive()
        guard.process.kill()
        await guard.process.wait()
        result = await sim.simulate([_transfer_to("0x" + "33" * 20)])
        assert result.success and result.balance_diffs == {}
        assert sim._guard is not None and sim._guard is not guard and sim._guard.alive()
    finally:
        await sim.close()
    assert not guard.alive()


async def test_a_bundle_does_not_wait_on_a_cache_stuck_moving_to_a_new_head(
    anvil: AnvilProcess,
) -> None:
    """The guard died while the node hangs and the cache's mover waits for the next block's
    trace (up to trace_timeout, holding the cache): a bundle that needs a fresh fork fails in
    about head_wait with its reason instead of waiting out the trace, and once the node answers
    again the next one runs."""
    sim = RevmSimulator(anvil.http_url, trace_timeout=30.0)
    await sim.start()
    assert anvil.process is not None and sim._guard is not None
    try:
        sim._guard.process.kill()
        await sim._guard.process.wait()
        async with connect(anvil.http_url) as node:
            await node.call("evm_mine", [])
        os.kill(anvil.process.pid, signal.SIGSTOP)
        try:
            await sim.on_new_head(sim.head.number + 1)  # returns after head_wait; the move goes on
            started = time.monotonic()
            with pytest.raises(SimulationError) as failure:
                await sim.simulate([_transfer_to("0x" + "44" * 20)])
            elapsed = time.monotonic() - started
        finally:
            os.kill(anvil.process.pid, signal.SIGCONT)
        assert failure.value.reason.startswith("revm failed: ")
        assert failure.value.reason.endswith(
            f"; not run again: the cache is still moving to block {sim.head.number + 1}"
        )
        assert elapsed < 5  # not a speed figure: the mover would have held it for 30 s
        await sim.on_new_head(sim.head.number + 1)  # the trace comes: the cache moves on
        assert (await sim.simulate([_transfer_to("0x" + "44" * 20)])).success
    finally:
        await sim.close()
