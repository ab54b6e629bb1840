"""The Executor's hop cycles on the devnet's official Uniswap V2 pairs and V3 pools.

A V2→V3 and a V3→V2 cycle financed by a flash swap of their first hop run with an executor that
holds no token and no ether, and leave it exactly the profit simulated beforehand (V2 formula,
QuoterV2 for the V3 hop) less the coinbase tip. Every callback is attacked: called from an EOA,
from a contract posing as a pool, through a genuine pair's swap started by someone else, by a
fake pool the owner was tricked into routing through (re-entering the executor's own swap), and by
a token re-entering mid-swap; each attack reverts and moves no wei.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import eth_abi
import pytest
from eth_account import Account
from eth_utils import to_checksum_address

from anvil.deployer import Deployer, DeployError, encode
from anvil.devnet import Devnet
from anvil.world import World
from chain.node import ANVIL_DEV_KEYS
from simulation.actions import HopArbitrageAction, SwapHop
from simulation.amm import Pool, get_amount_out
from simulation.arbitrage import Cycle

ETHER = 10**18
COINBASE = "0x00000000000000000000000000000000c0ffee02"
ATTACKER = Account.from_key(ANVIL_DEV_KEYS[7]).address.lower()
PLAN = "((address,uint8,bool,address,address,uint24)[],uint256,uint256,bool)"
ERROR_SELECTOR = bytes.fromhex("08c379a0")  # Error(string), Solidity's revert reason
GAS = 2_000_000


@pytest.fixture(scope="module")
def chain_world(devnet_cache: Path) -> Iterator[World]:
    with Devnet(block_time=0, state_dir=devnet_cache) as world:
        Deployer(world.rpc["http"]).rpc("anvil_setCoinbase", COINBASE)
        yield world


@pytest.fixture
def world(chain_world: World) -> Iterator[World]:
    deployer = Deployer(chain_world.rpc["http"])
    snapshot = deployer.rpc("evm_snapshot")
    yield chain_world
    deployer.rpc("evm_revert", snapshot)


class Chain:
    """The devnet seen by these tests: balances, pools, quotes, the executor's owner."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.d = Deployer(world.rpc["http"])
        self.owner = world.roles["executor"]
        self.executor = world.executor
        self.tokens = {symbol: t["address"] for symbol, t in world.tokens.items()}

    def balance(self, symbol: str, holder: str) -> int:
        return self.d.call("ERC20Token", self.tokens[symbol], "balanceOf", holder)[0]

    def eth(self, holder: str) -> int:
        return int(self.d.rpc("eth_getBalance", holder, "latest"), 16)

    def wei(self, *holders: str, ether: bool = True) -> dict[tuple[str, str], int]:
        """Every token (and ether) balance of ``holders``: what no attack may change."""
        out = {(h, s): self.balance(s, h) for h in holders for s in self.tokens}
        return out | ({(h, "ETH"): self.eth(h) for h in holders} if ether else {})

    def attack(self, sender: str, to: str, data: bytes) -> str:
        """Send ``data`` as a transaction that is mined even when it reverts (fixed gas, no
        estimate to refuse it first); the reason it reverted with (it must revert)."""
        with pytest.raises(DeployError) as caught:
            self.d.send(sender, to, data, gas=GAS, what="attack")
        return reason_of(caught.value)

    def v2(self, dex: str, name: str) -> dict[str, Any]:
        return self.world.dexes[dex]["pairs"][name]

    def v3(self, name: str, fee: int) -> dict[str, Any]:
        return next(p for p in self.world.v3["pools"] if p["name"] == name and p["fee"] == fee)

    def v2_out(self, pair: str, token_in: str, amount_in: int) -> int:
        reserve0, reserve1, _ = self.d.call("UniswapV2Pair", pair, "getReserves")
        (token0,) = self.d.call("UniswapV2Pair", pair, "token0")
        if token0.lower() == token_in:
            return get_amount_out(amount_in, reserve0, reserve1)
        return get_amount_out(amount_in, reserve1, reserve0)

    def v3_out(self, pool: dict[str, Any], token_in: str, amount_in: int) -> int:
        token_out = pool["token1"] if token_in == pool["token0"] else pool["token0"]
        quoted, *_ = self.d.call(
            "QuoterV2",
            self.world.v3["quoter"],
            "quoteExactInputSingle",
            (token_in, token_out, amount_in, pool["fee"], 0),
        )
        return quoted

    def drain_executor(self) -> None:
        """Take every token and all ether out: the executor starts with no inventory."""
        for symbol in self.tokens:
            held = self.balance(symbol, self.executor)
            if held:
                self.owner_sends(
                    encode("Executor", "withdraw", self.tokens[symbol], held, ATTACKER)
                )
        self.owner_sends(encode("Executor", "withdrawETH", self.eth(self.executor), ATTACKER))

    def owner_sends(self, data: bytes) -> dict[str, Any]:
        """Sign ``data`` to the executor with the owner's key, no priority fee (so the coinbase
        gains exactly the tip), and send it raw; the receipt."""
        tx = {
            "type": 2,
            "chainId": self.world.chain_id,
            "nonce": int(self.d.rpc("eth_getTransactionCount", self.owner.address, "latest"), 16),
            "to": to_checksum_address(self.executor),
            "data": data,
            "gas": GAS,
            "maxFeePerGas": 100 * 10**9,
            "maxPriorityFeePerGas": 0,
            "value": 0,
        }
        raw = Account.sign_transaction(tx, self.owner.private_key).raw_transaction
        tx_hash = self.d.rpc("eth_sendRawTransaction", "0x" + bytes(raw).hex())
        receipt = None
        while receipt is None:  # automine answers the send before the block is sealed
            receipt = self.d.rpc("eth_getTransactionReceipt", tx_hash)
        return receipt

    def owner_calls(self, data: bytes) -> str:
        """eth_call of ``data`` from the owner: the revert reason, '' when it succeeds."""
        try:
            self.d.rpc(
                "eth_call",
                {"from": self.owner.address, "to": self.executor, "data": "0x" + data.hex()},
                "latest",
            )
        except DeployError as error:
            return reason_of(error)
        return ""


def reason_of(error: DeployError) -> str:
    """The revert reason in a DeployError's node message."""
    text = str(error)
    marker = "execution reverted: "
    return text[text.index(marker) + len(marker) :].split(" 0x")[0] if marker in text else text


def hop(pool: dict[str, Any], kind: str, token_in: str) -> SwapHop:
    return SwapHop(pool["address"], kind, token_in == pool["token0"])


def plan(pool: dict[str, Any], kind: int, amount: int) -> bytes:
    """Callback data naming a genuine pool, as an attacker would craft it: pay ``amount``."""
    leg = (pool["address"], kind, True, pool["token0"], pool["token1"], pool.get("fee", 0))
    return eth_abi.encode([PLAN], [([leg], 0, amount, True)])


def v2_v3_cycle(c: Chain) -> tuple[HopArbitrageAction, int]:
    """At the devnet's start prices WETH is 1.2% dear on sushiswap's V2 WETH/USDC and 0.3% cheap
    on the V3 0.3% pool: sell it on the first, buy it back on the second. The simulated profit."""
    weth, usdc = c.tokens["WETH"], c.tokens["USDC"]
    sushi, pool = c.v2("sushiswap", "WETH/USDC"), c.v3("WETH/USDC", 3000)
    action = HopArbitrageAction(
        (hop(sushi, "uniswap-v2", weth), hop(pool, "uniswap-v3", usdc)), weth, ETHER
    )
    return action, c.v3_out(pool, usdc, c.v2_out(sushi["address"], weth, ETHER)) - ETHER


def v3_v2_cycle(c: Chain) -> tuple[HopArbitrageAction, int]:
    """A trader buys 200k USDC of WETH on the V3 0.05% pool through SwapRouter; the backrun
    sells WETH there and buys it back on uniswap's V2 pair. The simulated profit."""
    weth, usdc = c.tokens["WETH"], c.tokens["USDC"]
    pool, pair = c.v3("WETH/USDC", 500), c.v2("uniswap", "WETH/USDC")
    trader = c.world.traders[0].address
    c.d.rpc("anvil_impersonateAccount", trader)
    victim = (usdc, weth, 500, trader, 2**40, 200_000 * 10**6, 0, 0)
    c.d.transact("SwapRouter", c.world.v3["swap_router"], "exactInputSingle", victim, sender=trader)
    amount = 2 * ETHER
    action = HopArbitrageAction(
        (hop(pool, "uniswap-v3", weth), hop(pair, "uniswap-v2", usdc)), weth, amount
    )
    return action, c.v2_out(pair["address"], usdc, c.v3_out(pool, weth, amount)) - amount


@pytest.mark.parametrize("cycle", [v2_v3_cycle, v3_v2_cycle], ids=["v2-v3", "v3-v2"])
def test_a_flash_cycle_earns_exactly_the_simulated_profit_with_no_inventory(world, cycle):
    c = Chain(world)
    c.drain_executor()
    assert c.wei(c.executor) == {key: 0 for key in c.wei(c.executor)}
    action, profit = cycle(c)
    tip = profit // 10
    assert profit > tip > 0
    greedy = action.calldata(profit - tip + 1, tip)
    assert c.owner_calls(greedy) == "executor: profit below minimum"
    coinbase_before = c.eth(COINBASE)

    receipt = c.owner_sends(action.calldata(profit - tip, tip))

    assert receipt["status"] == "0x1"
    after = c.wei(c.executor)
    assert after.pop((c.executor, "WETH")) == profit - tip
    assert set(after.values()) == {0}  # no dust of the middle token, no ether left
    assert c.eth(COINBASE) - coinbase_before == tip


def test_the_action_for_a_cycle_of_pool_states_runs_on_the_executor_from_nothing(world):
    """The bot's path: pool states, a cycle through them, the action, eth_call, then the signed
    transaction; the on-chain gain is what the pool states' own math predicted."""
    c = Chain(world)
    c.drain_executor()
    weth = c.tokens["WETH"]
    states = {}
    for dex in ("sushiswap", "uniswap"):
        pair = c.v2(dex, "WETH/USDC")
        reserve0, reserve1, _ = c.d.call("UniswapV2Pair", pair["address"], "getReserves")
        states[pair["address"]] = Pool(
            pair["address"], pair["token0"], pair["token1"], reserve0, reserve1
        )
    cycle = Cycle.through(list(states.values()), weth)
    action = HopArbitrageAction.for_cycle(cycle, states, ETHER)
    profit = cycle.amounts(states, ETHER)[-1] - ETHER
    assert profit > 0
    assert action.to_json()["hops"] == [
        {"pool": address, "pool_kind": "uniswap-v2", "zero_for_one": zero_for_one}
        for address, zero_for_one in cycle.legs
    ]
    assert c.owner_calls(action.calldata(profit + 1, 0)) == "executor: profit below minimum"
    assert c.owner_calls(action.calldata(profit, 0)) == ""

    assert c.owner_sends(action.calldata(profit, 0))["status"] == "0x1"

    assert c.balance("WETH", c.executor) == profit


def test_inventory_mode_runs_the_same_cycle_from_the_executor_balance(world):
    c = Chain(world)
    action, profit = v3_v2_cycle(c)
    inventory = HopArbitrageAction(action.hops, action.token_in, action.amount_in, flash=False)
    before = c.wei(c.executor)

    assert c.owner_sends(inventory.calldata(profit, 0))["status"] == "0x1"

    after = c.wei(c.executor)
    assert after.pop((c.executor, "WETH")) - before.pop((c.executor, "WETH")) == profit
    assert after == before


def test_each_callback_called_from_an_eoa_reverts_and_moves_nothing(world):
    c = Chain(world)
    pair, pool = c.v2("uniswap", "WETH/USDC"), c.v3("WETH/USDC", 500)
    calls = [
        encode("Executor", "uniswapV2Call", c.executor, 0, 10**20, plan(pair, 0, 10**20)),
        encode("Executor", "uniswapV3SwapCallback", 10**20, -1, plan(pool, 1, 0)),
    ]
    entry, _ = v2_v3_cycle(c)
    before = c.wei(c.executor) | c.wei(ATTACKER, ether=False)
    for sender in (ATTACKER, c.owner.address):  # not even the owner may call one
        for data in calls:
            assert c.attack(sender, c.executor, data) == "executor: no swap in progress"
    assert c.attack(ATTACKER, c.executor, entry.calldata(0, 0)) == "executor: not owner"
    assert c.wei(c.executor) | c.wei(ATTACKER, ether=False) == before


def test_a_genuine_pair_flash_swap_started_by_someone_else_cannot_make_the_executor_pay(world):
    c = Chain(world)
    pair = c.v2("uniswap", "WETH/USDC")
    # The pair pays the executor first and calls it back, as the attacker's swap asks: the
    # executor's callback would then repay the pair (with a loss) out of its inventory.
    swap = encode("UniswapV2Pair", "swap", 0, 10**6, c.executor, plan(pair, 0, 10**18))
    before = c.wei(c.executor, pair["address"]) | c.wei(ATTACKER, ether=False)
    assert c.attack(ATTACKER, pair["address"], swap) == "executor: no swap in progress"
    assert c.wei(c.executor, pair["address"]) | c.wei(ATTACKER, ether=False) == before


def fake_of(c: Chain, pool: dict[str, Any], factory: str) -> str:
    """A FakePool answering ``pool``'s tokens, fee and factory, deployed by the attacker."""
    fee = pool.get("fee", 0)
    return c.d.deploy("FakePool", pool["token0"], pool["token1"], fee, factory, sender=ATTACKER)


def test_a_contract_posing_as_a_pool_is_refused_by_each_callback(world):
    c = Chain(world)
    pool, pair = c.v3("WETH/USDC", 500), c.v2("uniswap", "WETH/USDC")
    fake = fake_of(c, pool, c.world.v3["factory"])
    calls = [
        encode("Executor", "uniswapV3SwapCallback", 10**20, -1, plan(pool, 1, 0)),
        encode("Executor", "uniswapV2Call", fake, 0, 10**20, plan(pair, 0, 10**20)),
        encode("Executor", "uniswapV2Call", c.executor, 0, 10**20, plan(pair, 0, 10**20)),
    ]
    before = c.wei(c.executor, fake)
    for data in calls:
        poke = encode("FakePool", "poke", c.executor, data)
        assert c.attack(ATTACKER, fake, poke) == "executor: no swap in progress"
    assert c.wei(c.executor, fake) == before


@pytest.mark.parametrize(
    ("fake_kind", "position", "flash"),
    [
        ("uniswap-v3", 0, True),
        ("uniswap-v3", 0, False),
        ("uniswap-v2", 0, True),
        ("uniswap-v3", 1, True),  # inside the genuine first pair's flash-swap callback
    ],
)
def test_a_fake_pool_in_the_owners_cycle_reenters_and_is_refused(world, fake_kind, position, flash):
    """The owner was fed a poisoned pool list: the fake's swap calls back into the executor,
    in the middle of the executor's own operation, asking to be paid for nothing."""
    c = Chain(world)
    weth, usdc = c.tokens["WETH"], c.tokens["USDC"]
    if fake_kind == "uniswap-v3":
        fake = fake_of(c, c.v3("WETH/USDC", 500), c.world.v3["factory"])
    else:
        fake = fake_of(c, c.v2("uniswap", "WETH/USDC"), c.world.dexes["uniswap"]["factory"])
    genuine = c.v2("sushiswap", "WETH/USDC")
    poses_as = c.v3("WETH/USDC", 500)  # both fakes answer WETH/USDC
    if position == 0:
        hops = (
            SwapHop(fake, fake_kind, weth == poses_as["token0"]),
            hop(genuine, "uniswap-v2", usdc),
        )
    else:
        hops = (
            hop(genuine, "uniswap-v2", weth),
            SwapHop(fake, fake_kind, usdc == poses_as["token0"]),
        )
    action = HopArbitrageAction(hops, weth, 10 * ETHER, flash)
    before = c.wei(c.executor, fake)
    data = action.calldata(0, 0)
    reason = c.attack(c.owner.address, c.executor, data)
    assert reason == "executor: caller is not a known pool"
    assert c.wei(c.executor, fake) == before


def revert_text(result: bytes) -> str:
    assert result[:4] == ERROR_SELECTOR, result.hex()
    return eth_abi.decode(["string"], result[4:])[0]


def hostile_pairs(c: Chain) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """The attacker's ReentrantToken HOST in genuine WETH/HOST pairs of both V2 factories:
    HOST is 10% cheaper on uniswap's (100 WETH : 220k HOST) than on sushiswap's (100 : 200k)."""
    weth = c.tokens["WETH"]
    host = c.d.deploy("ReentrantToken", "Hostile", "HOST", 18, sender=ATTACKER)
    c.d.transact("ERC20Token", host, "mint", ATTACKER, 420_000 * ETHER, sender=ATTACKER)
    c.d.transact("WETH9", weth, "deposit", sender=ATTACKER, value=200 * ETHER)
    pairs = []
    for dex, host_amount in (("uniswap", 220_000), ("sushiswap", 200_000)):
        factory = c.world.dexes[dex]["factory"]
        c.d.transact("UniswapV2Factory", factory, "createPair", weth, host, sender=ATTACKER)
        (address,) = c.d.call("UniswapV2Factory", factory, "getPair", weth, host)
        address = address.lower()
        c.d.transact("WETH9", weth, "transfer", address, 100 * ETHER, sender=ATTACKER)
        c.d.transact("ERC20Token", host, "transfer", address, host_amount * ETHER, sender=ATTACKER)
        c.d.transact("UniswapV2Pair", address, "mint", ATTACKER, sender=ATTACKER)
        token0, token1 = sorted((weth, host))
        pairs.append({"address": address, "token0": token0, "token1": token1})
    return host, pairs[0], pairs[1]


@pytest.mark.parametrize("callback", ["uniswapV2Call", "uniswapV3SwapCallback"])
def test_a_token_reentering_a_callback_mid_swap_is_refused_and_takes_nothing(world, callback):
    c = Chain(world)
    c.drain_executor()
    weth = c.tokens["WETH"]
    host, cheap, dear = hostile_pairs(c)
    if callback == "uniswapV2Call":
        attack = encode("Executor", callback, c.executor, 0, 10**20, plan(cheap, 0, 10**20))
    else:
        attack = encode("Executor", callback, 10**20, -1, plan(c.v3("WETH/USDC", 500), 1, 0))
    c.d.transact("ReentrantToken", host, "arm", c.executor, attack, sender=ATTACKER)
    host_out = c.v2_out(cheap["address"], weth, ETHER)
    profit = c.v2_out(dear["address"], host, host_out) - ETHER
    action = HopArbitrageAction(
        (hop(cheap, "uniswap-v2", weth), hop(dear, "uniswap-v2", host)), weth, ETHER
    )
    attacker_before = c.wei(ATTACKER, ether=False)
    attacker_host = c.d.call("ERC20Token", host, "balanceOf", ATTACKER)[0]

    assert c.owner_sends(action.calldata(profit, 0))["status"] == "0x1"

    # HOST moved twice: the cheap pair paid the executor while the executor awaited that
    # pair's callback, then the executor paid the dear pair after the callback was consumed.
    (count,) = c.d.call("ReentrantToken", host, "outcomeCount")
    outcomes = [c.d.call("ReentrantToken", host, "outcomes", i) for i in range(count)]
    assert [(ok, revert_text(result)) for ok, result in outcomes] == [
        (False, "executor: callback from unexpected caller"),
        (False, "executor: no swap in progress"),
    ]
    after = c.wei(c.executor)
    assert after.pop((c.executor, "WETH")) == profit  # the cycle's, to the wei
    assert set(after.values()) == {0}
    assert c.d.call("ERC20Token", host, "balanceOf", c.executor)[0] == 0
    assert c.wei(ATTACKER, ether=False) == attacker_before
    assert c.d.call("ERC20Token", host, "balanceOf", ATTACKER)[0] == attacker_host


def test_a_pool_kind_the_executor_cannot_swap_through_is_refused_in_one_line():
    with pytest.raises(ValueError, match=r"^the Executor has no hop for pool kind 'curve'$"):
        SwapHop("0x" + "11" * 20, "curve", True)
