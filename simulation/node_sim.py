"""Simulation on the upstream node itself: ``eth_simulateV1`` at the node's head, no fork.

When the node is local (an IPC or loopback node of your own) and answers ``eth_simulateV1``
(geth, reth, anvil do), this is the fastest verifier: no fork process to move at every block,
no cold state to fetch after a reset, always exactly the node's state. Each bundle is simulated
on top of the head the bot has seen (``on_new_head``), so a race with a newer block cannot mix
states. The request, nonce checks and balance diffs are those of :mod:`simulation.fork_v1`.
"""

from __future__ import annotations

from collections.abc import Sequence

from chain.errors import ChainError
from chain.rpc import eth_get_block
from chain.rpc_reconnecting import ReconnectingRpc
from simulation.balances import assemble, balance_query
from simulation.fork_v1 import simulate_v1, supports_simulate_v1
from simulation.prepared import prepare
from simulation.simulator import (
    SimBlock,
    SimCall,
    SimResult,
    SimulationError,
    UpstreamSimulator,
    resolve_block,
)


class NodeSimulator(UpstreamSimulator):
    """The :class:`~simulation.simulator.Simulator` interface over the upstream node."""

    kind = "node simulator"

    def _init_backend(self) -> None:
        self.rpc = ReconnectingRpc(self.upstream_url, timeout=self.call_timeout)
        self._nonces: dict[str, int] = {}  # state nonces at the head, filled on demand

    async def start(self) -> None:
        try:
            if not await supports_simulate_v1(self.rpc, self.call_timeout):
                raise SimulationError(
                    f"{self.upstream_url} has no eth_simulateV1: use the anvil or revm backend"
                )
            self._head = await eth_get_block(self.rpc, "latest")
        except ChainError as error:
            raise SimulationError(f"upstream {self.upstream_url} unreachable: {error}") from None

    async def on_new_head(self, block_number: int) -> None:
        if self._head is not None and block_number <= self._head.number:
            return
        try:
            header = await eth_get_block(self.rpc, block_number)
        except ChainError as error:
            raise SimulationError(f"upstream block {block_number}: {error}") from None
        if header is not None:
            self._head = header
            self._nonces.clear()

    async def simulate(
        self,
        txs: Sequence[bytes | SimCall],
        *,
        block: SimBlock | None = None,
        watch: Sequence[str] = (),
        tokens: Sequence[str] = (),
    ) -> SimResult:
        head = self.head
        env = resolve_block(head, block, block_interval=self.block_interval, coinbase=self.coinbase)
        prepared = prepare(txs, env)
        query = balance_query(watch, tokens, env.coinbase)
        try:
            outcomes, before, after = await simulate_v1(
                self.rpc, prepared, env, query, self.call_timeout, self._nonces, hex(head.number)
            )
        except ChainError as error:
            raise SimulationError(f"upstream failed: {error}") from None
        return assemble(outcomes, query, before, after, env)

    async def close(self) -> None:
        await self.rpc.close()
