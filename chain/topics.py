"""topic0 of the events the bot keeps state from (mainnet signatures; the devnet emits the same)."""

from __future__ import annotations

from eth_utils import keccak


def event_topic(signature: str) -> bytes:
    """topic0 of an event, e.g. ``event_topic("Sync(uint112,uint112)")``."""
    return keccak(signature.encode())


SYNC = event_topic("Sync(uint112,uint112)")
PAIR_CREATED = event_topic("PairCreated(address,address,address,uint256)")
# Uniswap V3 (v3-core IUniswapV3PoolEvents.sol / IUniswapV3Factory.sol @d8b1c63); the Swap and
# PoolCreated hashes equal relay-keepers-uniswap.md §4.4 (tests/test_uniswap_v3_pool.py checks).
V3_SWAP = event_topic("Swap(address,address,int256,int256,uint160,uint128,int24)")
V3_MINT = event_topic("Mint(address,address,int24,int24,uint128,uint256,uint256)")
V3_BURN = event_topic("Burn(address,int24,int24,uint128,uint256,uint256)")
V3_INITIALIZE = event_topic("Initialize(uint160,int24)")
V3_POOL_CREATED = event_topic("PoolCreated(address,address,uint24,int24,address)")
ANSWER_UPDATED = event_topic("AnswerUpdated(int256,uint256,uint256)")
# A feed proxy moved to a new aggregator (a new phase): Chainlink's AggregatorProxy (v0.7+).
AGGREGATOR_CONFIRMED = event_topic("AggregatorConfirmed(address,address)")
SUPPLY = event_topic("Supply(address,address,address,uint256,uint16)")
WITHDRAW = event_topic("Withdraw(address,address,address,uint256)")
BORROW = event_topic("Borrow(address,address,address,uint256,uint8,uint256,uint16)")
REPAY = event_topic("Repay(address,address,address,uint256,bool)")
LIQUIDATION_CALL = event_topic(
    "LiquidationCall(address,address,address,uint256,uint256,address,bool)"
)

# Aave V3's IPool (@aave/core-v3 1.19.3 contracts/interfaces/IPool.sol): indexes and rates after
# every action, and the user-configuration collateral bits.
RESERVE_DATA_UPDATED = event_topic(
    "ReserveDataUpdated(address,uint256,uint256,uint256,uint256,uint256)"
)
COLLATERAL_ENABLED = event_topic("ReserveUsedAsCollateralEnabled(address,address)")
COLLATERAL_DISABLED = event_topic("ReserveUsedAsCollateralDisabled(address,address)")
# An aToken moved between users (IAToken.sol): its value is the scaled amount.
BALANCE_TRANSFER = event_topic("BalanceTransfer(address,address,uint256,uint256)")

# The pool's own events (from the pool's address); BALANCE_TRANSFER comes from its aTokens.
LENDING_TOPICS: tuple[bytes, ...] = (
    SUPPLY,
    WITHDRAW,
    BORROW,
    REPAY,
    LIQUIDATION_CALL,
    RESERVE_DATA_UPDATED,
    COLLATERAL_ENABLED,
    COLLATERAL_DISABLED,
)
# What simulation's state is kept from: V2 reserves, new pairs, oracle answers and phases, lending
# positions.
STATE_TOPICS: tuple[bytes, ...] = (
    SYNC,
    PAIR_CREATED,
    ANSWER_UPDATED,
    AGGREGATOR_CONFIRMED,
    *LENDING_TOPICS,
    BALANCE_TRANSFER,
)
