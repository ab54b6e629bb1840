"""The Executor liquidates on the devnet's Aave V3 with a flash loan from the pool itself.

A transmit pushes the HF 1.035 borrower under water; the Executor flash-borrows the debt
(flashLoanSimple), calls liquidationCall, swaps the collateral back through a Uniswap V2 pair
and repays the loan and its premium: its gain equals the local sizing (simulation.aave_v3) and
the V2 formula to the wei. Its flash-loan callback obeys only the pool its owner's call armed,
for a loan it started: an EOA, a fake pool, a loan of the genuine pool started by someone else,
a lying initiator and a re-entrant call are each refused.
"""

from __future__ import annotations

import asyncio

import pytest
from devnet_txs import transmit

from anvil.deployer import Deployer, DeployError, encode
from anvil.world import World
from chain.rpc import connect
from simulation.aave_v3 import liquidation, max_liquidatable_debt, percent_mul
from simulation.amm import get_amount_out
from simulation.loader import load_aave

MAX = 2**256 - 1


@pytest.fixture
def world(devnet_factory) -> World:
    return devnet_factory(block_time=None).world


def _balance(d: Deployer, token: str, holder: str) -> int:
    return d.call("ERC20Token", token, "balanceOf", holder)[0]


def _under_water(d: Deployer, world: World) -> dict:
    """The first borrower (WETH collateral, USDC debt, HF 1.035) after a 4% ETH drop."""
    aggregator, data = transmit(world, "WETH", world.feeds["WETH"]["answer"] * 96 // 100)
    d.send(world.roles["oracle_updater"].address, aggregator, data)
    return world.aave["borrowers"][0]


def test_a_flash_loan_liquidation_gains_exactly_the_sized_profit(world: World):
    d, aave = Deployer(world.rpc["http"]), world.aave
    borrower = _under_water(d, world)
    weth, usdc = world.tokens["WETH"]["address"], world.tokens["USDC"]["address"]
    pair = world.dexes["uniswap"]["pairs"]["WETH/USDC"]

    async def snapshot():
        async with connect(world.rpc["http"]) as rpc:
            return await load_aave(rpc, aave["pool"], aave["oracle"], [borrower["address"]])

    loaded = asyncio.run(snapshot())
    at = int(d.rpc("eth_getBlockByNumber", "latest", False)["timestamp"], 16) + 12
    position = loaded.positions[borrower["address"]]
    cover = max_liquidatable_debt(position, loaded.reserves, loaded.prices, at, usdc)
    sized = liquidation(position, loaded.reserves, loaded.prices, at, weth, usdc, cover)
    assert sized.debt_repaid == cover > 0 and sized.protocol_fee > 0
    reserves = d.call("UniswapV2Pair", pair["address"], "getReserves")
    weth_reserve, usdc_reserve = reserves[:2] if pair["token0"] == weth else reserves[1::-1]
    swap_out = get_amount_out(sized.collateral_to_liquidator, weth_reserve, usdc_reserve)
    (premium_bps,) = d.call("Pool", aave["pool"], "FLASHLOAN_PREMIUM_TOTAL")
    profit = swap_out - cover - percent_mul(cover, premium_bps)
    assert profit > 0
    owner = world.roles["executor"].address
    before = _balance(d, usdc, world.executor), _balance(d, weth, world.executor)
    args = (aave["pool"], weth, usdc, borrower["address"], cover, [pair["address"]])

    with pytest.raises(DeployError, match="executor: profit below minimum"):
        d.transact("Executor", world.executor, "liquidate", *args, profit + 1, 0, sender=owner)
    d.rpc("evm_setNextBlockTimestamp", at)
    # Its own gas limit: anvil estimates at the pending block's time, and the indexes Aave then
    # accrues at this block's time cost more gas than that estimate.
    d.transact(
        "Executor", world.executor, "liquidate", *args, profit, 0, sender=owner, gas=2_000_000
    )

    after = _balance(d, usdc, world.executor), _balance(d, weth, world.executor)
    assert (after[0] - before[0], after[1] - before[1]) == (profit, 0)
    owed = d.call(
        "VariableDebtToken",
        aave["reserves"]["USDC"]["variable_debt_token"],
        "balanceOf",
        borrower["address"],
    )[0]
    assert owed  # the close factor left half the debt


def test_the_callback_refuses_every_caller_but_the_armed_pool_for_its_own_loan(world: World):
    d, aave = Deployer(world.rpc["http"]), world.aave
    borrower = _under_water(d, world)
    weth, usdc = world.tokens["WETH"]["address"], world.tokens["USDC"]["address"]
    owner, attacker = world.roles["executor"].address, world.roles["searcher"].address
    params = encode("Pool", "supply", weth, 1, owner, 0)[4:]  # any bytes: never decoded
    callback = encode("Executor", "executeOperation", usdc, 10**6, 0, world.executor, params)
    before = _balance(d, usdc, world.executor)

    # An EOA, or a contract posing as the pool, calling the callback directly.
    with pytest.raises(DeployError, match="executor: no flash loan in progress"):
        d.send(attacker, world.executor, callback)
    fake = d.deploy("FakePool", weth, usdc, 0, aave["pool"], sender=attacker)
    poke = encode("FakePool", "poke", world.executor, callback)
    with pytest.raises(DeployError, match="executor: no flash loan in progress"):
        d.send(attacker, fake, poke)
    # The genuine pool lending to the Executor on someone else's initiative.
    loan = encode("Pool", "flashLoanSimple", world.executor, usdc, 10**6, params, 0)
    with pytest.raises(DeployError, match="executor: no flash loan in progress"):
        d.send(attacker, aave["pool"], loan, gas=2_000_000)
    # The owner's call armed a pool that names another initiator, or re-enters the callback.
    args = (fake, weth, usdc, borrower["address"], 10**6, [], 0, 0)
    d.transact("FakePool", fake, "setFlashInitiator", attacker, sender=attacker)
    with pytest.raises(DeployError, match="executor: flash loan not started by executor"):
        d.transact("Executor", world.executor, "liquidate", *args, sender=owner, gas=2_000_000)
    d.transact("FakePool", fake, "setFlashInitiator", "0x" + "00" * 20, sender=attacker)
    with pytest.raises(DeployError, match="executor: no flash loan in progress"):
        d.transact("Executor", world.executor, "liquidate", *args, sender=owner, gas=2_000_000)
    assert _balance(d, usdc, world.executor) == before
