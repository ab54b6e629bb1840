"""The whole devnet in one object: anvil with the world, the local relay and the block builder.

``async with DevnetStack(block_time=1.0) as stack:`` starts anvil (``--order fifo``, automine
off) with the deployed world, points the builder at it, serves the relay on a loopback port with
the builder as its ``eth_callBundle`` simulator and bundle counter, the MEV-Share node
(:mod:`anvil.matchmaker`) beside it, and builds a block every
``block_time`` seconds. ``block_time=None`` builds nothing on its own: the caller calls
``await stack.builder.build_block()``. The builder pays MEV-Share (refundPercent) refunds inside
the block; after each block the refund desk pays the gas-fee and delayed refunds the landed
bundles earned (from :data:`REFUND_PAYER_KEY`), the relay answers the refund-tracking
methods and the MEV-Share node hands its live orders over for the next block. Leaving the block
stops the builder after the block in progress, then the MEV-Share node, the relay, then anvil.

:class:`BuilderStack` is the relay, builder and refund desk over any node; :class:`DevnetStack`
puts them over the devnet, :class:`anvil.fork.ForkStack` over an anvil fork of another chain.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Self

from anvil import artifacts
from anvil.builder import BlockReport, Builder, BuilderStats
from anvil.devnet import DEFAULT_STATE_DIR, Devnet
from anvil.matchmaker import Matchmaker, start_matchmaker
from anvil.refunds import RefundDesk
from anvil.relay import BundleBook, LocalRelay, start_relay
from anvil.world import World
from chain.node import ANVIL_DEV_KEYS
from chain.rpc import Rpc, connect
from execution.signer import LocalSigner

DEVNET_ANVIL_ARGS = ("--order", "fifo")
# Stands for refunds.buildernet.eth: an anvil development account no devnet role uses.
REFUND_PAYER_KEY = ANVIL_DEV_KEYS[5]


class BuilderStack(ABC):
    """The local relay, block builder and refund desk over a node that a subclass starts
    (:meth:`_start_node` gives its HTTP and WebSocket URLs); use as an async context manager."""

    def __init__(
        self,
        *,
        block_time: float | None = 1.0,
        relay_host: str = "127.0.0.1",
        relay_port: int = 0,
        rpc_timeout: float = 5.0,
        refund_share_bps: int = 5000,
    ) -> None:
        self.block_time = block_time
        self.refund_share_bps = refund_share_bps
        self.relay_host = relay_host
        self.relay_port = relay_port
        self.rpc_timeout = rpc_timeout
        self._rpc: Rpc | None = None
        self._builder: Builder | None = None
        self._relay: LocalRelay | None = None
        self._refunds: RefundDesk | None = None
        self._matchmaker: Matchmaker | None = None

    @abstractmethod
    async def _start_node(self) -> tuple[str, str]:
        """Start the node; its HTTP and WebSocket URLs."""

    @abstractmethod
    async def _stop_node(self) -> None:
        """Stop the node (also when it never started)."""

    @property
    def rpc(self) -> Rpc:
        if self._rpc is None:
            raise RuntimeError("the stack is not running")
        return self._rpc

    @property
    def builder(self) -> Builder:
        if self._builder is None:
            raise RuntimeError("the stack is not running")
        return self._builder

    @property
    def relay(self) -> LocalRelay:
        if self._relay is None:
            raise RuntimeError("the stack is not running")
        return self._relay

    @property
    def refunds(self) -> RefundDesk:
        if self._refunds is None:
            raise RuntimeError("the stack is not running")
        return self._refunds

    @property
    def relay_url(self) -> str:
        return self.relay.url

    @property
    def matchmaker(self) -> Matchmaker:
        if self._matchmaker is None:
            raise RuntimeError("the stack is not running")
        return self._matchmaker

    @property
    def matchmaker_url(self) -> str:
        """The MEV-Share node: JSON-RPC on POST, the event stream on GET."""
        return self.matchmaker.url

    async def _after_block(self, report: BlockReport) -> None:
        await self.refunds.after_block(report)
        if self._matchmaker is not None:
            await self._matchmaker.after_block(report)

    def stats(self) -> BuilderStats:
        return self.builder.stats()

    async def start(self) -> Self:
        http_url, ws_url = await self._start_node()
        try:
            self._rpc = await connect(http_url, timeout=self.rpc_timeout)
            book = BundleBook()
            self._refunds = RefundDesk(
                self._rpc, LocalSigner(REFUND_PAYER_KEY), share_bps=self.refund_share_bps
            )
            self._builder = Builder(
                self._rpc,
                book,
                block_time=self.block_time or 1.0,
                pool_feed=ws_url,
                after_block=self._after_block,
            )
            await self._builder.start()
            self._relay = await start_relay(
                self.relay_host,
                self.relay_port,
                simulator=self._builder.call_bundle,
                on_bundle=self._builder.on_bundle,
                book=book,
                methods=self._refunds.methods,
            )
            self._matchmaker = await start_matchmaker(
                self._rpc, self._relay.url, self.relay_host, block_time=self.block_time or 1.0
            )
            if self.block_time is not None:
                self._builder.start_loop()
        except BaseException:
            await self.stop()
            raise
        return self

    async def stop(self) -> None:
        if self._builder is not None:
            await self._builder.stop()
        if self._matchmaker is not None:
            await self._matchmaker.stop()
        if self._relay is not None:
            await self._relay.stop()
        if self._rpc is not None:
            await self._rpc.close()
        self._builder = self._relay = self._rpc = self._refunds = self._matchmaker = None
        await self._stop_node()

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


class DevnetStack(BuilderStack):
    """Devnet + relay + builder; use as an async context manager."""

    def __init__(
        self,
        *,
        block_time: float | None = 1.0,
        state_dir: Path | None = DEFAULT_STATE_DIR,
        relay_host: str = "127.0.0.1",
        relay_port: int = 0,
        rpc_timeout: float = 5.0,
        refund_share_bps: int = 5000,
    ) -> None:
        super().__init__(
            block_time=block_time,
            relay_host=relay_host,
            relay_port=relay_port,
            rpc_timeout=rpc_timeout,
            refund_share_bps=refund_share_bps,
        )
        self.devnet = Devnet(block_time=None, state_dir=state_dir, anvil_args=DEVNET_ANVIL_ARGS)

    @property
    def world(self) -> World:
        return self.devnet.world

    @property
    def rpc_url(self) -> str:
        return self.devnet.node.http_url

    async def empty_executor(self, symbol: str) -> int:
        """The executor's owner withdraws its whole balance of the world token ``symbol``
        (mined before this returns), so that what the bot trades afterwards is financed by flash
        swaps alone; returns the amount withdrawn."""
        world = self.world
        token, owner = world.tokens[symbol]["address"], world.roles["executor"].address
        balance_of = artifacts.load("ERC20Token").abi.function("balanceOf")
        raw = await self.rpc.call(
            "eth_call", [{"to": token, "data": "0x" + balance_of.encode(world.executor).hex()}]
        )
        (amount,) = balance_of.decode_output(bytes.fromhex(raw[2:]))
        withdraw = artifacts.load("Executor").abi.function("withdraw")
        # The owner is one of anvil's development accounts, which the node signs for.
        tx_hash = await self.rpc.call(
            "eth_sendTransaction",
            [
                {
                    "from": owner,
                    "to": world.executor,
                    "data": "0x" + withdraw.encode(token, amount, owner).hex(),
                }
            ],
        )
        while (receipt := await self.rpc.call("eth_getTransactionReceipt", [tx_hash])) is None:
            if self.block_time is None:
                await self.builder.build_block()
            else:
                await asyncio.sleep(0.05)
        if receipt["status"] != "0x1":
            raise RuntimeError(f"the executor's owner could not withdraw its {symbol}")
        return amount

    async def _start_node(self) -> tuple[str, str]:
        # Deploying or loading the world is blocking web3 work: keep the event loop free.
        await asyncio.to_thread(self.devnet.start)
        return self.devnet.node.http_url, self.devnet.node.ws_url

    async def _stop_node(self) -> None:
        await asyncio.to_thread(self.devnet.stop)
