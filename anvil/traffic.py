"""Devnet traffic: signed user swaps that move pool prices (and so create backrun opportunities).

Each trader of the world swaps a random 0.2–3% of a random pool's reserve through one of the
routers, so prices on the two DEXes drift apart. Transactions are signed locally (EIP-1559) with
the trader's devnet key and tracked nonces; sending them is the caller's business, so the same
generator serves tests, the demo and benchmarks.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from eth_account import Account
from eth_utils import to_checksum_address

from anvil.world import World
from chain.abi import load_artifact
from chain.types import SignedTx

SWAP_GAS = 250_000
TIP = 10**9


@dataclass(frozen=True, slots=True)
class PlannedSwap:
    """What a generated swap does (for tests and logs)."""

    trader: str
    router: str
    pair: str
    token_in: str
    token_out: str
    amount_in: int


@dataclass
class Traffic:
    """Random router swaps by the world's traders; ``nonces`` must be synced before use."""

    world: World
    seed: int = 1
    chain_id: int = 31337
    nonces: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self._swap = load_artifact("UniswapV2Router02").abi.function("swapExactTokensForTokens")
        self._accounts = {t.address: Account.from_key(t.private_key) for t in self.world.traders}

    async def sync_nonces(self, rpc: Any) -> None:
        answers = await rpc.batch(
            [("eth_getTransactionCount", [address, "pending"]) for address in self._accounts]
        )
        self.nonces = {
            address: int(answer, 16)
            for address, answer in zip(self._accounts, answers, strict=True)
        }

    def sign(self, trader: str, to: str, data: bytes, base_fee: int, value: int = 0) -> SignedTx:
        account = self._accounts[trader]
        nonce = self.nonces[trader]
        signed = account.sign_transaction(
            {
                "type": 2,
                "chainId": self.chain_id,
                "nonce": nonce,
                "to": to_checksum_address(to),
                "value": value,
                "data": data,
                "gas": SWAP_GAS,
                "maxFeePerGas": 2 * base_fee + TIP,
                "maxPriorityFeePerGas": TIP,
            }
        )
        self.nonces[trader] = nonce + 1
        return SignedTx(bytes(signed.raw_transaction), "0x" + signed.hash.hex(), trader, nonce)

    def swap(
        self, reserves: dict[str, tuple[int, int]], base_fee: int
    ) -> tuple[SignedTx, PlannedSwap]:
        """A random swap sized from ``reserves`` (pair address -> (reserve0, reserve1))."""
        dex_name = self.rng.choice(sorted(self.world.dexes))
        dex = self.world.dexes[dex_name]
        pair = dex["pairs"][self.rng.choice(sorted(dex["pairs"]))]
        zero_for_one = self.rng.random() < 0.5
        token_in, token_out = (
            (pair["token0"], pair["token1"]) if zero_for_one else (pair["token1"], pair["token0"])
        )
        reserve0, reserve1 = reserves[pair["address"]]
        reserve_in = reserve0 if zero_for_one else reserve1
        amount_in = max(1, int(reserve_in * self.rng.uniform(0.002, 0.03)))
        trader = self.rng.choice(sorted(self._accounts))
        data = self._swap.encode(amount_in, 0, [token_in, token_out], trader, 2**40)
        signed = self.sign(trader, dex["router"], data, base_fee)
        plan = PlannedSwap(trader, dex["router"], pair["address"], token_in, token_out, amount_in)
        return signed, plan
