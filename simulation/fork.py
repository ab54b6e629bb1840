"""The anvil fork simulator: an anvil process forked from the upstream node, supervised.

:class:`AnvilForkSimulator` starts ``anvil --fork-url UPSTREAM --fork-block-number N`` (readiness
probe and start-up timeout from :class:`chain.node.AnvilProcess`), talks to it over WebSocket,
moves the fork to each new upstream head and, when the process dies or its connection drops,
starts a new one at the same block on the next ``simulate()`` and retries the bundle once.

Moving to a new head: by default the fork is kept warm (:mod:`simulation.fork_warm`): the new
blocks' state changes, from the upstream's prestate diff traces, are written onto the fork, so
the state it fetched stays; every head a sample of reads is compared with the upstream
(``warm.drift_checks`` / ``warm.drift_mismatches``, :class:`simulation.fork_warm.Follower`) and a
drifted fork is reset. ``anvil_reset`` to the head (which drops all fetched state) remains for
what the warm path cannot follow: a reorg, a gap of more than ``max_gap`` blocks, an upstream
without diff traces (``warm.warm_unavailable`` says why), the snapshot method (it mines on the
fork's own block), an upstream too slow to trace the new blocks within ``warm_timeout``
(``warm.warm_timeouts``: an anvil upstream under a burst took seconds), and every
``rebase_every`` blocks, so that the fork never fetches state older than a pruning node keeps
(geth: 128 blocks).

Bundles run through ``eth_simulateV1`` (:mod:`simulation.fork_v1`) or, on nodes
without it, by mining on a snapshot (:mod:`simulation.fork_snapshot`). Every call has a timeout;
failures surface as :class:`~simulation.simulator.SimulationError`, never as a hang.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Any, Literal

from chain.errors import ChainError, ConnectionLost, RpcTimeout
from chain.node import AnvilProcess, NodeStartError
from chain.rpc import WsRpc, connect, eth_block_number, eth_get_block
from simulation.balances import BalanceQuery, assemble, balance_query
from simulation.fork_snapshot import SnapshotRunner
from simulation.fork_v1 import simulate_v1, supports_simulate_v1
from simulation.fork_warm import Advance, WarmFork, rpc_reader, write
from simulation.prepared import PreparedTx, prepare
from simulation.simulator import (
    BlockEnv,
    SimBlock,
    SimCall,
    SimResult,
    SimulationError,
    resolve_block,
)

Method = Literal["auto", "simulate_v1", "snapshot"]
MAX_WARMUP_CALLS = 2_000


class AnvilForkSimulator(WarmFork):
    """``await sim.start()``, then ``await sim.simulate(txs, watch=..., tokens=...)``; feed
    ``await sim.on_new_head(n)`` from the block watcher; ``await sim.close()`` at the end.

    ``method`` "auto" uses ``eth_simulateV1`` when the fork answers it, else mining on a snapshot.
    ``block_interval`` sets the default timestamp of the simulated block (head + interval).
    Following heads: see :class:`simulation.fork_warm.WarmFork` (its options pass through).
    """

    kind = "fork simulator"

    def __init__(
        self,
        upstream_url: str,
        *,
        method: Method = "auto",
        reset_timeout: float = 30.0,
        startup_timeout: float = 20.0,
        rebase_every: int = 64,
        **options: Any,
    ) -> None:
        super().__init__(upstream_url, **options)
        self.method = method
        self.reset_timeout = reset_timeout
        self.startup_timeout = startup_timeout
        self.rebase_every = rebase_every
        self.warm.call_timeout = reset_timeout
        self._anchor = 0  # the block the fork process was forked or reset at
        self.node: AnvilProcess | None = None
        self.restarts = 0
        self.snapshot_runner = SnapshotRunner()
        self._rpc: WsRpc | None = None
        self._fork_block = 0
        self._lock = asyncio.Lock()
        self._nonces: dict[str, int] = {}  # state nonces at the fork head, filled on demand

    async def start(self) -> None:
        try:
            async with connect(self.upstream_url, timeout=self.call_timeout) as upstream:
                number = await eth_block_number(upstream)
        except ChainError as error:
            raise SimulationError(f"upstream {self.upstream_url} unreachable: {error}") from None
        async with self._lock:
            await self._launch(number)

    async def on_new_head(self, block_number: int) -> None:
        """Move the fork to upstream block ``block_number`` (older or equal numbers are ignored)."""
        if self._head is not None and block_number <= self._fork_block:
            return
        async with self._lock:
            if self._rpc is None or not self._alive():
                await self._launch(block_number)
                return
            if self._can_stay_warm(block_number) and await self._advance(block_number):
                return
            await self._reset(block_number)

    def _can_stay_warm(self, block_number: int) -> bool:
        return (
            self.keep_warm
            and not self.warm.warm_unavailable
            and self.method == "simulate_v1"
            and block_number - self._fork_block <= self.max_gap
            and block_number - self._anchor < self.rebase_every
        )

    async def _advance(self, block_number: int) -> bool:
        """Write the new blocks' changes onto the fork and check a sample; False: reset instead."""
        rpc = self._rpc
        assert rpc is not None

        async def write_all(moved: Advance) -> None:
            await write(rpc, moved.values, self.reset_timeout)
            self._head, self._fork_block = moved.head, block_number
            self._nonces.clear()

        head = await self.warm.move(
            self.head,
            block_number,
            write_all,
            rpc_reader(rpc, self.reset_timeout),
            self._hot_probes(),
        )
        return head is not None

    async def _reset(self, block_number: int) -> None:
        """``anvil_reset`` the fork to ``block_number`` (a relaunch if that fails)."""
        assert self._rpc is not None
        try:
            forking = {"jsonRpcUrl": self.upstream_url, "blockNumber": block_number}
            await self._rpc.call("anvil_reset", [{"forking": forking}], timeout=self.reset_timeout)
            head = await eth_get_block(self._rpc, "latest")
        except ChainError:
            await self._launch(block_number)
            return
        if head is None:
            raise SimulationError("fork has no latest block after anvil_reset")
        self._head, self._fork_block, self._anchor = head, block_number, block_number
        self.warm.heads_reset += 1
        self._nonces.clear()
        await self._warm()

    async def _warm(self) -> None:
        """Fetch, in one batch, the state the next bundles will read (``warmup`` calls): a reset
        fork holds nothing, and each first read would otherwise reach the upstream mid-bundle."""
        if not self.warmup or self._rpc is None:
            return
        calls = [
            ("eth_call", [{"to": to, "data": "0x" + data.hex()}, "latest"])
            for to, data in self.warmup[:MAX_WARMUP_CALLS]
        ]
        with contextlib.suppress(ChainError):  # only a warm-up: simulations fetch what they need
            await self._rpc.batch(calls, timeout=self.reset_timeout)

    async def simulate(
        self,
        txs: Sequence[bytes | SimCall],
        *,
        block: SimBlock | None = None,
        watch: Sequence[str] = (),
        tokens: Sequence[str] = (),
    ) -> SimResult:
        if self._lock.locked():  # a reset or restart is moving the fork: wait for its new head
            async with self._lock:
                pass
        env = resolve_block(
            self.head, block, block_interval=self.block_interval, coinbase=self.coinbase
        )
        prepared = prepare(txs, env)
        query = balance_query(watch, tokens, env.coinbase)
        try:
            return await self._attempt(await self._ready(), prepared, env, query)
        except (ConnectionLost, RpcTimeout) as error:
            if self._alive():
                raise SimulationError(f"fork did not answer: {error}") from None
        except ChainError as error:
            raise SimulationError(f"fork failed: {error}") from None
        # The fork died under this bundle: _ready() restarts it and the bundle runs once more.
        try:
            return await self._attempt(await self._ready(), prepared, env, query)
        except ChainError as error:
            raise SimulationError(f"restarted fork failed: {error}") from None

    async def _attempt(
        self, rpc: WsRpc, prepared: tuple[PreparedTx, ...], env: BlockEnv, query: BalanceQuery
    ) -> SimResult:
        if self.method == "snapshot":
            if env.number != self.head.number + 1:
                raise SimulationError("snapshot simulation can only mine the next block")
            run = self.snapshot_runner.run(rpc, prepared, env, query, self.call_timeout)
        else:
            run = simulate_v1(rpc, prepared, env, query, self.call_timeout, self._nonces)
        outcomes, before, after = await run
        return assemble(outcomes, query, before, after, env)

    async def close(self) -> None:
        async with self._lock:
            await self._shutdown()
            await self._upstream.close()
            self._head = None

    # -- supervision -----------------------------------------------------------------------
    def _alive(self) -> bool:
        return (
            self.node is not None
            and self.node.alive()
            and self._rpc is not None
            and self._rpc.connected
        )

    async def _ready(self) -> WsRpc:
        if not self._alive():
            async with self._lock:
                if not self._alive():
                    self.restarts += 1
                    await self._launch(self._fork_block)
        assert self._rpc is not None
        return self._rpc

    async def _shutdown(self) -> None:
        if self._rpc is not None:
            await self._rpc.close()
            self._rpc = None
        if self.node is not None:
            await asyncio.to_thread(self.node.stop)
            self.node = None

    async def _launch(self, block_number: int) -> None:
        """(Re)start the fork process at upstream block ``block_number``."""
        await self._shutdown()
        node = AnvilProcess(
            args=(
                "--fork-url",
                self.upstream_url,
                "--fork-block-number",
                str(block_number),
                "--no-mining",
                "--order",
                "fifo",
                "--auto-impersonate",
            ),
            startup_timeout=self.startup_timeout,
        )
        try:
            await node.astart()
        except NodeStartError as error:
            raise SimulationError(f"fork process did not start: {error}") from None
        self.node = node
        try:
            self._rpc = await WsRpc.connect(
                node.ws_url, timeout=self.call_timeout, connect_timeout=self.call_timeout
            )
            head = await eth_get_block(self._rpc, "latest")
            if self.method == "auto":
                v1 = await supports_simulate_v1(self._rpc, self.call_timeout)
                self.method = "simulate_v1" if v1 else "snapshot"
        except ChainError as error:
            await self._shutdown()
            raise SimulationError(f"fork process does not answer: {error}") from None
        if head is None:
            raise SimulationError("fork has no latest block")
        self._head, self._fork_block, self._anchor = head, block_number, block_number
        self.warm.heads_reset += 1
        self._nonces.clear()
