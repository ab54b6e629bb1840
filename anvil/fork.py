"""An anvil fork of any chain at a block, with the local relay and block builder on top, and a
recorded journal's pending transactions pushed into its mempool at their recorded pace.

``ForkStack(upstream, block=N)`` starts ``anvil --fork-url UPSTREAM --fork-block-number N`` (the
chain keeps its chain id; automine off, transactions in arrival order) and puts the devnet's
relay, builder and refund desk over it, so bundles sent to the fork's relay land in the fork's
blocks. A fork of the devnet (a fork of a fork) keeps the devnet's contracts, balances and keys.
Given :class:`~anvil.discover.Venues`, it deploys an Executor on the fork and reads the fork's
world description from it (:func:`anvil.discover.describe_fork`) before any block is built.

:func:`push_pending` sends the signed envelopes of a journal's ``tx`` events
(``mevbot watch --record``) with ``eth_sendRawTransaction``, waiting between two sends what the
recorder waited between receiving them (scaled by ``speed``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass

from anvil.discover import Venues, describe_fork
from anvil.stack import DEVNET_ANVIL_ARGS, BuilderStack
from anvil.world import World
from chain.errors import RpcError
from chain.node import AnvilProcess
from chain.rpc import Rpc
from chain.types import PendingTx


class ForkStack(BuilderStack):
    """An anvil fork of ``upstream`` (at ``block``, else its head) + relay + builder; with
    ``venues``, its :attr:`world` is read from the fork."""

    def __init__(
        self,
        upstream: str,
        *,
        block: int | None = None,
        block_time: float | None = 1.0,
        relay_port: int = 0,
        venues: Venues | None = None,
    ) -> None:
        super().__init__(block_time=block_time, relay_port=relay_port)
        self.upstream = upstream
        self.block = block
        self.venues = venues
        self.node: AnvilProcess | None = None
        self.world: World | None = None

    async def _start_node(self) -> tuple[str, str]:
        at = ("--fork-block-number", str(self.block)) if self.block is not None else ()
        args = ("--fork-url", self.upstream, *at, *DEVNET_ANVIL_ARGS, "--no-mining")
        self.node = await asyncio.to_thread(AnvilProcess(args=args).start)
        if self.venues is not None:
            try:
                self.world = await describe_fork(self.node.http_url, self.node.ws_url, self.venues)
            except BaseException:
                await self._stop_node()
                raise
        return self.node.http_url, self.node.ws_url

    async def _stop_node(self) -> None:
        if self.node is not None:
            await asyncio.to_thread(self.node.stop)
            self.node = None


@dataclass(frozen=True, slots=True)
class Pushed:
    """What :func:`push_pending` did: sent, refused by the node (its reasons counted), and
    transactions the journal holds without their signed envelope (nothing to send)."""

    sent: int
    refused: dict[str, int]
    without_raw: int


async def push_pending(rpc: Rpc, events: Iterable[object], speed: float = 1.0) -> Pushed:
    """Send every pending tx of ``events`` at the recorded pace (``speed`` 2.0: twice as fast)."""
    loop = asyncio.get_running_loop()
    started: float | None = None
    first: int | None = None
    sent, without_raw = 0, 0
    refused: dict[str, int] = {}
    for event in events:
        if not isinstance(event, PendingTx):
            continue
        if event.raw is None:
            without_raw += 1
            continue
        if first is None or started is None:
            first, started = event.received_at, loop.time()
        due = started + (event.received_at - first) / 1e9 / speed
        await asyncio.sleep(max(0.0, due - loop.time()))
        try:
            await rpc.call("eth_sendRawTransaction", ["0x" + event.raw.hex()])
            sent += 1
        except RpcError as error:
            refused[error.message] = refused.get(error.message, 0) + 1
    return Pushed(sent, refused, without_raw)
