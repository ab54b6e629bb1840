"""Open the simulator backend the config names, and choose one for ``"auto"`` (the default).

``"node"`` simulates with ``eth_simulateV1`` on the upstream node itself, ``"revm"`` in-process
over a fork cache kept warm, ``"anvil"`` in a fork process. Which is fastest depends on where
the node is: a node on this host or its LAN runs the bundle natively and answers in well under a
millisecond, while pyrevm takes ~0.3-0.5 ms per transaction here (``make bench``'s
``by_simulator``: on the devnet, node 4.7-8.0 ms wire to relay at p50 against revm's 6.8-8.4 ms,
and p99 54 ms against 338 ms during the 10x burst); a remote node costs a round trip on every
bundle, and many providers do not serve ``eth_simulateV1`` at all. So ``auto`` times the node
and asks it: :func:`choose_backend`.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

from chain.errors import ChainError
from chain.rpc import connect
from simulation.fork import AnvilForkSimulator
from simulation.fork_v1 import supports_simulate_v1
from simulation.node_sim import NodeSimulator
from simulation.revm_backend import RevmSimulator
from simulation.simulator import DEFAULT_COINBASE, Backend, SimulationError, Simulator

# A node that answers this fast (the median of a few eth_blockNumber round trips) is close enough
# that simulating on it beats running the bundle in pyrevm: it is this host's or its LAN's.
LOCAL_NODE_MS = 1.0
RTT_SAMPLES = 7


@dataclass(frozen=True, slots=True)
class Choice:
    """The backend ``auto`` stands for on this node, and why (one line for the log and doctor)."""

    backend: Backend
    reason: str


async def choose_backend(
    upstream_url: str, *, avoid: Backend | None = None, timeout: float = 5.0
) -> Choice:
    """``node`` when the node answers within :data:`LOCAL_NODE_MS` and serves ``eth_simulateV1``,
    else ``revm``; never ``avoid`` (the final check's backend: then ``revm``, or ``anvil`` when
    the final check is revm). Unreachable: :class:`SimulationError`."""
    fallback: Backend = "anvil" if avoid == "revm" else "revm"
    try:
        async with connect(upstream_url, timeout=timeout) as rpc:
            rtts = []
            for _ in range(RTT_SAMPLES):
                started = time.perf_counter()
                await rpc.call("eth_blockNumber", [])
                rtts.append((time.perf_counter() - started) * 1000)
            rtt = statistics.median(rtts)
            simulates = await supports_simulate_v1(rpc, timeout)
    except ChainError as error:
        raise SimulationError(f"upstream {upstream_url} unreachable: {error}") from None
    answers = f"the node answers in {rtt:.2f} ms"
    if avoid == "node":
        return Choice(fallback, f"{answers}; node is the final check")
    if not simulates:
        return Choice(fallback, f"{answers} but has no eth_simulateV1")
    if rtt > LOCAL_NODE_MS:
        return Choice(fallback, f"{answers} (over {LOCAL_NODE_MS:g} ms: not a local node)")
    return Choice("node", f"{answers} and serves eth_simulateV1")


def open_simulator(
    backend: Backend,
    upstream_url: str,
    *,
    stream_url: str | None = None,
    block_interval: int = 12,
    coinbase: str = DEFAULT_COINBASE,
    call_timeout: float = 5.0,
) -> Simulator:
    """An unstarted simulator; ``await sim.start()`` before use. The revm backend needs an
    HTTP(S) upstream (pyrevm's fork client, behind its fetch guard). The node backend simulates
    over ``stream_url`` (the same node's WebSocket) when given: a bundle's round trip there
    took ~0.2 ms less than over HTTP on loopback (0.66 vs 0.85 ms for one tx, 0.92 vs 1.13 for
    two, ``eth_simulateV1`` on the devnet, interleaved)."""
    if backend == "anvil":
        return AnvilForkSimulator(
            upstream_url,
            block_interval=block_interval,
            coinbase=coinbase,
            call_timeout=call_timeout,
        )
    if backend == "revm":
        return RevmSimulator(
            upstream_url,
            block_interval=block_interval,
            coinbase=coinbase,
            call_timeout=call_timeout,
        )
    if backend == "node":
        return NodeSimulator(
            stream_url or upstream_url,
            block_interval=block_interval,
            coinbase=coinbase,
            call_timeout=call_timeout,
        )
    raise ValueError(f"unknown simulator backend {backend!r}: use 'anvil', 'revm' or 'node'")
