"""Local chain state kept from logs: pools of every kind, price-feed answers, lending positions.

:class:`ChainState` is updated once per block from that block's logs (each pool's own logs, its
factory's pool-created event, AnswerUpdated, the lending events) and remembers, for the last
``history`` blocks, the values it overwrote, so a reorg rolls back to the common ancestor
exactly. :meth:`ChainState.after` gives the state a decoded pending swap or oracle update would
leave, as an overlay: nothing is copied and the chain is not touched, so it is cheap enough to
run for every pending transaction. Pools are seen only through
:class:`~simulation.pools.PoolState`; loading (pools, feeds, positions) is in
:mod:`simulation.loader`.
"""

from __future__ import annotations

from collections import ChainMap, deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from chain.intents import Intent, MulticallIntent, OracleUpdateIntent, SwapIntent
from chain.topics import (
    AGGREGATOR_CONFIRMED,
    ANSWER_UPDATED,
    BORROW,
    LENDING_TOPICS,
    REPAY,
    SUPPLY,
    WITHDRAW,
)
from chain.types import Log
from simulation.lending import Position, ReserveConfig
from simulation.pools import PoolKind, PoolState, StateMissing

_MISSING: Any = object()


def _word(data: bytes, index: int) -> int:
    return int.from_bytes(data[32 * index : 32 * index + 32], "big")


def _address(word: bytes) -> str:
    if len(word) != 32:
        raise ValueError("an address word is 32 bytes")
    return "0x" + word[-20:].hex()


def _signed(value: int) -> int:
    return value - (1 << 256) if value >> 255 else value


@dataclass(frozen=True, slots=True)
class FeedAnswer:
    """The latest answer of a price feed (``latestRoundData``'s round, answer and update time)."""

    feed: str
    round_id: int
    answer: int
    updated_at: int


@dataclass(frozen=True, slots=True)
class FeedLink:
    """Which feed proxy an aggregator answers for, and in which of the proxy's phases.

    Round ids read through a proxy are ``(phase << 64) | aggregator round``
    (Chainlink's AggregatorProxy); the aggregator's own events carry the bare round.
    """

    proxy: str
    phase: int

    def round_id(self, aggregator_round: int) -> int:
        return (self.phase << 64) | aggregator_round


@dataclass(frozen=True, slots=True)
class StateChanges:
    """What one block (or a rollback) changed: pool, feed and lending-user addresses."""

    pools: frozenset[str] = frozenset()
    feeds: frozenset[str] = frozenset()
    users: frozenset[str] = frozenset()
    new_pairs: tuple[tuple[str, str, str, str], ...] = ()  # (factory, token0, token1, pair)
    malformed: int = 0


@dataclass(frozen=True, slots=True)
class PendingEffect:
    """The state a pending transaction would leave, as overlays on :class:`ChainState`.

    ``pools`` maps every pool the intent moves to its state after the trade (in trade order);
    ``feeds`` maps an updated feed to its new answer. Read through :meth:`ChainState.pools_after`
    / :meth:`ChainState.prices_after` to see the whole state with the overlay applied.
    """

    pools: Mapping[str, PoolState] = field(default_factory=dict)
    feeds: Mapping[str, FeedAnswer] = field(default_factory=dict)
    # A swap through tracked pools that would revert on this state (its minimum output or
    # maximum input out of reach): it moves nothing, though it was no stranger's trade.
    reverts: bool = False

    @property
    def empty(self) -> bool:
        return not self.pools and not self.feeds


class _SwapReverts(Exception):
    """A pending swap through tracked pools that the router would revert on this state."""


@dataclass
class _BlockUndo:
    number: int
    hash: str
    undo: list[tuple[dict[Any, Any], Any, Any]] = field(default_factory=list)


class ChainState:
    """Pools, feeds and positions as of ``block_number``, with undo history for reorgs.

    ``factories`` maps each factory whose new pools are followed to its pool kind; ``routers``
    maps a router address to the factory whose pools it trades for each protocol
    (``{"uniswap-v2": factory, ...}``), so pending router swaps can be routed through the right
    pools. ``feed_assets`` maps a feed address to the asset it prices
    for the lending market (``prices`` then gives asset -> answer, what the lending math takes).
    Feeds are keyed by their proxy, the address consumers read; ``aggregators`` maps each proxy's
    current aggregator, which emits the answers and receives the oracles' ``transmit``, to it.
    """

    def __init__(
        self,
        *,
        routers: Mapping[str, Mapping[str, str]] | None = None,
        factories: Mapping[str, PoolKind] | None = None,
        feed_assets: Mapping[str, str] | None = None,
        lending_pool: str | None = None,
        history: int = 64,
    ) -> None:
        self.routers = {router: dict(venues) for router, venues in (routers or {}).items()}
        self.factories = dict(factories or {})
        self.feed_assets = dict(feed_assets or {})
        self.lending_pool = lending_pool
        self.pools: dict[str, PoolState] = {}
        self.pool_factory: dict[str, str] = {}
        # (factory, token0, token1, *route key) -> pool address: how routers name pools.
        self.pair_index: dict[tuple[Any, ...], str] = {}
        # (token0, token1) -> every pool trading them, of any factory and kind.
        self.by_tokens: dict[tuple[str, str], tuple[str, ...]] = {}
        self.feeds: dict[str, FeedAnswer] = {}
        self.aggregators: dict[str, FeedLink] = {}
        self.reserve_configs: dict[str, ReserveConfig] = {}
        self.positions: dict[str, Position] = {}
        self.block_number = 0
        self.block_hash = ""
        self._history: deque[_BlockUndo] = deque(maxlen=history)
        self._current: _BlockUndo | None = None

    # ------------------------------------------------------------------ tables

    def _set(self, table: dict[Any, Any], key: Any, value: Any) -> None:
        if self._current is not None:
            self._current.undo.append((table, key, table.get(key, _MISSING)))
        table[key] = value

    def _delete(self, table: dict[Any, Any], key: Any) -> None:
        if self._current is not None:
            self._current.undo.append((table, key, table[key]))
        del table[key]

    def add_pool(self, factory: str, pool: PoolState) -> None:
        self._set(self.pools, pool.address, pool)
        self._set(self.pool_factory, pool.address, factory)
        tokens = (
            (pool.token0, pool.token1) if pool.token0 < pool.token1 else (pool.token1, pool.token0)
        )
        self._set(self.pair_index, (factory, *tokens, *pool.route_key), pool.address)
        known = self.by_tokens.get(tokens, ())
        if pool.address not in known:
            self._set(self.by_tokens, tokens, (*known, pool.address))

    def pair_for(
        self, factory: str, token_a: str, token_b: str, *route_key: Any
    ) -> PoolState | None:
        """The pool of ``factory`` trading the two tokens (and of the route key, e.g. a fee)."""
        tokens = (token_a, token_b) if token_a < token_b else (token_b, token_a)
        address = self.pair_index.get((factory, *tokens, *route_key))
        return None if address is None else self.pools.get(address)

    def pools_trading(self, token_a: str, token_b: str) -> tuple[str, ...]:
        """The addresses of every pool trading the two tokens, in the order they were added."""
        key = (token_a, token_b) if token_a < token_b else (token_b, token_a)
        return self.by_tokens.get(key, ())

    @property
    def log_topics(self) -> tuple[bytes, ...]:
        """The topics of every log the state follows: a head source subscribes to these."""
        pools = {t for kind in self.factories.values() for t in kind.pool_topics}
        created = {kind.creation_topic for kind in self.factories.values()}
        return (*sorted(pools | created), ANSWER_UPDATED, AGGREGATOR_CONFIRMED, *LENDING_TOPICS)

    def set_feed(self, answer: FeedAnswer) -> None:
        self._set(self.feeds, answer.feed, answer)

    def link_aggregator(self, aggregator: str, link: FeedLink) -> None:
        """``aggregator`` now answers for ``link.proxy``; the proxy's previous one no longer."""
        for old, known in list(self.aggregators.items()):
            if known.proxy == link.proxy and old != aggregator:
                self._delete(self.aggregators, old)
        self._set(self.aggregators, aggregator, link)

    def set_position(self, user: str, position: Position) -> None:
        self._set(self.positions, user, position)

    @property
    def prices(self) -> dict[str, int]:
        """Lending asset -> latest feed answer."""
        return {
            asset: self.feeds[feed].answer
            for feed, asset in self.feed_assets.items()
            if feed in self.feeds
        }

    # ------------------------------------------------------------------ blocks

    def apply_block(self, number: int, block_hash: str, logs: Iterable[Log]) -> StateChanges:
        """Apply one block's logs (in log order); remembers how to undo it."""
        self._current = _BlockUndo(number, block_hash)
        pools: set[str] = set()
        feeds: set[str] = set()
        users: set[str] = set()
        new_pairs: list[tuple[str, str, str, str]] = []
        malformed = 0
        try:
            for log in logs:
                try:
                    self._apply_log(log, pools, feeds, users, new_pairs)
                except (IndexError, ValueError):
                    malformed += 1
        finally:
            self._history.append(self._current)
            self._current = None
        self.block_number, self.block_hash = number, block_hash
        return StateChanges(
            frozenset(pools), frozenset(feeds), frozenset(users), tuple(new_pairs), malformed
        )

    def _apply_log(
        self,
        log: Log,
        pools: set[str],
        feeds: set[str],
        users: set[str],
        new_pairs: list[tuple[str, str, str, str]],
    ) -> None:
        topic0 = log.topic0
        pool = self.pools.get(log.address)
        if pool is not None:
            after = pool.apply_log(log)
            if after is not None:
                self._set(self.pools, pool.address, after)
                pools.add(pool.address)
            return
        kind = self.factories.get(log.address)
        if kind is not None and topic0 == kind.creation_topic:
            created = kind.from_creation_log(log)
            self.add_pool(log.address, created)
            new_pairs.append((log.address, created.token0, created.token1, created.address))
            pools.add(created.address)
        elif topic0 == ANSWER_UPDATED:
            link = self.aggregators.get(log.address)
            if link is not None:
                answer = FeedAnswer(
                    link.proxy,
                    link.round_id(int.from_bytes(log.topics[2], "big")),
                    _signed(int.from_bytes(log.topics[1], "big")),
                    _word(log.data, 0),
                )
                self.set_feed(answer)
                feeds.add(link.proxy)
        elif topic0 == AGGREGATOR_CONFIRMED:
            # A new phase: the proxy's answer stays the last one seen until the new aggregator's
            # first AnswerUpdated (it reads the new aggregator's rounds from then on).
            current = next((k for k in self.aggregators.values() if k.proxy == log.address), None)
            if current is not None:
                latest = _address(log.topics[2])
                self.link_aggregator(latest, FeedLink(log.address, current.phase + 1))
        elif topic0 in LENDING_TOPICS and log.address == self.lending_pool:
            users.update(self._apply_lending(log))

    def replay_lending(self, logs: Iterable[Log]) -> None:
        """Apply historical lending events (initial load): no block, no undo entries."""
        for log in logs:
            if log.address == self.lending_pool and log.topic0 in LENDING_TOPICS:
                self._apply_lending(log)

    def _apply_lending(self, log: Log) -> tuple[str, ...]:
        """Position deltas from one lending event; returns the users it touched."""
        topic0, topics, data = log.topic0, log.topics, log.data
        if topic0 == SUPPLY:  # reserve, onBehalfOf, referral indexed; user, amount in data
            return (self._move(_address(topics[2]), _address(topics[1]), _word(data, 1), 0),)
        if topic0 == WITHDRAW:  # reserve, user, to indexed; amount in data
            return (self._move(_address(topics[2]), _address(topics[1]), -_word(data, 0), 0),)
        if topic0 == BORROW:  # reserve, onBehalfOf, referral indexed; user, amount, ... in data
            return (self._move(_address(topics[2]), _address(topics[1]), 0, _word(data, 1)),)
        if topic0 == REPAY:  # reserve, user, repayer indexed; amount, useATokens in data
            return (self._move(_address(topics[2]), _address(topics[1]), 0, -_word(data, 0)),)
        # LiquidationCall: collateral, debt, user indexed; debtToCover, seized, liquidator, aToken
        collateral, debt, user = _address(topics[1]), _address(topics[2]), _address(topics[3])
        self._move(user, debt, 0, -_word(data, 0))
        self._move(user, collateral, -_word(data, 1), 0)
        if _word(data, 3):  # receiveAToken: the seized collateral stays supplied, by the liquidator
            liquidator = _address(data[64:96])
            self._move(liquidator, collateral, _word(data, 1), 0)
            return user, liquidator
        return (user,)

    def _move(self, user: str, asset: str, collateral_delta: int, debt_delta: int) -> str:
        position = self.positions.get(user, Position())
        collateral = dict(position.collateral)
        debt = dict(position.debt)
        collateral[asset] = max(0, collateral.get(asset, 0) + collateral_delta)
        debt[asset] = max(0, debt.get(asset, 0) + debt_delta)
        self.set_position(user, Position(collateral, debt))
        return user

    def rollback_to(self, ancestor: int) -> StateChanges:
        """Undo every block after ``ancestor`` (a reorg); the new branch is then applied anew."""
        pools: set[str] = set()
        feeds: set[str] = set()
        users: set[str] = set()
        while self._history and self._history[-1].number > ancestor:
            block = self._history.pop()
            for table, key, old in reversed(block.undo):
                if old is _MISSING:
                    table.pop(key, None)
                else:
                    table[key] = old
                if table is self.aggregators and old is not _MISSING:
                    feeds.add(old.proxy)
                for target, bucket in ((self.pools, pools), (self.feeds, feeds)):
                    if table is target:
                        bucket.add(key)
                if table is self.positions:
                    users.add(key)
        if self._history:
            self.block_number, self.block_hash = self._history[-1].number, self._history[-1].hash
        else:
            self.block_number, self.block_hash = ancestor, ""
        return StateChanges(frozenset(pools), frozenset(feeds), frozenset(users))

    def can_roll_back_to(self, ancestor: int) -> bool:
        """Whether the history reaches back far enough to undo down to ``ancestor``."""
        return not self._history or self._history[0].number <= ancestor + 1

    # ------------------------------------------------------------------ pending

    def after(self, intent: Intent | None) -> PendingEffect:
        """The state a pending tx's decoded intent would leave: its swap(s) or its oracle update.

        Swaps through routers or pools we do not track leave no effect (an empty
        :class:`PendingEffect`). Fee-on-transfer and exotic tokens make the local estimate
        approximate; the fork simulation is what decides.
        """
        if isinstance(intent, OracleUpdateIntent):
            link = self.aggregators.get(intent.feed)
            old = None if link is None else self.feeds.get(link.proxy)
            if old is None:
                return PendingEffect()
            new = FeedAnswer(old.feed, old.round_id + 1, intent.answer, old.updated_at)
            return PendingEffect(feeds={old.feed: new})
        swaps: tuple[SwapIntent, ...] = ()
        if isinstance(intent, SwapIntent):
            swaps = (intent,)
        elif isinstance(intent, MulticallIntent):
            swaps = intent.swaps
        overlay: dict[str, PoolState] = {}
        for swap in swaps:
            try:
                if not self._apply_swap(swap, overlay):
                    return PendingEffect()
            except _SwapReverts:
                return PendingEffect(reverts=True)
            except (StateMissing, ArithmeticError):  # a pool we cannot price that far yet
                return PendingEffect()
        return PendingEffect(pools=overlay)

    def _apply_swap(self, swap: SwapIntent, overlay: dict[str, PoolState]) -> bool:
        factory = self.routers.get(swap.router, {}).get(swap.protocol)
        if factory is None or len(swap.path) < 2:
            return False
        hops: list[PoolState] = []
        for index, (token_in, token_out) in enumerate(zip(swap.path, swap.path[1:], strict=False)):
            route = (swap.fees[index],) if swap.fees else ()
            pool = self.pair_for(factory, token_in, token_out, *route)
            if pool is None:
                return False
            hops.append(overlay.get(pool.address, pool))
        if swap.kind == "exact_in":
            amount = swap.amount_in or 0
        else:
            # Exact-out: the router charges each hop's input backwards from the requested output.
            needed: int | None = swap.amount_out or 0
            for pool, token_in in zip(reversed(hops), reversed(swap.path[:-1]), strict=True):
                needed = pool.amount_in(token_in, needed)
                if needed is None:
                    return False
            amount = needed
        if (
            swap.kind == "exact_out"
            and swap.amount_in_max is not None
            and amount > swap.amount_in_max
        ):
            raise _SwapReverts  # the router's EXCESSIVE_INPUT_AMOUNT
        for pool, token_in in zip(hops, swap.path, strict=False):
            amount, after = pool.swap(token_in, amount)
            overlay[pool.address] = after
        # An exact-in swap whose output falls short of its minimum reverts: it moves nothing.
        if swap.kind == "exact_in" and amount < (swap.amount_out_min or 0):
            raise _SwapReverts
        return True

    def pools_after(self, effect: PendingEffect) -> Mapping[str, PoolState]:
        """Every pool, with the pending effect applied (a view; nothing is copied)."""
        return ChainMap(dict(effect.pools), self.pools) if effect.pools else self.pools

    def prices_after(self, effect: PendingEffect) -> dict[str, int]:
        prices = self.prices
        for feed, answer in effect.feeds.items():
            asset = self.feed_assets.get(feed)
            if asset is not None:
                prices[asset] = answer.answer
        return prices
