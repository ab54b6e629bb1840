"""The revm simulator's fetch guard: a stalled upstream costs a failed simulation in bounded
time, not a frozen bot, and a guard that died is replaced on the next bundle."""

from __future__ import annotations

import os
import signal
import time

import pytest

from chain.node import AnvilProcess
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
