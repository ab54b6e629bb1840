"""Bundle building, executor calldata and the tracker's verdicts, without a chain."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from eth_account import Account
from execution_values import BID, OURS, WETH, candidate, plan_for
from hypothesis import given
from hypothesis import strategies as st

from chain.abi import load_artifact
from chain.types import Log
from execution.bundler import BundleBuildError, build_bundles
from execution.executor_calls import executor_call, gas_limit_for, min_profit_argument
from execution.inclusion import BlockTxs, InclusionTracker, TxReceipt, builder_of, in_bundle_order
from execution.ledger import Ledger, OutcomeStatus
from simulation.actions import LiquidationAction

EXECUTOR_ABI = load_artifact("Executor").abi
EXECUTOR = "0x" + "5a" * 20


def test_bundle_carries_the_backrun_envelopes_then_ours() -> None:
    item = candidate("k", 200)
    plan = plan_for(item, nonce=9, blocks=3)
    assert [b.block_number for b in plan.bundles] == [200, 201, 202]
    assert (plan.first_block, plan.last_block) == (200, 202)
    for bundle in plan.bundles:
        assert bundle.txs == (plan.bundles[0].txs[0], plan.our_tx)
        assert bundle.txs[0].raw == item.backrun[0].raw
        assert bundle.reverting_tx_hashes == ()
    assert plan.bundle_hash == plan.bundles[2].bundle_hash
    decoded = Account.recover_transaction(plan.our_tx.raw).lower()
    assert decoded == OURS.address and plan.our_tx.nonce == 9
    params = plan.bundles[1].to_rpc()
    assert params == {"txs": [t.raw_hex for t in plan.bundles[1].txs], "blockNumber": hex(201)}


def test_a_backrun_tx_without_its_envelope_is_refused() -> None:
    item = candidate("k")
    no_raw = replace(item, backrun=(replace(item.backrun[0], raw=None),))
    with pytest.raises(BundleBuildError, match="no signed envelope"):
        plan_for(no_raw)
    other = candidate("other", 300).backrun[0].raw
    wrong_raw = replace(item, backrun=(replace(item.backrun[0], raw=other),))
    with pytest.raises(BundleBuildError, match="hashes to another tx"):
        plan_for(wrong_raw)
    with pytest.raises(BundleBuildError, match="precedes"):
        build_bundles(
            item, executor_call(EXECUTOR, item, BID, 1, WETH), BID, OURS, 0, 1, last_block=99
        )


def test_arbitrage_calldata_round_trips() -> None:
    item = candidate("k")
    call = executor_call(EXECUTOR, item, BID, gas_limit_for(260_891), WETH)
    args = EXECUTOR_ABI.function("arbitrageHops").decode_input(call.data)
    assert args == (
        ((item.action.pools[0], 0, True), (item.action.pools[1], 0, False)),
        10**18,
        True,
        BID.min_profit_arg,
        BID.coinbase_wei,
    )
    assert call.gas_limit == 260_891 + 65_223  # +25%, rounded up
    assert call.to == EXECUTOR


def test_liquidation_min_profit_is_converted_and_rounded_up() -> None:
    usdc = "0x" + "c0" * 20
    action = LiquidationAction(
        pool="0x" + "90" * 20,
        collateral_asset=WETH,
        debt_asset=usdc,
        user="0x" + "99" * 20,
        debt_to_cover=5_000 * 10**6,
        swap_pairs=("0x" + "03" * 20,),
    )
    # 300 USDC of profit is worth 0.1 ETH: 3,000 USDC per ETH.
    item = replace(
        candidate("liq"),
        action=action,
        backrun=(),
        profit_token=usdc,
        expected_profit=300 * 10**6,
        expected_profit_wei=10**17,
    )
    bid = replace(BID, coinbase_wei=3 * 10**16 + 1, gas_cost_wei=10**15)
    required = min_profit_argument(item, bid, WETH)
    assert required == -(-(31 * 10**15 + 1) * 3_000 * 10**6 // 10**18)  # 93.000003 USDC, up
    call = executor_call(EXECUTOR, item, bid, 400_000, WETH)
    args = EXECUTOR_ABI.function("liquidate").decode_input(call.data)
    assert args[5:] == (action.swap_pairs, required, bid.coinbase_wei)
    plan = build_bundles(item, call, bid, OURS, 3, 1)
    assert plan.bundles[0].txs == (plan.our_tx,)


@given(st.integers(min_value=0, max_value=30_000_000))
def test_gas_limit_margin(gas_used: int) -> None:
    limit = gas_limit_for(gas_used)
    assert limit >= gas_used * 1.25 and limit >= gas_used + 20_000
    assert limit <= max(gas_used * 1.25 + 1, gas_used + 20_000)


@given(st.lists(st.integers(0, 9), max_size=12), st.lists(st.integers(0, 9), max_size=4))
def test_in_bundle_order_means_a_contiguous_run(block: list[int], bundle: list[int]) -> None:
    names = [f"0x{n}" for n in block]
    wanted = [f"0x{n}" for n in bundle]
    contiguous = bool(wanted) and any(
        names[i : i + len(wanted)] == wanted and names.index(wanted[0]) == i
        for i in range(len(names))
    )
    assert in_bundle_order(names, wanted) == contiguous


def receipt_for(tx_hash: str, status: int, profit: int, coinbase: int) -> TxReceipt:
    event = EXECUTOR_ABI.event("ArbitrageExecuted")
    log = Log(
        address=EXECUTOR,
        topics=(event.topic0, bytes(12) + bytes.fromhex(WETH[2:])),
        data=(10**18).to_bytes(32, "big")
        + profit.to_bytes(32, "big")
        + coinbase.to_bytes(32, "big"),
        block_number=201,
        block_hash="0x" + "bb" * 32,
        tx_hash=tx_hash,
        tx_index=1,
        log_index=0,
    )
    return TxReceipt(tx_hash, status, 201, 250_000, 12 * 10**9, (log,) if status else ())


def test_verdicts_unbundled_and_superseded(tmp_path: Path) -> None:
    ledger = Ledger.open(tmp_path / "ledger.sqlite")
    tracker = InclusionTracker(ledger, EXECUTOR, WETH)
    item = candidate("multi", 200)
    plan = plan_for(item, blocks=3)
    ledger.record_candidate(item)
    ledger.record_bundles(plan)
    trigger, ours = (tx.hash for tx in plan.bundles[0].txs)
    stranger = "0x" + "ab" * 32

    assert [
        s.settlement.status
        for s in tracker.settle_block(BlockTxs(200, (trigger,)), ledger.pending_bundles(200), {})
    ] == [OutcomeStatus.MISSED]
    # In block 201, but with a stranger's tx wedged between the trigger and ours.
    receipt = receipt_for(ours, 1, profit=5 * 10**16, coinbase=2 * 10**16)
    settled = tracker.settle_block(
        BlockTxs(201, (trigger, stranger, ours)), ledger.pending_bundles(201), {ours: receipt}
    )
    assert [(s.target_block, s.settlement.status) for s in settled] == [
        (201, OutcomeStatus.UNBUNDLED),
        (202, OutcomeStatus.SUPERSEDED),
    ]
    assert settled[0].settlement.realized_profit_wei == 3 * 10**16 - 250_000 * 12 * 10**9
    assert ledger.pending_bundles(10**6) == []

    # Our tx in the block but its receipt not served: no verdict yet.
    second = candidate("second", 300)
    ledger.record_candidate(second)
    plan2 = plan_for(second, nonce=1)
    ledger.record_bundles(plan2)
    block = BlockTxs(300, tuple(tx.hash for tx in plan2.bundles[0].txs))
    assert tracker.settle_block(block, ledger.pending_bundles(300), {}) == []
    landed = tracker.settle_block(
        block,
        ledger.pending_bundles(300),
        {plan2.our_tx.hash: receipt_for(plan2.our_tx.hash, 1, 10**17, 0)},
    )
    assert landed[0].settlement.status is OutcomeStatus.LANDED
    ledger.close()


def test_a_missed_bundle_says_who_built_the_block_and_whether_its_victim_got_in(
    tmp_path: Path,
) -> None:
    ledger = Ledger.open(tmp_path / "ledger.sqlite")
    tracker = InclusionTracker(ledger, EXECUTOR, WETH)
    item = candidate("lost", 400)
    plan = plan_for(item, blocks=2)
    ledger.record_candidate(item)
    ledger.record_bundles(plan)
    for bundle in plan.bundles:
        ledger.record_relay_answer(plan.bundle_hash, bundle.block_number, "titan", ok=True)
    trigger, _ = (tx.hash for tx in plan.bundles[0].txs)
    # Titan signs its blocks "Titan (titanbuilder.xyz)" in the extra data.
    titan = builder_of({"extraData": "0x" + b"Titan (titanbuilder.xyz)".hex(), "miner": "0x01"})
    assert titan == "Titan (titanbuilder.xyz)"
    assert builder_of({"extraData": "0xd883010e0c846765746888", "miner": "0xAB"}) == "0xab"
    (first,) = tracker.settle_block(
        BlockTxs(400, ("0x" + "cd" * 32,), "0x" + "99" * 20), ledger.pending_bundles(400), {}
    )
    assert first.settlement.victim_landed is False
    assert first.settlement.detail == f"not in block 400 built by 0x{'99' * 20}"
    (second,) = tracker.settle_block(
        BlockTxs(401, (trigger,), titan), ledger.pending_bundles(401), {}
    )
    assert second.settlement.lost_to == titan and second.settlement.victim_landed is True
    assert second.settlement.detail == f"victim landed without us in block 401 built by {titan}"
    assert ledger.outcome(plan.bundle_hash, 401) == second.settlement
    assert ledger.inclusion_by_relay() == {"titan": {"missed": 2, "victim_landed_without_us": 1}}
