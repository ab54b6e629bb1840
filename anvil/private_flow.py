"""A wallet's private order flow: a trade's signed txs to the devnet MEV-Share node, not the pool.

One tx goes as ``eth_sendPrivateTransaction``, a trade of two (a transfer that funds the swap,
then the swap) as a user ``mev_sendBundle`` of both; either way the node publishes a hint and
hands the order to the builder. Hint preferences alternate between what a searcher can size a
backrun from exactly (the swap's logs, its target and selector) and Flashbots Protect's default
(``hash`` and ``default_logs``, docs settings-guide), chosen by a seeded generator.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

import aiohttp
from eth_account import Account

from anvil.world import derived_key
from chain.types import SignedTx
from execution.relay import RelayClient, RelayFailure, mev_bundle

EXACT_HINTS = ("hash", "logs", "contract_address", "function_selector")
PROTECT_DEFAULT_HINTS = ("hash", "default_logs")
LIFETIME_BLOCKS = 25


class PrivateFlow:
    """Sends trades privately to the node at ``url``; counts what it sent and what was refused."""

    def __init__(self, url: str, session: aiohttp.ClientSession, *, seed: int = 1) -> None:
        # The request-signing key of the wallet's RPC; it holds nothing.
        self._client = RelayClient(
            url, Account.from_key(derived_key("traffic-private-flow")), session=session
        )
        self._rng = random.Random(seed)
        self.sent: list[str] = []
        self.refused = 0

    def hints(self) -> tuple[str, ...]:
        return EXACT_HINTS if self._rng.random() < 0.5 else PROTECT_DEFAULT_HINTS

    async def send(self, txs: Sequence[SignedTx], head: int) -> bool:
        """Send one trade's txs; False (counted) when the node refused them."""
        hints = list(self.hints())
        try:
            if len(txs) == 1:
                await self._client.request(
                    "eth_sendPrivateTransaction",
                    [{"tx": txs[0].raw_hex, "preferences": {"privacy": {"hints": hints}}}],
                )
            else:
                bundle = mev_bundle(
                    head + 1, list(txs), max_block=head + LIFETIME_BLOCKS, hints=hints
                )
                await self._client.send_mev_bundle(bundle)
        except RelayFailure:
            self.refused += 1
            return False
        self.sent += [tx.hash for tx in txs]
        return True
