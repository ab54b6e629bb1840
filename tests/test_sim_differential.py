"""Differential: every bundle shape the strategies emit, simulated on anvil (the warm fork), on the
node (eth_simulateV1 at the head) and in pyrevm, on one fresh devnet that no test here changes.

All three must agree on everything: success, logs, every token and ETH diff, the coinbase
payment, and the gas of every tx, also a later tx that re-touches what an earlier tx of the
bundle touched (pyrevm keeps such state warm unless each tx is settled into the cache on its
own, simulation.revm_backend).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

import pytest
from devnet_txs import feed_update
from eth_account import Account
from eth_utils import to_checksum_address

from anvil import artifacts
from anvil.traffic import Traffic
from anvil.world import World
from chain.abi import load_artifact
from chain.rpc import Rpc, eth_get_transaction_count
from simulation.actions import HopArbitrageAction, LiquidationAction, SwapHop
from simulation.backends import open_simulator
from simulation.revm_backend import RevmSimulator
from simulation.simulator import SimCall, SimResult, Simulator

SWAP = artifacts.load("UniswapV2Router02").abi.function("swapExactTokensForTokens")
EXECUTOR = load_artifact("Executor").abi
TIP = 10**9


@pytest.fixture(scope="module")
async def sims(world: World) -> AsyncIterator[dict[str, Simulator]]:
    opened = {
        "anvil": open_simulator("anvil", world.rpc["http"]),
        "node": open_simulator("node", world.rpc["ws"]),
        "revm": open_simulator("revm", world.rpc["http"]),
    }
    for sim in opened.values():
        await sim.start()
    yield opened
    for sim in opened.values():
        await sim.close()


def _holders(world: World) -> list[str]:
    borrower = world.aave["borrowers"][0]["address"]
    traders = [t.address for t in world.traders]
    return [*traders, world.executor, world.roles["executor"].address, borrower]


def _tokens(world: World) -> list[str]:
    return [world.tokens[s]["address"] for s in ("WETH", "USDC", "DAI")]


def _pair(world: World, dex: str, name: str) -> str:
    return world.dexes[dex]["pairs"][name]["address"]


async def _victim(
    world: World, upstream: Rpc, trader: int, pair: str, amount: int = 10**18
) -> bytes:
    """Trader ``trader`` sells ``amount`` WETH on uniswap's ``pair`` (WETH/USDC or WETH/DAI)."""
    role = world.traders[trader]
    path = [world.tokens[symbol]["address"] for symbol in pair.split("/")]
    tx = {
        "type": 2,
        "chainId": world.chain_id,
        "nonce": await eth_get_transaction_count(upstream, role.address),
        "to": to_checksum_address(world.dexes["uniswap"]["router"]),
        "data": SWAP.encode(amount, 0, path, role.address, 2**40),
        "gas": 300_000,
        "maxFeePerGas": 100 * 10**9,
        "maxPriorityFeePerGas": 2 * 10**9,
        "value": 0,
    }
    return bytes(Account.sign_transaction(tx, role.private_key).raw_transaction)


def _executor_call(world: World, calldata: bytes, nonce: int | None = None) -> SimCall:
    return SimCall(
        sender=world.roles["executor"].address,
        to=world.executor,
        data=calldata,
        gas=1_000_000,
        max_fee_per_gas=100 * 10**9,
        max_priority_fee_per_gas=TIP,
        nonce=nonce,
    )


def _arbitrage(
    world: World,
    sell: tuple[dict, str],
    buy: tuple[dict, str],
    amount: int,
    *,
    flash: bool,
    nonce: int | None = None,
) -> SimCall:
    """The executor sells ``amount`` WETH on the ``sell`` pool and buys it back on ``buy``
    (each a world pool entry and its kind), paying the coinbase 1e13 wei."""
    weth = world.tokens["WETH"]["address"]
    (sold, sold_kind), (bought, bought_kind) = sell, buy
    hops = (
        SwapHop(sold["address"], sold_kind, sold["token0"] == weth),
        SwapHop(bought["address"], bought_kind, bought["token0"] != weth),
    )
    action = HopArbitrageAction(hops, weth, amount, flash=flash)
    return _executor_call(world, action.calldata(0, 10**13), nonce)


def _backrun(world: World, pair: str, nonce: int | None = None) -> SimCall:
    """Sell WETH on sushiswap's pool of ``pair``, buy it back on uniswap's, where victims sell."""
    sell, buy = (world.dexes[dex]["pairs"][pair] for dex in ("sushiswap", "uniswap"))
    return _arbitrage(
        world, (sell, "uniswap-v2"), (buy, "uniswap-v2"), 10**17, flash=False, nonce=nonce
    )


async def _check(
    world: World,
    sims: dict[str, Simulator],
    bundle: Sequence[bytes | SimCall],
) -> SimResult:
    results = {
        name: await sim.simulate(bundle, watch=_holders(world), tokens=_tokens(world))
        for name, sim in sims.items()
    }
    anvil, node, revm = results["anvil"], results["node"], results["revm"]
    assert anvil.success, [tx.revert_reason for tx in anvil.txs]
    assert [tx.gas_used for tx in revm.txs] == [tx.gas_used for tx in anvil.txs]
    assert anvil == node == revm
    return anvil


async def test_v2_backrun(world: World, upstream: Rpc, sims: dict[str, Simulator]) -> None:
    victim = await _victim(world, upstream, 1, "WETH/USDC")
    await _check(world, sims, [victim, _backrun(world, "WETH/USDC")])


async def test_block_arbitrage(world: World, sims: dict[str, Simulator]) -> None:
    # The fresh devnet starts with WETH 1.2% dearer on sushiswap's WETH/USDC pool (anvil.world).
    await _check(world, sims, [_backrun(world, "WETH/USDC")])


async def test_liquidation_behind_the_oracle_update(
    world: World, upstream: Rpc, sims: dict[str, Simulator]
) -> None:
    updater = world.roles["oracle_updater"].address
    head = sims["anvil"].head
    update = bytes.fromhex(
        feed_update(world, await eth_get_transaction_count(upstream, updater), head.base_fee)[2:]
    )
    borrower = world.aave["borrowers"][0]
    action = LiquidationAction(
        pool=world.aave["pool"],
        collateral_asset=world.tokens[borrower["collateral"]]["address"],
        debt_asset=world.tokens[borrower["debt"]]["address"],
        user=borrower["address"],
        debt_to_cover=borrower["debt_amount"] // 2,
        swap_pairs=(_pair(world, "uniswap", "WETH/USDC"),),
    )
    call = _executor_call(world, action.calldata(0, 10**13))
    result = await _check(world, sims, [update, call])
    assert result.balance_diffs[world.executor][action.debt_asset] > 0  # the liquidation's profit


async def test_two_victims_each_with_our_backrun_on_consecutive_nonces(
    world: World, upstream: Rpc, sims: dict[str, Simulator]
) -> None:
    nonce = await eth_get_transaction_count(upstream, world.roles["executor"].address)
    bundle = [
        await _victim(world, upstream, 1, "WETH/USDC"),
        _backrun(world, "WETH/USDC", nonce),
        await _victim(world, upstream, 2, "WETH/DAI", 20 * 10**18),
        _backrun(world, "WETH/DAI", nonce + 1),
    ]
    # As a block's bundle grows: its first victim and backrun, then all four. revm runs the
    # second bundle from what it remembered of the first two txs on this head.
    revm = sims["revm"]
    assert isinstance(revm, RevmSimulator)
    await _check(world, sims, bundle[:2])
    reused = revm.reused_txs
    await _check(world, sims, bundle)
    assert revm.reused_txs == reused + 2


def _v3_pool(world: World, fee: int) -> dict:
    tokens = {world.tokens["WETH"]["address"], world.tokens["USDC"]["address"]}
    (pool,) = [
        p for p in world.v3["pools"] if {p["token0"], p["token1"]} == tokens and p["fee"] == fee
    ]
    return pool


async def test_a_v3_victim_with_a_flash_financed_mixed_backrun(
    world: World, upstream: Rpc, sims: dict[str, Simulator]
) -> None:
    """A Universal Router victim sells ETH on a V3 pool; the flash-financed backrun sells WETH on
    the V2 pair and buys it back, cheaper, on that V3 pool (the victim's pool re-touched)."""
    weth, usdc = world.tokens["WETH"]["address"], world.tokens["USDC"]["address"]
    pool = _v3_pool(world, 3000)
    traffic = Traffic(world, seed=5)
    await traffic.sync_nonces(upstream)
    swap = traffic.maker.universal("wrap-v3-exact-in", pool, usdc, 150_000)
    signed = traffic.sign_swap(world.traders[4].address, swap, sims["anvil"].head.base_fee)
    victim = [tx.raw for tx in signed]
    pair = world.dexes["uniswap"]["pairs"]["WETH/USDC"]
    backrun = _arbitrage(world, (pair, "uniswap-v2"), (pool, "uniswap-v3"), 10**16, flash=True)
    result = await _check(world, sims, [*victim, backrun])
    assert result.balance_diffs[world.executor][weth] > 0  # the backrun's profit
