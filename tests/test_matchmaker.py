"""The devnet MEV-Share node: hints on its stream, searchers' backruns merged behind private txs,
landing in the same block, and the user's refund paid on chain in that block.

The rule checks port the expectations of flashbots/mev-share-node's own tests as our cases
(``bundle_validation_test.go`` TestMergeInclusionIntervals, ``hints_test.go``
TestFilterSpecialLogs); the end-to-end cases run the real devnet stack.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from eth_account import Account
from eth_utils import keccak, to_checksum_address

from anvil.builder import PAYOUT_GAS
from anvil.matchmaker import (
    UNISWAP_V2_SWAP,
    UNISWAP_V3_SWAP,
    default_logs,
    merge_inclusion,
    tx_hint,
)
from anvil.relay import RpcError
from anvil.stack import DevnetStack
from anvil.traffic import Traffic, run_traffic
from chain.types import SignedTx
from execution.relay import RelayClient, RelayError, mev_bundle
from simulation.simulator import SimLog
from watcher.events import MevShareHint
from watcher.mevshare import MevShareSource

pytestmark = pytest.mark.timeout(90)

GET_RESERVES = "0x0902f1ac"
TIPPER = "0x00000000000000000000000000000000000071b0"
TIPPER_CODE = "0x5f5f5f5f34415af100"  # forwards msg.value to block.coinbase
REVERTER = "0x000000000000000000000000000000000000dead"
REVERTER_CODE = "0x5f5ffd"  # always reverts
BACKRUN_BID = 10**16
CURVE = bytes.fromhex("8b3e96f2b889fa771c53c981b40daf005f63f637f1869f707052d15a3dd97140")
BALANCER = bytes.fromhex("2170c741c41531aec20e7c107c24eecfdd15e69c9bb0a8dd37b1840b9e0b207b")


# --- the node's rules, ported from mev-share-node's tests ------------------------------------------


@pytest.mark.parametrize(
    ("top", "bottom", "merged"),
    [
        ((1, 2), (1, 2), (1, 2)),  # same intervals
        ((1, 3), (2, 4), (2, 3)),  # overlap, top to the right
        ((2, 4), (1, 3), (2, 3)),  # overlap, top to the left
        ((1, 4), (2, 3), (2, 3)),  # bottom inside top
        ((2, 3), (1, 4), (2, 3)),  # top inside bottom
        ((1, 2), (3, 4), None),  # no overlap, top to the right
        ((3, 4), (1, 2), None),  # no overlap, top to the left
    ],
)
def test_inclusion_ranges_merge_as_the_node_merges_them(
    top: tuple[int, int], bottom: tuple[int, int], merged: tuple[int, int] | None
) -> None:
    if merged is None:
        with pytest.raises(RpcError, match="invalid inclusion"):
            merge_inclusion(top, bottom)
    else:
        assert merge_inclusion(top, bottom) == merged


def _log(*topics: bytes) -> SimLog:
    return SimLog("0x" + "11" * 20, topics, b"anydata")


SENDER = bytes.fromhex("00" * 12 + "ef1c6e67703c7bd7107eed8303fbe6ec2554bf6b")
RECIPIENT = bytes.fromhex("00" * 12 + "b24db79c7cdb9d957fd943e48fec38047623c7b7")
POOL_ID = bytes.fromhex("831261f44931b7da8ba0dcc547223c60bb75b47f000200000000000000000460")
ZERO = bytes(32)


@pytest.mark.parametrize(
    ("given", "shared"),
    [
        (_log(UNISWAP_V2_SWAP, SENDER, RECIPIENT), (UNISWAP_V2_SWAP, ZERO, ZERO)),
        (_log(UNISWAP_V3_SWAP, SENDER, RECIPIENT), (UNISWAP_V3_SWAP, ZERO, ZERO)),
        (_log(CURVE, SENDER), (CURVE, ZERO)),
        (_log(BALANCER, POOL_ID, SENDER, RECIPIENT), (BALANCER, POOL_ID, ZERO, ZERO)),
        (_log(b"\xbb" * 32), None),  # random event
        (_log(BALANCER), None),  # broken balancer event
        (_log(UNISWAP_V3_SWAP), (UNISWAP_V3_SWAP,)),  # broken uni3 event
    ],
)
def test_default_logs_share_only_which_pool_swapped(
    given: SimLog, shared: tuple[bytes, ...] | None
) -> None:
    out = default_logs([given])
    if shared is None:
        assert out == []
    else:
        assert out == [SimLog(given.address, shared, b"")]


def test_calldata_hint_implies_selector_and_target() -> None:
    tx = SignedTx(b"", "0x" + "ab" * 32, "0x" + "01" * 20, 0)
    to, data = "0x" + "02" * 20, bytes.fromhex("38ed1739") + b"\x01" * 32
    assert tx_hint(tx, to, data, frozenset({"hash"})) == {}
    assert tx_hint(tx, to, data, frozenset({"hash", "function_selector"})) == {
        "to": to,
        "functionSelector": "0x38ed1739",
    }
    assert tx_hint(tx, to, data, frozenset({"hash", "calldata", "tx_hash"})) == {
        "hash": tx.hash,
        "to": to,
        "functionSelector": "0x38ed1739",
        "callData": "0x" + data.hex(),
    }


# --- end to end on the devnet -----------------------------------------------------------------


@contextlib.asynccontextmanager
async def hint_stream(url: str) -> AsyncIterator[asyncio.Queue[MevShareHint]]:
    """Our SSE client on the node's stream, hints into a queue."""
    hints: asyncio.Queue[MevShareHint] = asyncio.Queue()

    async def emit(hint: object) -> None:
        assert isinstance(hint, MevShareHint)
        await hints.put(hint)

    source = MevShareSource(url, name="devnet-mevshare")
    task = asyncio.create_task(source.run(emit))
    try:
        for _ in range(200):
            if source.stats.connected:
                break
            await asyncio.sleep(0.02)
        yield hints
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _user_swap(stack: DevnetStack, traffic: Traffic) -> SignedTx:
    pairs = stack.world.pool_addresses()
    answers = await stack.rpc.batch(
        [("eth_call", [{"to": pair, "data": GET_RESERVES}, "latest"]) for pair in pairs]
    )
    reserves = {
        pair: (int(answer[2:66], 16), int(answer[66:130], 16))
        for pair, answer in zip(pairs, answers, strict=True)
    }
    head = await stack.rpc.call("eth_getBlockByNumber", ["latest", False])
    signed, _ = traffic.swap(reserves, int(head["baseFeePerGas"], 16))
    return signed


async def _tip_tx(
    stack: DevnetStack, value: int, role: str = "searcher", to: str = TIPPER
) -> SignedTx:
    account = Account.from_key(stack.world.roles[role].private_key)
    nonce = int(await stack.rpc.call("eth_getTransactionCount", [account.address, "latest"]), 16)
    head = await stack.rpc.call("eth_getBlockByNumber", ["latest", False])
    fee = int(head["baseFeePerGas"], 16)
    signed = account.sign_transaction(
        {
            "type": 2,
            "chainId": 31337,
            "nonce": nonce,
            "to": to_checksum_address(to),
            "value": value,
            "gas": 60_000,
            "maxFeePerGas": 3 * fee + 10**9,
            "maxPriorityFeePerGas": 10**9,
        }
    )
    return SignedTx(
        bytes(signed.raw_transaction), "0x" + signed.hash.hex(), account.address.lower(), nonce
    )


async def _balance(stack: DevnetStack, address: str, block: int) -> int:
    return int(await stack.rpc.call("eth_getBalance", [address, hex(block)]), 16)


@dataclass
class Net:
    stack: DevnetStack
    node: RelayClient  # the searcher's client of the MEV-Share node
    hints: asyncio.Queue[MevShareHint]
    traffic: Traffic


@pytest.fixture
async def net(devnet_cache: Path) -> AsyncIterator[Net]:
    async with (
        DevnetStack(block_time=None, state_dir=devnet_cache) as stack,
        aiohttp.ClientSession() as session,
        hint_stream(stack.matchmaker_url) as hints,
    ):
        await stack.rpc.batch(
            [("anvil_setCode", [TIPPER, TIPPER_CODE]), ("anvil_setCode", [REVERTER, REVERTER_CODE])]
        )
        searcher = Account.from_key(stack.world.roles["searcher"].private_key)
        node = RelayClient(stack.matchmaker_url, searcher, session=session, timeout=10.0)
        traffic = Traffic(stack.world, seed=11)
        await traffic.sync_nonces(stack.rpc)
        yield Net(stack, node, hints, traffic)


async def test_private_swap_is_backrun_in_its_block_and_the_user_refunded(net: Net) -> None:
    stack, node, hints, traffic = net.stack, net.node, net.hints, net.traffic
    user_tx = await _user_swap(stack, traffic)
    answer = await node.request(
        "eth_sendPrivateTransaction",
        [{"tx": user_tx.raw_hex, "preferences": {"privacy": {"hints": ["logs", "calldata"]}}}],
    )
    assert answer == user_tx.hash
    hint = await asyncio.wait_for(hints.get(), 10)
    assert hint.hash == "0x" + keccak(bytes.fromhex(user_tx.hash[2:])).hex()
    assert hint.logs  # the swap's own logs, shared with the "logs" hint
    assert hint.txs[0].call_data is not None and hint.txs[0].hash is None
    # Private: the public pool never sees it.
    assert await stack.rpc.call("eth_getTransactionByHash", [user_tx.hash]) is None

    head = int(await stack.rpc.call("eth_blockNumber"), 16)
    backrun = await _tip_tx(stack, BACKRUN_BID)
    receipt = await node.send_mev_bundle(mev_bundle(head + 1, [hint.hash, backrun]))
    assert receipt.bundle_hash

    report = await stack.builder.build_block()
    block = await stack.rpc.call("eth_getBlockByNumber", [hex(report.number), False])
    txs = [h.lower() for h in block["transactions"]]
    at = txs.index(user_tx.hash)
    assert txs[at + 1] == backrun.hash  # right behind the user's swap, same block

    matched = stack.matchmaker.matched
    assert [m.backrun_hash for m in matched] == [backrun.hash]
    # The backrun's coinbase payment is its bid plus its priority fee.
    assert matched[0].payment > BACKRUN_BID
    # The builder pays 90% of it, less the payout's 30,000 gas at the base fee, in this block,
    # by a transfer from its fee recipient right behind the backrun.
    expected = matched[0].payment * 90 // 100 - PAYOUT_GAS * int(block["baseFeePerGas"], 16)
    assert matched[0].refund == expected
    payout = await stack.rpc.call("eth_getTransactionByHash", [txs[at + 2]])
    assert (payout["from"].lower(), payout["to"].lower()) == (
        stack.builder.coinbase,
        user_tx.sender,
    )
    assert int(payout["value"], 16) == expected and matched[0].refund_tx == txs[at + 2]

    # Measured on chain in that block: the user's balance grew by the refund less its swap's fee.
    receipt = await stack.rpc.call("eth_getTransactionReceipt", [user_tx.hash])
    fee = int(receipt["gasUsed"], 16) * int(receipt["effectiveGasPrice"], 16)
    before = await _balance(stack, user_tx.sender, report.number - 1)
    assert await _balance(stack, user_tx.sender, report.number) - before == expected - fee
    assert stack.matchmaker.stats().backruns_landed == 1
    assert stack.matchmaker.stats().refunds_wei == expected


async def test_a_backrun_of_an_unknown_order_is_refused_and_a_lone_order_lands(
    net: Net,
) -> None:
    stack, node, hints, traffic = net.stack, net.node, net.hints, net.traffic
    head = int(await stack.rpc.call("eth_blockNumber"), 16)
    backrun = await _tip_tx(stack, BACKRUN_BID)
    with pytest.raises(RelayError, match="backrun target not found"):
        await node.send_mev_bundle(mev_bundle(head + 1, ["0x" + "42" * 32, backrun]))

    # Full privacy: the hash hint alone shares no logs and no tx fields.
    user_tx = await _user_swap(stack, traffic)
    await node.request(
        "eth_sendPrivateTransaction",
        [{"tx": user_tx.raw_hex, "preferences": {"privacy": {"hints": ["hash"]}}}],
    )
    hint = await asyncio.wait_for(hints.get(), 10)
    assert hint.logs is None and hint.txs == ()

    # Unbacked, the private tx still lands on its own in the next block.
    report = await stack.builder.build_block()
    block = await stack.rpc.call("eth_getBlockByNumber", [hex(report.number), False])
    assert user_tx.hash in [h.lower() for h in block["transactions"]]
    assert stack.matchmaker.stats().landed == 1


async def test_traffic_sends_its_private_share_to_the_node_and_it_lands(
    devnet_cache: Path,
) -> None:
    async with DevnetStack(block_time=0.5, state_dir=devnet_cache) as stack:
        sent = await run_traffic(
            stack.world,
            stack.rpc,
            seconds=2.0,
            swaps_per_s=3.0,
            seed=5,
            resend_after=0,
            private_share=1.0,
            mevshare_url=stack.matchmaker_url,
        )
        assert sent.swaps and sent.private == sent.swaps
        receipts: list[object] = []
        for _ in range(100):
            receipts = await stack.rpc.batch(
                [("eth_getTransactionReceipt", [tx_hash]) for tx_hash in sent.private]
            )
            if all(isinstance(r, dict) for r in receipts):
                break
            await asyncio.sleep(0.1)
        assert all(isinstance(r, dict) and r["status"] == "0x1" for r in receipts)
        stats = stack.matchmaker.stats()
        assert stats.orders >= 1 and stats.expired == 0


async def test_the_client_ts_request_shapes_are_served(net: Net) -> None:
    """mev-share-client-ts's mungers: sendPrivateTransaction with ``fast``, a hex
    ``maxBlockNumber`` and ``builders``; mev_simBundle with hex simOptions."""
    stack, node = net.stack, net.node
    head = int(await stack.rpc.call("eth_blockNumber"), 16)
    user_tx = await _user_swap(stack, net.traffic)
    answer = await node.request(
        "eth_sendPrivateTransaction",
        [
            {
                "tx": user_tx.raw_hex,
                "maxBlockNumber": hex(head + 3),
                "preferences": {
                    "fast": True,
                    "privacy": {"hints": ["contract_address", "function_selector", "hash"]},
                    "builders": ["flashbots"],
                },
            }
        ],
    )
    assert answer == user_tx.hash
    hint = await asyncio.wait_for(net.hints.get(), 10)
    assert hint.txs[0].function_selector is not None and hint.txs[0].call_data is None

    tip = await _tip_tx(stack, BACKRUN_BID)
    sim = await node.sim_mev_bundle(
        mev_bundle(head + 1, [tip]), {"parentBlock": hex(head), "blockNumber": hex(head + 1)}
    )
    assert sim.success and sim.state_block == head and sim.gas_used > 21_000
    # What the coinbase got: the transfer plus the priority fee on the gas used.
    assert sim.profit == sim.refundable_value == BACKRUN_BID + 10**9 * sim.gas_used
    assert sim.mev_gas_price == sim.profit // sim.gas_used
    with pytest.raises(RelayError, match="invalid inclusion"):
        await node.sim_mev_bundle(mev_bundle(head + 1, [tip]), {"blockNumber": hex(head + 2)})


async def test_the_best_backrun_wins_and_a_reverting_one_is_refused(net: Net) -> None:
    stack, node = net.stack, net.node
    user_tx = await _user_swap(stack, net.traffic)
    await node.request("eth_sendPrivateTransaction", [{"tx": user_tx.raw_hex}])
    hint = await asyncio.wait_for(net.hints.get(), 10)
    # Protect's default hints: the hash and the swap's pool, nothing else.
    assert hint.txs == () and hint.logs and all(not log.data for log in hint.logs)
    head = int(await stack.rpc.call("eth_blockNumber"), 16)

    reverting = await _tip_tx(stack, 0, role="keeper", to=REVERTER)
    with pytest.raises(RelayError, match="backrun simulation failed"):
        await node.send_mev_bundle(mev_bundle(head + 1, [hint.hash, reverting]))
    low = await _tip_tx(stack, BACKRUN_BID, role="searcher")
    high = await _tip_tx(stack, 2 * BACKRUN_BID, role="executor")
    await node.send_mev_bundle(mev_bundle(head + 1, [hint.hash, low], max_block=head + 3))
    await node.send_mev_bundle(mev_bundle(head + 1, [hint.hash, high]))

    report = await stack.builder.build_block()
    block = await stack.rpc.call("eth_getBlockByNumber", [hex(report.number), False])
    txs = [h.lower() for h in block["transactions"]]
    assert txs[txs.index(user_tx.hash) + 1] == high.hash and low.hash not in txs
    (matched,) = stack.matchmaker.matched
    base_fee = int(block["baseFeePerGas"], 16)
    assert matched.backrun_hash == high.hash
    assert matched.refund == matched.payment * 90 // 100 - PAYOUT_GAS * base_fee
    stats = stack.matchmaker.stats()
    assert (stats.backruns, stats.backruns_refused, stats.backruns_landed) == (2, 1, 1)
    # The order is settled: a late backrun of it finds nothing to backrun.
    with pytest.raises(RelayError, match="backrun target not found"):
        await node.send_mev_bundle(mev_bundle(report.number + 1, [hint.hash, low]))
