"""The bot's Executor contract on a real anvil: owner-only, exact arbitrage gains (liquidations
on the devnet's Aave: tests/test_executor_aave.py).

One anvil per module holds WETH9, a token, two Uniswap V2 factories with one WETH/TKN pair each
at different prices and the Executor; every test starts from an evm_snapshot of
that world. The miner tip is checked on a fresh coinbase address with a zero priority fee, so
its balance changes by exactly the tip.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from web3 import Web3
from web3.contract import Contract
from web3_devnet import Devnet, event_args

from anvil.uniswap_v3 import V2_PAIR_INIT_CODE_HASH
from chain.node import AnvilProcess
from simulation.amm import get_amount_out

ETHER = 10**18
COINBASE = Web3.to_checksum_address("0x00000000000000000000000000000000c0ffee01")
NO_TIP = {"maxPriorityFeePerGas": 0, "maxFeePerGas": 100 * 10**9}


@dataclass
class World:
    devnet: Devnet
    weth: Contract
    tkn: Contract
    cheap_tkn_pair: Contract  # 100 WETH : 220000 TKN
    dear_tkn_pair: Contract  # 100 WETH : 200000 TKN
    executor: Contract
    owner: str
    stranger: str

    def balance(self, token: Contract, holder: str) -> int:
        return token.functions.balanceOf(holder).call()

    def reserves(self, pair: Contract, token_in: Contract) -> tuple[int, int]:
        """(reserve of token_in, reserve of the other token)."""
        reserve0, reserve1, _ = pair.functions.getReserves().call()
        if pair.functions.token0().call() == token_in.address:
            return reserve0, reserve1
        return reserve1, reserve0


def _pair(
    devnet: Devnet, weth: Contract, tkn: Contract, weth_amount: int, tkn_amount: int
) -> Contract:
    deployer = devnet.accounts[0]
    factory = devnet.deploy("UniswapV2Factory", deployer)
    devnet.send(factory.functions.createPair(weth.address, tkn.address), deployer)
    pair = devnet.at("UniswapV2Pair", factory.functions.getPair(weth.address, tkn.address).call())
    devnet.send(weth.functions.transfer(pair.address, weth_amount), deployer)
    devnet.send(tkn.functions.transfer(pair.address, tkn_amount), deployer)
    devnet.send(pair.functions.mint(deployer), deployer)
    return pair


@pytest.fixture(scope="module")
def chain_world() -> Iterator[World]:
    with AnvilProcess() as node:
        devnet = Devnet.connect(node.http_url)
        deployer, owner, stranger = devnet.accounts[0], devnet.accounts[5], devnet.accounts[6]
        weth = devnet.deploy("WETH9")
        tkn = devnet.deploy("ERC20Token", "Token", "TKN", 18)
        devnet.send(weth.functions.deposit(), deployer, value=200 * ETHER)
        devnet.send(tkn.functions.mint(deployer, 420_000 * ETHER), deployer)
        cheap = _pair(devnet, weth, tkn, 100 * ETHER, 220_000 * ETHER)
        dear = _pair(devnet, weth, tkn, 100 * ETHER, 200_000 * ETHER)

        factories = [
            (pair.functions.factory().call(), V2_PAIR_INIT_CODE_HASH, 0) for pair in (cheap, dear)
        ]
        executor = devnet.deploy("Executor", owner, weth.address, factories)
        devnet.send(weth.functions.deposit(), owner, value=10 * ETHER)
        devnet.send(weth.functions.transfer(executor.address, 10 * ETHER), owner)
        devnet.send(tkn.functions.mint(executor.address, 10_000 * ETHER), deployer)
        devnet.w3.provider.make_request("anvil_setCoinbase", [COINBASE])
        yield World(devnet, weth, tkn, cheap, dear, executor, owner, stranger)


@pytest.fixture
def world(chain_world: World) -> Iterator[World]:
    snapshot = chain_world.devnet.snapshot()
    yield chain_world
    chain_world.devnet.revert(snapshot)


def predicted_cycle_profit(world: World, amount_in: int) -> int:
    """WETH -> TKN on the cheap-TKN pair, TKN -> WETH on the dear one, by the 997/1000 formula."""
    tkn_out = get_amount_out(amount_in, *world.reserves(world.cheap_tkn_pair, world.weth))
    weth_out = get_amount_out(tkn_out, *world.reserves(world.dear_tkn_pair, world.tkn))
    return weth_out - amount_in


def hops(world: World, *route: tuple[Contract, Contract]) -> list[tuple[str, int, bool]]:
    """Executor hops (pool, Kind.V2 = 0, zeroForOne) selling each (pair, token) in turn."""
    return [
        (pair.address, 0, pair.functions.token0().call() == token.address) for pair, token in route
    ]


def arbitrage_call(world: World, amount_in: int, min_profit: int, coinbase_wei: int) -> Any:
    """WETH -> TKN on the cheap-TKN pair, TKN -> WETH on the dear one, from inventory."""
    cycle = hops(world, (world.cheap_tkn_pair, world.weth), (world.dear_tkn_pair, world.tkn))
    return world.executor.functions.arbitrageHops(cycle, amount_in, False, min_profit, coinbase_wei)


def test_only_the_owner_can_call_anything(world: World) -> None:
    devnet, executor, weth = world.devnet, world.executor, world.weth
    calls = [
        arbitrage_call(world, ETHER, 0, 0),
        executor.functions.liquidate(
            world.stranger, weth.address, world.tkn.address, world.owner, 1, [], 0, 0
        ),
        executor.functions.withdraw(weth.address, 1, world.stranger),
        executor.functions.withdrawETH(0, world.stranger),
    ]
    for call in calls:
        assert devnet.revert_reason(call, world.stranger) == "executor: not owner"

    devnet.send(executor.functions.withdraw(weth.address, 3 * ETHER, world.owner), world.owner)
    assert world.balance(weth, executor.address) == 7 * ETHER
    assert world.balance(weth, world.owner) == 3 * ETHER
    payee = Web3.to_checksum_address("0x00000000000000000000000000000000000beef1")
    devnet.w3.eth.send_transaction({"from": world.owner, "to": executor.address, "value": ETHER})
    devnet.send(executor.functions.withdrawETH(ETHER // 4, payee), world.owner)
    assert devnet.w3.eth.get_balance(payee) == ETHER // 4
    assert devnet.w3.eth.get_balance(executor.address) == ETHER * 3 // 4


def test_arbitrage_gains_exactly_the_predicted_profit_and_tips_the_coinbase(world: World) -> None:
    devnet, executor = world.devnet, world.executor
    amount_in, tip = 2 * ETHER, ETHER // 100
    profit = predicted_cycle_profit(world, amount_in)
    assert profit > tip
    weth_before = world.balance(world.weth, executor.address)
    coinbase_before = devnet.w3.eth.get_balance(COINBASE)

    # The boundary: a minimum of exactly profit - tip passes.
    receipt = devnet.send(
        arbitrage_call(world, amount_in, profit - tip, tip), world.owner, **NO_TIP
    )

    assert world.balance(world.weth, executor.address) - weth_before == profit - tip
    assert devnet.w3.eth.get_balance(COINBASE) - coinbase_before == tip
    assert devnet.w3.eth.get_balance(executor.address) == 0
    assert event_args(executor, receipt, "ArbitrageExecuted") == [
        {
            "tokenIn": world.weth.address,
            "amountIn": amount_in,
            "profit": profit,
            "coinbasePaid": tip,
        }
    ]


def test_arbitrage_reverts_below_min_profit_or_off_cycle(world: World) -> None:
    devnet, executor = world.devnet, world.executor
    amount_in, tip = 2 * ETHER, ETHER // 100
    profit = predicted_cycle_profit(world, amount_in)
    too_greedy = arbitrage_call(world, amount_in, profit - tip + 1, tip)
    assert devnet.revert_reason(too_greedy, world.owner) == "executor: profit below minimum"
    # The reverse direction loses money: no minimum at all still refuses it.
    backwards = hops(world, (world.dear_tkn_pair, world.weth), (world.cheap_tkn_pair, world.tkn))
    losing = executor.functions.arbitrageHops(backwards, amount_in, False, 0, 0)
    assert devnet.revert_reason(losing, world.owner) == "executor: profit below minimum"
    one_way = executor.functions.arbitrageHops(
        hops(world, (world.cheap_tkn_pair, world.weth)), amount_in, False, 0, 0
    )
    assert devnet.revert_reason(one_way, world.owner) == "executor: cycle must end in tokenIn"
