"""A toy pool kind, to show that a new kind is one module plus its registration: a constant-sum
pool (``x + y`` stays put, a fee on the input) that no closed form in the arbitrage search knows.

Its pools emit ``Balances(uint256 balance0, uint256 balance1)``; its factory
``ToyPoolCreated(token0 indexed, token1 indexed, pool)``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, ClassVar

from chain.topics import event_topic
from chain.types import Log
from simulation.pools import Calls, PoolKind, PoolState

BALANCES = event_topic("Balances(uint256,uint256)")
CREATED = event_topic("ToyPoolCreated(address,address,address)")


@dataclass(frozen=True, slots=True)
class ConstantSumPool:
    kind: ClassVar[str] = "toy-constant-sum"
    address: str
    token0: str
    token1: str
    balance0: int
    balance1: int
    fee_bps: int = 10

    @property
    def route_key(self) -> tuple[()]:
        return ()

    def token_out(self, token_in: str) -> str:
        if token_in not in (self.token0, self.token1):
            raise ValueError(f"token {token_in} is not in pool {self.address}")
        return self.token1 if token_in == self.token0 else self.token0

    def amount_out(self, token_in: str, amount_in: int) -> int:
        available = self.balance1 if token_in == self.token0 else self.balance0
        return min(amount_in * (10_000 - self.fee_bps) // 10_000, available)

    def amount_in(self, token_in: str, amount_out: int) -> int | None:
        available = self.balance1 if token_in == self.token0 else self.balance0
        if amount_out > available:
            return None
        return -(-amount_out * 10_000 // (10_000 - self.fee_bps))

    def swap(self, token_in: str, amount_in: int) -> tuple[int, PoolState]:
        out = self.amount_out(token_in, amount_in)
        if token_in == self.token0:
            return out, replace(
                self, balance0=self.balance0 + amount_in, balance1=self.balance1 - out
            )
        return out, replace(self, balance0=self.balance0 - out, balance1=self.balance1 + amount_in)

    def apply_log(self, log: Log) -> PoolState | None:
        if log.topic0 != BALANCES:
            return None
        return replace(
            self,
            balance0=int.from_bytes(log.data[:32], "big"),
            balance1=int.from_bytes(log.data[32:64], "big"),
        )

    def rate(self, token_in: str) -> float:
        return (10_000 - self.fee_bps) / 10_000

    def constant_product(self, zero_for_one: bool) -> None:
        return None


def _created(log: Log) -> PoolState:
    return ConstantSumPool(
        "0x" + log.data[12:32].hex(),
        "0x" + log.topics[1][-20:].hex(),
        "0x" + log.topics[2][-20:].hex(),
        0,
        0,
    )


async def _load(
    rpc: Any, factories: Any, block: str = "latest", limit: int | None = None
) -> list[tuple[str, PoolState]]:
    return []  # the toy has no chain presence: its pools arrive by their factory's event


def _warmup(pool: PoolState) -> Calls:
    return []


TOY_KIND = PoolKind(
    name=ConstantSumPool.kind,
    pool_topics=frozenset({BALANCES}),
    creation_topic=CREATED,
    from_creation_log=_created,
    load=_load,
    warmup=_warmup,
    executor_hop=2,  # a hop the devnet Executor lacks: the tests never send one to a chain
)
