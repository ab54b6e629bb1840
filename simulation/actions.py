"""What a strategy wants the Executor contract to do, as values that encode themselves.

Every action knows its Executor calldata, the shape of its gas use (so gas learned from one
simulation prices the next of the same shape), the pools and positions it touches (so candidates
that would collide can be told apart), and how to show itself in a replay table or as JSON.
Nothing outside this module switches on the type of an action: a new kind of action is a new
class here implementing :class:`Action`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any, ClassVar, Protocol

from chain.abi import Function, load_artifact
from simulation.arbitrage import Cycle
from simulation.pool_kinds import executor_hop
from simulation.pools import PoolState

# Gas before a simulation of the shape tells better: a base plus a swap's cost per hop
# (measured on the devnet: 2-hop arbitrage ~191k behind a victim, ~239k as the first in its
# block to touch its pairs; liquidation + one swap ~183k).
GAS_PER_SWAP = 75_000
# A V3 swap (its callback, tick crossings) costs more than a V2 one; a flash swap adds a
# callback round and the abi-encoded cycle it carries (measured on the devnet as the first to
# touch the pools: V2+V3 cycle ~249k flash, ~233k from inventory; V2+V2 ~245k flash).
GAS_PER_V3_SWAP = 90_000
FLASH_GAS = 25_000
# Aave's liquidationCall inside its flashLoanSimple (index updates of two reserves, the oracle
# reads, the loan's transfers and repayment), before any swap back (measured on the devnet:
# ~568k with one V2 swap back, as the first in a while to touch both reserves).
LIQUIDATION_GAS = 500_000


@cache
def _executor_function(name: str) -> Function:
    return load_artifact("Executor").abi.function(name)


@dataclass(frozen=True, slots=True)
class GasShape:
    """Actions of one shape use about the same gas: the kind and the number of swaps."""

    kind: str
    swaps: int


class Action(Protocol):
    """An Executor call a strategy wants made (sized by the strategy's exact math)."""

    kind: ClassVar[str]

    @property
    def pools(self) -> tuple[str, ...]:
        """The pools it swaps through, in order."""
        ...

    @property
    def positions(self) -> tuple[str, ...]:
        """The lending positions (users) it changes."""
        ...

    @property
    def venue(self) -> str:
        """The pool kind it trades through ("uniswap-v2", ...), "mixed" for several, "none"."""
        ...

    @property
    def gas_shape(self) -> GasShape: ...

    @property
    def gas_guess(self) -> int:
        """Gas to price a bid with before a simulation of this shape has been seen."""
        ...

    def calldata(self, min_profit: int, coinbase_wei: int) -> bytes:
        """The Executor calldata: it reverts unless the profit reaches ``min_profit``, and it
        pays ``coinbase_wei`` to the block's coinbase."""
        ...

    def describe(self) -> str:
        """One short line for a table."""
        ...

    def to_json(self) -> dict[str, Any]: ...


@dataclass(frozen=True, slots=True)
class LiquidationAction:
    """``Executor.liquidate``: flash-borrow ``debt_to_cover`` from the Aave ``pool``, repay that
    much of ``user``'s debt with ``liquidationCall``, receive the collateral plus bonus, and swap
    it back to the debt asset through ``swap_pairs`` (may be empty: the loan is then repaid from
    inventory)."""

    kind: ClassVar[str] = "liquidation"
    pool: str
    collateral_asset: str
    debt_asset: str
    user: str
    debt_to_cover: int
    swap_pairs: tuple[str, ...]

    @property
    def pools(self) -> tuple[str, ...]:
        return self.swap_pairs

    @property
    def positions(self) -> tuple[str, ...]:
        return (self.user,)

    @property
    def venue(self) -> str:
        return "uniswap-v2" if self.swap_pairs else "none"  # the Executor swaps back through V2

    @property
    def gas_shape(self) -> GasShape:
        return GasShape(self.kind, len(self.swap_pairs))

    @property
    def gas_guess(self) -> int:
        return LIQUIDATION_GAS + GAS_PER_SWAP * len(self.swap_pairs)

    def calldata(self, min_profit: int, coinbase_wei: int) -> bytes:
        return _executor_function("liquidate").encode(
            self.pool,
            self.collateral_asset,
            self.debt_asset,
            self.user,
            self.debt_to_cover,
            list(self.swap_pairs),
            min_profit,
            coinbase_wei,
        )

    def describe(self) -> str:
        swaps = f", swap via {len(self.swap_pairs)}" if self.swap_pairs else ""
        debt = f"repay {self.debt_to_cover} of {self.debt_asset[:10]}"
        return f"liquidate {self.user[:10]}: {debt}{swaps}"

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "pool": self.pool,
            "user": self.user,
            "collateral_asset": self.collateral_asset,
            "debt_asset": self.debt_asset,
            "debt_to_cover": str(self.debt_to_cover),
            "swap_pairs": list(self.swap_pairs),
        }


@dataclass(frozen=True, slots=True)
class SwapHop:
    """One hop of an Executor cycle: the pool, its pool kind (``PoolState.kind``) and whether
    it sells the pool's token0."""

    pool: str
    pool_kind: str
    zero_for_one: bool

    def __post_init__(self) -> None:
        if executor_hop(self.pool_kind) is None:
            raise ValueError(f"the Executor has no hop for pool kind {self.pool_kind!r}")


@dataclass(frozen=True, slots=True)
class HopArbitrageAction:
    """``Executor.arbitrageHops``: swap ``amount_in`` of ``token_in`` round ``hops`` (V2 pairs and
    V3 pools) back into it. With ``flash`` the first hop is a flash swap and the executor needs
    no inventory; without, the input comes from the executor's balance."""

    kind: ClassVar[str] = "hop-arbitrage"
    hops: tuple[SwapHop, ...]
    token_in: str
    amount_in: int
    flash: bool = True

    @classmethod
    def for_cycle(
        cls, cycle: Cycle, pools: Mapping[str, PoolState], amount_in: int, flash: bool = True
    ) -> HopArbitrageAction:
        """The action for ``cycle``, each pool's kind read from ``pools`` (by address)."""
        hops = tuple(
            SwapHop(address, pools[address].kind, zero_for_one)
            for address, zero_for_one in cycle.legs
        )
        return cls(hops, cycle.start_token, amount_in, flash)

    @property
    def pools(self) -> tuple[str, ...]:
        return tuple(hop.pool for hop in self.hops)

    @property
    def positions(self) -> tuple[str, ...]:
        return ()

    @property
    def venue(self) -> str:
        kinds = {hop.pool_kind for hop in self.hops}
        return kinds.pop() if len(kinds) == 1 else "mixed"

    @property
    def gas_shape(self) -> GasShape:
        venues = "+".join(hop.pool_kind for hop in self.hops)
        mode = "flash" if self.flash else "inventory"
        return GasShape(f"{self.kind}:{mode}:{venues}", len(self.hops))

    @property
    def gas_guess(self) -> int:
        swaps = sum(
            GAS_PER_V3_SWAP if hop.pool_kind == "uniswap-v3" else GAS_PER_SWAP for hop in self.hops
        )
        return 60_000 + swaps + (FLASH_GAS if self.flash else 0)

    def calldata(self, min_profit: int, coinbase_wei: int) -> bytes:
        hops = [(hop.pool, executor_hop(hop.pool_kind), hop.zero_for_one) for hop in self.hops]
        return _executor_function("arbitrageHops").encode(
            hops, self.amount_in, self.flash, min_profit, coinbase_wei
        )

    def describe(self) -> str:
        hops = " > ".join(f"{hop.pool[:10]}({hop.pool_kind})" for hop in self.hops)
        mode = "flash" if self.flash else "inventory"
        return f"{mode} arbitrage {self.amount_in} of {self.token_in[:10]} via {hops}"

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "hops": [
                {"pool": hop.pool, "pool_kind": hop.pool_kind, "zero_for_one": hop.zero_for_one}
                for hop in self.hops
            ],
            "token_in": self.token_in,
            "amount_in": str(self.amount_in),
            "flash": self.flash,
        }
