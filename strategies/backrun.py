"""Backrun arbitrage: after a pending swap (or a block) moves pools, close the price gap it left.

On a pending transaction the strategy looks only at the cycles through the pools that swap
moves, evaluated on the state the swap leaves (:meth:`ChainState.pools_after`), and proposes the
best one as a bundle ``[their swap, our Executor.arbitrageHops]``: ours lands after theirs,
never before. On a new block it looks for gaps the block itself left (no trigger, nothing to
backrun) among the cycles through the pools the block changed or that it proposed a block
earlier (a gap stays open until someone closes it) — all cycles on the first block it sees —
and proposes up to ``max_block_candidates`` trades on disjoint pools. Cycles through pools of
any kind (V2 and V3 alike) start and end in ``start_token`` (WETH), so profits are already in
ETH wei; the Executor finances each with a flash swap of its first hop, so it needs no
inventory (with ``max_amount_in`` it trades its own, up to that much). Amounts and profits are
exact under the integer math the pools run.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from simulation.actions import HopArbitrageAction
from simulation.arbitrage import (
    SEARCH_BUDGET,
    Cycle,
    CycleIndex,
    Opportunity,
    SearchMemo,
    best_opportunity,
)
from simulation.candidates import Candidate
from simulation.pool_kinds import executor_hop
from simulation.pools import PoolState, StateMissing
from simulation.state import ChainState
from strategies.base import BlockContext, PendingContext

# The search's best input is its exact maximum over what the pools can price; when the true
# optimum lies past a pool's loaded state, that maximum sits at the edge of it. An input 1/16
# past the best probes for that edge (a trade within 1/16 of it asks too: the next, larger,
# trade through the pool needs what lies beyond anyway).
PROBE_SHIFT = 4


@dataclass(slots=True)
class BackrunStats:
    """Counters for metrics: pending txs that moved a tracked pool, those skipped because the
    victim's signed envelope was unknown, candidates proposed, cycle-index rebuilds, and best
    trades found at the edge of what their pools' local state prices (more of it was asked
    for)."""

    triggers: int = 0
    skipped_no_raw: int = 0
    candidates: int = 0
    block_candidates: int = 0
    cycle_rebuilds: int = 0
    search_misses: int = 0


def _closed_form(cycle: Cycle, pools: Mapping[str, PoolState]) -> bool:
    return all(pools[p].constant_product(True) is not None for p in cycle.pools)


def tradable(pools: Iterable[PoolState]) -> list[PoolState]:
    """The pools the Executor can swap through (its pool kind registers an Executor hop)."""
    return [pool for pool in pools if executor_hop(pool.kind) is not None]


def cycle_id(cycle: Cycle) -> str:
    """A short stable name for a cycle (its idempotency key part)."""
    text = ",".join((cycle.start_token, *cycle.pools))
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


def _probe(amount_in: int) -> int:
    """An input a little past ``amount_in``: a trade that cannot be priced there was capped by
    what the local state knows (the search stops where a pool raises StateMissing)."""
    return amount_in + (amount_in >> PROBE_SHIFT) + 1


def _capped(opportunity: Opportunity, pools: Mapping[str, PoolState], max_amount_in: int) -> int:
    """The exact profit of ``opportunity``'s cycle when only ``max_amount_in`` can be traded."""
    return opportunity.cycle.amounts(pools, max_amount_in)[-1] - max_amount_in


class BackrunArbitrage:
    """Cyclic arbitrage behind pending swaps and after blocks, on cycles from ``start_token``.

    ``cycles`` should cover the state's pools (see :meth:`for_state`); it is rebuilt from all
    of them when a block brings new pairs. ``min_expected_profit_wei`` is the least expected
    profit (before gas and bid) worth a candidate. ``max_amount_in`` makes the executor trade its
    own inventory instead of a flash swap, capped to it: a larger optimum is traded at the cap,
    its profit recomputed exactly.
    """

    def __init__(
        self,
        name: str,
        cycles: CycleIndex,
        *,
        start_token: str,
        min_expected_profit_wei: int = 1,
        max_amount_in: int | None = None,
        max_hops: int = 3,
        max_block_candidates: int = 4,
    ) -> None:
        self.name = name
        self.cycles = cycles
        self.start_token = start_token
        self.min_expected_profit_wei = max(1, min_expected_profit_wei)
        self.max_amount_in = max_amount_in
        self.max_hops = max_hops
        self.max_block_candidates = max_block_candidates
        self.stats = BackrunStats()
        self._indexed_pool_count: int | None = None
        self._seen_block = False
        self._open_pools: frozenset[str] = frozenset()
        # A block looks at the same mixed cycles up to max_block_candidates times, and again
        # next block where their pools did not move: each is searched once per pool state.
        self.memo = SearchMemo()

    @classmethod
    def for_state(
        cls, name: str, state: ChainState, *, start_token: str, max_hops: int = 3, **options: Any
    ) -> BackrunArbitrage:
        """A strategy whose cycles are every cycle from ``start_token`` over ``state``'s pools."""
        strategy = cls(
            name,
            CycleIndex.build(tradable(state.pools.values()), [start_token], max_hops),
            start_token=start_token,
            max_hops=max_hops,
            **options,
        )
        strategy._indexed_pool_count = len(state.pools)
        return strategy

    # ------------------------------------------------------------------ pending

    def on_pending(self, context: PendingContext, state: ChainState) -> list[Candidate]:
        moved = context.effect.pools
        if not moved:
            return []
        self.stats.triggers += 1
        tx = context.tx
        if tx.raw is None:
            self.stats.skipped_no_raw += 1
            return []
        found = self.best_after(state, moved, state.pools_after(context.effect))
        if found is None:
            return []
        action, profit = found
        self.stats.candidates += 1
        return [
            Candidate(
                strategy=self.name,
                key=f"backrun:{context.target_block}:{tx.hash}",
                action=action,
                backrun=(tx,),
                target_block=context.target_block,
                profit_token=self.start_token,
                expected_profit=profit,
                expected_profit_wei=profit,
                detected_at=tx.received_at,
            )
        ]

    def best_after(
        self, state: ChainState, moved: Iterable[str], pools: Mapping[str, PoolState]
    ) -> tuple[HopArbitrageAction, int] | None:
        """The best cycle through the ``moved`` pools on ``pools`` (the state after a trade):
        its Executor action and exact profit, if it pays at least the minimum."""
        moved = list(moved)
        self._refresh_cycles(state, new_pairs=False)
        touching = self.cycles.cycles_touching
        if len(moved) == 1:
            cycles: Iterable[Cycle] = touching(moved[0])
        else:
            cycles = dict.fromkeys(cycle for pool in moved for cycle in touching(pool))
        # Behind a swap through constant-product pools, where a closed-form cycle answers, mixed
        # cycles (~25 path quotes each) wait for the block; a swap that moved a pool with no closed
        # form (V3), or one with no closed-form cycle through it, gets the exact search.
        cycles = list(cycles)
        closed = any(_closed_form(c, pools) for c in cycles)
        mixed = not closed or any(pools[p].constant_product(True) is None for p in moved)
        found = self._best(cycles, pools, state, SEARCH_BUDGET if mixed else 0)
        if found is None:
            return None
        opportunity, amount_in, profit = found
        return self._action(opportunity, pools, amount_in), profit

    def _action(
        self, opportunity: Opportunity, pools: Mapping[str, PoolState], amount_in: int
    ) -> HopArbitrageAction:
        """The Executor's hop cycle: financed by a flash swap of its first hop, or from the
        executor's inventory when the strategy is capped to it."""
        flash = self.max_amount_in is None
        return HopArbitrageAction.for_cycle(opportunity.cycle, pools, amount_in, flash=flash)

    def _refresh_cycles(self, state: ChainState, new_pairs: bool) -> None:
        """Rebuild the cycles from every pool when pools appeared (or a reorg removed some), so
        that no cycle names a pool the state no longer has."""
        if self._indexed_pool_count is None:
            self._indexed_pool_count = len(state.pools)
        if new_pairs or self._indexed_pool_count != len(state.pools):
            self.cycles = CycleIndex.build(
                tradable(state.pools.values()), [self.start_token], self.max_hops
            )
            self._indexed_pool_count = len(state.pools)
            self.stats.cycle_rebuilds += 1

    def _best(
        self,
        cycles: Iterable[Cycle],
        pools: Mapping[str, PoolState],
        state: ChainState,
        search_budget: int = SEARCH_BUDGET,
    ) -> tuple[Opportunity, int, int] | None:
        """The best opportunity with its (possibly capped) input and exact profit, if it pays
        at least the minimum."""
        opportunity = best_opportunity(
            cycles, pools, self.min_expected_profit_wei - 1, search_budget, self.memo
        )
        if opportunity is None:
            return None
        self._ask_past_edge(opportunity, pools, state)
        if self.max_amount_in is None or opportunity.amount_in <= self.max_amount_in:
            return opportunity, opportunity.amount_in, opportunity.profit
        profit = _capped(opportunity, pools, self.max_amount_in)
        if profit < self.min_expected_profit_wei:
            return None
        return opportunity, self.max_amount_in, profit

    def _ask_past_edge(
        self, opportunity: Opportunity, pools: Mapping[str, PoolState], state: ChainState
    ) -> None:
        """A best trade the pools' local state cannot price a little further (see
        :data:`PROBE_SHIFT`) was likely capped by it: what is missing goes to the state's
        ``on_missing`` (e.g. the V3 word fetcher), so that the next search is not capped."""
        if state.on_missing is None or _closed_form(opportunity.cycle, pools):
            return
        try:
            opportunity.cycle.amounts(pools, _probe(opportunity.amount_in))
        except StateMissing as missing:
            self.stats.search_misses += 1
            state.on_missing(missing)
        except ArithmeticError:  # past what a pool takes at all: nothing to fetch
            return

    # ------------------------------------------------------------------ blocks

    def on_block(self, context: BlockContext, state: ChainState) -> list[Candidate]:
        changes = context.changes
        first_block, self._seen_block = not self._seen_block, True
        self._refresh_cycles(state, new_pairs=bool(changes.new_pairs))
        if first_block:
            cycles: Sequence[Cycle] = self.cycles.cycles
        else:
            # Gaps proposed last block that did not close are still open: look at them again.
            pools = changes.pools | self._open_pools
            touching = self.cycles.cycles_touching
            cycles = list(dict.fromkeys(c for pool in pools for c in touching(pool)))
        candidates = self._disjoint_candidates(cycles, state, context)
        self._open_pools = frozenset(p for c in candidates for p in c.action.pools)
        return candidates

    def _disjoint_candidates(
        self, cycles: Sequence[Cycle], state: ChainState, context: BlockContext
    ) -> list[Candidate]:
        """Best trades one after another, each on pools none of the earlier ones use, so that
        all of them can land in the same block."""
        candidates: list[Candidate] = []
        pools = state.pools
        while cycles and len(candidates) < self.max_block_candidates:
            found = self._best(cycles, pools, state)
            if found is None:
                break
            opportunity, amount_in, profit = found
            candidates.append(
                Candidate(
                    strategy=self.name,
                    key=f"arb:{context.target_block}:{cycle_id(opportunity.cycle)}",
                    action=self._action(opportunity, pools, amount_in),
                    backrun=(),
                    target_block=context.target_block,
                    profit_token=self.start_token,
                    expected_profit=profit,
                    expected_profit_wei=profit,
                    detected_at=context.header.received_at,
                )
            )
            used = set(opportunity.cycle.pools)
            cycles = [cycle for cycle in cycles if used.isdisjoint(cycle.pools)]
        self.stats.block_candidates += len(candidates)
        return candidates
