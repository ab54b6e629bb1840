"""Price-feed updates: the calls that set a feed's next answer."""

from __future__ import annotations

from typing import Any

from chain.intents import OracleUpdateIntent
from watcher.decode_v2 import Row


def _update_answer(feed: str, method: str, value: int, args: tuple[Any, ...]) -> OracleUpdateIntent:
    return OracleUpdateIntent(feed, method, args[0])


# The devnet's feed (anvil/contracts/lending/PriceFeed.sol): its updater posts answers directly.
FEED_ROWS: tuple[Row, ...] = (("a87a20ce", "updateAnswer(int256)", _update_answer),)
