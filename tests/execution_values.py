"""Values for execution tests: a backrun candidate with a real signed trigger tx, its bundle
plan, and a bid whose coinbase transfer is beyond SQLite's 64-bit integers once summed."""

from __future__ import annotations

from chain.types import PendingTx
from execution.bids import Bid
from execution.bundler import BundlePlan, build_bundles
from execution.executor_calls import ExecutorCall
from execution.signer import LocalSigner
from simulation.actions import HopArbitrageAction, SwapHop
from simulation.candidates import Candidate

OURS = LocalSigner("0x" + "42" * 32)
THEIRS = LocalSigner("0x" + "43" * 32)
WETH = "0x" + "ee" * 20
BID = Bid(
    coinbase_wei=9 * 10**18,  # beyond SQLite's 64-bit integers once summed
    max_fee_per_gas=30 * 10**9,
    max_priority_fee_per_gas=0,
    gas_cost_wei=8 * 10**15,
    net_profit_wei=10**18,
    min_profit_arg=8 * 10**15,
)


def candidate(key: str, target_block: int = 100) -> Candidate:
    victim = THEIRS.sign_eip1559(
        chain_id=1,
        nonce=target_block,
        to="0x" + "77" * 20,
        data=b"swap",
        value=0,
        gas=150_000,
        max_fee_per_gas=40 * 10**9,
        max_priority_fee_per_gas=10**9,
    )
    trigger = PendingTx(
        hash=victim.hash,
        sender=THEIRS.address,
        to="0x" + "77" * 20,
        value=0,
        input=b"swap",
        nonce=target_block,
        gas=150_000,
        raw=victim.raw,
    )
    return Candidate(
        strategy="backrun_arbitrage",
        key=key,
        action=HopArbitrageAction(
            (
                SwapHop("0x" + "01" * 20, "uniswap-v2", True),
                SwapHop("0x" + "02" * 20, "uniswap-v2", False),
            ),
            WETH,
            10**18,
        ),
        backrun=(trigger,),
        target_block=target_block,
        profit_token=WETH,
        expected_profit=10 * 10**18,
        expected_profit_wei=10 * 10**18,
    )


def plan_for(item: Candidate, nonce: int = 0, blocks: int = 1) -> BundlePlan:
    call = ExecutorCall(
        to="0x" + "5a" * 20, data=b"call", gas_limit=330_000, min_profit=1, coinbase_wei=1
    )
    return build_bundles(item, call, BID, OURS, nonce, 1, last_block=item.target_block + blocks - 1)
