"""The pool protocol: every kind of pool (Uniswap V2, V3, ...) behind one small interface.

A pool is an I/O-free value (:class:`PoolState`): it quotes exact-in and exact-out trades in
either direction, returns the state it would be in after a swap, and returns its next state from
one of its own logs. Being immutable values, pools snapshot and restore for free: the state's
undo history keeps the old value. How pools of a kind are discovered and loaded from the chain,
which logs they and their factories emit, and which reads warm a simulator up for them is the
kind's :class:`PoolKind`; :mod:`simulation.pool_kinds` registers the kinds by name.

State, arbitrage search, liquidation swap-back, warm-up and replay see only this module: a new
pool kind is one new module (its pool class and its :class:`PoolKind`) plus its registration.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from chain.types import Log


class StateMissing(LookupError):
    """A quote needs pool state the local copy does not hold yet (e.g. a V3 tick-bitmap word
    beyond the loaded ones): the amount cannot be priced now."""


Hop = tuple[int, int, int]
"""``(reserve_in, reserve_out, fee_bps)``: a constant-product hop, for the closed-form search."""


class PoolState(Protocol):
    """One pool's state as a value."""

    kind: ClassVar[str]
    address: str
    token0: str
    token1: str

    @property
    def route_key(self) -> tuple[Any, ...]:
        """What tells this pool apart from other pools of its factory with the same tokens
        (empty for V2, the fee tier for V3): routers name pools by factory, tokens and this."""
        ...

    def token_out(self, token_in: str) -> str:
        """The other token of the pool; :class:`ValueError` for a token it does not hold."""
        ...

    def amount_out(self, token_in: str, amount_in: int) -> int:
        """Exact in: what selling ``amount_in`` of ``token_in`` pays out (0 when nothing);
        :class:`StateMissing` when the local state cannot price that much."""
        ...

    def amount_in(self, token_in: str, amount_out: int) -> int | None:
        """Exact out: what the pool's routers charge in ``token_in`` for exactly
        ``amount_out`` of the other token; None when the pool cannot pay it."""
        ...

    def swap(self, token_in: str, amount_in: int) -> tuple[int, PoolState]:
        """Sell ``amount_in`` of ``token_in``: ``(amount_out, the pool after the swap)``."""
        ...

    def apply_log(self, log: Log) -> PoolState | None:
        """The pool after one of its own logs, or None for a log that does not change it.
        :class:`ValueError` for a malformed log."""
        ...

    def rate(self, token_in: str) -> float:
        """The marginal output per unit of ``token_in`` at the current price, after the fee: a
        float, for pruning only (a cycle whose rates multiply to at most 1 cannot profit)."""
        ...

    def constant_product(self, zero_for_one: bool) -> Hop | None:
        """The hop as a constant-product curve when the pool is one (the arbitrage search then
        uses the closed form), else None (an exact integer search on the profit curve)."""
        ...


Calls = list[tuple[str, bytes]]


class Loader(Protocol):
    """Reads the pools of ``factories`` at ``block``, as ``(factory, pool)``: the oldest
    first, in factory order, at most ``limit`` of them (None: all)."""

    def __call__(
        self, rpc: Any, factories: Sequence[str], block: str = ..., limit: int | None = ...
    ) -> Awaitable[list[tuple[str, PoolState]]]: ...


Rereader = Callable[[Any, Sequence[Any], str], Awaitable[list[Any]]]


@dataclass(frozen=True, slots=True)
class PoolKind:
    """How pools of one kind are found, loaded and followed.

    ``pool_topics`` are the topics of the logs its pools emit (their state changes);
    ``creation_topic`` is its factories' pool-created event, turned into the new pool by
    ``from_creation_log``. ``load(rpc, factories, block, limit)`` reads the pools of the
    factories (the oldest first, at most ``limit``) with batched calls, as ``(factory, pool)``.
    ``warmup(pool)`` lists the reads that pull what a bundle through the pool touches into a
    fresh fork. ``executor_hop`` is the Executor's hop
    kind that swaps through such a pool (``Executor.Kind``); None: the Executor cannot, and no
    strategy trades it. ``reread(rpc, pools, block)`` reads the same pools again from the node,
    as far as each knows itself (a V3 pool: the bitmap words it holds): the state verifier
    compares them with the local ones; None: pools of the kind are not verified.
    """

    name: str
    pool_topics: frozenset[bytes]
    creation_topic: bytes
    from_creation_log: Callable[[Log], PoolState]
    load: Loader
    warmup: Callable[[PoolState], Calls]
    executor_hop: int | None = None
    reread: Rereader | None = None
