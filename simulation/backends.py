"""Pick the simulator backend from the config: ``"revm"`` (the default: in-process, a fork cache
kept warm), ``"anvil"`` (a fork process) or ``"node"`` (``eth_simulateV1`` on the upstream node
itself)."""

from __future__ import annotations

from simulation.fork import AnvilForkSimulator
from simulation.node_sim import NodeSimulator
from simulation.revm_backend import RevmSimulator
from simulation.simulator import DEFAULT_COINBASE, Backend, Simulator


def open_simulator(
    backend: Backend,
    upstream_url: str,
    *,
    block_interval: int = 12,
    coinbase: str = DEFAULT_COINBASE,
    call_timeout: float = 5.0,
) -> Simulator:
    """An unstarted simulator; ``await sim.start()`` before use. The revm backend needs an
    HTTP(S) upstream (pyrevm's fork client, behind its fetch guard)."""
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
            upstream_url,
            block_interval=block_interval,
            coinbase=coinbase,
            call_timeout=call_timeout,
        )
    raise ValueError(f"unknown simulator backend {backend!r}: use 'anvil', 'revm' or 'node'")
