"""Pending transactions from a node's ``newPendingTransactions`` subscription, without losing any.

Two modes. ``full``: the node pushes whole tx objects (``eth_subscribe("newPendingTransactions",
true)``). ``hashes``: the node pushes hashes and the source looks them up with batched, pipelined
``eth_getTransactionByHash`` calls (many batches in flight). Nodes drop notifications under
bursts (anvil's channel holds 2,048 and silently drops the rest of a burst of full objects; the
hash-only form kept up in our measurements), so ``hashes`` is the default and both modes reconcile
with ``txpool_content``: right after every (re)subscribe (backfill), whenever our client's queue
dropped notifications or a lookup failed, and every ``reconcile_interval`` seconds. What each path
delivered is counted in ``stats.by_path``.

Supervision: connect, subscribe, stream; on a lost connection, timeout or stale subscription,
close, back off (jittered, exponential) and start again. A subscription is stale when it has been
silent for ``stale_after`` seconds twice in a row while the node's block number advanced in
between, or silent for ``stale_timeout`` seconds when that is set.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any, Literal

from chain.errors import ChainError, ConnectionLost, RpcError
from chain.rpc import Rpc, StreamRpc, Subscription
from chain.types import MalformedError, norm_hash
from watcher.recent import RecentHashes
from watcher.resilience import Backoff, log
from watcher.source import Emit, Source, TxEmitter, describe, parse_tx
from watcher.staleness import next_notification
from watcher.txpool import reconcile_from_txpool

Mode = Literal["full", "hashes"]


class PendingSource(Source):
    """A supervised ``newPendingTransactions`` stream over WebSocket or IPC."""

    def __init__(
        self,
        url: str,
        *,
        mode: Mode = "hashes",
        name: str | None = None,
        stale_after: float = 15.0,
        stale_timeout: float | None = None,
        reconcile_interval: float | None = 15.0,
        backfill: bool = True,
        batch_size: int = 128,
        batches_in_flight: int = 8,
        lookup_timeout: float = 10.0,
        call_timeout: float = 10.0,
        queue_capacity: int = 50_000,
        memory: int = 200_000,
        backoff: Backoff | None = None,
    ) -> None:
        super().__init__(name or f"ws-{mode}")
        self.url = url
        self.mode = mode
        self.stale_after = stale_after
        self.stale_timeout = stale_timeout
        self.reconcile_interval = reconcile_interval
        self.backfill = backfill
        self.batch_size = batch_size
        self.batches_in_flight = batches_in_flight
        self.lookup_timeout = lookup_timeout
        self.call_timeout = call_timeout
        self.queue_capacity = queue_capacity
        self._seen = RecentHashes(memory)
        self._backoff = backoff or Backoff()
        self._txpool_available = True

    async def run(self, emit: Emit) -> None:
        emitter = TxEmitter(self.stats, emit, self._seen)
        await self.supervise(
            self.url,
            lambda rpc: self._session(rpc, emitter),
            self._backoff,
            call_timeout=self.call_timeout,
            streaming=True,
        )

    async def _session(self, rpc: Rpc, emitter: TxEmitter) -> None:
        assert isinstance(rpc, StreamRpc)  # supervise(streaming=True) guarantees it
        args: tuple[Any, ...] = (True,) if self.mode == "full" else ()
        subscription = await rpc.subscribe(
            "newPendingTransactions", *args, capacity=self.queue_capacity
        )
        self.stats.connected = True
        in_lookup: set[str] = set()
        gap = asyncio.Event()
        if self.backfill:
            gap.set()
        tasks: set[asyncio.Task[None]] = set()
        reconciler = asyncio.create_task(self._reconcile_loop(rpc, emitter, gap, in_lookup))
        try:
            await self._stream(rpc, subscription, emitter, gap, in_lookup, tasks)
        finally:
            reconciler.cancel()
            for task in tasks:
                task.cancel()
            for task in (reconciler, *tasks):
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def _stream(
        self,
        rpc: StreamRpc,
        subscription: Subscription,
        emitter: TxEmitter,
        gap: asyncio.Event,
        in_lookup: set[str],
        tasks: set[asyncio.Task[None]],
    ) -> None:
        stats = self.stats
        full = self.mode == "full"
        slots = asyncio.Semaphore(self.batches_in_flight)
        dropped = 0
        payload = await next_notification(
            rpc, subscription, stats, self.stale_after, self.stale_timeout
        )
        # A connection that delivers is healthy: the next failure starts backing off afresh.
        self._backoff.reset()
        while True:
            if subscription.dropped != dropped:
                stats.subscription_dropped += subscription.dropped - dropped
                dropped = subscription.dropped
                gap.set()
            if full:
                tx = parse_tx(stats, payload, self.name, time.monotonic_ns())
                if tx is not None:
                    await emitter(tx, "subscription")
            else:
                # The frame's arrival, not the lookup's answer, is when the tx reached us.
                heard_at = time.monotonic_ns()
                batch = self._wanted(payload, in_lookup)
                while subscription.queued and len(batch) < self.batch_size:
                    batch.extend(self._wanted(await anext(subscription), in_lookup))
                if batch:
                    await slots.acquire()
                    task = asyncio.create_task(
                        self._lookup(rpc, batch, emitter, gap, in_lookup, heard_at)
                    )
                    tasks.add(task)
                    task.add_done_callback(lambda done: (tasks.discard(done), slots.release()))
            payload = await next_notification(
                rpc, subscription, stats, self.stale_after, self.stale_timeout
            )

    def _wanted(self, payload: Any, in_lookup: set[str]) -> list[str]:
        try:
            tx_hash = norm_hash(payload, "notification")
        except MalformedError as error:
            self.stats.malformed.add(error.reason)
            return []
        if tx_hash in self._seen or tx_hash in in_lookup:
            return []
        in_lookup.add(tx_hash)
        return [tx_hash]

    async def _lookup(
        self,
        rpc: StreamRpc,
        hashes: list[str],
        emitter: TxEmitter,
        gap: asyncio.Event,
        in_lookup: set[str],
        heard_at: int,
    ) -> None:
        stats = self.stats
        try:
            results = await rpc.batch(
                [("eth_getTransactionByHash", (tx_hash,)) for tx_hash in hashes],
                timeout=self.lookup_timeout,
            )
        except ChainError as error:
            stats.lookup_failed += len(hashes)
            stats.last_error = describe(error)
            in_lookup.difference_update(hashes)
            gap.set()
            return
        received_at = heard_at
        for tx_hash, result in zip(hashes, results, strict=True):
            in_lookup.discard(tx_hash)
            if result is None:
                stats.lookup_missing += 1
            elif isinstance(result, RpcError):
                stats.lookup_failed += 1
                stats.last_error = describe(result)
                gap.set()
            else:
                tx = parse_tx(stats, result, self.name, received_at)
                if tx is None:
                    continue
                if tx.hash != tx_hash:
                    stats.malformed.add("eth_getTransactionByHash answered with another tx")
                    continue
                await emitter(tx, "lookup")

    async def _reconcile_loop(
        self, rpc: StreamRpc, emitter: TxEmitter, gap: asyncio.Event, in_lookup: set[str]
    ) -> None:
        stats = self.stats
        while self._txpool_available:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.reconcile_interval):
                    await gap.wait()
            gap.clear()
            try:
                recovered = await reconcile_from_txpool(rpc, emitter, stats, self.name, in_lookup)
            except RpcError as error:
                # A node without the txpool namespace: the stream is all there is.
                self._txpool_available = False
                log.warning(
                    "%s: txpool_content unavailable (%s); no reconciliation", self.name, error
                )
                return
            except ConnectionLost:
                return
            except ChainError as error:
                stats.last_error = describe(error)
                continue
            if recovered:
                log.info("%s: txpool reconciliation recovered %d txs", self.name, recovered)
