"""The warm forks (anvil's process and revm's cache): new heads written from the upstream's diff
traces, checked, forked again on drift."""

from __future__ import annotations

from typing import Any

import pytest
from eth_account import Account
from eth_utils import to_checksum_address
from test_fork_simulator import (
    arbitrage_call,
    signed_swap,
    tokens,
    wait_receipt,
    watched,
)

from anvil.world import World
from chain.abi import load_artifact
from chain.rpc import Rpc, eth_get_transaction_count, eth_send_raw_transaction
from simulation.block_diff import BlockChanges, StateKey, block_changes
from simulation.fork import AnvilForkSimulator
from simulation.node_sim import NodeSimulator
from simulation.revm_backend import RevmSimulator
from simulation.simulator import SimCall
from simulation.uniswap_v2 import PAIR

ERC20 = load_artifact("ERC20Token").abi
PAIR_RESERVES_SLOT = 8  # UniswapV2Pair: reserve0, reserve1, blockTimestampLast packed in slot 8
A, B = "0x" + "aa" * 20, "0x" + "bb" * 20
# The default (0.25 s) resets a fork whose upstream traces too slowly; a loaded test machine must
# not turn that into a different path here.
WARM_TIMEOUT_S = 30.0
FORKS = {"anvil": AnvilForkSimulator, "revm": RevmSimulator}
forks = pytest.mark.parametrize("fork", sorted(FORKS))
EMPTIED = {"anvil": 2, "revm": 3}


def _open(fork: str, world: World, **options: Any) -> AnvilForkSimulator | RevmSimulator:
    return FORKS[fork](world.rpc["http"], **options)


# -- folding diff traces ----------------------------------------------------------------------
def test_post_values_win_in_block_order_and_open_pieces_are_re_read() -> None:
    traces = [
        {  # tx 1: A's slot 1 set to 5, slot 2 cleared (left out of post), B pays gas
            "pre": {
                A: {"balance": "0x10", "storage": {"0x1": "0x" + "0" * 63 + "1", "0x2": "0x9"}},
                B: {"balance": "0x100", "nonce": 3},
            },
            "post": {A: {"storage": {"0x1": "0x5"}}, B: {"balance": "0xf0", "nonce": 4}},
        },
        {  # tx 2: slot 1 cleared again, slot 2 written; B deleted
            "pre": {A: {"storage": {"0x1": "0x5"}}, B: {"balance": "0xf0", "nonce": 4}},
            "post": {A: {"storage": {"0x2": "0x7"}}},
        },
    ]
    changes = block_changes(traces, withdrawals=["0x" + "cc" * 20])
    assert changes == BlockChanges(
        known={StateKey("storage", A, 2): 7},
        unsure=frozenset(
            {
                StateKey("storage", A, 1),
                StateKey("balance", B),
                StateKey("nonce", B),
                StateKey("code", B),
                StateKey("balance", "0x" + "cc" * 20),
            }
        ),
    )


def test_state_keys_read_and_write_through_the_node_methods() -> None:
    slot = StateKey("storage", A, 8)
    assert slot.read("0x5") == ("eth_getStorageAt", [A, f"0x{8:064x}", "0x5"])
    assert slot.write(3) == ("anvil_setStorageAt", [A, f"0x{8:064x}", f"0x{3:064x}"])
    assert StateKey("nonce", A).write(4) == ("anvil_setNonce", [A, "0x4"])
    assert StateKey("code", A).write(b"\x60") == ("anvil_setCode", [A, "0x60"])
    assert StateKey("code", A).parse("0x6001") == b"\x60\x01"


# -- on a devnet ------------------------------------------------------------------------------
async def _land_transfer_of_all(world: World, upstream: Rpc, trader: int, token: str) -> None:
    """The trader sends its whole balance of ``token`` away: a storage slot cleared to zero."""
    role = world.traders[trader]
    balance_of = ERC20.function("balanceOf")
    answer = await upstream.call(
        "eth_call", [{"to": token, "data": "0x" + balance_of.encode(role.address).hex()}, "latest"]
    )
    amount = int(answer, 16)
    assert amount > 0
    tx = {
        "type": 2,
        "chainId": world.chain_id,
        "nonce": await eth_get_transaction_count(upstream, role.address),
        "to": to_checksum_address(token),
        "data": ERC20.function("transfer").encode(world.traders[0].address, amount),
        "gas": 100_000,
        "maxFeePerGas": 100 * 10**9,
        "maxPriorityFeePerGas": 10**9,
        "value": 0,
    }
    raw = bytes(Account.sign_transaction(tx, role.private_key).raw_transaction)
    await wait_receipt(upstream, await eth_send_raw_transaction(upstream, raw))


@forks
async def test_a_warm_fork_moved_over_blocks_simulates_like_the_node(
    world: World, upstream: Rpc, fork: str
) -> None:
    warm = _open(fork, world, warm_timeout=WARM_TIMEOUT_S)
    node = NodeSimulator(world.rpc["ws"])
    await warm.start()
    await node.start()
    try:
        # The fork fetches the pools' state at its block...
        assert (await warm.simulate([await signed_swap(world, upstream, 1, 10**18)])).success
        # ...then the chain moves on without it: a swap on those pools, a balance emptied.
        swap = await signed_swap(world, upstream, 1, 10**18)
        await wait_receipt(upstream, await eth_send_raw_transaction(upstream, swap))
        emptied = EMPTIED[fork]  # the world is the module's: each run empties its own trader
        await _land_transfer_of_all(world, upstream, emptied, world.tokens["USDC"]["address"])
        head = int(await upstream.call("eth_blockNumber"), 16)
        await warm.on_new_head(head)
        await node.on_new_head(head)
        follower = warm.warm
        assert (follower.heads_warm, follower.heads_reset, follower.warm_unavailable) == (1, 1, "")
        assert follower.drift_checks == 1 and follower.drift_mismatches == 0
        bundle = [
            await signed_swap(world, upstream, 1, 10**18),
            arbitrage_call(world, 10**18, 10**14),
        ]
        expected = await node.simulate(bundle, watch=watched(world), tokens=tokens(world))
        got = await warm.simulate(bundle, watch=watched(world), tokens=tokens(world))
        assert got == expected
        assert got.success and got.block_number == head + 1
        usdc = world.tokens["USDC"]["address"]
        assert expected.balance_diffs[world.traders[emptied].address][usdc] == 0
    finally:
        await warm.close()
        await node.close()


@forks
async def test_a_change_no_trace_shows_is_caught_and_the_fork_reset(
    world: World, upstream: Rpc, fork: str
) -> None:
    pair = world.dexes["uniswap"]["pairs"]["WETH/DAI"]["address"]
    reserves = PAIR.function("getReserves").encode()
    warm = _open(fork, world, check_sample=2, warm_timeout=WARM_TIMEOUT_S)
    warm.warmup = [(pair, reserves)]
    await warm.start()
    slot = f"0x{PAIR_RESERVES_SLOT:064x}"
    original = await upstream.call("eth_getStorageAt", [pair, slot, "latest"])
    try:
        # Written straight into the upstream's state after the fork's block (anvil writes into
        # its latest block's state): no transaction, so no diff trace has it.
        await upstream.call("evm_mine")
        await upstream.call("anvil_setStorageAt", [pair, slot, "0x" + "00" * 31 + "01"])
        await upstream.call("evm_mine")
        head = int(await upstream.call("eth_blockNumber"), 16)
        await warm.on_new_head(head)
        assert (warm.warm.drift_checks, warm.warm.drift_mismatches) == (1, 1)
        assert warm.warm.heads_reset == 2 and warm.head.number == head
        read = SimCall(sender=world.traders[0].address, to=pair, data=reserves, gas=100_000)
        seen = (await warm.simulate([read])).txs[0].return_data
        answer = await upstream.call("eth_call", [{"to": pair, "data": "0x" + reserves.hex()}])
        assert seen == bytes.fromhex(answer[2:])
        assert int.from_bytes(seen[:32], "big") == 1  # the reserve written behind its back
    finally:
        await upstream.call("anvil_setStorageAt", [pair, slot, original])
        await upstream.call("evm_mine")
        await warm.close()


@forks
async def test_gaps_beyond_the_limit_and_cold_settings_reset_the_fork(
    world: World, upstream: Rpc, fork: str
) -> None:
    far = _open(fork, world, max_gap=1)
    cold = _open(fork, world, keep_warm=False)
    await far.start()
    await cold.start()
    try:
        for _ in range(2):
            await upstream.call("evm_mine")
        head = int(await upstream.call("eth_blockNumber"), 16)
        for sim in (far, cold):
            await sim.on_new_head(head)
            assert (sim.warm.heads_warm, sim.warm.heads_reset) == (0, 2)
            assert sim.head.number == head
    finally:
        await far.close()
        await cold.close()
