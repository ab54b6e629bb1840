"""The devnet's traffic waits out a node that stops answering, as a wallet would, and still
gets every swap it sent mined (a saturated devnet made it crash in the middle of a burst)."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest

from anvil.traffic import run_traffic
from chain.rpc import connect

pytestmark = pytest.mark.timeout(120)


async def test_a_node_that_stops_answering_for_a_while_is_waited_out(devnet_factory) -> None:
    devnet = devnet_factory(block_time=1)
    world = devnet.world
    assert devnet.node.process is not None
    pid = devnet.node.process.pid
    async with connect(world.rpc["ws"], timeout=0.5) as rpc:
        sending = asyncio.create_task(
            run_traffic(world, rpc, seconds=4.0, swaps_per_s=4.0, resend_after=2.0, drain=20.0)
        )
        await asyncio.sleep(1.5)
        os.kill(pid, signal.SIGSTOP)  # the node hangs, as a saturated one does
        await asyncio.sleep(1.5)
        os.kill(pid, signal.SIGCONT)
        sent = await sending
        receipts = await rpc.batch(
            [("eth_getTransactionReceipt", [tx_hash]) for tx_hash in sent.swaps]
        )
    assert sent.node_timeouts >= 1
    assert len(sent.swaps) >= 12
    assert [tx for tx, receipt in zip(sent.swaps, receipts, strict=True) if receipt is None] == []
