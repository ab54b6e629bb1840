"""Our tokens and Uniswap V2's official bytecode (npm) on a real anvil: balances, exact V2
amounts, events.

Every swap amount is checked against the integer formulas of :mod:`simulation.amm`, which the
bot uses to price trades; if the contracts and the bot's math disagreed by one wei, it shows here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import eth_abi
import pytest
from eth_account import Account
from eth_utils import keccak, to_checksum_address
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from web3 import Web3
from web3.contract import Contract
from web3.exceptions import ContractLogicError
from web3.logs import DISCARD
from web3.types import TxReceipt

from anvil import artifacts
from chain.node import ANVIL_DEV_KEYS, AnvilProcess
from simulation.amm import get_amount_in, get_amount_out

DEADLINE = 2**40
MAX_UINT = 2**256 - 1
SUPPLY = 10**33  # below uint112 max (~5.2e33), the most a pair can hold
SYMBOL_SELECTOR = keccak(text="symbol()")[:4]
SYNC_TOPIC = keccak(text="Sync(uint112,uint112)")
SWAP_TOPIC = keccak(text="Swap(address,uint256,uint256,uint256,uint256,address)")


def artifact(name: str) -> dict[str, Any]:
    return artifacts.artifact_json(name)


class Node:
    """web3 over one anvil: deploy artifacts, send transactions that must succeed, snapshots."""

    def __init__(self, anvil: AnvilProcess) -> None:
        self.w3 = Web3(Web3.HTTPProvider(anvil.http_url, request_kwargs={"timeout": 10}))
        self.owner, self.alice, self.bob = self.w3.eth.accounts[:3]

    def deploy(self, name: str, *args: Any) -> Contract:
        compiled = artifact(name)
        factory = self.w3.eth.contract(abi=compiled["abi"], bytecode=compiled["bytecode"])
        receipt = self.send(factory.constructor(*args), self.owner)
        return self.at(name, receipt["contractAddress"])

    def at(self, name: str, address: str) -> Contract:
        return self.w3.eth.contract(address=to_checksum_address(address), abi=artifact(name)["abi"])

    def send(self, call: Any, sender: str, value: int = 0) -> TxReceipt:
        tx_hash = call.transact({"from": sender, "value": value})
        receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=10)
        assert receipt["status"] == 1
        return receipt

    def eth_balance(self, account: str) -> int:
        return self.w3.eth.get_balance(account)

    def snapshot(self) -> str:
        return self.w3.provider.make_request("evm_snapshot", [])["result"]

    def revert(self, snapshot_id: str) -> None:
        assert self.w3.provider.make_request("evm_revert", [snapshot_id])["result"] is True


@dataclass(frozen=True, slots=True)
class Dex:
    factory: Contract
    router: Contract


@dataclass(frozen=True, slots=True)
class World:
    node: Node
    weth: Contract
    tokens: tuple[Contract, Contract, Contract]
    dex: Dex


def gas_cost(receipt: TxReceipt) -> int:
    return receipt["gasUsed"] * receipt["effectiveGasPrice"]


def events(contract: Contract, name: str, receipt: TxReceipt) -> list[dict[str, Any]]:
    """Decoded `name` events that `contract` itself emitted in the receipt."""
    decoded = contract.events[name]().process_receipt(receipt, errors=DISCARD)
    return [dict(event["args"]) for event in decoded if event["address"] == contract.address]


def deploy_dex(node: Node, weth: Contract) -> Dex:
    factory = node.deploy("UniswapV2Factory", node.owner)
    router = node.deploy("UniswapV2Router02", factory.address, weth.address)
    return Dex(factory, router)


def fund(node: Node, token: Contract, spenders: tuple[str, ...]) -> None:
    """Mint SUPPLY to alice and let every spender pull it without limit."""
    node.send(token.functions.mint(node.alice, SUPPLY), node.owner)
    for spender in spenders:
        node.send(token.functions.approve(spender, MAX_UINT), node.alice)


def add_liquidity(
    node: Node, dex: Dex, token_a: Contract, token_b: Contract, amounts: tuple[int, int]
) -> Contract:
    node.send(
        dex.router.functions.addLiquidity(
            token_a.address, token_b.address, amounts[0], amounts[1], 0, 0, node.alice, DEADLINE
        ),
        node.alice,
    )
    return pair_of(node, dex, token_a, token_b)


def pair_of(node: Node, dex: Dex, token_a: Contract, token_b: Contract) -> Contract:
    return node.at(
        "UniswapV2Pair", dex.factory.functions.getPair(token_a.address, token_b.address).call()
    )


def reserves(pair: Contract, token_in: Contract) -> tuple[int, int]:
    """(reserve of token_in, reserve of the other token) as the pair reports them."""
    reserve0, reserve1, _ = pair.functions.getReserves().call()
    if pair.functions.token0().call() == token_in.address:
        return reserve0, reserve1
    return reserve1, reserve0


@pytest.fixture
def world(anvil: AnvilProcess) -> World:
    node = Node(anvil)
    weth = node.deploy("WETH9")
    tokens = (
        node.deploy("ERC20Token", "Token TKA", "TKA", 18),
        node.deploy("ERC20Token", "Token TKB", "TKB", 18),
        node.deploy("ERC20Token", "Token TKC", "TKC", 18),
    )
    dex = deploy_dex(node, weth)
    for token in tokens:
        fund(node, token, (dex.router.address,))
    node.send(weth.functions.approve(dex.router.address, MAX_UINT), node.alice)
    return World(node, weth, tokens, dex)


def test_erc20_balances_allowances_and_owner_only_mint(world: World) -> None:
    node, token = world.node, world.tokens[0]
    assert (token.functions.name().call(), token.functions.symbol().call()) == ("Token TKA", "TKA")
    assert token.functions.decimals().call() == 18
    with pytest.raises(ContractLogicError, match="Owned: caller is not the owner"):
        token.functions.mint(node.bob, 1).transact({"from": node.bob})

    receipt = node.send(token.functions.transfer(node.bob, 1_000), node.alice)
    assert events(token, "Transfer", receipt) == [
        {"from": node.alice, "to": node.bob, "value": 1_000}
    ]
    assert token.functions.balanceOf(node.bob).call() == 1_000
    assert token.functions.balanceOf(node.alice).call() == SUPPLY - 1_000

    receipt = node.send(token.functions.approve(node.alice, 300), node.bob)
    assert events(token, "Approval", receipt) == [
        {"owner": node.bob, "spender": node.alice, "value": 300}
    ]
    node.send(token.functions.transferFrom(node.bob, node.owner, 200), node.alice)
    assert token.functions.allowance(node.bob, node.alice).call() == 100
    assert token.functions.balanceOf(node.owner).call() == 200
    with pytest.raises(ContractLogicError, match="ERC20: insufficient allowance"):
        token.functions.transferFrom(node.bob, node.owner, 101).transact({"from": node.alice})

    node.send(token.functions.approve(node.alice, MAX_UINT), node.bob)
    node.send(token.functions.transferFrom(node.bob, node.owner, 800), node.alice)
    assert token.functions.allowance(node.bob, node.alice).call() == MAX_UINT  # never spent
    with pytest.raises(ContractLogicError, match="ERC20: insufficient balance"):
        token.functions.transfer(node.alice, 1).transact({"from": node.bob})
    assert token.functions.totalSupply().call() == SUPPLY


def test_weth_deposit_and_withdraw(world: World) -> None:
    node, weth = world.node, world.weth
    assert (weth.functions.symbol().call(), weth.functions.decimals().call()) == ("WETH", 18)
    before = node.eth_balance(node.bob)
    deposit = node.send(weth.functions.deposit(), node.bob, value=4 * 10**18)
    assert events(weth, "Deposit", deposit) == [{"dst": node.bob, "wad": 4 * 10**18}]
    assert weth.functions.balanceOf(node.bob).call() == 4 * 10**18
    assert weth.functions.totalSupply().call() == node.eth_balance(weth.address) == 4 * 10**18
    # v2-periphery's WETH9 comments out mainnet WETH9's payable fallback: plain sends revert.
    with pytest.raises(ContractLogicError):
        node.w3.eth.send_transaction({"from": node.bob, "to": weth.address, "value": 10**18})

    withdrawal = node.send(weth.functions.withdraw(10**18), node.bob)
    assert events(weth, "Withdrawal", withdrawal) == [{"src": node.bob, "wad": 10**18}]
    spent_on_gas = gas_cost(deposit) + gas_cost(withdrawal)
    assert node.eth_balance(node.bob) == before - 3 * 10**18 - spent_on_gas
    assert weth.functions.totalSupply().call() == 3 * 10**18
    with pytest.raises(ContractLogicError):  # WETH9 reverts with no reason
        weth.functions.withdraw(3 * 10**18 + 1).transact({"from": node.bob})


def test_pair_creation_events_and_create2_address(world: World) -> None:
    node, (token_a, token_b, _), factory = world.node, world.tokens, world.dex.factory
    receipt = node.send(factory.functions.createPair(token_a.address, token_b.address), node.alice)
    token0, token1 = sorted((token_a.address, token_b.address), key=lambda a: int(a, 16))
    pair_address = factory.functions.getPair(token_b.address, token_a.address).call()
    assert events(factory, "PairCreated", receipt) == [
        {"token0": token0, "token1": token1, "pair": pair_address, "": 1}
    ]
    assert factory.functions.allPairs(0).call() == pair_address
    assert factory.functions.allPairsLength().call() == 1
    init_code_hash = keccak(artifacts.load("UniswapV2Pair").bytecode)
    salt = keccak(bytes.fromhex(token0[2:] + token1[2:]))
    derived = keccak(b"\xff" + bytes.fromhex(factory.address[2:]) + salt + init_code_hash)[12:]
    assert to_checksum_address(derived) == pair_address
    with pytest.raises(ContractLogicError, match="UniswapV2: PAIR_EXISTS"):
        factory.functions.createPair(token_b.address, token_a.address).transact(
            {"from": node.alice}
        )


def test_router_exact_in_and_exact_out_single_and_multi_hop(world: World) -> None:
    node, router, (token_a, token_b, token_c) = world.node, world.dex.router, world.tokens
    pair_ab = add_liquidity(node, world.dex, token_a, token_b, (500 * 10**18, 1_250_000 * 10**18))
    pair_bc = add_liquidity(node, world.dex, token_b, token_c, (800_000 * 10**18, 90 * 10**18))

    amount_in = 7 * 10**18
    expected_out = get_amount_out(amount_in, *reserves(pair_ab, token_a))
    assert router.functions.getAmountsOut(amount_in, [token_a.address, token_b.address]).call() == [
        amount_in,
        expected_out,
    ]
    node.send(
        router.functions.swapExactTokensForTokens(
            amount_in, expected_out, [token_a.address, token_b.address], node.bob, DEADLINE
        ),
        node.alice,
    )
    assert token_b.functions.balanceOf(node.bob).call() == expected_out

    amount_out = 3 * 10**18
    middle = get_amount_in(amount_out, *reserves(pair_bc, token_b))
    first = get_amount_in(middle, *reserves(pair_ab, token_a))
    path = [token_a.address, token_b.address, token_c.address]
    assert router.functions.getAmountsIn(amount_out, path).call() == [first, middle, amount_out]
    alice_a = token_a.functions.balanceOf(node.alice).call()
    node.send(
        router.functions.swapTokensForExactTokens(amount_out, first, path, node.bob, DEADLINE),
        node.alice,
    )
    assert token_c.functions.balanceOf(node.bob).call() == amount_out
    assert token_a.functions.balanceOf(node.alice).call() == alice_a - first

    hop_one = get_amount_out(amount_in, *reserves(pair_ab, token_a))
    hop_two = get_amount_out(hop_one, *reserves(pair_bc, token_b))
    node.send(
        router.functions.swapExactTokensForTokens(amount_in, 0, path, node.owner, DEADLINE),
        node.alice,
    )
    assert token_c.functions.balanceOf(node.owner).call() == hop_two
    assert token_b.functions.balanceOf(node.owner).call() == 0  # the middle hop goes pair to pair

    with pytest.raises(ContractLogicError, match="UniswapV2Router: INSUFFICIENT_OUTPUT_AMOUNT"):
        router.functions.swapExactTokensForTokens(
            amount_in, 10**30, path, node.bob, DEADLINE
        ).transact({"from": node.alice})
    with pytest.raises(ContractLogicError, match="UniswapV2Router: EXPIRED"):
        router.functions.swapExactTokensForTokens(amount_in, 0, path, node.bob, 1).transact(
            {"from": node.alice}
        )
    assert router.functions.getAmountOut(10**18, 5 * 10**18, 7 * 10**18).call() == get_amount_out(
        10**18, 5 * 10**18, 7 * 10**18
    )
    assert router.functions.getAmountIn(10**18, 5 * 10**18, 7 * 10**18).call() == get_amount_in(
        10**18, 5 * 10**18, 7 * 10**18
    )
    assert router.functions.quote(10**18, 5 * 10**18, 7 * 10**18).call() == 10**18 * 7 // 5


def test_router_eth_swaps_and_eth_liquidity(world: World) -> None:
    node, router, weth, token = world.node, world.dex.router, world.weth, world.tokens[0]
    to_token, to_eth = [weth.address, token.address], [token.address, weth.address]
    receipt = node.send(
        router.functions.addLiquidityETH(
            token.address, 40_000 * 10**18, 0, 0, node.alice, DEADLINE
        ),
        node.alice,
        value=20 * 10**18,
    )
    pair = pair_of(node, world.dex, token, weth)
    assert reserves(pair, weth) == (20 * 10**18, 40_000 * 10**18)
    assert events(pair, "Mint", receipt)[0]["sender"] == router.address

    def eth_delta(call: Any, value: int = 0) -> int:
        before = node.eth_balance(node.alice)
        receipt = node.send(call, node.alice, value=value)
        return node.eth_balance(node.alice) - before + gas_cost(receipt)

    expected = get_amount_out(10**18, *reserves(pair, weth))
    token_before = token.functions.balanceOf(node.bob).call()
    node.send(
        router.functions.swapExactETHForTokens(expected, to_token, node.bob, DEADLINE),
        node.alice,
        10**18,
    )
    assert token.functions.balanceOf(node.bob).call() - token_before == expected

    cost = get_amount_in(500 * 10**18, *reserves(pair, weth))
    paid = eth_delta(
        router.functions.swapETHForExactTokens(500 * 10**18, to_token, node.bob, DEADLINE),
        5 * 10**18,
    )
    assert paid == -cost  # the surplus value was refunded

    expected = get_amount_out(1_000 * 10**18, *reserves(pair, token))
    received = eth_delta(
        router.functions.swapExactTokensForETH(1_000 * 10**18, 0, to_eth, node.alice, DEADLINE)
    )
    assert received == expected

    token_cost = get_amount_in(10**17, *reserves(pair, token))
    token_before = token.functions.balanceOf(node.alice).call()
    received = eth_delta(
        router.functions.swapTokensForExactETH(10**17, MAX_UINT, to_eth, node.alice, DEADLINE)
    )
    assert received == 10**17
    assert token_before - token.functions.balanceOf(node.alice).call() == token_cost

    liquidity = pair.functions.balanceOf(node.alice).call()
    node.send(pair.functions.approve(router.address, MAX_UINT), node.alice)
    reserve_token, reserve_eth = reserves(pair, token)
    supply = pair.functions.totalSupply().call()
    token_before = token.functions.balanceOf(node.alice).call()
    received = eth_delta(
        router.functions.removeLiquidityETH(token.address, liquidity, 0, 0, node.alice, DEADLINE)
    )
    assert received == liquidity * reserve_eth // supply
    assert (
        token.functions.balanceOf(node.alice).call() - token_before
        == liquidity * reserve_token // supply
    )
    assert pair.functions.totalSupply().call() == 1_000  # MINIMUM_LIQUIDITY stays locked


@st.composite
def pools_and_trades(draw: st.DrawFn) -> tuple[int, int, bool, int]:
    reserve_in = draw(st.integers(10**4, 10**30))
    reserve_out = draw(st.integers(10**4, 10**30))
    exact_out = draw(st.booleans())
    amount = draw(st.integers(1, reserve_out // 2) if exact_out else st.integers(1, 10**30))
    return reserve_in, reserve_out, exact_out, amount


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(case=pools_and_trades())
def test_router_swaps_match_the_v2_formula(world: World, case: tuple[int, int, bool, int]) -> None:
    reserve_in, reserve_out, exact_out, amount = case
    node, router, (token_in, token_out, _) = world.node, world.dex.router, world.tokens
    path = [token_in.address, token_out.address]
    snapshot = node.snapshot()
    try:
        pair = add_liquidity(node, world.dex, token_in, token_out, (reserve_in, reserve_out))
        if exact_out:
            amount_in, amount_out = get_amount_in(amount, reserve_in, reserve_out), amount
            call = router.functions.swapTokensForExactTokens(
                amount_out, MAX_UINT, path, node.bob, DEADLINE
            )
        else:
            amount_in, amount_out = amount, get_amount_out(amount, reserve_in, reserve_out)
            call = router.functions.swapExactTokensForTokens(amount_in, 0, path, node.bob, DEADLINE)
        if amount_out == 0:
            with pytest.raises(ContractLogicError, match="UniswapV2: INSUFFICIENT_OUTPUT_AMOUNT"):
                call.transact({"from": node.alice})
            return
        receipt = node.send(call, node.alice)
        assert token_out.functions.balanceOf(node.bob).call() == amount_out
        assert SUPPLY - reserve_in - token_in.functions.balanceOf(node.alice).call() == amount_in
        assert reserves(pair, token_in) == (reserve_in + amount_in, reserve_out - amount_out)
        [sync] = events(pair, "Sync", receipt)
        assert (sync["reserve0"], sync["reserve1"]) == tuple(
            pair.functions.getReserves().call()[:2]
        )
    finally:
        node.revert(snapshot)


def test_direct_pair_swap_sync_event_and_k_check(world: World) -> None:
    node, (token_a, token_b, _) = world.node, world.tokens
    pair = add_liquidity(node, world.dex, token_a, token_b, (10**21, 3 * 10**21))
    a_is_token0 = pair.functions.token0().call() == token_a.address
    reserve_a, reserve_b = reserves(pair, token_a)

    def outputs(amount_b: int) -> tuple[int, int]:
        return (0, amount_b) if a_is_token0 else (amount_b, 0)

    amount_in = 5 * 10**18
    amount_out = get_amount_out(amount_in, reserve_a, reserve_b)
    node.send(token_a.functions.transfer(pair.address, amount_in), node.alice)
    with pytest.raises(ContractLogicError, match="UniswapV2: K"):
        pair.functions.swap(*outputs(amount_out + 1), node.bob, b"").transact({"from": node.alice})
    receipt = node.send(pair.functions.swap(*outputs(amount_out), node.bob, b""), node.alice)
    assert token_b.functions.balanceOf(node.bob).call() == amount_out

    new_a, new_b = reserve_a + amount_in, reserve_b - amount_out
    reserve0, reserve1, timestamp = pair.functions.getReserves().call()
    assert (reserve0, reserve1) == ((new_a, new_b) if a_is_token0 else (new_b, new_a))
    assert timestamp == node.w3.eth.get_block(receipt["blockNumber"])["timestamp"]
    assert events(pair, "Sync", receipt) == [{"reserve0": reserve0, "reserve1": reserve1}]
    [swap] = events(pair, "Swap", receipt)
    amounts_in = (amount_in, 0) if a_is_token0 else (0, amount_in)
    assert (swap["amount0In"], swap["amount1In"]) == amounts_in
    assert (swap["amount0Out"], swap["amount1Out"]) == outputs(amount_out)
    assert (swap["sender"], swap["to"]) == (node.alice, node.bob)
    pair_topics = [log["topics"][0] for log in receipt["logs"] if log["address"] == pair.address]
    assert pair_topics == [SYNC_TOPIC, SWAP_TOPIC]  # a watcher reads reserves from Sync alone

    with pytest.raises(ContractLogicError, match="UniswapV2: INSUFFICIENT_INPUT_AMOUNT"):
        pair.functions.swap(*outputs(1), node.bob, b"").transact({"from": node.alice})
    with pytest.raises(ContractLogicError, match="UniswapV2: INVALID_TO"):
        pair.functions.swap(*outputs(1), token_a.address, b"").transact({"from": node.alice})

    donation = 12_345
    node.send(token_a.functions.transfer(pair.address, donation), node.alice)
    node.send(pair.functions.skim(node.owner), node.alice)
    assert token_a.functions.balanceOf(node.owner).call() == donation
    node.send(token_b.functions.transfer(pair.address, donation), node.alice)
    receipt = node.send(pair.functions.sync(), node.alice)
    assert reserves(pair, token_b) == (new_b + donation, new_a)
    reserve0, reserve1, _ = pair.functions.getReserves().call()
    assert events(pair, "Sync", receipt) == [{"reserve0": reserve0, "reserve1": reserve1}]


def test_remove_liquidity_with_permit_pays_the_protocol_fee(world: World) -> None:
    node, router, (token_a, token_b, _) = world.node, world.dex.router, world.tokens
    node.send(world.dex.factory.functions.setFeeTo(node.owner), node.owner)
    pair = add_liquidity(node, world.dex, token_a, token_b, (10**21, 4 * 10**21))
    k_last = pair.functions.kLast().call()
    assert k_last == 4 * 10**42
    path = [token_a.address, token_b.address]
    node.send(
        router.functions.swapExactTokensForTokens(10**20, 0, path, node.alice, DEADLINE), node.alice
    )

    liquidity = pair.functions.balanceOf(node.alice).call() // 3
    reserve_a, reserve_b = reserves(pair, token_a)
    supply = pair.functions.totalSupply().call()
    root_k, root_k_last = math.isqrt(reserve_a * reserve_b), math.isqrt(k_last)
    protocol_fee = supply * (root_k - root_k_last) // (root_k * 5 + root_k_last)
    assert protocol_fee > 0

    alice_key = ANVIL_DEV_KEYS[node.w3.eth.accounts.index(node.alice)]
    permit = Account.sign_typed_data(
        alice_key,
        full_message={
            "types": {
                "EIP712Domain": [
                    {"name": "name", "type": "string"},
                    {"name": "version", "type": "string"},
                    {"name": "chainId", "type": "uint256"},
                    {"name": "verifyingContract", "type": "address"},
                ],
                "Permit": [
                    {"name": "owner", "type": "address"},
                    {"name": "spender", "type": "address"},
                    {"name": "value", "type": "uint256"},
                    {"name": "nonce", "type": "uint256"},
                    {"name": "deadline", "type": "uint256"},
                ],
            },
            "primaryType": "Permit",
            "domain": {
                "name": "Uniswap V2",
                "version": "1",
                "chainId": node.w3.eth.chain_id,
                "verifyingContract": pair.address,
            },
            "message": {
                "owner": node.alice,
                "spender": router.address,
                "value": liquidity,
                "nonce": 0,
                "deadline": DEADLINE,
            },
        },
    )
    receipt = node.send(
        router.functions.removeLiquidityWithPermit(
            token_a.address,
            token_b.address,
            liquidity,
            0,
            0,
            node.bob,
            DEADLINE,
            False,
            permit.v,
            permit.r.to_bytes(32, "big"),
            permit.s.to_bytes(32, "big"),
        ),
        node.alice,
    )
    assert pair.functions.balanceOf(node.owner).call() == protocol_fee
    assert pair.functions.nonces(node.alice).call() == 1
    expected = (
        liquidity * reserve_a // (supply + protocol_fee),
        liquidity * reserve_b // (supply + protocol_fee),
    )
    assert (
        token_a.functions.balanceOf(node.bob).call(),
        token_b.functions.balanceOf(node.bob).call(),
    ) == expected
    [burn] = events(pair, "Burn", receipt)
    a_is_token0 = pair.functions.token0().call() == token_a.address
    assert (burn["amount0"], burn["amount1"]) == (expected if a_is_token0 else expected[::-1])
    assert (burn["sender"], burn["to"]) == (router.address, node.bob)
    with pytest.raises(
        ContractLogicError, match="UniswapV2: INVALID_SIGNATURE"
    ):  # the nonce is spent
        pair.functions.permit(
            node.alice,
            router.address,
            liquidity,
            DEADLINE,
            permit.v,
            permit.r.to_bytes(32, "big"),
            permit.s.to_bytes(32, "big"),
        ).transact({"from": node.alice})


def test_fee_on_transfer_token_needs_the_supporting_variants(world: World) -> None:
    node, router, weth, token_b = world.node, world.dex.router, world.weth, world.tokens[1]
    fee_token = node.deploy("FeeOnTransferToken", "Fee Token", "FEE", 18, 200)  # 2%
    fund(node, fee_token, (router.address,))
    node.send(fee_token.functions.transfer(node.bob, 10_000), node.alice)
    assert fee_token.functions.balanceOf(node.bob).call() == 9_800
    assert fee_token.functions.totalSupply().call() == SUPPLY - 200  # the fee is burned

    pair = add_liquidity(node, world.dex, fee_token, token_b, (10**22, 10**22))
    assert reserves(pair, fee_token) == (10**22 * 98 // 100, 10**22)
    fee_path, amount_in = [fee_token.address, token_b.address], 10**19
    with pytest.raises(ContractLogicError, match="UniswapV2: K"):
        router.functions.swapExactTokensForTokens(
            amount_in, 0, fee_path, node.bob, DEADLINE
        ).transact({"from": node.alice})
    expected = get_amount_out(amount_in * 98 // 100, *reserves(pair, fee_token))
    node.send(
        router.functions.swapExactTokensForTokensSupportingFeeOnTransferTokens(
            amount_in, expected, fee_path, node.bob, DEADLINE
        ),
        node.alice,
    )
    assert token_b.functions.balanceOf(node.bob).call() == expected

    node.send(
        router.functions.addLiquidityETH(fee_token.address, 10**22, 0, 0, node.alice, DEADLINE),
        node.alice,
        value=10 * 10**18,
    )
    eth_pair = pair_of(node, world.dex, fee_token, weth)
    expected = get_amount_out(10**18, *reserves(eth_pair, weth))
    bob_before = fee_token.functions.balanceOf(node.bob).call()
    node.send(
        router.functions.swapExactETHForTokensSupportingFeeOnTransferTokens(
            0, [weth.address, fee_token.address], node.bob, DEADLINE
        ),
        node.alice,
        value=10**18,
    )
    assert (
        fee_token.functions.balanceOf(node.bob).call() - bob_before
        == expected - expected * 2 // 100
    )

    expected = get_amount_out(amount_in * 98 // 100, *reserves(eth_pair, fee_token))
    carol = node.w3.eth.accounts[3]
    carol_before = node.eth_balance(carol)
    node.send(
        router.functions.swapExactTokensForETHSupportingFeeOnTransferTokens(
            amount_in, expected, [fee_token.address, weth.address], carol, DEADLINE
        ),
        node.alice,
    )
    assert node.eth_balance(carol) - carol_before == expected


def test_two_factories_keep_independent_pairs_for_the_same_tokens(world: World) -> None:
    node, (token_a, token_b, _), dex_one = world.node, world.tokens, world.dex
    dex_two = deploy_dex(node, world.weth)
    for token in (token_a, token_b):
        node.send(token.functions.approve(dex_two.router.address, MAX_UINT), node.alice)
    pair_one = add_liquidity(node, dex_one, token_a, token_b, (10**21, 2 * 10**21))
    pair_two = add_liquidity(node, dex_two, token_a, token_b, (10**21, 3 * 10**21))
    assert pair_one.address != pair_two.address
    assert pair_one.functions.factory().call() == dex_one.factory.address
    assert pair_two.functions.factory().call() == dex_two.factory.address

    path, amount_in = [token_a.address, token_b.address], 10**19
    quote_one = dex_one.router.functions.getAmountsOut(amount_in, path).call()[1]
    quote_two = dex_two.router.functions.getAmountsOut(amount_in, path).call()[1]
    assert quote_one == get_amount_out(amount_in, 10**21, 2 * 10**21)
    assert quote_two == get_amount_out(amount_in, 10**21, 3 * 10**21)

    node.send(
        dex_two.router.functions.swapExactTokensForTokens(amount_in, 0, path, node.bob, DEADLINE),
        node.alice,
    )
    assert token_b.functions.balanceOf(node.bob).call() == quote_two
    assert reserves(pair_one, token_a) == (10**21, 2 * 10**21)
    assert reserves(pair_two, token_a) == (10**21 + amount_in, 3 * 10**21 - quote_two)


def test_reverting_token_blocks_transfers_and_swaps(world: World) -> None:
    node, router, token_b = world.node, world.dex.router, world.tokens[1]
    frozen = node.deploy("RevertingToken", "Frozen", "FRZ", 6)
    fund(node, frozen, (router.address,))
    add_liquidity(node, world.dex, frozen, token_b, (10**12, 10**21))
    with pytest.raises(ContractLogicError, match="Owned: caller is not the owner"):
        frozen.functions.setTransfersRevert(True).transact({"from": node.alice})
    node.send(frozen.functions.setTransfersRevert(True), node.owner)
    with pytest.raises(ContractLogicError, match="RevertingToken: transfers disabled"):
        frozen.functions.transfer(node.bob, 1).transact({"from": node.alice})
    with pytest.raises(ContractLogicError, match="TransferHelper: TRANSFER_FROM_FAILED"):
        router.functions.swapExactTokensForTokens(
            10**6, 0, [frozen.address, token_b.address], node.bob, DEADLINE
        ).transact({"from": node.alice})
    node.send(frozen.functions.setTransfersRevert(False), node.owner)
    node.send(frozen.functions.transfer(node.bob, 1), node.alice)
    assert frozen.functions.balanceOf(node.bob).call() == 1


def test_bad_symbol_token_returns_hostile_metadata(world: World) -> None:
    node = world.node
    token = node.deploy("BadSymbolToken", "Bad", "BAD", 18)

    def raw_symbol() -> bytes:
        return bytes(node.w3.eth.call({"to": token.address, "data": SYMBOL_SELECTOR}))

    def set_mode(mode: int) -> None:
        node.send(token.functions.setSymbolMode(mode), node.owner)

    assert eth_abi.decode(["string"], raw_symbol()) == ("BAD",)
    with pytest.raises(ContractLogicError, match="Owned: caller is not the owner"):
        token.functions.setSymbolMode(1).transact({"from": node.alice})
    set_mode(1)
    with pytest.raises(ContractLogicError, match="BadSymbolToken: symbol unavailable"):
        raw_symbol()
    set_mode(2)
    assert eth_abi.decode(["string"], raw_symbol()) == ("[red]x\x1b[2J",)
    set_mode(3)
    assert eth_abi.decode(["bytes"], raw_symbol()) == (b"\xff\xfeA\xc0",)
    set_mode(4)
    with pytest.raises(eth_abi.exceptions.DecodingError):
        eth_abi.decode(["string"], raw_symbol())
    assert token.functions.name().call() == "Bad"  # only the symbol misbehaves
