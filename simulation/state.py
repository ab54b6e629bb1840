"""Local chain state kept from logs: pools of every kind, price-feed answers, Aave V3 positions.

:class:`ChainState` is updated once per block from that block's logs (each pool's own logs, its
factory's pool-created event, AnswerUpdated, the Aave pool's events and its aTokens'
BalanceTransfer) and remembers, for the last
``history`` blocks, the values it overwrote, so a reorg rolls back to the common ancestor
exactly. :meth:`ChainState.after` gives the state a decoded pending swap or oracle update would
leave, as an overlay: nothing is copied and the chain is not touched, so it is cheap enough to
run for every pending transaction. Pools are seen only through
:class:`~simulation.pools.PoolState`; loading (pools, feeds, positions) is in
:mod:`simulation.loader`.
"""

from __future__ import annotations

from collections import ChainMap, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from chain.intents import Intent, MulticallIntent, OracleUpdateIntent, SwapIntent
from chain.topics import (
    AGGREGATOR_CONFIRMED,
    ANSWER_UPDATED,
    BALANCE_TRANSFER,
    BORROW,
    COLLATERAL_DISABLED,
    COLLATERAL_ENABLED,
    LENDING_TOPICS,
    LIQUIDATION_CALL,
    REPAY,
    RESERVE_DATA_UPDATED,
    SUPPLY,
    WITHDRAW,
)
from chain.types import Log
from simulation.aave_v3 import AavePosition, ReserveState, ray_div, ray_mul
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
    # What the local state lacked to price it (e.g. a V3 bitmap word), when that left no effect.
    missing: StateMissing | None = None

    @property
    def empty(self) -> bool:
        return not self.pools and not self.feeds


class _SwapReverts(Exception):
    """A pending swap through tracked pools that the router would revert on this state."""


@dataclass
class _BlockUndo:
    number: int
    hash: str
    timestamp: int
    undo: list[tuple[dict[Any, Any], Any, Any]] = field(default_factory=list)


def state_topics(kinds: Iterable[PoolKind]) -> tuple[bytes, ...]:
    """The topics of every log a state of pools of ``kinds`` follows (their state changes and
    their factories' pool-created events), feeds, and Aave positions (the Pool's events and its
    aTokens' transfers)."""
    kinds = list(kinds)
    pools = {t for kind in kinds for t in kind.pool_topics}
    created = {kind.creation_topic for kind in kinds}
    return (
        *sorted(pools | created),
        ANSWER_UPDATED,
        AGGREGATOR_CONFIRMED,
        *LENDING_TOPICS,
        BALANCE_TRANSFER,
    )


class ChainState:
    """Pools, feeds and positions as of ``block_number``, with undo history for reorgs.

    ``factories`` maps each factory whose new pools are followed to its pool kind; ``routers``
    maps a router address to the factory whose pools it trades for each protocol
    (``{"uniswap-v2": factory, ...}``), so pending router swaps can be routed through the right
    pools. ``feed_assets`` maps a feed address to the asset it prices
    for the lending market (``prices`` then gives asset -> answer, what the lending math takes).
    Feeds are keyed by their proxy, the address consumers read; ``aggregators`` maps each proxy's
    current aggregator, which emits the answers and receives the oracles' ``transmit``, to it.

    ``lending_pool`` is an Aave V3 Pool: ``reserves`` are its reserves (configuration, indexes
    and rates as of their last ``ReserveDataUpdated``, at the block time it came in),
    ``positions`` its users' scaled balances and configuration bitmaps. Each event moves a
    scaled balance by ``amount.rayDiv(index)`` at the index the pool used, as its tokens do, so
    balances at any later time are ``scaled.rayMul(normalized index)``, exactly.
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
        self.reserves: dict[str, ReserveState] = {}
        self.a_tokens: dict[str, str] = {}  # aToken -> its reserve's asset
        self.flash_loan_premium = 0  # the pool's FLASHLOAN_PREMIUM_TOTAL, bps
        self.positions: dict[str, AavePosition] = {}
        self.timestamp = 0
        self.block_number = 0
        self.block_hash = ""
        self._history: deque[_BlockUndo] = deque(maxlen=history)
        self._current: _BlockUndo | None = None
        # Told of every StateMissing a pending swap ran into (e.g. a V3 bitmap word to fetch).
        self.on_missing: Callable[[StateMissing], None] | None = None

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

    def refresh_pool(self, pool: PoolState) -> None:
        """Replace a tracked pool's state with what was read from the node at the current block
        (more bitmap words, or a repair). The read is of this block's state, so it is undone
        with the block: rolling the block back restores what the pool was before it (a word
        read at a dropped block may hold that block's liquidity), and what the new branch needs
        is read again."""
        old = self.pools.get(pool.address)
        if old is None:
            return
        block = self._current
        if block is None and self._history and self._history[-1].number == self.block_number:
            block = self._history[-1]
        if block is not None:
            block.undo.append((self.pools, pool.address, old))
        self.pools[pool.address] = pool

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
        return state_topics(self.factories.values())

    def set_feed(self, answer: FeedAnswer) -> None:
        self._set(self.feeds, answer.feed, answer)

    def link_aggregator(self, aggregator: str, link: FeedLink) -> None:
        """``aggregator`` now answers for ``link.proxy``; the proxy's previous one no longer."""
        for old, known in list(self.aggregators.items()):
            if known.proxy == link.proxy and old != aggregator:
                self._delete(self.aggregators, old)
        self._set(self.aggregators, aggregator, link)

    def set_position(self, user: str, position: AavePosition) -> None:
        self._set(self.positions, user, position)

    def set_reserve(self, reserve: ReserveState) -> None:
        self._set(self.reserves, reserve.asset, reserve)
        if reserve.a_token:
            self._set(self.a_tokens, reserve.a_token, reserve.asset)

    @property
    def prices(self) -> dict[str, int]:
        """Lending asset -> latest feed answer."""
        return {
            asset: self.feeds[feed].answer
            for feed, asset in self.feed_assets.items()
            if feed in self.feeds
        }

    # ------------------------------------------------------------------ blocks

    def apply_block(
        self, number: int, block_hash: str, logs: Iterable[Log], timestamp: int | None = None
    ) -> StateChanges:
        """Apply one block's logs (in log order); remembers how to undo it. ``timestamp`` is the
        block's time (reserve indexes are dated with it); None keeps the last one known."""
        if timestamp is not None:
            self.timestamp = timestamp
        self._current = _BlockUndo(number, block_hash, self.timestamp)
        pools: set[str] = set()
        feeds: set[str] = set()
        users: set[str] = set()
        new_pairs: list[tuple[str, str, str, str]] = []
        malformed = 0
        # Most of a block's logs are tracked pools' own (Swap, Sync): they take a short path
        # here, the rest go through _apply_log.
        tracked, undo, changed = self.pools, self._current.undo, pools.add
        try:
            for log in logs:
                try:
                    pool = tracked.get(log.address)
                    if pool is None:
                        self._apply_log(log, pools, feeds, users, new_pairs)
                        continue
                    after = pool.apply_log(log)
                    if after is not None:
                        undo.append((tracked, log.address, pool))
                        tracked[log.address] = after
                        changed(log.address)
                except (IndexError, ValueError, ArithmeticError):  # e.g. an index of zero
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
        """A log of anything but a tracked pool (apply_block handles those)."""
        topic0 = log.topic0
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
        elif topic0 == BALANCE_TRANSFER and log.address in self.a_tokens:
            # from, to indexed; the scaled value and the index in data (AToken._transfer)
            asset, scaled = self.a_tokens[log.address], _word(log.data, 0)
            sender, recipient = _address(log.topics[1]), _address(log.topics[2])
            users.update((self._move(sender, asset, -scaled), self._move(recipient, asset, scaled)))

    def _apply_lending(self, log: Log) -> tuple[str, ...]:
        """Scaled-balance and flag changes from one Aave Pool event; returns the users touched.

        Layouts are IPool's (@aave/core-v3 1.19.3): the pool emits ``ReserveDataUpdated`` with
        the indexes it then mints and burns at before each action's own event.
        """
        topic0, topics, data = log.topic0, log.topics, log.data
        asset = _address(topics[1])
        reserve = self.reserves.get(asset)
        if topic0 == RESERVE_DATA_UPDATED:
            if reserve is not None:  # rates and indexes; the stable rate (word 1) is unused
                rate, _, borrow_rate, index, borrow_index = (_word(data, i) for i in range(5))
                self.set_reserve(
                    reserve.updated(rate, borrow_rate, index, borrow_index, self.timestamp)
                )
            return ()
        if reserve is None:
            return ()
        if topic0 in (COLLATERAL_ENABLED, COLLATERAL_DISABLED):  # reserve, user indexed
            user = _address(topics[2])
            position = self.positions.get(user, AavePosition())
            self.set_position(
                user, position.flagged(reserve.reserve_id, collateral=topic0 == COLLATERAL_ENABLED)
            )
            return (user,)
        if topic0 == SUPPLY:  # reserve, onBehalfOf, referral indexed; user, amount in data
            amount = _word(data, 1)
            return (
                self._move(_address(topics[2]), asset, ray_div(amount, reserve.liquidity_index)),
            )
        if topic0 == WITHDRAW:  # reserve, user, to indexed; amount in data
            amount = _word(data, 0)
            return (
                self._move(_address(topics[2]), asset, -ray_div(amount, reserve.liquidity_index)),
            )
        if topic0 == BORROW:  # reserve, onBehalfOf, referral indexed; user, amount, mode in data
            user, amount = _address(topics[2]), _word(data, 1)
            scaled = ray_div(amount, reserve.variable_borrow_index)
            self._move(user, asset, 0, scaled)
            self.set_position(
                user, self.positions[user].flagged(reserve.reserve_id, borrowing=True)
            )
            return (user,)
        if topic0 == REPAY:  # reserve, user, repayer indexed; amount, useATokens in data
            user, amount = _address(topics[2]), _word(data, 0)
            if _word(data, 1):  # repaid with the user's own aTokens: they are burned too
                self._move(user, asset, -ray_div(amount, reserve.liquidity_index))
            return (self._repay(user, reserve, amount),)
        if topic0 == LIQUIDATION_CALL:
            # collateral, debt, user indexed; debtToCover, collateral, liquidator, receiveAToken
            # in data. The protocol fee and a receiveAToken seizure move by BalanceTransfer.
            user, debt_reserve = _address(topics[3]), self.reserves.get(_address(topics[2]))
            if debt_reserve is not None:
                self._repay(user, debt_reserve, _word(data, 0))
            if not _word(data, 3):
                self._move(user, asset, -ray_div(_word(data, 1), reserve.liquidity_index))
            return (user,)
        return ()

    def _repay(self, user: str, reserve: ReserveState, amount: int) -> str:
        """Burn ``amount`` of debt; the pool clears the borrowing bit when it was all the debt."""
        position = self.positions.get(user, AavePosition())
        index = reserve.variable_borrow_index
        owed = ray_mul(position.scaled_debt.get(reserve.asset, 0), index)
        position = position.moved(reserve.asset, 0, -ray_div(amount, index))
        if owed <= amount:
            position = position.flagged(reserve.reserve_id, borrowing=False)
        self.set_position(user, position)
        return user

    def _move(self, user: str, asset: str, scaled_collateral: int, scaled_debt: int = 0) -> str:
        position = self.positions.get(user, AavePosition())
        self.set_position(user, position.moved(asset, scaled_collateral, scaled_debt))
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
            self.timestamp = block.timestamp
        if self._history:
            last = self._history[-1]
            self.block_number, self.block_hash, self.timestamp = (
                last.number,
                last.hash,
                last.timestamp,
            )
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
            except (StateMissing, ArithmeticError) as error:  # cannot price that far yet
                if not isinstance(error, StateMissing):
                    return PendingEffect()
                if self.on_missing is not None:
                    self.on_missing(error)
                return PendingEffect(missing=error)
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
