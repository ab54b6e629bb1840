"""Reading a subscription while watching for a dead or silent one.

Silence is normal on a quiet chain (no pending txs, no blocks on a devnet); silence while the node
keeps making blocks is not. After ``stale_after`` seconds without a notification we note the
node's block number; if it advanced by the next such check, the subscription is stale. With
``stale_timeout`` set, that much silence is stale whatever the node does.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from chain.errors import ChainError, ConnectionLost
from chain.rpc import Rpc, Subscription, eth_block_number
from watcher.source import SourceStats


class StaleSubscription(ChainError):
    """The subscription went silent while the node kept making progress."""


async def next_notification(
    rpc: Rpc,
    subscription: Subscription,
    stats: SourceStats,
    stale_after: float,
    stale_timeout: float | None = None,
) -> Any:
    """The next payload, or :class:`ConnectionLost` / :class:`StaleSubscription`."""
    if subscription.queued:
        return await anext(subscription)
    silent_since = time.monotonic()
    block_seen: int | None = None
    while True:
        try:
            async with asyncio.timeout(stale_after):
                return await anext(subscription)
        except TimeoutError:
            pass
        except StopAsyncIteration:
            raise ConnectionLost("subscription ended") from None
        block = await eth_block_number(rpc)
        silent_for = time.monotonic() - silent_since
        progressed = block_seen is not None and block > block_seen
        if progressed or (stale_timeout is not None and silent_for >= stale_timeout):
            stats.stale += 1
            raise StaleSubscription(f"no notification for {silent_for:.1f} s")
        block_seen = block
