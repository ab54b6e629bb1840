"""Liquidation opportunities in local state: who can be liquidated, for how much, and what it pays.

Trigger-free and pure: given Aave positions, reserves, prices and pools, :func:`find_liquidations`
sizes every liquidatable position the way the Executor contract runs it — flash-borrow the debt
from the Aave pool, repay the close factor's share of one debt asset, receive the collateral plus
the reserve's bonus less the protocol fee, swap it back to the debt asset through the best
tracked V2 pool, repay the loan and its premium — with exact integer math at the state's block
time (:mod:`simulation.aave_v3`, :mod:`simulation.amm`), so the profit predicted equals the
Executor's measured gain. The oracle-update backrun strategy calls it with the prices a pending
update would leave; the liquidation keeper calls it on every block with the current ones.

:class:`PositionIndex` maps each lending asset to the users who supply or borrow it, sorted by
health factor, so a price move of one asset re-checks only the positions it can push under 1.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from simulation.aave_v3 import (
    HEALTH_FACTOR_LIQUIDATION_THRESHOLD,
    AavePosition,
    AaveRevert,
    ReserveState,
    health_factor,
    liquidation,
    max_liquidatable_debt,
    percent_mul,
)
from simulation.pools import PoolState
from simulation.state import ChainState, StateChanges

ETH_WEI = 10**18


@dataclass(frozen=True, slots=True)
class LiquidationOpportunity:
    """One sized liquidation: call ``liquidate(..., debt_to_cover, [swap_pool], ...)``.

    ``debt_repaid`` and ``collateral_seized`` are what ``liquidationCall`` moves (the collateral
    the liquidator receives, after the protocol fee); ``debt_to_cover`` is what the Executor
    flash-borrows (the debt repaid, so the loan's premium is the least it can be);
    ``swap_out`` is the debt asset the seized collateral buys in ``swap_pool``; ``profit`` is
    the executor's debt-asset gain (``swap_out - debt_repaid - premium``) and ``profit_wei`` the
    same in ETH wei at ``prices`` (floored).
    """

    user: str
    collateral_asset: str
    debt_asset: str
    health_factor: int
    debt_to_cover: int
    debt_repaid: int
    collateral_seized: int
    swap_pool: str
    swap_out: int
    profit: int
    profit_wei: int


class PositionIndex:
    """Borrowers by asset with their health factor at the current prices, block by block.

    :meth:`at_risk` answers "whom can this price move push under 1?" without touching the
    others: a move of one asset's price by the factor ``r`` changes any health factor by at most
    ``min(r, 1/r)`` (the asset's share of the collateral or of the debt scales by ``r``, the rest
    stays), so only users with ``1 <= HF < 1/min(r, 1/r)`` (plus a 0.1% margin for the
    contract's rounding) can cross, found by bisection in a per-asset list sorted by health.

    :meth:`follow_block` re-indexes one block's changed users — and every user of an asset whose
    feed the block updated — when the index was in step with that block's parent, and rebuilds
    from every position otherwise (a missed block, a reorg); :meth:`ensure_current` rebuilds
    when the state moved without the index. Positions whose health cannot be computed (an
    unlisted or unpriced asset) are left out.
    """

    def __init__(self) -> None:
        self._by_asset: dict[str, set[str]] = defaultdict(set)
        self._assets_of: dict[str, frozenset[str]] = {}
        self._health: dict[str, int] = {}
        self._by_health: dict[str, list[tuple[int, str]]] = {}
        self.synced_at: tuple[int, str] | None = None
        self.rebuilds = 0

    def __len__(self) -> int:
        return len(self._assets_of)

    def rebuild(self, state: ChainState) -> None:
        self._by_asset.clear()
        self._assets_of.clear()
        self._health.clear()
        self._update(state, state.positions)
        self.synced_at = (state.block_number, state.block_hash)
        self.rebuilds += 1

    def _update(self, state: ChainState, users: Iterable[str]) -> None:
        """Re-index ``users`` from their positions and health at the state's prices."""
        positions, reserves, prices = state.positions, state.reserves, state.prices
        self._by_health.clear()
        for user in users:
            for asset in self._assets_of.pop(user, ()):
                self._by_asset[asset].discard(user)
            self._health.pop(user, None)
            position = positions.get(user)
            if position is None or not position.has_debt:
                continue
            try:
                self._health[user] = health_factor(position, reserves, prices, state.timestamp)
            except AaveRevert:
                continue
            assets = position.assets
            self._assets_of[user] = assets
            for asset in assets:
                self._by_asset[asset].add(user)

    def follow_block(self, state: ChainState, parent_hash: str, changes: StateChanges) -> None:
        """Apply the block ``state`` now stands at, whose parent is ``parent_hash``."""
        if self.synced_at is None or self.synced_at[1] != parent_hash:
            self.rebuild(state)
            return
        repriced = [state.feed_assets[f] for f in changes.feeds if f in state.feed_assets]
        self._update(state, changes.users | self.users_of(repriced))
        self.synced_at = (state.block_number, state.block_hash)

    def ensure_current(self, state: ChainState) -> None:
        if self.synced_at != (state.block_number, state.block_hash):
            self.rebuild(state)

    def users_of(self, assets: Iterable[str]) -> set[str]:
        """Users with debt who supply or borrow any of ``assets``."""
        users: set[str] = set()
        for asset in assets:
            users |= self._by_asset.get(asset, set())
        return users

    def _sorted_by_health(self, asset: str) -> list[tuple[int, str]]:
        entries = self._by_health.get(asset)
        if entries is None:
            health = self._health
            entries = sorted((health[user], user) for user in self._by_asset.get(asset, ()))
            self._by_health[asset] = entries
        return entries

    def at_risk(self, moves: Mapping[str, tuple[int, int]]) -> list[str]:
        """Users healthy now whom the price moves ``{asset: (old price, new price)}`` may make
        liquidatable, sorted; a superset of those who become liquidatable."""
        factor_num = factor_den = 1
        for old, new in moves.values():
            if old <= 0 or new <= 0:
                return []
            factor_num, factor_den = factor_num * max(old, new), factor_den * min(old, new)
        upper = HEALTH_FACTOR_LIQUIDATION_THRESHOLD * factor_num * 1001 // (factor_den * 1000) + 1
        users: set[str] = set()
        for asset in moves:
            entries = self._sorted_by_health(asset)
            low = bisect_left(entries, (HEALTH_FACTOR_LIQUIDATION_THRESHOLD, ""))
            high = bisect_left(entries, (upper, ""))
            users.update(user for _, user in entries[low:high])
        return sorted(users)


def pools_between(
    state: ChainState,
    pools: Mapping[str, PoolState],
    factories: Iterable[str],
    token_a: str,
    token_b: str,
) -> list[PoolState]:
    """The pools of ``factories`` trading ``token_a`` against ``token_b``, read from ``pools``
    (which may be a pending-state overlay of ``state.pools``)."""
    factories = set(factories)
    return [
        pools[address]
        for address in state.pools_trading(token_a, token_b)
        if address in pools and state.pool_factory.get(address) in factories
    ]


def best_swap(
    venues: Iterable[PoolState], token_in: str, amount_in: int
) -> tuple[PoolState, int] | None:
    """The pool paying the most for ``amount_in`` of ``token_in``, and what it pays; None if
    none pays anything."""
    best: tuple[PoolState, int] | None = None
    for pool in venues:
        out = pool.amount_out(token_in, amount_in)
        if out > 0 and (best is None or out > best[1]):
            best = (pool, out)
    return best


def value_in_wei(
    amount: int,
    asset: str,
    weth: str,
    prices: Mapping[str, int],
    reserves: Mapping[str, ReserveState],
) -> int:
    """``amount`` of ``asset`` in ETH wei at the feed prices (floored); 0 when unpriced."""
    if asset == weth:
        return amount
    eth_price, price, reserve = prices.get(weth, 0), prices.get(asset, 0), reserves.get(asset)
    if eth_price <= 0 or price <= 0 or reserve is None:
        return 0
    return amount * price * ETH_WEI // (eth_price * reserve.unit)


def liquidation_for(
    state: ChainState,
    user: str,
    position: AavePosition,
    prices: Mapping[str, int],
    pools: Mapping[str, PoolState],
    factories: Iterable[str],
    weth: str,
    max_cover: Mapping[str, int] | None = None,
) -> LiquidationOpportunity | None:
    """The most profitable (collateral, debt) liquidation of ``position`` under ``prices``, or
    None when it is healthy or no pair of assets pays after the swap back."""
    reserves, now = state.reserves, state.timestamp
    try:
        health = health_factor(position, reserves, prices, now)
    except AaveRevert:
        return None
    if health >= HEALTH_FACTOR_LIQUIDATION_THRESHOLD:
        return None
    factories = tuple(factories)
    best: LiquidationOpportunity | None = None
    for debt_asset in position.scaled_debt:
        cover = max_liquidatable_debt(position, reserves, prices, now, debt_asset)
        if max_cover is not None:
            cover = min(cover, max_cover.get(debt_asset, 0))
        if cover <= 0:
            continue
        for collateral_asset in position.scaled_collateral:
            if collateral_asset == debt_asset:
                continue  # the Executor cannot tell repaid debt from seized collateral
            try:
                amounts = liquidation(
                    position, reserves, prices, now, collateral_asset, debt_asset, cover
                )
            except AaveRevert:
                continue
            seized = amounts.collateral_to_liquidator
            venues = pools_between(state, pools, factories, collateral_asset, debt_asset)
            swap = best_swap(venues, collateral_asset, seized)
            if swap is None:
                continue
            pool, swap_out = swap
            premium = percent_mul(amounts.debt_repaid, state.flash_loan_premium)
            profit = swap_out - amounts.debt_repaid - premium
            if profit <= 0:
                continue
            profit_wei = value_in_wei(profit, debt_asset, weth, prices, reserves)
            if best is None or profit_wei > best.profit_wei:
                best = LiquidationOpportunity(
                    user=user,
                    collateral_asset=collateral_asset,
                    debt_asset=debt_asset,
                    health_factor=health,
                    debt_to_cover=amounts.debt_repaid,
                    debt_repaid=amounts.debt_repaid,
                    collateral_seized=seized,
                    swap_pool=pool.address,
                    swap_out=swap_out,
                    profit=profit,
                    profit_wei=profit_wei,
                )
    return best


def find_liquidations(
    state: ChainState,
    *,
    weth: str,
    users: Iterable[str] | None = None,
    prices: Mapping[str, int] | None = None,
    pools: Mapping[str, PoolState] | None = None,
    factories: Iterable[str] | None = None,
    max_cover: Mapping[str, int] | None = None,
    min_profit_wei: int = 0,
) -> list[LiquidationOpportunity]:
    """Every liquidatable position among ``users`` (default: all), best pair each, most
    profitable first, keeping those with ``profit_wei >= min_profit_wei`` (and profit > 0).

    ``prices`` default to the state's feed answers and ``pools`` to its pools (pass
    ``state.prices_after`` / ``state.pools_after`` of a pending effect to look ahead);
    swap-back venues are the pools of ``factories`` (default: the V2 factories of the state's
    routers: the Executor's liquidation swaps back through V2 pairs).
    ``max_cover`` caps the debt covered per debt asset; an asset missing from it cannot be
    covered at all (None: the close factor's limit, flash-borrowed).
    """
    prices = state.prices if prices is None else prices
    pools = state.pools if pools is None else pools
    if factories is None:
        factories = (v.get("uniswap-v2") for v in state.routers.values())
    factories = tuple(dict.fromkeys(f for f in factories if f is not None))
    positions = state.positions
    found = []
    for user in positions if users is None else users:
        position = positions.get(user)
        if position is None or not position.has_debt:
            continue
        opportunity = liquidation_for(
            state, user, position, prices, pools, factories, weth, max_cover
        )
        if opportunity is not None and opportunity.profit_wei >= min_profit_wei:
            found.append(opportunity)
    found.sort(key=lambda o: (-o.profit_wei, o.user))
    return found
