"""The devnet block builder on a real anvil (--order fifo, manual mining), fed by the real relay.

Bundles go through execution.relay.RelayClient (signed HTTP) to the local relay; the builder
mines blocks with evm_mine and the tests read what landed from the chain: tx order, receipts,
nonces and the coinbase balance.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from eth_account import Account
from eth_utils import to_checksum_address
from hypothesis import given, settings
from hypothesis import strategies as st
from tcp_proxy import TcpProxy

from anvil.builder import (
    CONFLICT,
    INVALID,
    REVERTED,
    TARGET_MISSING,
    BlockReport,
    Builder,
)
from anvil.stack import DevnetStack
from anvil.traffic import Traffic
from chain.envelope import signed_envelope
from chain.node import ANVIL_DEV_KEYS
from chain.rpc import Rpc, connect
from chain.types import Bundle, PendingTx, SignedTx
from execution.dialects import RefundTerms, Replacement, Submission
from execution.ledger import Ledger
from execution.refunds import RefundStatus, RefundTracker
from execution.relay import RelayClient, mev_bundle

pytestmark = pytest.mark.timeout(60)

# Tiny contracts placed with anvil_setCode: one forwards msg.value to block.coinbase
# (PUSH0 x4, CALLVALUE, COINBASE, GAS, CALL, STOP), one always reverts (PUSH0 PUSH0 REVERT).
TIPPER = "0x00000000000000000000000000000000000071b0"
TIPPER_CODE = "0x5f5f5f5f34415af100"
REVERTER = "0x000000000000000000000000000000000000dead"
REVERTER_CODE = "0x5f5ffd"
TIP_GAS = 60_000
PRIORITY_FEE = 10**9
GET_RESERVES = "0x0902f1ac"
ETHER = 10**18
POLL_S = 0.05


@dataclass
class Net:
    stack: DevnetStack
    rpc: Rpc
    relay: RelayClient
    traffic: Traffic

    @property
    def builder(self) -> Builder:
        return self.stack.builder


@pytest.fixture
async def net(devnet_cache: Path) -> AsyncIterator[Net]:
    async with (
        DevnetStack(block_time=None, state_dir=devnet_cache) as stack,
        aiohttp.ClientSession() as session,
    ):
        rpc = stack.rpc
        await rpc.batch(
            [("anvil_setCode", [TIPPER, TIPPER_CODE]), ("anvil_setCode", [REVERTER, REVERTER_CODE])]
        )
        searcher = Account.from_key(stack.world.roles["searcher"].private_key)
        relay = RelayClient(
            stack.relay_url, searcher, session=session, timeout=10.0, dialect="buildernet"
        )
        traffic = Traffic(stack.world, seed=7)
        await traffic.sync_nonces(rpc)
        yield Net(stack, rpc, relay, traffic)


async def base_fee(rpc: Rpc) -> int:
    block = await rpc.call("eth_getBlockByNumber", ["latest", False])
    return int(block["baseFeePerGas"], 16)


async def head_number(rpc: Rpc) -> int:
    return int(await rpc.call("eth_blockNumber"), 16)


async def public_swap(net: Net) -> SignedTx:
    """A random trader swap, sent to the node's public pool."""
    pairs = net.stack.world.pool_addresses()
    answers = await net.rpc.batch(
        [("eth_call", [{"to": pair, "data": GET_RESERVES}, "latest"]) for pair in pairs]
    )
    reserves = {
        pair: (int(answer[2:66], 16), int(answer[66:130], 16))
        for pair, answer in zip(pairs, answers, strict=True)
    }
    signed, _ = net.traffic.swap(reserves, await base_fee(net.rpc))
    await net.rpc.call("eth_sendRawTransaction", [signed.raw_hex])
    return signed


async def signed_call(
    net: Net, role: str, to: str, value: int = 0, nonce_offset: int = 0, block: str = "latest"
) -> SignedTx:
    """A tx from one of the world's roles (not sent anywhere), at its ``block`` nonce."""
    account = Account.from_key(net.stack.world.roles[role].private_key)
    nonce = int(await net.rpc.call("eth_getTransactionCount", [account.address, block]), 16)
    fee = await base_fee(net.rpc)
    signed = account.sign_transaction(
        {
            "type": 2,
            "chainId": 31337,
            "nonce": nonce + nonce_offset,
            "to": to_checksum_address(to),
            "value": value,
            "data": b"",
            "gas": TIP_GAS,
            "maxFeePerGas": 3 * fee + PRIORITY_FEE,
            "maxPriorityFeePerGas": PRIORITY_FEE,
        }
    )
    return SignedTx(
        bytes(signed.raw_transaction),
        "0x" + signed.hash.hex(),
        account.address.lower(),
        nonce + nonce_offset,
    )


async def block_txs(rpc: Rpc, number: int) -> list[str]:
    block = await rpc.call("eth_getBlockByNumber", [hex(number), False])
    return [h.lower() for h in block["transactions"]]


async def receipts(rpc: Rpc, hashes: list[str]) -> list[dict[str, Any]]:
    return await rpc.batch([("eth_getTransactionReceipt", [h]) for h in hashes])


async def paid_to_coinbase(rpc: Rpc, report: BlockReport) -> int:
    """Priority fees of every tx in the block, from its receipts (transfers come on top)."""
    block = await rpc.call("eth_getBlockByNumber", [hex(report.number), False])
    fee = int(block["baseFeePerGas"], 16)
    return sum(
        int(r["gasUsed"], 16) * (int(r["effectiveGasPrice"], 16) - fee)
        for r in await receipts(rpc, [h.lower() for h in block["transactions"]])
    )


async def coinbase_gain(net: Net, number: int) -> int:
    coinbase = net.builder.coinbase
    after, before = await net.rpc.batch(
        [
            ("eth_getBalance", [coinbase, hex(number)]),
            ("eth_getBalance", [coinbase, hex(number - 1)]),
        ]
    )
    return int(after, 16) - int(before, 16)


async def test_public_traffic_is_mined_in_arrival_order_each_build(net: Net) -> None:
    sent = [await public_swap(net) for _ in range(4)]
    report = await net.builder.build_block()
    assert await block_txs(net.rpc, report.number) == [tx.hash for tx in sent]
    assert all(r["status"] == "0x1" for r in await receipts(net.rpc, [tx.hash for tx in sent]))
    assert report.public_txs == 4 and report.included == () and report.anomalies == ()
    assert report.coinbase_payment == await paid_to_coinbase(net.rpc, report) > 0
    assert report.coinbase_payment == await coinbase_gain(net, report.number)

    later = [await public_swap(net) for _ in range(2)]
    second = await net.builder.build_block()
    assert second.number == report.number + 1
    assert await block_txs(net.rpc, second.number) == [tx.hash for tx in later]
    empty = await net.builder.build_block()
    assert await block_txs(net.rpc, empty.number) == [] and empty.coinbase_payment == 0
    stats = net.builder.stats()
    assert (stats.blocks_built, stats.public_txs_mined, stats.last_block) == (3, 6, empty.number)


async def test_public_txs_the_node_forgets_are_sent_again_and_mined(net: Net) -> None:
    # Two txs of one sender: dropping the first takes the second along (anvil drops a tx's
    # descendants), which is how a tx sent while the builder moves the pool gets lost.
    first = await signed_call(net, "keeper", TIPPER)
    second = await signed_call(net, "keeper", TIPPER, nonce_offset=1)
    for tx in (first, second):
        await net.rpc.call("eth_sendRawTransaction", [tx.raw_hex])
    for _ in range(100):
        if net.builder.remembers(first.hash) and net.builder.remembers(second.hash):
            break
        await asyncio.sleep(POLL_S)
    else:
        raise AssertionError("the builder never heard of the public txs")
    await net.rpc.call("anvil_dropTransaction", [first.hash])
    assert await net.rpc.call("eth_getTransactionByHash", [second.hash]) is None

    report = await net.builder.build_block()

    assert await block_txs(net.rpc, report.number) == [first.hash, second.hash]
    assert net.builder.stats().restored == 2 and report.anomalies == ()
    await net.builder.build_block()
    assert not net.builder.remembers(first.hash), "a mined tx is forgotten by the next block"


async def test_bundle_lands_contiguous_before_other_public_txs(net: Net) -> None:
    before = await public_swap(net)
    victim = await public_swap(net)
    after = await public_swap(net)
    tip = await signed_call(net, "executor", TIPPER, value=ETHER // 100)
    target = await head_number(net.rpc) + 1
    receipt = await net.relay.send_bundle(Bundle(txs=(victim, tip), block_number=target))

    report = await net.builder.build_block()

    assert report.number == target and report.included == (receipt.bundle_hash,)
    assert await block_txs(net.rpc, target) == [victim.hash, tip.hash, before.hash, after.hash]
    assert report.public_txs == 2 and report.anomalies == ()
    statuses = [r["status"] for r in await receipts(net.rpc, [victim.hash, tip.hash])]
    assert statuses == ["0x1", "0x1"]
    expected = await paid_to_coinbase(net.rpc, report) + ETHER // 100
    assert report.coinbase_payment == expected == await coinbase_gain(net, target)
    stats = net.builder.stats()
    assert (stats.bundles_received, stats.bundles_included, stats.interleaving_anomalies) == (
        1,
        1,
        0,
    )
    assert net.stack.relay.book.blocks() == ()


async def test_of_two_bundles_backrunning_one_victim_only_the_better_payer_lands(net: Net) -> None:
    victim = await public_swap(net)
    low = await signed_call(net, "executor", TIPPER, value=ETHER // 100)
    high = await signed_call(net, "keeper", TIPPER, value=2 * ETHER // 100)
    target = await head_number(net.rpc) + 1
    low_hash = (await net.relay.send_bundle(Bundle((victim, low), target))).bundle_hash
    high_hash = (await net.relay.send_bundle(Bundle((victim, high), target))).bundle_hash

    report = await net.builder.build_block()

    assert report.included == (high_hash,)
    assert [(r.bundle_hash, r.reason) for r in report.rejected] == [(low_hash, CONFLICT)]
    assert victim.hash in report.rejected[0].detail
    assert await block_txs(net.rpc, target) == [victim.hash, high.hash]
    executor_nonce = await net.rpc.call("eth_getTransactionCount", [low.sender, "latest"])
    assert int(executor_nonce, 16) == low.nonce  # the losing searcher tx never landed
    assert net.builder.stats().bundles_rejected == {CONFLICT: 1}


async def test_a_reverting_bundle_lands_nothing_unless_the_revert_is_allowed(net: Net) -> None:
    public = await public_swap(net)
    tip = await signed_call(net, "executor", TIPPER, value=ETHER // 100)
    failing = await signed_call(net, "keeper", REVERTER)
    target = await head_number(net.rpc) + 1
    bundle = Bundle((tip, failing), target)
    await net.relay.send_bundle(bundle)

    report = await net.builder.build_block()

    assert report.included == ()
    assert [(r.bundle_hash, r.reason) for r in report.rejected] == [(bundle.bundle_hash, REVERTED)]
    assert failing.hash in report.rejected[0].detail
    assert await block_txs(net.rpc, target) == [public.hash]
    assert report.coinbase_payment == await paid_to_coinbase(net.rpc, report)
    nonces = await net.rpc.batch(
        [("eth_getTransactionCount", [tx.sender, "latest"]) for tx in (tip, failing)]
    )
    assert [int(n, 16) for n in nonces] == [tip.nonce, failing.nonce]

    allowed = Bundle((tip, failing), target + 1, reverting_tx_hashes=(failing.hash,))
    await net.relay.send_bundle(allowed)
    second = await net.builder.build_block()
    assert second.included == (allowed.bundle_hash,) and second.anomalies == ()
    assert await block_txs(net.rpc, target + 1) == [tip.hash, failing.hash]
    statuses = [r["status"] for r in await receipts(net.rpc, [tip.hash, failing.hash])]
    assert statuses == ["0x1", "0x0"]


async def test_a_bundle_with_a_nonce_gap_is_invalid_and_lands_nothing(net: Net) -> None:
    # anvil's eth_simulateV1 runs such a tx happily: the builder must check nonces itself.
    tip = await signed_call(net, "executor", TIPPER, value=ETHER // 100)
    gap = await signed_call(net, "executor", TIPPER, value=ETHER // 100, nonce_offset=2)
    target = await head_number(net.rpc) + 1
    bundle = Bundle((tip, gap), target)
    await net.relay.send_bundle(bundle)

    report = await net.builder.build_block()

    assert [(r.bundle_hash, r.reason) for r in report.rejected] == [(bundle.bundle_hash, INVALID)]
    assert f"tx: {tip.nonce + 2} state: {tip.nonce + 1}" in report.rejected[0].detail
    assert await block_txs(net.rpc, target) == []
    nonce = await net.rpc.call("eth_getTransactionCount", [tip.sender, "latest"])
    assert int(nonce, 16) == tip.nonce


async def test_a_bundle_for_a_later_block_waits_for_it(net: Net) -> None:
    tip = await signed_call(net, "executor", TIPPER, value=ETHER // 100)
    target = await head_number(net.rpc) + 2
    bundle = Bundle((tip,), target)
    await net.relay.send_bundle(bundle)

    first = await net.builder.build_block()
    assert first.number == target - 1 and first.included == () and first.rejected == ()
    assert await block_txs(net.rpc, first.number) == []
    assert net.stack.relay.book.blocks() == (target,)

    second = await net.builder.build_block()
    assert second.number == target and second.included == (bundle.bundle_hash,)
    assert await block_txs(net.rpc, target) == [tip.hash]
    assert net.stack.relay.book.blocks() == ()


async def test_mev_share_bundle_backruns_the_pending_tx_it_names(net: Net) -> None:
    victim = await public_swap(net)
    unsent = await signed_call(net, "oracle_updater", TIPPER, value=1)
    tip = await signed_call(net, "executor", TIPPER, value=ETHER // 100)
    target = await head_number(net.rpc) + 1
    missing = await net.relay.send_mev_bundle(mev_bundle(target, [unsent.hash, tip]))
    found = await net.relay.send_mev_bundle(mev_bundle(target, [victim.hash, tip]))

    report = await net.builder.build_block()

    assert report.included == (found.bundle_hash,)
    assert [(r.bundle_hash, r.reason) for r in report.rejected] == [
        (missing.bundle_hash, TARGET_MISSING)
    ]
    assert await block_txs(net.rpc, target) == [victim.hash, tip.hash]


async def test_call_bundle_returns_the_documented_fields_and_what_the_block_then_pays(
    net: Net,
) -> None:
    victim = await public_swap(net)
    tip = await signed_call(net, "executor", TIPPER, value=ETHER // 100)
    head = await head_number(net.rpc)
    params = {"txs": [victim.raw_hex, tip.raw_hex], "blockNumber": hex(head + 1)}
    raw = await net.relay.request("eth_callBundle", [params | {"stateBlockNumber": "latest"}])
    for key in ("bundleGasPrice", "coinbaseDiff", "ethSentToCoinbase", "gasFees"):
        assert isinstance(raw[key], str) and raw[key].isdecimal()
    assert isinstance(raw["stateBlockNumber"], int) and isinstance(raw["totalGasUsed"], int)
    assert all(isinstance(r["gasUsed"], int) for r in raw["results"])
    swap_returned, tip_returned = (r["value"] for r in raw["results"])
    # The router returns uint[] amounts: offset, length, amountIn, amountOut.
    assert len(swap_returned) == 2 + 2 * 32 * 4 and tip_returned == "0x"

    sim = await net.relay.call_bundle([victim, tip], head + 1)
    assert sim.state_block_number == head
    assert [r.tx_hash for r in sim.results] == [victim.hash, tip.hash]
    assert [r.from_address for r in sim.results] == [victim.sender, tip.sender]
    assert sim.results[1].to_address == TIPPER
    assert sim.results[1].eth_sent_to_coinbase == ETHER // 100 == sim.eth_sent_to_coinbase
    assert sim.results[0].eth_sent_to_coinbase == 0 and sim.first_failure is None

    await net.relay.send_bundle(Bundle((victim, tip), head + 1))
    report = await net.builder.build_block()
    assert report.included and await block_txs(net.rpc, head + 1) == [victim.hash, tip.hash]
    mined = await receipts(net.rpc, [victim.hash, tip.hash])
    assert [r.gas_used for r in sim.results] == [int(r["gasUsed"], 16) for r in mined]
    assert sim.total_gas_used == sum(r.gas_used for r in sim.results)
    assert sim.coinbase_diff == report.coinbase_payment == await coinbase_gain(net, head + 1)
    assert sim.gas_fees == sum(r.gas_fees for r in sim.results) == sim.coinbase_diff - ETHER // 100
    assert sim.bundle_gas_price == sim.coinbase_diff // sim.total_gas_used

    reverting = await net.relay.call_bundle([await signed_call(net, "keeper", REVERTER)], head + 2)
    failure = reverting.first_failure
    assert failure is not None and failure.error == "execution reverted"
    assert reverting.coinbase_diff == reverting.gas_fees == failure.gas_used * PRIORITY_FEE


async def test_the_loop_keeps_building_through_a_node_outage_and_stops_cleanly(
    net: Net,
) -> None:
    node_port = int(net.stack.rpc_url.rsplit(":", 1)[1])
    async with (
        TcpProxy(node_port) as proxy,
        connect(f"http://127.0.0.1:{proxy.port}", timeout=1.0) as rpc,
    ):
        builder = Builder(rpc, net.stack.relay.book, block_time=0.2)
        await builder.start()
        builder.start_loop()
        try:
            sent = await public_swap(net)
            await wait_for(lambda: builder.stats().public_txs_mined >= 1)
            await proxy.cut(refuse=True)
            await wait_for(lambda: builder.stats().build_errors >= 1)
            proxy.restore()
            built = builder.stats().blocks_built
            later = await public_swap(net)
            await wait_for(lambda: builder.stats().blocks_built >= built + 2)
        finally:
            await builder.stop()
        stopped_at = await head_number(net.rpc)
        await asyncio.sleep(0.5)
        assert await head_number(net.rpc) == stopped_at  # nothing mines after stop()
        mined = await receipts(net.rpc, [sent.hash, later.hash])
        assert all(r is not None and r["status"] == "0x1" for r in mined)


async def test_the_running_loop_keeps_bundles_whole_under_concurrent_traffic(net: Net) -> None:
    net.builder.block_time = 0.25
    net.builder.start_loop()
    sent: list[str] = []
    bundles: list[tuple[SignedTx, SignedTx]] = []
    try:
        for index in range(60):
            sent.append((await public_swap(net)).hash)
            if index % 12 == 5:
                # Each bundle its own txs: the public victim at the pending nonce, and a tip of
                # its own value (tips signed at the same nonce would otherwise be one same tx,
                # shared by two bundles).
                victim = await signed_call(net, "oracle_updater", TIPPER, value=1, block="pending")
                await net.rpc.call("eth_sendRawTransaction", [victim.raw_hex])
                tip = await signed_call(net, "executor", TIPPER, value=ETHER // 1000 + index)
                target = await head_number(net.rpc) + 1
                await net.relay.send_bundle(Bundle((victim, tip), target))
                await net.relay.send_bundle(Bundle((victim, tip), target + 1))
                bundles.append((victim, tip))
            await asyncio.sleep(0.02)
        for _ in range(80):  # every public tx must be mined: none lost while re-ordering
            if all(r is not None for r in await receipts(net.rpc, sent)):
                break
            await asyncio.sleep(0.5)
    finally:
        await net.builder.stop()
    mined = await receipts(net.rpc, sent)
    assert all(receipt is not None for receipt in mined)  # nothing lost while re-ordering
    landed = 0
    for victim, tip in bundles:
        victim_receipt, tip_receipt = await receipts(net.rpc, [victim.hash, tip.hash])
        assert victim_receipt is not None, "the victim is public: it lands either way"
        if tip_receipt is None:
            continue  # the bundle missed its blocks (the victim went first): nothing of it landed
        assert tip_receipt["status"] == "0x1"
        assert tip_receipt["blockNumber"] == victim_receipt["blockNumber"], "never in pieces"
        victim_index = int(victim_receipt["transactionIndex"], 16)
        assert int(tip_receipt["transactionIndex"], 16) == victim_index + 1 == 1
        landed += 1
    stats = net.builder.stats()
    assert stats.build_errors == 0
    assert set(stats.anomalies) <= {"orphan_dropped"}, stats.anomalies
    assert stats.bundles_included == landed >= len(bundles) // 2


# --- replacement and cancellation, as BuilderNet documents them ----------------------------------


async def nonce_of(rpc: Rpc, address: str) -> int:
    return int(await rpc.call("eth_getTransactionCount", [address, "latest"]), 16)


async def test_a_replaced_bundle_lands_as_its_latest_version(net: Net) -> None:
    victim = await public_swap(net)
    first = await signed_call(net, "executor", TIPPER, value=ETHER // 100)
    second = await signed_call(net, "executor", TIPPER, value=2 * ETHER // 100)  # same nonce
    target = await head_number(net.rpc) + 1
    replacement = Replacement.new()
    await net.relay.send_bundle(Submission(Bundle((victim, first), target), replacement))
    receipt = await net.relay.replace(
        Submission(Bundle((victim, second), target), replacement.next())
    )

    report = await net.builder.build_block()

    assert report.included == (receipt.bundle_hash,)
    assert await block_txs(net.rpc, target) == [victim.hash, second.hash]
    assert await coinbase_gain(net, target) == await paid_to_coinbase(net.rpc, report) + (
        2 * ETHER // 100
    )


async def test_a_replacement_with_a_lower_nonce_is_ignored(net: Net) -> None:
    victim = await public_swap(net)
    kept = await signed_call(net, "executor", TIPPER, value=ETHER // 100)
    late = await signed_call(net, "executor", TIPPER, value=3 * ETHER // 100)
    target = await head_number(net.rpc) + 1
    uuid = Replacement.new().uuid
    kept_hash = (
        await net.relay.send_bundle(
            Submission(Bundle((victim, kept), target), Replacement(uuid, 5))
        )
    ).bundle_hash
    await net.relay.replace(Submission(Bundle((victim, late), target), Replacement(uuid, 4)))

    report = await net.builder.build_block()

    assert report.included == (kept_hash,)
    assert await block_txs(net.rpc, target) == [victim.hash, kept.hash]
    stats = net.stack.relay.book.searcher_stats(net.relay.searcher_address)
    assert (stats.received, stats.ignored) == (1, 1)


async def test_a_cancelled_bundle_does_not_land(net: Net) -> None:
    public = await public_swap(net)
    tip = await signed_call(net, "executor", TIPPER, value=ETHER // 100)
    target = await head_number(net.rpc) + 1
    replacement = Replacement(Replacement.new().uuid, 3)
    await net.relay.send_bundle(Submission(Bundle((tip,), target), replacement))
    await net.relay.cancel(Replacement(replacement.uuid, 2))  # older than the bundle: ignored
    assert net.stack.relay.book.blocks() == (target,)
    await net.relay.cancel(replacement.next())  # the same uuid with no txs

    report = await net.builder.build_block()

    assert report.included == () and report.rejected == ()
    assert await block_txs(net.rpc, target) == [public.hash]
    assert await nonce_of(net.rpc, tip.sender) == tip.nonce
    stats = net.stack.relay.book.searcher_stats(net.relay.searcher_address)
    assert (stats.cancelled, stats.ignored) == (1, 1)


# --- refunds, paid on the devnet chain and reconciled into the ledger ---------------------------


async def balance(rpc: Rpc, address: str, block: int | str = "latest") -> int:
    tag = hex(block) if isinstance(block, int) else block
    return int(await rpc.call("eth_getBalance", [address, tag]), 16)


async def paid_by(rpc: Rpc, txs: list[SignedTx], number: int) -> list[int]:
    """What each tx paid the coinbase in block ``number``: priority fee (transfers on top)."""
    block = await rpc.call("eth_getBlockByNumber", [hex(number), False])
    fee = int(block["baseFeePerGas"], 16)
    return [
        int(r["gasUsed"], 16) * (int(r["effectiveGasPrice"], 16) - fee)
        for r in await receipts(rpc, [tx.hash for tx in txs])
    ]


async def test_a_landed_bundle_earns_its_signer_a_refund_paid_on_chain_and_reconciled(
    net: Net, tmp_path: Path
) -> None:
    searcher = net.relay.searcher_address.lower()
    victim = await public_swap(net)
    tip = await signed_call(net, "executor", TIPPER, value=ETHER // 100)
    target = await head_number(net.rpc) + 1
    receipt = await net.relay.send_bundle(Bundle((victim, tip), target))
    await net.builder.build_block()
    payment = sum(await paid_by(net.rpc, [victim, tip], target)) + ETHER // 100
    refund = payment * 5000 // 10_000  # no competitor: half of the whole payment

    with Ledger.open(tmp_path / "ledger.sqlite") as ledger:
        tracker = RefundTracker(net.relay, ledger, searcher)
        first = await tracker.reconcile()
        assert (first.new, first.pending_wei, first.received_wei) == (1, refund, 0)
        [owed] = await net.relay.fee_refunds(searcher)
        assert (owed.hash, owed.amount, owed.block_number) == (receipt.bundle_hash, refund, target)
        assert owed.status is RefundStatus.PENDING

        before = await balance(net.rpc, searcher)
        paid_in = (await net.builder.build_block()).number  # mines the payout
        assert await balance(net.rpc, searcher) - before == refund
        await net.builder.build_block()  # the desk sees the payout mined
        second = await tracker.reconcile()
        assert (second.new, second.changed, second.pending_wei, second.received_wei) == (
            0,
            1,
            0,
            refund,
        )
        again = await tracker.reconcile()
        assert (again.new, again.changed, again.received_wei) == (0, 0, refund)
        totals = await net.relay.fee_refund_totals(searcher)
        assert (totals.pending, totals.received, totals.up_to_block) == (0, refund, paid_in + 1)


async def test_the_winner_of_a_contest_is_refunded_down_to_the_second_price(net: Net) -> None:
    searcher = net.relay.searcher_address.lower()
    victim = await public_swap(net)
    low = await signed_call(net, "executor", TIPPER, value=ETHER // 100)
    high = await signed_call(net, "keeper", TIPPER, value=3 * ETHER // 100)
    target = await head_number(net.rpc) + 1
    await net.relay.send_bundle(Bundle((victim, low), target))
    high_hash = (await net.relay.send_bundle(Bundle((victim, high), target))).bundle_hash

    report = await net.builder.build_block()

    assert report.included == (high_hash,)
    # Both tips use the same gas at the same priority fee: the bids differ by the transfers.
    [owed] = await net.relay.fee_refunds(searcher)
    assert owed.amount == (3 * ETHER // 100 - ETHER // 100) * 5000 // 10_000


async def test_refund_percent_pays_the_recipient_and_delayed_ones_are_listed(net: Net) -> None:
    searcher = net.relay.searcher_address.lower()
    user = Account.create().address.lower()
    delegate = Account.create().address.lower()
    assert await net.relay.set_fee_refund_recipient(delegate) == {"from": searcher, "to": delegate}
    victim = await public_swap(net)
    tip = await signed_call(net, "executor", TIPPER, value=ETHER // 100)
    target = await head_number(net.rpc) + 1
    terms = RefundTerms(20, user, delayed=True)  # of the last tx: the tip
    await net.relay.send_bundle(Submission(Bundle((victim, tip), target), refund=terms))
    await net.builder.build_block()
    victim_paid, tip_paid = await paid_by(net.rpc, [victim, tip], target)
    explicit = (tip_paid + ETHER // 100) * 20 // 100
    fee = (victim_paid + tip_paid + ETHER // 100 - explicit) * 5000 // 10_000

    await net.builder.build_block()  # mines both payouts
    assert await balance(net.rpc, user) == explicit
    assert await balance(net.rpc, delegate) == fee
    [delayed] = await net.relay.delayed_refunds(user)
    assert (delayed.amount, delayed.recipient) == (explicit, user)
    assert [r.amount for r in await net.relay.fee_refunds(delegate)] == [fee]
    assert await net.relay.fee_refunds(searcher) == []


@settings(max_examples=60, deadline=None)
@given(
    tx_type=st.sampled_from([0, 1, 2]),
    nonce=st.integers(0, 2**64 - 1),
    fee=st.integers(0, 10**12),
    tip=st.integers(0, 10**12),
    gas=st.integers(21_000, 30_000_000),
    to=st.one_of(st.none(), st.binary(min_size=20, max_size=20)),
    value=st.integers(0, 2**128),
    data=st.binary(max_size=64),
    keys=st.lists(st.integers(0, 2**256 - 1), max_size=3),
)
def test_pool_envelopes_are_rebuilt_exactly_from_tx_objects(
    tx_type: int,
    nonce: int,
    fee: int,
    tip: int,
    gas: int,
    to: bytes | None,
    value: int,
    data: bytes,
    keys: list[int],
) -> None:
    account = Account.from_key(ANVIL_DEV_KEYS[9])
    tx: dict[str, Any] = {"nonce": nonce, "gas": gas, "value": value, "data": data}
    if to is not None:
        tx["to"] = to_checksum_address(to)
    if tx_type == 2:
        tx |= {"type": 2, "maxFeePerGas": fee + tip, "maxPriorityFeePerGas": tip}
    else:
        tx["gasPrice"] = fee
    if tx_type:
        tx |= {"chainId": 31337, "accessList": [{"address": TIPPER, "storageKeys": keys}]}
        tx["type"] = tx_type
    signed = account.sign_transaction(tx)
    obj = {
        key: hex(tx[key])
        for key in ("nonce", "gas", "value", "gasPrice", "maxFeePerGas", "maxPriorityFeePerGas")
        if key in tx
    }
    obj |= {
        "hash": "0x" + signed.hash.hex(),
        "from": account.address,
        "to": tx.get("to"),
        "input": "0x" + data.hex(),
        "r": hex(signed.r),
        "s": hex(signed.s),
        "v": hex(signed.v),
        "type": hex(tx_type),
    }
    if tx_type:
        obj |= {
            "chainId": hex(31337),
            "yParity": hex(signed.v),
            "accessList": [{"address": TIPPER, "storageKeys": [f"0x{key:064x}" for key in keys]}],
        }
    assert signed_envelope(PendingTx.from_rpc(obj)) == bytes(signed.raw_transaction)
    obj["nonce"] = hex(nonce + 1)
    assert signed_envelope(PendingTx.from_rpc(obj)) is None, "a wrong field is not another tx"


async def wait_for(condition: Callable[[], bool], seconds: float = 10.0) -> None:
    """Poll ``condition`` (a counter of the builder's) until it holds, for at most ``seconds``."""
    for _ in range(int(seconds / POLL_S)):
        if condition():
            return
        await asyncio.sleep(POLL_S)
    raise AssertionError(f"condition not met within {seconds} s")
