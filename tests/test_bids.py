"""Bid policy math: exact, never paying more than the profit, monotone in profit."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from execution.bids import Bid, BidPolicy, NoBid, Rejected, max_base_fee_in_future

GWEI = 10**9
ETHER = 10**18

policies = st.builds(
    BidPolicy,
    coinbase_share_bps=st.integers(min_value=0, max_value=10_000),
    min_net_profit_wei=st.integers(min_value=0, max_value=10**17),
    priority_fee_wei=st.integers(min_value=0, max_value=5 * GWEI),
    base_fee_headroom=st.booleans(),
)
profits = st.integers(min_value=-(10**18), max_value=10**22)
gas_used = st.integers(min_value=21_000, max_value=2_000_000)
base_fees = st.integers(min_value=0, max_value=500 * GWEI)
blocks_ahead = st.integers(min_value=0, max_value=6)


def test_max_base_fee_matches_the_ethers_provider() -> None:
    # getMaxBaseFeeInFutureBlock(baseFee=10 gwei, 1) = 10 gwei * 1.125 + 1 wei.
    assert max_base_fee_in_future(10 * GWEI, 0) == 10 * GWEI
    assert max_base_fee_in_future(10 * GWEI, 1) == 11_250_000_001
    assert max_base_fee_in_future(10 * GWEI, 2) == 11_250_000_001 * 1125 // 1000 + 1
    assert max_base_fee_in_future(7, 1) == 8  # 7 * 1.125 = 7.875 -> floor 7 + 1


def test_a_worked_example() -> None:
    policy = BidPolicy(coinbase_share_bps=8_000, min_net_profit_wei=10**15)
    bid = policy.price(profit_wei=ETHER // 10, gas_used=260_891, base_fee=20 * GWEI, blocks_ahead=1)
    assert isinstance(bid, Bid)
    assert bid.max_fee_per_gas == 22_500_000_001
    assert bid.max_priority_fee_per_gas == 0
    assert bid.gas_cost_wei == 260_891 * 22_500_000_001
    surplus = ETHER // 10 - bid.gas_cost_wei
    assert bid.coinbase_wei == surplus * 8 // 10
    assert bid.net_profit_wei == surplus - bid.coinbase_wei
    assert bid.min_profit_arg == bid.gas_cost_wei


def test_rejections_say_why() -> None:
    policy = BidPolicy(coinbase_share_bps=9_000, min_net_profit_wei=10**16)
    gas_cost = 200_000 * 10 * GWEI
    assert policy.price(gas_cost, 200_000, 10 * GWEI, 0) == Rejected(
        NoBid.UNPROFITABLE_AFTER_GAS, gas_cost, gas_cost, 0
    )
    # 0.05 ETH surplus, 10% of it kept = 0.005 ETH < 0.01 ETH minimum.
    rejected = policy.price(gas_cost + 5 * 10**16, 200_000, 10 * GWEI, 0)
    assert isinstance(rejected, Rejected)
    assert rejected.reason is NoBid.BELOW_MINIMUM
    assert rejected.net_profit_wei == 5 * 10**15


def test_invalid_policies_are_refused() -> None:
    with pytest.raises(ValueError, match="coinbase_share_bps"):
        BidPolicy(coinbase_share_bps=10_001)
    with pytest.raises(ValueError, match="non-negative"):
        BidPolicy(coinbase_share_bps=1, priority_fee_wei=-1)


@given(policies, profits, gas_used, base_fees, blocks_ahead)
def test_net_is_profit_minus_gas_minus_coinbase_and_never_negative(
    policy: BidPolicy, profit: int, gas: int, base_fee: int, ahead: int
) -> None:
    bid = policy.price(profit, gas, base_fee, ahead)
    if isinstance(bid, Rejected):
        if bid.reason is NoBid.UNPROFITABLE_AFTER_GAS:
            assert profit <= bid.gas_cost_wei
        else:
            assert 0 <= bid.net_profit_wei < policy.min_net_profit_wei
        return
    assert bid.net_profit_wei == profit - bid.gas_cost_wei - bid.coinbase_wei
    assert bid.net_profit_wei >= policy.min_net_profit_wei >= 0
    assert bid.coinbase_wei >= 0
    assert bid.gas_cost_wei == gas * bid.max_fee_per_gas
    assert bid.max_fee_per_gas >= base_fee + policy.priority_fee_wei
    assert bid.max_priority_fee_per_gas == policy.priority_fee_wei
    # The coinbase share is floored: within 1 wei of the exact share.
    surplus = profit - bid.gas_cost_wei
    assert 0 <= surplus * policy.coinbase_share_bps - bid.coinbase_wei * 10_000 < 10_000
    # The executor's check (profit >= coinbase + minProfit) then means net >= 0.
    assert bid.coinbase_wei + bid.min_profit_arg <= profit


@given(policies, profits, st.integers(min_value=0, max_value=10**20), gas_used, base_fees)
def test_monotone_in_profit(
    policy: BidPolicy, profit: int, more: int, gas: int, base_fee: int
) -> None:
    lower = policy.price(profit, gas, base_fee, 1)
    higher = policy.price(profit + more, gas, base_fee, 1)
    if isinstance(lower, Bid):
        assert isinstance(higher, Bid)
        assert higher.net_profit_wei >= lower.net_profit_wei
        assert higher.coinbase_wei >= lower.coinbase_wei


@given(base_fees, st.integers(min_value=0, max_value=10))
def test_headroom_grows_at_least_12_5_percent_per_block(base_fee: int, ahead: int) -> None:
    fee = max_base_fee_in_future(base_fee, ahead)
    assert fee * 1000**ahead >= base_fee * 1125**ahead
    assert max_base_fee_in_future(base_fee, ahead + 1) > fee
