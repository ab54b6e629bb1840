"""The fork simulator: decoders, both anvil paths, the revm backend, supervision, on a real devnet."""

from __future__ import annotations

import asyncio
import time

import eth_abi
import pytest
from eth_account import Account
from eth_utils import to_checksum_address
from hypothesis import given, settings
from hypothesis import strategies as st

from anvil import artifacts
from anvil.world import World
from chain.aave_errors import CODES
from chain.abi import load_artifact
from chain.node import ANVIL_DEV_KEYS, AnvilProcess, free_port
from chain.rpc import Rpc, eth_get_transaction_count, eth_send_raw_transaction
from chain.types import BlockHeader, MalformedError
from simulation.actions import HopArbitrageAction, SwapHop
from simulation.backends import open_simulator
from simulation.fork import AnvilForkSimulator
from simulation.node_sim import NodeSimulator
from simulation.prepared import decode_signed, prepare, signed_here
from simulation.revm_backend import RevmSimulator
from simulation.simulator import (
    BlockEnv,
    SimCall,
    SimResult,
    SimulationError,
    decode_revert_reason,
    next_base_fee,
)

ROUTER = artifacts.load("UniswapV2Router02").abi
ERC20 = load_artifact("ERC20Token").abi


# -- pure parts -------------------------------------------------------------------------------
_KEY = ANVIL_DEV_KEYS[7]
_SENDER = Account.from_key(_KEY).address.lower()
_ENV = BlockEnv(
    number=2, timestamp=24, base_fee=10**9, coinbase="0x" + "c0" * 20, gas_limit=30_000_000
)
_addresses = st.binary(min_size=20, max_size=20).map(lambda b: to_checksum_address(b))
_fees = st.integers(min_value=0, max_value=10**12)


@settings(max_examples=60, deadline=None)
@given(
    kind=st.sampled_from([0, 1, 2]),
    nonce=st.integers(min_value=0, max_value=2**40),
    gas=st.integers(min_value=21_000, max_value=30_000_000),
    to=_addresses,
    value=st.integers(min_value=0, max_value=10**24),
    data=st.binary(max_size=200),
    fee=_fees,
    tip=_fees,
    chain_id=st.integers(min_value=1, max_value=2**32),
)
def test_signed_envelopes_decode_to_their_fields_and_signer(
    kind: int,
    nonce: int,
    gas: int,
    to: str,
    value: int,
    data: bytes,
    fee: int,
    tip: int,
    chain_id: int,
) -> None:
    tx: dict[str, object] = {"nonce": nonce, "gas": gas, "to": to, "value": value, "data": data}
    tx["chainId"] = chain_id
    if kind == 2:
        tx.update(type=2, maxFeePerGas=fee + tip, maxPriorityFeePerGas=tip)
    else:
        tx.update(gasPrice=fee)
        if kind == 1:
            tx.update(
                type=1, accessList=[{"address": to, "storageKeys": ["0x" + "00" * 31 + "07"]}]
            )
    raw = bytes(Account.sign_transaction(tx, _KEY).raw_transaction)
    decoded = decode_signed(raw)
    assert decoded.sender == _SENDER
    assert (decoded.nonce, decoded.gas, decoded.to, decoded.value, decoded.data) == (
        nonce,
        gas,
        to.lower(),
        value,
        data,
    )
    assert decoded.chain_id == chain_id and decoded.tx_type == kind
    assert (decoded.max_fee, decoded.priority_fee) == (
        (fee + tip, tip) if kind == 2 else (fee, fee)
    )
    if kind == 1:
        assert decoded.access_list == ((to.lower(), (7,)),)
    # Noted as signed here, the simulator prepares the same tx without recovering its sender.
    signed_here(raw, _SENDER.upper().replace("0X", "0x"))
    assert prepare([raw], _ENV) == (decoded,)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_garbage_envelopes_raise_malformed_error_only(raw: bytes) -> None:
    try:
        decode_signed(raw)
    except MalformedError as error:
        assert error.reason.startswith("signed tx")


@given(st.text(max_size=100).filter(lambda text: text not in CODES))
def test_error_string_reasons_decode(text: str) -> None:
    """Any text but an Aave code ("1".."100", named in test_aave_errors) reads as itself."""
    data = bytes.fromhex("08c379a0") + eth_abi.encode(["string"], [text])
    assert decode_revert_reason(data) == text


def test_panic_and_unknown_reasons_decode() -> None:
    panic = bytes.fromhex("4e487b71") + eth_abi.encode(["uint256"], [0x11])
    assert decode_revert_reason(panic) == "Panic(0x11): arithmetic overflow or underflow"
    assert decode_revert_reason(bytes.fromhex("deadbeef")) == "0xdeadbeef"


def _header(gas_used: int, base_fee: int = 1_000_000_000) -> BlockHeader:
    return BlockHeader(
        1, "0x" + "11" * 32, "0x" + "22" * 32, 0, base_fee, 30_000_000, gas_used, _SENDER
    )


def test_next_base_fee_follows_eip_1559() -> None:
    assert next_base_fee(_header(15_000_000)) == 1_000_000_000
    assert next_base_fee(_header(30_000_000)) == 1_125_000_000
    assert next_base_fee(_header(0)) == 875_000_000


# -- devnet -------------------------------------------------------------------------------------
async def signed_swap(
    world: World, upstream: Rpc, trader: int, amount: int, nonce_offset: int = 0
) -> bytes:
    """A trader's signed router swap of ``amount`` WETH for USDC on the uniswap pool."""
    role = world.traders[trader]
    nonce = await eth_get_transaction_count(upstream, role.address) + nonce_offset
    data = ROUTER.function("swapExactTokensForTokens").encode(
        amount,
        0,
        [world.tokens["WETH"]["address"], world.tokens["USDC"]["address"]],
        role.address,
        2**40,
    )
    tx = {
        "type": 2,
        "chainId": world.chain_id,
        "nonce": nonce,
        "to": to_checksum_address(world.dexes["uniswap"]["router"]),
        "data": data,
        "gas": 300_000,
        "maxFeePerGas": 100 * 10**9,
        "maxPriorityFeePerGas": 2 * 10**9,
        "value": 0,
    }
    return bytes(Account.sign_transaction(tx, role.private_key).raw_transaction)


def arbitrage_call(
    world: World, amount_in: int, coinbase_wei: int, sender: str | None = None
) -> SimCall:
    weth = world.tokens["WETH"]["address"]
    sushi, uni = (world.dexes[d]["pairs"]["WETH/USDC"] for d in ("sushiswap", "uniswap"))
    # WETH -> USDC on sushiswap, USDC -> WETH on uniswap, from the executor's inventory.
    hops = (
        SwapHop(sushi["address"], "uniswap-v2", sushi["token0"] == weth),
        SwapHop(uni["address"], "uniswap-v2", uni["token0"] != weth),
    )
    data = HopArbitrageAction(hops, weth, amount_in, flash=False).calldata(0, coinbase_wei)
    return SimCall(
        sender=sender or world.roles["executor"].address,
        to=world.executor,
        data=data,
        gas=400_000,
        max_fee_per_gas=100 * 10**9,
        max_priority_fee_per_gas=10**9,
    )


def tokens(world: World) -> list[str]:
    return [world.tokens["WETH"]["address"], world.tokens["USDC"]["address"]]


def watched(world: World) -> list[str]:
    return [t.address for t in world.traders] + [world.executor, world.roles["executor"].address]


async def test_predicted_swap_equals_what_the_chain_does(world: World, upstream: Rpc) -> None:
    sim = AnvilForkSimulator(world.rpc["http"])
    await sim.start()
    try:
        raw = await signed_swap(world, upstream, 0, 2 * 10**18)
        trader = world.traders[0].address
        predicted = await sim.simulate([raw], watch=[trader], tokens=tokens(world))
    finally:
        await sim.close()
    usdc = world.tokens["USDC"]["address"]
    balance_of = ERC20.function("balanceOf")

    async def usdc_balance() -> int:
        result = await upstream.call(
            "eth_call", [{"to": usdc, "data": "0x" + balance_of.encode(trader).hex()}, "latest"]
        )
        return balance_of.decode_output(bytes.fromhex(result[2:]))[0]

    before = await usdc_balance()
    # The pair's price accumulators are written only when time has passed since the last swap:
    # the chain's block must have the simulated block's timestamp for the gas to match.
    await upstream.call("evm_setNextBlockTimestamp", [predicted.block_timestamp])
    receipt = await wait_receipt(upstream, await eth_send_raw_transaction(upstream, raw))
    after = await usdc_balance()
    assert predicted.txs[0].success and int(receipt["status"], 16) == 1
    assert predicted.balance_diffs[trader][usdc] == after - before > 0
    assert predicted.balance_diffs[trader][world.tokens["WETH"]["address"]] == -2 * 10**18
    assert predicted.txs[0].gas_used == int(receipt["gasUsed"], 16)
    block = await upstream.call("eth_getBlockByNumber", [receipt["blockNumber"], False])
    assert int(block["number"], 16) == predicted.block_number


async def wait_receipt(rpc: Rpc, tx_hash: str) -> dict[str, str]:
    """The receipt once the automining devnet has mined the tx (it mines asynchronously)."""
    for _ in range(250):
        receipt = await rpc.call("eth_getTransactionReceipt", [tx_hash])
        if receipt is not None:
            return receipt
        await asyncio.sleep(0.02)
    raise AssertionError(f"{tx_hash} was not mined within 5 s")


def _same_outcomes(anvil: SimResult, revm: SimResult) -> None:
    assert [t.success for t in anvil.txs] == [t.success for t in revm.txs]
    assert [t.gas_used for t in anvil.txs] == [t.gas_used for t in revm.txs]
    assert [t.revert_reason for t in anvil.txs] == [t.revert_reason for t in revm.txs]
    assert [t.logs for t in anvil.txs] == [t.logs for t in revm.txs]
    assert anvil.balance_diffs == revm.balance_diffs
    assert anvil.coinbase_payment == revm.coinbase_payment


async def test_backends_agree_on_devnet_bundles(world: World, upstream: Rpc) -> None:
    anvil = open_simulator("anvil", world.rpc["http"])
    revm = open_simulator("revm", world.rpc["http"])
    node = open_simulator("node", world.rpc["ws"])
    await anvil.start()
    await revm.start()
    await node.start()
    try:
        victim = await signed_swap(world, upstream, 1, 10**18)
        transfer = SimCall(
            sender=world.traders[2].address,
            to=world.traders[0].address,
            value=10**18,
            gas=21_000,
            max_fee_per_gas=10 * 10**9,
            max_priority_fee_per_gas=10**8,
        )
        not_owner = arbitrage_call(world, 10**18, 0, sender=world.traders[2].address)
        single = {
            "victim swap": [victim],
            "executor arbitrage": [arbitrage_call(world, 10**18, 10**14)],
            "reverting call": [not_owner],
            "ETH transfer": [transfer],
        }
        for name, bundle in single.items():
            a = await anvil.simulate(bundle, watch=watched(world), tokens=tokens(world))
            r = await revm.simulate(bundle, watch=watched(world), tokens=tokens(world))
            n = await node.simulate(bundle, watch=watched(world), tokens=tokens(world))
            _same_outcomes(a, r)
            _same_outcomes(a, n)
            assert a.block_number == r.block_number == n.block_number, name
        assert (await anvil.simulate([not_owner])).txs[0].revert_reason == "executor: not owner"
        backrun = [victim, arbitrage_call(world, 10**18, 10**14)]
        a = await anvil.simulate(backrun, watch=watched(world), tokens=tokens(world))
        r = await revm.simulate(backrun, watch=watched(world), tokens=tokens(world))
        _same_outcomes(a, await node.simulate(backrun, watch=watched(world), tokens=tokens(world)))
        # The backrun re-touches the victim's pool: its gas is exact only if revm ends the
        # victim's transaction first (revm_backend).
        _same_outcomes(a, r)
        assert [t.success for t in r.txs] == [True, True]
        assert a.coinbase_payment > 10**14  # the tip in ETH plus the priority fees
    finally:
        await anvil.close()
        await revm.close()
        await node.close()


async def test_snapshot_fallback_gives_the_simulate_v1_result(world: World, upstream: Rpc) -> None:
    v1 = AnvilForkSimulator(world.rpc["http"], method="simulate_v1")
    mined = AnvilForkSimulator(world.rpc["http"], method="snapshot")
    await v1.start()
    await mined.start()
    try:
        bundle = [
            await signed_swap(world, upstream, 1, 10**18),
            arbitrage_call(world, 10**18, 10**14),
        ]
        expected = await v1.simulate(bundle, watch=watched(world), tokens=tokens(world))
        assert await mined.simulate(bundle, watch=watched(world), tokens=tokens(world)) == expected
        # The same bundle again: the snapshot was reverted, nothing stayed on the fork.
        assert await mined.simulate(bundle, watch=watched(world), tokens=tokens(world)) == expected
        # anvil's race: the victim is already in the fork's pool when the bundle sends it.
        assert mined._rpc is not None
        await mined._rpc.call("eth_sendRawTransaction", ["0x" + bundle[0].hex()])
        assert await mined.simulate(bundle, watch=watched(world), tokens=tokens(world)) == expected
        assert mined.snapshot_runner.races_recovered == 1
    finally:
        await v1.close()
        await mined.close()


async def test_killed_fork_process_is_restarted_transparently(world: World, upstream: Rpc) -> None:
    sim = AnvilForkSimulator(world.rpc["http"])
    await sim.start()
    try:
        bundle = [await signed_swap(world, upstream, 2, 10**17)]
        expected = await sim.simulate(bundle, watch=watched(world), tokens=tokens(world))
        assert sim.node is not None
        first_pid = sim.node.process.pid if sim.node.process else None
        sim.node.kill()
        assert await sim.simulate(bundle, watch=watched(world), tokens=tokens(world)) == expected
        assert sim.restarts == 1
        assert sim.node.process is not None and sim.node.process.pid != first_pid
    finally:
        await sim.close()


async def test_forks_follow_new_heads(world: World, upstream: Rpc) -> None:
    anvil = AnvilForkSimulator(world.rpc["http"])
    revm = RevmSimulator(world.rpc["http"])
    node = NodeSimulator(world.rpc["ws"])
    await anvil.start()
    await revm.start()
    await node.start()
    try:
        raw = await signed_swap(world, upstream, 2, 10**17)
        for sim in (anvil, revm, node):
            assert (await sim.simulate([raw])).success
        await wait_receipt(upstream, await eth_send_raw_transaction(upstream, raw))
        head = int(await upstream.call("eth_blockNumber"), 16)
        for sim in (anvil, revm, node):
            started = time.perf_counter()
            await sim.on_new_head(head)
            assert time.perf_counter() - started < 5
            assert sim.head.number == head
            with pytest.raises(SimulationError, match="nonce"):
                await sim.simulate([raw])  # it landed: its nonce is used on the new head
    finally:
        await anvil.close()
        await revm.close()
        await node.close()


async def test_invalid_victims_raise_simulation_errors(world: World, upstream: Rpc) -> None:
    anvil = AnvilForkSimulator(world.rpc["http"])
    revm = RevmSimulator(world.rpc["http"])
    node = NodeSimulator(world.rpc["ws"])
    await anvil.start()
    await revm.start()
    await node.start()
    try:
        future_nonce = await signed_swap(world, upstream, 0, 10**17, nonce_offset=5)
        for sim in (anvil, revm, node):
            with pytest.raises(SimulationError, match="nonce"):
                await sim.simulate([future_nonce])
            with pytest.raises(SimulationError, match="tx 0"):
                await sim.simulate([b"\x02garbage"])
    finally:
        await anvil.close()
        await revm.close()
        await node.close()


async def test_a_sender_nonce_known_for_the_head_refuses_later_txs_without_the_node(
    anvil: AnvilProcess,
) -> None:
    # A burst of one sender's txs, each waiting for the one before: once the node has told the
    # sender's nonce at this head, the rest are refused without asking it again.
    sender = Account.from_key(ANVIL_DEV_KEYS[1])

    def transfer(nonce: int) -> bytes:
        fields = {
            "type": 2,
            "chainId": 31337,
            "nonce": nonce,
            "to": to_checksum_address("0x" + "11" * 20),
            "value": 1,
            "gas": 21_000,
            "maxFeePerGas": 10**11,
            "maxPriorityFeePerGas": 10**9,
        }
        return bytes(sender.sign_transaction(fields).raw_transaction)

    sim = NodeSimulator(anvil.ws_url, call_timeout=2.0)
    await sim.start()
    try:
        assert (await sim.simulate([transfer(0)])).success
        with pytest.raises(SimulationError, match="nonce 1, the sender's next is 0"):
            await sim.simulate([transfer(1)])
        anvil.stop()
        with pytest.raises(SimulationError, match="nonce 2, the sender's next is 0"):
            await sim.simulate([transfer(2)])
    finally:
        await sim.close()


async def test_unreachable_upstream_fails_fast_with_a_reason() -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    sims = (
        AnvilForkSimulator(dead, call_timeout=1.0),
        RevmSimulator(dead, call_timeout=1.0),
        NodeSimulator(dead, call_timeout=1.0),
    )
    for sim in sims:
        started = time.perf_counter()
        with pytest.raises(SimulationError, match="unreachable"):
            await sim.start()
        assert time.perf_counter() - started < 5
        with pytest.raises(SimulationError, match="not started"):
            await sim.simulate([])
