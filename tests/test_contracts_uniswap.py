"""The devnet's Uniswap contracts are the official npm bytecode, and they trade as mainnet does.

Init-code hashes (what routers use to find pools) match the pair and pool creation code; every
deployed contract's code equals its artifact (immutables masked); a V3 swap crossing several
initialized ticks returns what QuoterV2 predicted, to the unit; a swap of every variant through
every router kind lands and moves exactly the pools it names.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from eth_utils import keccak
from official_code import differences, masked_positions, mismatches

from anvil import artifacts
from anvil.deployer import Deployer
from anvil.devnet import Devnet
from anvil.swaps import FEE_RECIPIENT, VARIANTS
from anvil.traffic import Traffic
from anvil.uniswap_v3 import V2_PAIR_INIT_CODE_HASH, V3_POOL_INIT_CODE_HASH
from anvil.world import World
from chain.rpc import connect

ERC20_BALANCE = artifacts.load("ERC20Token").abi.function("balanceOf")


@pytest.fixture(scope="module")
def chain_world(devnet_cache: Path) -> Iterator[World]:
    """One automining devnet for the module (from the session's state cache)."""
    with Devnet(block_time=0, state_dir=devnet_cache) as world:
        yield world


@pytest.fixture
def world(chain_world: World) -> Iterator[World]:
    """The module's devnet, reverted to its deployed state after each test."""
    deployer = Deployer(chain_world.rpc["http"])
    snapshot = deployer.rpc("evm_snapshot")
    yield chain_world
    deployer.rpc("evm_revert", snapshot)


def test_pair_and_pool_init_code_hashes_are_the_ones_the_routers_use():
    assert keccak(artifacts.load("UniswapV2Pair").bytecode) == V2_PAIR_INIT_CODE_HASH
    assert keccak(artifacts.load("UniswapV3Pool").bytecode) == V3_POOL_INIT_CODE_HASH
    # Baked into the routers' code (UniswapV2Library.pairFor, PoolAddress.computeAddress).
    for name in ("UniswapV2Router02", "SwapRouter02"):
        assert V2_PAIR_INIT_CODE_HASH in artifacts.load(name).deployed_bytecode, name
    for name in ("SwapRouter", "SwapRouter02", "QuoterV2", "NonfungiblePositionManager"):
        assert V3_POOL_INIT_CODE_HASH in artifacts.load(name).deployed_bytecode, name


def test_code_comparison_masks_only_immutables():
    code = artifacts.runtime_code("SwapRouter")
    masked = masked_positions(code)
    assert masked and len(masked) % 32 == 0  # a PUSH32 slot at every use of an immutable
    tampered = bytearray(code)
    tampered[min(masked)] = 0xAB  # an immutable's value: allowed
    assert differences("SwapRouter", bytes(tampered)) == []
    tampered[10] ^= 0xFF  # anything else: caught
    assert differences("SwapRouter", bytes(tampered)) == [10]


def test_the_devnet_runs_the_official_bytecode(world):
    assert mismatches(world) == []
    deployer = Deployer(world.rpc["http"])
    v3 = world.v3
    # What fills the masked slots is the constructor's arguments: SwapRouter(factory, WETH9).
    router = bytes.fromhex(deployer.rpc("eth_getCode", v3["swap_router"], "latest")[2:])
    slots = sorted(masked_positions(artifacts.runtime_code("SwapRouter")))
    values = {router[i : i + 32] for i in slots[::32]}
    assert values == {
        bytes.fromhex(address[2:]).rjust(32, b"\0")
        for address in (v3["factory"], world.tokens["WETH"]["address"])
    }
    for pool in v3["pools"]:  # CREATE2 with the hash the routers use finds every pool
        salt = keccak(
            bytes.fromhex(pool["token0"][2:]).rjust(32, b"\0")
            + bytes.fromhex(pool["token1"][2:]).rjust(32, b"\0")
            + pool["fee"].to_bytes(32, "big")
        )
        derived = keccak(b"\xff" + bytes.fromhex(v3["factory"][2:]) + salt + V3_POOL_INIT_CODE_HASH)
        assert "0x" + derived[12:].hex() == pool["address"]
        (spacing,) = deployer.call("UniswapV3Pool", pool["address"], "tickSpacing")
        assert spacing == pool["tick_spacing"] == {500: 10, 3000: 60, 10000: 200}[pool["fee"]]


def _balance(deployer: Deployer, token: str, holder: str) -> int:
    return deployer.call("ERC20Token", token, "balanceOf", holder)[0]


def test_v3_swap_across_initialized_ticks_returns_what_quoterv2_predicted(world):
    deployer = Deployer(world.rpc["http"])
    pool = next(p for p in world.v3["pools"] if p["name"] == "WETH/USDC" and p["fee"] == 500)
    weth = world.tokens["WETH"]["address"]
    usdc = world.tokens["USDC"]["address"]
    amount_in = 60 * 10**18  # ~$180k of WETH: through several rungs of the ladder
    quoted, price_after, ticks_crossed, _ = deployer.call(
        "QuoterV2", world.v3["quoter"], "quoteExactInputSingle", (weth, usdc, amount_in, 500, 0)
    )
    assert ticks_crossed >= 3

    trader = world.traders[0].address
    deployer.rpc("anvil_impersonateAccount", trader)
    before = _balance(deployer, usdc, trader)
    deployer.transact(
        "SwapRouter",
        world.v3["swap_router"],
        "exactInputSingle",
        (weth, usdc, 500, trader, 2**40, amount_in, quoted, 0),
        sender=trader,
    )
    assert _balance(deployer, usdc, trader) - before == quoted
    (sqrt_price, *_) = deployer.call("UniswapV3Pool", pool["address"], "slot0")
    assert sqrt_price == price_after


async def _pool_states(rpc, world: World) -> dict[str, str]:
    """Raw getReserves of every V2 pair and slot0 of every V3 pool, by address."""
    reserves = artifacts.load("UniswapV2Pair").abi.function("getReserves").encode()
    slot0 = artifacts.load("UniswapV3Pool").abi.function("slot0").encode()
    pools = [(p["address"], reserves) for d in world.dexes.values() for p in d["pairs"].values()]
    pools += [(p["address"], slot0) for p in world.v3["pools"]]
    answers = await rpc.batch(
        [("eth_call", [{"to": a, "data": "0x" + data.hex()}, "latest"]) for a, data in pools]
    )
    return {address: answer for (address, _), answer in zip(pools, answers, strict=True)}


@pytest.mark.parametrize(
    ("kind", "variant"),
    [(kind, variant) for kind, variants in VARIANTS.items() for variant in variants],
)
def test_a_swap_through_each_router_kind_moves_the_pools_it_names(world, kind, variant):

    async def go() -> None:
        async with connect(world.rpc["http"]) as rpc:
            traffic = Traffic(world, seed=len(variant))
            await traffic.sync_nonces(rpc)
            before = await _pool_states(rpc, world)
            reserves = {
                address: tuple(int(state[2 + 64 * i : 2 + 64 * (i + 1)], 16) for i in range(2))
                for address, state in before.items()
            }
            head = await rpc.call("eth_getBlockByNumber", ["latest", False])
            trade = traffic.trade(reserves, int(head["baseFeePerGas"], 16), kind, variant)
            assert trade.swap.kind == kind and trade.swap.variant == variant
            for tx in trade.txs:
                await rpc.call("eth_sendRawTransaction", [tx.raw_hex])
            for tx in trade.txs:
                receipt = None
                while receipt is None:
                    receipt = await rpc.call("eth_getTransactionReceipt", [tx.hash])
                    await asyncio.sleep(0.01)
                assert receipt["status"] == "0x1", (kind, variant)
            after = await _pool_states(rpc, world)
            moved = {address for address in before if before[address] != after[address]}
            assert moved == set(trade.swap.pools)
            if variant == "wrap-v2-exact-in-pay-portion-sweep":
                fee = await rpc.call(
                    "eth_call",
                    [
                        {
                            "to": trade.swap.token_out,
                            "data": "0x" + ERC20_BALANCE.encode(FEE_RECIPIENT).hex(),
                        },
                        "latest",
                    ],
                )
                assert int(fee, 16) > 0, "PAY_PORTION paid the fee recipient"

    asyncio.run(go())


def test_every_official_package_is_pinned_installed_and_credited():
    root = Path(__file__).resolve().parent.parent
    pins = json.loads((root / "package.json").read_text())["devDependencies"]
    readme = (root / "README.md").read_text()
    for package in sorted({package for package, _ in artifacts.OFFICIAL.values()}):
        assert pins[package] == artifacts.package_version(package), package
        assert f"| `{package}` | {pins[package]} |" in readme, package
