"""Nonces of one sending account, for bundles that may never land and public txs that may linger.

A *reservation* holds a nonce for a signed tx: a bundle tx is sent for target blocks
``first_block..last_block``; a public tx (``last_block=None``) stays reserved until it is mined
(or the caller releases it). Reservations are always contiguous from the chain nonce, so every
reserved tx can land. Each block, :meth:`NonceManager.on_block` re-syncs from the chain nonce:

* a reservation below the chain nonce is *confirmed* (its nonce is used on chain);
* a bundle reservation whose last target block has passed without that is *released*, and every
  reservation above it is renumbered down to keep the sequence gap-free: those txs must be
  re-signed with their new nonce (returned as :class:`Renumbered`);
* if the chain nonce goes *back* (a reorg removed our tx), recently confirmed reservations at or
  above it are reinstated with a target window extended by ``reorg_grace`` blocks, in case the
  tx lands again; if not, they are released like any missed bundle.

State lives behind :class:`NonceStore`, a versioned compare-and-set cell, so that a Redis store
(WATCH/MULTI or a Lua CAS) can later make reservations atomic across processes; the default is
in memory.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field, replace
from typing import Protocol, TypeVar

from chain.rpc import Rpc
from chain.types import hex_to_int

RPC_TIMEOUT_S = 2.0
CONFIRMED_MEMORY_BLOCKS = 64

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)


@dataclass(frozen=True, slots=True)
class Reservation:
    """A nonce held for ``key`` (the effect's idempotency key)."""

    nonce: int
    key: str
    first_block: int
    last_block: int | None  # None: a public tx, held until mined or released
    confirmed_at: int | None = None  # block number at which the chain nonce passed it


@dataclass(frozen=True, slots=True)
class NonceState:
    """Everything the manager knows; replaced as a whole on every change."""

    version: int = 0
    chain_nonce: int | None = None
    synced_block: int | None = None
    reserved: tuple[Reservation, ...] = ()  # sorted by nonce, contiguous from chain_nonce
    confirmed: tuple[Reservation, ...] = ()  # recent, kept to undo on a reorg


@dataclass(frozen=True, slots=True)
class Renumbered:
    """A reserved tx whose nonce changed: re-sign it with ``new_nonce`` and resend."""

    key: str
    old_nonce: int
    new_nonce: int


@dataclass(frozen=True, slots=True)
class BlockSync:
    """What one block changed."""

    block: int
    chain_nonce: int
    confirmed: tuple[Reservation, ...] = ()
    released: tuple[Reservation, ...] = ()
    renumbered: tuple[Renumbered, ...] = ()
    reinstated: tuple[Reservation, ...] = ()


CAS_PAUSE_S = 0.001
CAS_PAUSE_MAX_S = 0.032


class NonceUnknown(RuntimeError):
    """No chain nonce yet: call :meth:`NonceManager.sync` (or ``on_block``) first."""


class NonceStore(Protocol):
    """A versioned cell holding one :class:`NonceState`."""

    async def load(self) -> NonceState: ...

    async def compare_and_set(self, expected_version: int, state: NonceState) -> bool:
        """Store ``state`` (whose version is ``expected_version + 1``) if the stored version is
        still ``expected_version``; False if someone else wrote first."""
        ...


@dataclass
class InMemoryNonceStore:
    """The single-process store."""

    state: NonceState = field(default_factory=NonceState)

    async def load(self) -> NonceState:
        return self.state

    async def compare_and_set(self, expected_version: int, state: NonceState) -> bool:
        if self.state.version != expected_version:
            return False
        self.state = state
        return True


class NonceManager:
    """Nonce authority for one account (one per key: never share a key between bots)."""

    def __init__(
        self,
        address: str,
        store: NonceStore | None = None,
        *,
        reorg_grace: int = 2,
        max_cas_attempts: int = 16,
    ) -> None:
        self.address = address.lower()
        self.store: NonceStore = store if store is not None else InMemoryNonceStore()
        self.reorg_grace = reorg_grace
        self.max_cas_attempts = max_cas_attempts

    async def state(self) -> NonceState:
        return await self.store.load()

    async def reserve(self, first_block: int, last_block: int | None, key: str = "") -> int:
        """The next nonce, held for a tx sent for blocks ``first_block..last_block``
        (``last_block=None``: a public tx, held until mined or released)."""
        if last_block is not None and last_block < first_block:
            raise ValueError("last_block precedes first_block")

        def plan(state: NonceState) -> tuple[NonceState, int]:
            if state.chain_nonce is None:
                raise NonceUnknown(f"no chain nonce for {self.address}: sync first")
            nonce = state.chain_nonce + len(state.reserved)
            held = Reservation(nonce, key, first_block, last_block)
            return replace(state, reserved=(*state.reserved, held)), nonce

        return await self._update(plan)

    async def release(self, nonce: int) -> tuple[Renumbered, ...]:
        """Give back a reservation whose tx was never sent (or was abandoned); the ones above it
        are renumbered and returned for re-signing."""

        def plan(state: NonceState) -> tuple[NonceState, tuple[Renumbered, ...]]:
            kept = tuple(r for r in state.reserved if r.nonce != nonce)
            if len(kept) == len(state.reserved):
                return state, ()
            reserved, renumbered = _compact(kept, state.chain_nonce or 0)
            return replace(state, reserved=reserved), renumbered

        return await self._update(plan)

    async def on_block(self, number: int, chain_nonce: int) -> BlockSync:
        """Re-sync after block ``number``, whose state has ``chain_nonce`` as our tx count."""

        def plan(state: NonceState) -> tuple[NonceState, BlockSync]:
            return self._advance(state, number, chain_nonce)

        return await self._update(plan)

    async def sync(self, rpc: Rpc, block: int | None = None) -> BlockSync:
        """Read the tx count at ``block`` (default: the latest block) and apply it."""
        if block is None:
            number_hex, count_hex = await rpc.batch(
                [
                    ("eth_blockNumber", ()),
                    ("eth_getTransactionCount", (self.address, "latest")),
                ],
                timeout=RPC_TIMEOUT_S,
            )
            for answer in (number_hex, count_hex):
                if isinstance(answer, Exception):
                    raise answer
            number = hex_to_int(number_hex, "eth_blockNumber")
        else:
            number = block
            count_hex = await rpc.call(
                "eth_getTransactionCount", (self.address, hex(block)), timeout=RPC_TIMEOUT_S
            )
        return await self.on_block(number, hex_to_int(count_hex, "eth_getTransactionCount"))

    def _advance(
        self, state: NonceState, number: int, chain_nonce: int
    ) -> tuple[NonceState, BlockSync]:
        reinstated = tuple(
            replace(
                r, confirmed_at=None, last_block=_extend(r.last_block, number + self.reorg_grace)
            )
            for r in state.confirmed
            if r.nonce >= chain_nonce
        )
        recent = tuple(
            r
            for r in state.confirmed
            if r.nonce < chain_nonce and (r.confirmed_at or 0) > number - CONFIRMED_MEMORY_BLOCKS
        )
        candidates = sorted((*reinstated, *state.reserved), key=lambda r: r.nonce)
        confirmed = tuple(
            replace(r, confirmed_at=number) for r in candidates if r.nonce < chain_nonce
        )
        waiting = [r for r in candidates if r.nonce >= chain_nonce]
        released = tuple(r for r in waiting if r.last_block is not None and r.last_block <= number)
        kept = tuple(r for r in waiting if r not in released)
        reserved, renumbered = _compact(kept, chain_nonce)
        new_state = replace(
            state,
            chain_nonce=chain_nonce,
            synced_block=number,
            reserved=reserved,
            confirmed=(*recent, *confirmed),
        )
        return new_state, BlockSync(
            block=number,
            chain_nonce=chain_nonce,
            confirmed=confirmed,
            released=released,
            renumbered=renumbered,
            reinstated=reinstated,
        )

    async def _update(self, plan: _Plan[T]) -> T:
        pause = CAS_PAUSE_S
        for _ in range(self.max_cas_attempts):
            state = await self.store.load()
            new_state, result = plan(state)
            if new_state is state:
                return result
            if await self.store.compare_and_set(
                state.version, replace(new_state, version=state.version + 1)
            ):
                return result
            # Another process won the race: wait a jittered, doubling pause so that contenders
            # spread out instead of colliding again on the next attempt.
            await asyncio.sleep(pause * random.uniform(0.5, 1.5))
            pause = min(pause * 2, CAS_PAUSE_MAX_S)
        raise RuntimeError(f"nonce store for {self.address}: too much contention")


class _Plan(Protocol[T_co]):
    def __call__(self, state: NonceState) -> tuple[NonceState, T_co]: ...


def _extend(last_block: int | None, at_least: int) -> int | None:
    return None if last_block is None else max(last_block, at_least)


def _compact(
    kept: tuple[Reservation, ...], chain_nonce: int
) -> tuple[tuple[Reservation, ...], tuple[Renumbered, ...]]:
    """Renumber ``kept`` (sorted) contiguously from ``chain_nonce``."""
    reserved = []
    renumbered = []
    for offset, held in enumerate(kept):
        nonce = chain_nonce + offset
        if held.nonce != nonce:
            renumbered.append(Renumbered(held.key, held.nonce, nonce))
            held = replace(held, nonce=nonce)
        reserved.append(held)
    return tuple(reserved), tuple(renumbered)
