"""The pipeline, wiring only: pending tx or new head -> state -> strategies -> submitter.

:class:`Engine` receives every collaborator (state, decoder, strategies, simulator, submitter).
A pending tx is decoded (unless the intake did it), applied to the state as an overlay and shown
to the strategies; a new head is applied to the state, moves the simulator and the submitter
(nonce, settlements) and runs the block strategies. Candidates go to the
:class:`~mevbot.submitter.Submitter`, which owns what happens to them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from chain.envelope import signed_envelope
from chain.intents import Intent
from chain.types import BlockHeader, PendingTx
from mevbot.counters import Counts
from mevbot.latency import LatencyBook
from mevbot.submitter import Submitter, Verdict
from simulation.candidates import Candidate
from simulation.pools import StateMissing
from simulation.simulator import Simulator
from simulation.state import ChainState, StateChanges
from strategies.base import BlockContext, PendingContext, Strategy
from watcher.decode import Decoder
from watcher.events import NewHead, Reorg


class Engine:
    """Runs strategies on events and hands their candidates to the submitter."""

    def __init__(
        self,
        *,
        state: ChainState,
        decoder: Decoder,
        strategies: Sequence[Strategy],
        simulator: Simulator,
        submitter: Submitter,
        counts: Counts,
        latency: LatencyBook,
        on_block_hooks: Sequence[Callable[[NewHead, StateChanges], Any]] = (),
    ) -> None:
        self.state = state
        self.decoder = decoder
        self.strategies = list(strategies)
        self.simulator = simulator
        self.submitter = submitter
        self.counts = counts
        self.latency = latency
        self.on_block_hooks = list(on_block_hooks)
        self.processed_block = 0  # the last head whose processing finished
        # Told of a pending tx that left no effect because the state lacked something to price
        # it (e.g. a V3 bitmap word being fetched): it may be offered to on_pending again.
        self.on_missed_hooks: list[Callable[[PendingTx, Intent | None, StateMissing], Any]] = []

    @property
    def head(self) -> BlockHeader | None:
        """The last head the submitter moved to."""
        return self.submitter.head

    async def on_pending(
        self, tx: PendingTx, intent: Intent | None = None, *, retried: bool = False
    ) -> list[Verdict]:
        """A pending tx (decoded already, or decoded here): state after it -> strategies ->
        each candidate submitted. ``retried``: considered before (counted then)."""
        candidates = self.candidates_for(tx, intent, retried=retried)
        return [await self.submitter.submit(c) for c in candidates]

    def candidates_for(
        self,
        tx: PendingTx,
        intent: Intent | None = None,
        *,
        decode_ms: float | None = None,
        retried: bool = False,
    ) -> list[Candidate]:
        """What the strategies make of a pending tx, from the state after it (no I/O: callers
        that submit candidates concurrently still consider txs in arrival order). ``decode_ms``:
        the time an intake took to decode it, ``intent`` being its answer (even when None);
        ``retried``: a tx considered before, counted as handled then."""
        if not retried:
            self.counts.pending += 1
        if decode_ms is not None:
            self.latency.record("decode", decode_ms)
        elif intent is None:
            start = time.monotonic_ns()
            intent = self.decoder.decode(tx.to, tx.input, tx.value)
            self.latency.record_ns("decode", start, time.monotonic_ns())
        state_start = time.monotonic_ns()
        effect = self.state.after(intent)
        self.latency.record_ns("state", state_start, time.monotonic_ns())
        if effect.empty:
            self.counts.pending_reverting += effect.reverts
            if effect.missing is not None:
                for hook in self.on_missed_hooks:
                    hook(tx, intent, effect.missing)
            return []
        self.counts.pending_relevant += 1
        if tx.raw is None:
            raw = signed_envelope(tx)
            if raw is None:
                self.counts.no_envelope += 1
            else:
                tx = replace(tx, raw=raw)
        context = PendingContext(tx, effect, self.state.block_number + 1)
        strategy_start = time.monotonic_ns()
        candidates = [c for s in self.strategies for c in s.on_pending(context, self.state)]
        self.latency.record_ns("strategy", strategy_start, time.monotonic_ns())
        return candidates

    async def on_head(self, head: NewHead) -> list[Verdict]:
        """A new block: apply its logs, move the simulator and the submitter, block strategies."""
        if head.number > self.state.block_number:
            changes = self.state.apply_block(
                head.number, head.hash, head.logs, head.header.timestamp
            )
        else:
            # The block the state was loaded at (a head stream announces the current head when it
            # connects): its logs are in already, and lending events are deltas.
            changes = StateChanges()
        self.counts.blocks += 1
        self.counts.malformed_logs += changes.malformed
        await self.simulator.on_new_head(head.number)
        await self.submitter.on_head(head.header)
        for hook in self.on_block_hooks:
            hook(head, changes)
        context = BlockContext(head.header, changes, head.number + 1)
        candidates = [c for s in self.strategies for c in s.on_block(context, self.state)]
        # Submitted together, they join the block's bundle in one simulation and send.
        verdicts = list(await asyncio.gather(*(self.submitter.submit(c) for c in candidates)))
        self.processed_block = head.number
        return verdicts

    def on_reorg(self, reorg: Reorg) -> None:
        """Roll the state back to the common ancestor; the new branch's heads follow."""
        self.counts.reorgs += 1
        if reorg.common_ancestor is None or not self.state.can_roll_back_to(reorg.common_ancestor):
            raise RuntimeError(
                f"reorg of depth {reorg.depth} is deeper than the state's history: reload needed"
            )
        self.state.rollback_to(reorg.common_ancestor)
