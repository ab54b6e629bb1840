"""``txpool_content``: parse a node's pool, and a polling source built on it.

The pool is the reference the subscriptions are reconciled against: after a reconnect, after a
notification drop, and periodically, a source reads the pool and emits what it had not delivered.
Only the ``pending`` section is used (executable txs); ``queued`` ones wait on a nonce gap and
will be announced when they become executable. Polling alone (:class:`TxpoolSource`) is the
fallback for nodes without subscriptions.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from chain.rpc import Rpc
from watcher.recent import RecentHashes
from watcher.resilience import Backoff
from watcher.source import Emit, Source, SourceStats, TxEmitter, parse_tx

# A busy node's pool runs to tens of thousands of txs; reading and parsing it takes seconds.
TXPOOL_TIMEOUT = 60.0


def parse_txpool_content(
    result: Any, stats: SourceStats, source: str, received_at: int
) -> list[Any]:
    """The pending txs of a ``txpool_content`` answer; malformed parts are counted and skipped."""
    if not isinstance(result, dict):
        stats.malformed.add(f"txpool_content: result is {type(result).__name__}, not an object")
        return []
    pending = result.get("pending")
    if not isinstance(pending, dict):
        stats.malformed.add("txpool_content: no 'pending' object")
        return []
    txs = []
    for by_nonce in pending.values():
        if not isinstance(by_nonce, dict):
            stats.malformed.add("txpool_content: a sender's entry is not an object")
            continue
        for obj in by_nonce.values():
            tx = parse_tx(stats, obj, source, received_at)
            if tx is not None:
                txs.append(tx)
    return txs


async def reconcile_from_txpool(
    rpc: Rpc, emitter: TxEmitter, stats: SourceStats, source: str, skip: frozenset[str] | set[str]
) -> int:
    """Emit the pool's txs this source has not delivered (and not ``skip``); how many."""
    result = await rpc.call("txpool_content", timeout=TXPOOL_TIMEOUT)
    recovered = 0
    for tx in parse_txpool_content(result, stats, source, time.monotonic_ns()):
        if tx.hash not in skip and await emitter(tx, "txpool"):
            recovered += 1
    return recovered


class TxpoolSource(Source):
    """Polls ``txpool_content`` every ``interval`` seconds and emits txs not delivered before."""

    def __init__(
        self,
        url: str,
        *,
        name: str = "txpool",
        interval: float = 1.0,
        memory: int = 200_000,
        backoff: Backoff | None = None,
    ) -> None:
        super().__init__(name)
        self.url = url
        self.interval = interval
        self._seen = RecentHashes(memory)
        self._backoff = backoff or Backoff()

    async def run(self, emit: Emit) -> None:
        emitter = TxEmitter(self.stats, emit, self._seen)
        await self.supervise(
            self.url,
            lambda rpc: self._poll(rpc, emitter),
            self._backoff,
            call_timeout=TXPOOL_TIMEOUT,
            streaming=False,
        )

    async def _poll(self, rpc: Rpc, emitter: TxEmitter) -> None:
        self.stats.connected = True
        while True:
            await reconcile_from_txpool(rpc, emitter, self.stats, self.name, frozenset())
            self._backoff.reset()
            await asyncio.sleep(self.interval)
