"""New heads with the logs that state needs, and reorg detection.

For each ``newHeads`` notification the source fetches the block's logs that match the tracked
filter (``eth_getLogs`` by ``blockHash``, so a log never comes from the wrong branch) and emits
a :class:`~watcher.events.NewHead`. It keeps the hashes of the last ``window`` blocks. A head
whose parent is not the block we hold below it is walked back (``eth_getBlockByHash``) to the
newest block we hold: if blocks we held above that common ancestor were replaced, a
:class:`~watcher.events.Reorg` comes first, then the new branch's heads, lowest first. Heads
missed while disconnected are filled in the same way, starting from the latest block after
every (re)subscribe.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from chain.errors import MalformedResponse
from chain.rpc import Rpc, StreamRpc
from chain.topics import STATE_TOPICS
from chain.types import BlockHeader, Log, MalformedError
from watcher.events import NewHead, Reorg
from watcher.resilience import Backoff
from watcher.source import Emit, Source
from watcher.staleness import next_notification


class HeadSource(Source):
    """Supervised ``newHeads`` stream; ``addresses`` None means logs of any contract."""

    def __init__(
        self,
        url: str,
        *,
        topics: Sequence[bytes] = STATE_TOPICS,
        addresses: Sequence[str] | None = None,
        name: str = "heads",
        window: int = 64,
        stale_after: float = 30.0,
        stale_timeout: float | None = None,
        call_timeout: float = 10.0,
        backoff: Backoff | None = None,
    ) -> None:
        super().__init__(name)
        self.url = url
        self.window = window
        self.stale_after = stale_after
        self.stale_timeout = stale_timeout
        self.call_timeout = call_timeout
        self.reorgs = 0
        self._backoff = backoff or Backoff()
        self._filter: dict[str, Any] = {"topics": [["0x" + topic.hex() for topic in topics]]}
        if addresses is not None:
            self._filter["address"] = [address.lower() for address in addresses]
        self._held: OrderedDict[int, str] = OrderedDict()
        self._numbers: dict[str, int] = {}

    async def run(self, emit: Emit) -> None:
        await self.supervise(
            self.url,
            lambda rpc: self._session(rpc, emit),
            self._backoff,
            call_timeout=self.call_timeout,
            streaming=True,
        )

    async def _session(self, rpc: Rpc, emit: Emit) -> None:
        assert isinstance(rpc, StreamRpc)  # supervise(streaming=True) guarantees it
        subscription = await rpc.subscribe("newHeads", capacity=1024)
        self.stats.connected = True
        latest = await self._block(rpc, "eth_getBlockByNumber", "latest")
        await self.on_header(rpc, latest, emit)
        self._backoff.reset()
        while True:
            payload = await next_notification(
                rpc, subscription, self.stats, self.stale_after, self.stale_timeout
            )
            try:
                header = BlockHeader.from_rpc(payload, received_at=time.monotonic_ns())
            except MalformedError as error:
                self.stats.malformed.add(error.reason)
                continue
            await self.on_header(rpc, header, emit)

    async def on_header(self, rpc: Rpc, header: BlockHeader, emit: Emit) -> None:
        """Emit what ``header`` means for the chain we hold: heads, maybe a reorg first."""
        if header.hash in self._numbers:
            return
        branch = [header]
        cursor = header
        lowest_held = next(iter(self._held), None)
        while self._held and cursor.parent_hash not in self._numbers:
            if lowest_held is None or cursor.number <= lowest_held or len(branch) > self.window:
                await self._replace_all(header, emit)
                return
            cursor = await self._block(rpc, "eth_getBlockByHash", cursor.parent_hash)
            branch.append(cursor)
        if self._held:
            ancestor = self._numbers[cursor.parent_hash]
            replaced = [number for number in self._held if number > ancestor]
            if replaced:
                old = tuple(self._held[number] for number in replaced)
                for number in replaced:
                    del self._numbers[self._held.pop(number)]
                await self._reorg(ancestor, old, branch, emit)
        for block in reversed(branch):
            await self._head(rpc, block, emit)

    async def _reorg(
        self, ancestor: int | None, old: tuple[str, ...], branch: list[BlockHeader], emit: Emit
    ) -> None:
        self.reorgs += 1
        await emit(
            Reorg(
                depth=len(old),
                common_ancestor=ancestor,
                old_hashes=old,
                new_hashes=tuple(block.hash for block in reversed(branch)),
                received_at=time.monotonic_ns(),
                source=self.name,
            )
        )

    async def _replace_all(self, header: BlockHeader, emit: Emit) -> None:
        """A switch deeper than our window: all we held is gone; start again from ``header``."""
        old = tuple(self._held.values())
        self._held.clear()
        self._numbers.clear()
        await self._reorg(None, old, [header], emit)
        self._store(header)
        await emit(NewHead(header, (), header.received_at, self.name))

    async def _head(self, rpc: Rpc, header: BlockHeader, emit: Emit) -> None:
        logs = await self._logs(rpc, header)
        self._store(header)
        received_at = header.received_at or time.monotonic_ns()
        await emit(NewHead(header, logs, received_at, self.name))

    def _store(self, header: BlockHeader) -> None:
        self._held[header.number] = header.hash
        self._numbers[header.hash] = header.number
        while len(self._held) > self.window:
            _, forgotten = self._held.popitem(last=False)
            del self._numbers[forgotten]

    async def _block(self, rpc: Rpc, method: str, which: str) -> BlockHeader:
        result = await rpc.call(method, (which, False))
        if result is None:
            # The node no longer has it (another switch under our feet): start over.
            raise MalformedResponse(f"{method}: no block {which}")
        try:
            return BlockHeader.from_rpc(result)
        except MalformedError as error:
            self.stats.malformed.add(error.reason)
            raise MalformedResponse(f"{method}: {error.reason}") from None

    async def _logs(self, rpc: Rpc, header: BlockHeader) -> tuple[Log, ...]:
        result = await rpc.call("eth_getLogs", ({**self._filter, "blockHash": header.hash},))
        if not isinstance(result, list):
            raise MalformedResponse("eth_getLogs: result is not a list", repr(result))
        logs = []
        for obj in result:
            try:
                log = Log.from_rpc(obj)
            except MalformedError as error:
                self.stats.malformed.add(error.reason)
                continue
            if log.block_hash != header.hash:
                self.stats.malformed.add("eth_getLogs returned a log of another block")
                continue
            logs.append(log)
        return tuple(logs)
