"""Fetching the V3 tick-bitmap words that quotes find missing: asynchronous, bounded, deduplicated.

A V3 pool loads the bitmap words around its price; a swap that reaches a word beyond them raises
:class:`~simulation.uniswap_v3_pool.MissingTickWordError` and the quote stops there. Whoever
catches one hands it to :meth:`WordFetcher.want` (synchronous and cheap: the hot path never
waits on the node). :meth:`WordFetcher.run` then reads what was asked, one batch of
``tickBitmap`` calls and one of ``ticks`` per round (:func:`simulation.uniswap_v3.read_words`),
at the state's block, and merges the words into the pool if the state is still at that block,
the same number and hash (a block applied meanwhile may hold a Mint or Burn in a word the pool
did not know, which the pool skipped: the words are then read again at the new block). From
then on the same swap is quoted exactly. A merge is undone with its block if a reorg drops it
(:meth:`~simulation.state.ChainState.refresh_pool`); what the new branch needs is asked again.

Bounds: each miss asks for the missing word and :data:`SPREAD` − 1 more beyond it in the
direction the price went (a swap that crossed one word is likely to cross the next); at most
:data:`MAX_QUEUED` words wait, :data:`BATCH_WORDS` are read per round, and a pool holds at most
:data:`MAX_WORDS_PER_POOL` words. A word already known, waiting or being read is not asked again.
What goes over a bound is counted as dropped (the next miss asks again).

A block's logs that moved a pool's price also ask (:meth:`WordFetcher.follow`): for the words
next to the new price that the pool does not know, so that the loaded window follows the price.
A Mint or Burn in a word the pool does not know is skipped by the pool; the word's state is what
the node returns when it is fetched.

Whoever's work stopped at a missing word may leave it waiting (:meth:`WordFetcher.wait`, e.g. a
pending tx that left no effect): once the word is merged, at the block it was missed at, the
fetcher hands it to :attr:`WordFetcher.on_ready` (e.g. the engine's pending path, which considers
the tx again, now quoted exactly). What waits is bounded (:data:`MAX_WAITING`, past it counted as
dropped) and forgotten, counted as expired, once the state moves to another block: the tx may
be mined by then, and the state it missed against is gone.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from chain.errors import ChainError
from simulation.calls import LoadError
from simulation.pools import StateMissing
from simulation.state import ChainState
from simulation.uniswap_v3 import read_words
from simulation.uniswap_v3_pool import MissingTickWordError, V3Pool

log = logging.getLogger("mevbot.v3_words")

SPREAD = 4
MAX_QUEUED = 1024
BATCH_WORDS = 64
MAX_WORDS_PER_POOL = 128
MAX_WAITING = 256


@dataclass(frozen=True, slots=True)
class WordCounts:
    """What the fetcher did: misses reported, words asked for, fetched and merged, dropped over
    a bound, read again after the state moved on, and rounds whose reads failed; and of the
    work left waiting for a word: how much was handed back once it came (``ready``), forgotten
    when the block moved on (``expired``), or not kept over :data:`MAX_WAITING`
    (``waiting_dropped``)."""

    misses: int = 0
    asked: int = 0
    fetched: int = 0
    dropped: int = 0
    reread: int = 0
    failed_rounds: int = 0
    ready: int = 0
    expired: int = 0
    waiting_dropped: int = 0


def _wanted_words(pool: V3Pool, word: int) -> list[int]:
    """The missing word, then the words beyond it away from the pool's current tick's word
    (nearest first: what a bound leaves out is the farthest)."""
    centre = pool.tick // pool.tick_spacing >> 8
    if word < centre:
        return [word - step for step in range(SPREAD)]
    if word > centre:
        return [word + step for step in range(SPREAD)]
    return sorted(range(word - SPREAD // 2, word + SPREAD // 2 + 1), key=lambda w: abs(w - word))


class WordFetcher:
    """Reads the bitmap words of :attr:`ChainState.pools` V3 pools that quotes asked for (see
    the module docstring); ``rpc`` is a JSON-RPC client with ``batch``."""

    def __init__(self, rpc: Any, state: ChainState) -> None:
        self.rpc = rpc
        self.state = state
        self._queue: dict[str, set[int]] = {}
        self._queued = 0
        self._reading: set[tuple[str, int]] = set()
        self._wake = asyncio.Event()
        self._counts = {name: 0 for name in WordCounts.__slots__}
        # (pool, word) -> what waits for it, all missed at block _waiting_block (number, hash).
        self._waiting: dict[tuple[str, int], list[Any]] = {}
        self._waiting_count = 0
        self._waiting_block = (0, "")
        self.on_ready: Callable[[Any], None] | None = None

    def attach(self) -> None:
        """Hear every miss the state's pending path runs into."""
        self.state.on_missing = self.on_missing

    def on_missing(self, error: StateMissing) -> None:
        if isinstance(error, MissingTickWordError):
            self.want(error)

    @property
    def counts(self) -> WordCounts:
        return WordCounts(**self._counts)

    def want(self, missing: MissingTickWordError) -> None:
        """Ask for ``missing.word`` of ``missing.pool`` (and the words beyond it)."""
        self._counts["misses"] += 1
        pool = self.state.pools.get(missing.pool)
        if isinstance(pool, V3Pool):
            self._ask(pool, _wanted_words(pool, missing.word))

    def wait(self, missing: StateMissing, item: Any) -> None:
        """Keep ``item`` until ``missing``'s word is merged at the current block, then hand it
        to :attr:`on_ready` (see the module docstring); other misses are not waited for."""
        if not isinstance(missing, MissingTickWordError) or self.on_ready is None:
            return
        self._expire()
        if self._waiting_count >= MAX_WAITING:
            self._counts["waiting_dropped"] += 1
            return
        self._waiting.setdefault((missing.pool, missing.word), []).append(item)
        self._waiting_count += 1

    def _at(self) -> tuple[int, str]:
        return self.state.block_number, self.state.block_hash

    def _expire(self) -> None:
        """Forget what waits for a block the state has left."""
        if self._waiting_block != self._at():
            self._counts["expired"] += self._waiting_count
            self._waiting.clear()
            self._waiting_count = 0
            self._waiting_block = self._at()

    def _hand_back(self, address: str, words: Iterable[int]) -> None:
        """What waited for ``words`` of ``address``, now merged, to :attr:`on_ready`."""
        self._expire()
        for word in words:
            for item in self._waiting.pop((address, word), ()):
                self._waiting_count -= 1
                self._counts["ready"] += 1
                assert self.on_ready is not None
                self.on_ready(item)

    def follow(self, addresses: Iterable[str]) -> None:
        """Keep the words next to each pool's current tick's word known: a block's logs that
        moved a pool's price (``StateChanges.pools``) ask for what is missing around it."""
        for address in addresses:
            pool = self.state.pools.get(address)
            if isinstance(pool, V3Pool) and not pool.bitmap_complete:
                centre = pool.tick // pool.tick_spacing >> 8
                self._ask(pool, [centre, centre - 1, centre + 1])

    def _ask(self, pool: V3Pool, words: Iterable[int]) -> None:
        queued = self._queue.setdefault(pool.address, set())
        room = MAX_WORDS_PER_POOL - len(pool.words) - len(queued)
        for word in words:
            if word in pool.words or word in queued or (pool.address, word) in self._reading:
                continue
            if room <= 0 or self._queued >= MAX_QUEUED:
                self._counts["dropped"] += 1
                continue
            queued.add(word)
            self._queued += 1
            self._counts["asked"] += 1
            room -= 1
        if queued:
            self._wake.set()
        else:
            del self._queue[pool.address]

    async def run(self) -> None:
        """Read what was asked, round after round, until cancelled."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                await self.fetch_round()

    async def fetch_round(self) -> None:
        """Read up to :data:`BATCH_WORDS` of the words asked for and merge them."""
        wanted: list[tuple[V3Pool, list[int]]] = []
        taken = 0
        for address in list(self._queue):
            pool = self.state.pools.get(address)
            words = sorted(self._queue.pop(address))
            self._queued -= len(words)
            if not isinstance(pool, V3Pool):
                continue
            words = [w for w in words if w not in pool.words]
            wanted.append((pool, words))
            self._reading.update((address, w) for w in words)
            taken += len(words)
            if taken >= BATCH_WORDS:
                break
        block, at = self.state.block_number, self._at()
        try:
            read = await read_words(self.rpc, wanted, hex(block) if block else "latest")
        except (LoadError, ChainError) as error:
            self._counts["failed_rounds"] += 1
            log.warning("V3 bitmap words of %d pools not fetched: %s", len(wanted), error)
            return
        finally:
            for pool, words in wanted:
                self._reading.difference_update((pool.address, w) for w in words)
        if self._at() != at:  # another block, or the same height on another branch
            for pool, words in wanted:
                self._queue.setdefault(pool.address, set()).update(words)
                self._queued += len(words)
                self._counts["reread"] += len(words)
            return
        for (pool, words), (bitmap, ticks) in zip(wanted, read, strict=True):
            current = self.state.pools.get(pool.address)
            if not isinstance(current, V3Pool):
                continue
            try:
                self.state.refresh_pool(current.with_words(bitmap, ticks))
            except ValueError as error:
                self._counts["failed_rounds"] += 1
                log.warning("V3 pool %s: fetched words do not fit: %s", pool.address, error)
                continue
            self._counts["fetched"] += len(words)
            self._hand_back(pool.address, words)
