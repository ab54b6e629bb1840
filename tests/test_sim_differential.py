"""Differential: every bundle shape the strategies emit, simulated on anvil (the warm fork), on the
node (eth_simulateV1 at the head) and in pyrevm, on one fresh devnet that no test here changes.

anvil and the node must agree on everything. pyrevm must agree on success, logs and every token
diff; its gas is exact for a bundle's first tx and documented to be low for a later tx that
re-touches state an earlier tx of the bundle touched (simulation.revm_backend): that deviation is
asserted exactly, per tx, as measured on this devnet, and the ETH it leaves out (gas times the
effective price) is checked against the senders' ETH diffs and the coinbase payment.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

import pytest
from devnet_txs import feed_update
from eth_account import Account
from eth_utils import to_checksum_address

from anvil import artifacts
from anvil.world import World
from chain.abi import load_artifact
from chain.rpc import Rpc, eth_get_transaction_count
from simulation.actions import HopArbitrageAction, LiquidationAction, SwapHop
from simulation.backends import open_simulator
from simulation.prepared import prepare
from simulation.simulator import DEFAULT_COINBASE, ETH, SimCall, SimResult, Simulator, resolve_block

SWAP = artifacts.load("UniswapV2Router02").abi.function("swapExactTokensForTokens")
EXECUTOR = load_artifact("Executor").abi
TIP = 10**9


# anvil's gas minus pyrevm's, per tx, measured on this devnet. Positive: pyrevm keeps what the
# bundle's earlier txs touched warm (cold SLOAD 2,100 vs 100; a slot the bundle already wrote
# costs 100 instead of 2,900 to write again). Negative (the liquidation): pyrevm measures SSTORE
# refunds against the slot's value at the start of the bundle instead of the tx.
MEASURED = {
    "v2_backrun": [0, 2_900],
    "block_arbitrage": [0],
    "liquidation": [0, -18_500],  # behind an OCR transmit (the feed it updates writes more)
    "two_backruns": [0, 2_900, 2_500, 32_700],
}


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


def _backrun(world: World, pair: str, nonce: int | None = None) -> SimCall:
    """Sell WETH on sushiswap's pool of ``pair``, buy it back on uniswap's, where victims sell."""
    weth = world.tokens["WETH"]["address"]
    sell, buy = (world.dexes[dex]["pairs"][pair] for dex in ("sushiswap", "uniswap"))
    action = HopArbitrageAction(
        (
            SwapHop(sell["address"], "uniswap-v2", sell["token0"] == weth),
            SwapHop(buy["address"], "uniswap-v2", buy["token0"] != weth),
        ),
        weth,
        10**17,
        flash=False,
    )
    return _executor_call(world, action.calldata(0, 10**13), nonce)


async def _check(
    world: World,
    sims: dict[str, Simulator],
    bundle: Sequence[bytes | SimCall],
    revm_gas_low_by: list[int],
) -> SimResult:
    results = {
        name: await sim.simulate(bundle, watch=_holders(world), tokens=_tokens(world))
        for name, sim in sims.items()
    }
    anvil, node, revm = results["anvil"], results["node"], results["revm"]
    assert anvil == node
    assert anvil.success, [tx.revert_reason for tx in anvil.txs]
    assert [tx.success for tx in revm.txs] == [tx.success for tx in anvil.txs]
    assert [tx.logs for tx in revm.txs] == [tx.logs for tx in anvil.txs]
    low = [a.gas_used - r.gas_used for a, r in zip(anvil.txs, revm.txs, strict=True)]
    assert low == revm_gas_low_by
    # The ETH pyrevm's low gas leaves out: each sender pays gas x effective price, the coinbase
    # gets gas x tip.
    env = resolve_block(sims["anvil"].head, None, block_interval=12, coinbase=DEFAULT_COINBASE)
    prepared = prepare(bundle, env)
    unpaid: dict[str, int] = {}
    tips = 0
    for tx, gas in zip(prepared, low, strict=True):
        unpaid[tx.sender] = unpaid.get(tx.sender, 0) + gas * tx.effective_gas_price(env.base_fee)
        tips += gas * (tx.effective_gas_price(env.base_fee) - env.base_fee)
    for holder, diffs in anvil.balance_diffs.items():
        expected = dict(diffs)
        expected[ETH] = diffs[ETH] + unpaid.get(holder, 0)
        assert revm.balance_diffs[holder] == expected, holder
    assert revm.coinbase_payment == anvil.coinbase_payment - tips
    return anvil


async def test_v2_backrun(world: World, upstream: Rpc, sims: dict[str, Simulator]) -> None:
    victim = await _victim(world, upstream, 1, "WETH/USDC")
    await _check(world, sims, [victim, _backrun(world, "WETH/USDC")], MEASURED["v2_backrun"])


async def test_block_arbitrage(world: World, sims: dict[str, Simulator]) -> None:
    # The fresh devnet starts with WETH 1.2% dearer on sushiswap's WETH/USDC pool (anvil.world).
    await _check(world, sims, [_backrun(world, "WETH/USDC")], MEASURED["block_arbitrage"])


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
    result = await _check(world, sims, [update, call], MEASURED["liquidation"])
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
    await _check(world, sims, bundle, MEASURED["two_backruns"])
