"""Liquidation backrun: a pending price-feed update that pushes positions under health factor 1.

When a pending transaction would post a new answer to a feed the lending market reads, the
strategy re-checks only the users, healthy now, whom that price move can push under health
factor 1 (a :class:`~simulation.liquidation.PositionIndex` of borrowers by asset and health,
kept in step block by block), and sizes them with
:func:`~simulation.liquidation.find_liquidations` under the prices the update would leave:
close-factor debt, collateral plus bonus, swap back to the debt asset through the best tracked
pool. Each candidate is ``[the feed update, our Executor.liquidate]`` — ours after theirs.
Positions that are already unhealthy with no trigger are the liquidation keeper's.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from simulation.actions import LiquidationAction
from simulation.candidates import Candidate
from simulation.liquidation import PositionIndex, find_liquidations
from simulation.state import ChainState
from strategies.base import BlockContext, PendingContext


@dataclass(slots=True)
class LiquidationStats:
    """Counters for metrics: pending feed updates seen, those skipped for want of the signed
    envelope, positions re-checked, candidates proposed."""

    feed_updates: int = 0
    skipped_no_raw: int = 0
    positions_checked: int = 0
    candidates: int = 0


class LiquidationBackrun:
    """Backruns pending oracle updates with liquidations of the positions they make unhealthy.

    ``weth`` prices profits in ETH wei; ``min_expected_profit_wei`` is the least expected profit
    (before gas and bid) worth a candidate; ``max_cover`` caps the debt covered per debt asset
    (the executor's inventory; None means uncapped); swap-back venues are the pools of
    ``factories`` (default: the state's routers' factories).
    """

    def __init__(
        self,
        name: str,
        *,
        weth: str,
        min_expected_profit_wei: int = 1,
        max_cover: Mapping[str, int] | None = None,
        factories: Iterable[str] | None = None,
    ) -> None:
        self.name = name
        self.weth = weth
        self.min_expected_profit_wei = max(1, min_expected_profit_wei)
        self.max_cover = None if max_cover is None else dict(max_cover)
        self.factories = None if factories is None else tuple(factories)
        self.index = PositionIndex()
        self.stats = LiquidationStats()

    def on_pending(self, context: PendingContext, state: ChainState) -> list[Candidate]:
        effect = context.effect
        if not effect.feeds or state.lending_pool is None:
            return []
        assets = [state.feed_assets[f] for f in effect.feeds if f in state.feed_assets]
        if not assets:
            return []
        self.stats.feed_updates += 1
        tx = context.tx
        if tx.raw is None:
            self.stats.skipped_no_raw += 1
            return []
        self.index.ensure_current(state)
        before, after = state.prices, state.prices_after(effect)
        users = self.index.at_risk({a: (before.get(a, 0), after.get(a, 0)) for a in assets})
        self.stats.positions_checked += len(users)
        opportunities = find_liquidations(
            state,
            weth=self.weth,
            users=users,
            prices=after,
            pools=state.pools_after(effect),
            factories=self.factories,
            max_cover=self.max_cover,
            min_profit_wei=self.min_expected_profit_wei,
        )
        self.stats.candidates += len(opportunities)
        return [
            Candidate(
                strategy=self.name,
                key=f"liq:{context.target_block}:{o.user}:{tx.hash}",
                action=LiquidationAction(
                    pool=state.lending_pool,
                    collateral_asset=o.collateral_asset,
                    debt_asset=o.debt_asset,
                    user=o.user,
                    debt_to_cover=o.debt_to_cover,
                    swap_pairs=(o.swap_pool,),
                ),
                backrun=(tx,),
                target_block=context.target_block,
                profit_token=o.debt_asset,
                expected_profit=o.profit,
                expected_profit_wei=o.profit_wei,
                detected_at=tx.received_at,
            )
            for o in opportunities
        ]

    def on_block(self, context: BlockContext, state: ChainState) -> list[Candidate]:
        """Keeps the position index in step; an unhealthy position with no trigger is the
        liquidation keeper's, so this proposes nothing."""
        self.index.follow_block(state, context.header.parent_hash, context.changes)
        return []
