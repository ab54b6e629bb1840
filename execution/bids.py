"""The bid policy: how much of a simulated profit goes to the block builder, and the gas fees.

A bundle bids with a coinbase transfer from the executor contract, paid only when the bundle
lands profitably, so the priority fee is normally 0. The max fee covers the base fee of the
furthest target block: the base fee rises at most 12.5% per block, so ``max_base_fee_in_future``
applies ``fee = fee * 1125 // 1000 + 1`` once per block ahead, exactly as the Flashbots ethers
provider's ``getMaxBaseFeeInFutureBlock`` (the ``+ 1`` rounds the floor division up).

All amounts are integer wei. Rounding, each time in the bot's favour of *not* overpaying and of
*not* under-estimating cost:

* gas cost is charged at the max fee (``gas_used * max_fee_per_gas``), the most the tx can pay;
  the realized cost (at the block's actual base fee) is never higher;
* the coinbase share is ``(profit - gas_cost) * bps // 10_000``, floored (at most 1 wei less
  than the exact share).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

BPS = 10_000


class NoBid(enum.Enum):
    """Why a candidate gets no bid (the counter it lands in)."""

    UNPROFITABLE_AFTER_GAS = "unprofitable_after_gas"
    BELOW_MINIMUM = "below_minimum"


@dataclass(frozen=True, slots=True)
class Bid:
    """What to pay and what is left.

    ``net_profit_wei = profit - gas_cost_wei - coinbase_wei``. ``min_profit_arg`` is the
    Executor's ``minProfit`` for a WETH-denominated profit: the contract itself adds
    ``coinbaseWei`` to it, so the call reverts unless the on-chain profit covers the coinbase
    transfer *and* the gas cost, i.e. unless the net stays non-negative.
    """

    coinbase_wei: int
    max_fee_per_gas: int
    max_priority_fee_per_gas: int
    gas_cost_wei: int
    net_profit_wei: int
    min_profit_arg: int


@dataclass(frozen=True, slots=True)
class Rejected:
    """No bid: ``reason`` for counting, the figures for the log line."""

    reason: NoBid
    profit_wei: int
    gas_cost_wei: int
    net_profit_wei: int


def max_base_fee_in_future(base_fee: int, blocks_ahead: int) -> int:
    """The highest base fee possible ``blocks_ahead`` blocks after a block with ``base_fee``."""
    fee = base_fee
    for _ in range(blocks_ahead):
        fee = fee * 1125 // 1000 + 1
    return fee


@dataclass(frozen=True, slots=True)
class BidPolicy:
    """A strategy's bidding rule; an object so that strategies can differ.

    ``coinbase_share_bps``: share of (profit - gas cost) paid to ``block.coinbase``.
    ``min_net_profit_wei``: what must stay with us after gas and the coinbase share.
    ``priority_fee_wei``: per-gas tip (0 for bundles; a public keeper tx needs one).
    ``base_fee_headroom``: cover the base-fee rise over ``blocks_ahead`` blocks; without it the
    max fee is the given base fee (for callers that pass the exact base fee of the target block).
    """

    coinbase_share_bps: int
    min_net_profit_wei: int = 0
    priority_fee_wei: int = 0
    base_fee_headroom: bool = True

    def __post_init__(self) -> None:
        if not 0 <= self.coinbase_share_bps <= BPS:
            raise ValueError(f"coinbase_share_bps must be within 0..{BPS}")
        if self.min_net_profit_wei < 0 or self.priority_fee_wei < 0:
            raise ValueError("min_net_profit_wei and priority_fee_wei must be non-negative")

    def max_fee_per_gas(self, base_fee: int, blocks_ahead: int) -> int:
        headroom = (
            max_base_fee_in_future(base_fee, blocks_ahead) if self.base_fee_headroom else base_fee
        )
        return headroom + self.priority_fee_wei

    def price(
        self, profit_wei: int, gas_used: int, base_fee: int, blocks_ahead: int
    ) -> Bid | Rejected:
        """Bid for a candidate with simulated ``profit_wei`` using ``gas_used`` gas, valid up to
        ``blocks_ahead`` blocks after the block whose base fee is ``base_fee``."""
        max_fee = self.max_fee_per_gas(base_fee, blocks_ahead)
        gas_cost = gas_used * max_fee
        surplus = profit_wei - gas_cost
        if surplus <= 0:
            return Rejected(NoBid.UNPROFITABLE_AFTER_GAS, profit_wei, gas_cost, surplus)
        coinbase = surplus * self.coinbase_share_bps // BPS
        net = surplus - coinbase
        if net < self.min_net_profit_wei:
            return Rejected(NoBid.BELOW_MINIMUM, profit_wei, gas_cost, net)
        return Bid(
            coinbase_wei=coinbase,
            max_fee_per_gas=max_fee,
            max_priority_fee_per_gas=self.priority_fee_wei,
            gas_cost_wei=gas_cost,
            net_profit_wei=net,
            min_profit_arg=gas_cost,
        )
