"""Calldata and gas limits for the Executor contract's ``arbitrage`` and ``liquidate``.

:func:`gas_limit_for` is a simulated gas figure plus a margin: enough for the state to move a
little between simulation and inclusion, and a bound on what a revert can cost. ``minProfit`` comes
from the bid: in wei when the profit token is WETH, otherwise converted to profit-token units at
the candidate's own profit-per-wei ratio, rounded up (the check must never be looser than the
bid).
"""

from __future__ import annotations

from dataclasses import dataclass

from chain.types import SignedTx
from execution.bids import Bid
from execution.signer import LocalSigner
from simulation.candidates import Candidate

DEFAULT_GAS_MARGIN_BPS = 2_500  # +25%
DEFAULT_GAS_MARGIN_MIN = 20_000


@dataclass(frozen=True, slots=True)
class ExecutorCall:
    """An unsigned call to the executor."""

    to: str
    data: bytes
    gas_limit: int
    min_profit: int
    coinbase_wei: int


def gas_limit_for(
    gas_used: int,
    margin_bps: int = DEFAULT_GAS_MARGIN_BPS,
    min_margin: int = DEFAULT_GAS_MARGIN_MIN,
) -> int:
    """``gas_used`` plus ``max(gas_used * margin_bps / 10_000 rounded up, min_margin)``."""
    return gas_used + max(-(-gas_used * margin_bps // 10_000), min_margin)


def min_profit_argument(candidate: Candidate, bid: Bid, weth: str) -> int:
    """The ``minProfit`` that makes the call revert unless the profit covers the bid."""
    if candidate.profit_token.lower() == weth.lower():
        return bid.min_profit_arg
    if candidate.expected_profit_wei <= 0:
        raise ValueError(f"candidate {candidate.key}: no wei value for its profit token")
    # The contract does not add the coinbase tip for a non-WETH profit: require it here.
    required_wei = bid.coinbase_wei + bid.gas_cost_wei
    return -(-required_wei * candidate.expected_profit // candidate.expected_profit_wei)


def executor_call(
    executor: str,
    candidate: Candidate,
    bid: Bid,
    gas_limit: int,
    weth: str,
) -> ExecutorCall:
    """The call for ``candidate`` priced by ``bid``, signed with ``gas_limit``."""
    min_profit = min_profit_argument(candidate, bid, weth)
    return ExecutorCall(
        to=executor.lower(),
        data=candidate.action.calldata(min_profit, bid.coinbase_wei),
        gas_limit=gas_limit,
        min_profit=min_profit,
        coinbase_wei=bid.coinbase_wei,
    )


def sign_executor_call(
    signer: LocalSigner, call: ExecutorCall, bid: Bid, nonce: int, chain_id: int
) -> SignedTx:
    """``call`` as a type-2 tx at ``nonce``, with the bid's fee caps."""
    return signer.sign_eip1559(
        chain_id=chain_id,
        nonce=nonce,
        to=call.to,
        data=call.data,
        value=0,
        gas=call.gas_limit,
        max_fee_per_gas=bid.max_fee_per_gas,
        max_priority_fee_per_gas=bid.max_priority_fee_per_gas,
    )
