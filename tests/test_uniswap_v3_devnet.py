"""Our V3 quotes equal the official QuoterV2's on the devnet's official V3 pools.

The devnet's V3 pools (every fee tier, liquidity as a ladder of ranges around the price plus a
wide range) are loaded the way the bot loads them (:data:`simulation.uniswap_v3.UNISWAP_V3`:
PoolCreated logs, batched reads of the bitmap words around the price). Hypothesis then draws
swaps (pool, direction, exact in or out, an amount from dust to more than the pool holds) and
each quote must equal QuoterV2's to the unit, with the price after it; a quote that needs a
bitmap word the pool has not loaded fetches it (``load_words``) and continues, and where the
pool cannot pay an exact output QuoterV2 reverts and our ``amount_in`` is None.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from anvil.deployer import Deployer, DeployError
from anvil.devnet import Devnet
from anvil.world import World
from chain.rpc import connect
from simulation.uniswap_v3 import UNISWAP_V3, load_words
from simulation.uniswap_v3_pool import MissingTickWordError, SwapResult, V3Pool

BATCH_WORDS = 16  # bitmap words fetched per MissingTickWordError, toward where the swap goes


@pytest.fixture(scope="module")
def chain_world(devnet_cache: Path) -> Iterator[World]:
    """One automining devnet for the module (from the session's state cache); read only."""
    with Devnet(block_time=0, state_dir=devnet_cache) as world:
        yield world


async def _load(url: str, factory: str) -> dict[str, V3Pool]:
    async with connect(url) as rpc:
        loaded = await UNISWAP_V3.load(rpc, [factory], "latest")
    return {pool.address: pool for _, pool in loaded if isinstance(pool, V3Pool)}


@pytest.fixture(scope="module")
def v3_pools(chain_world: World) -> dict[str, V3Pool]:
    return asyncio.run(_load(chain_world.rpc["http"], chain_world.v3["factory"]))


async def _fetch(url: str, pool: V3Pool, words: list[int]) -> V3Pool:
    async with connect(url) as rpc:
        return await load_words(rpc, pool, words)


def _simulate(
    url: str, pools: dict[str, V3Pool], address: str, zero_for_one: bool, amount: int
) -> SwapResult:
    """The swap on our pool, fetching bitmap words (and keeping them) until it has them all."""
    while True:
        pool = pools[address]
        try:
            return pool.simulate(zero_for_one, amount)
        except MissingTickWordError as missing:
            event("fetched bitmap words")
            # Price falls selling token0: the words below the missing one come next.
            first = missing.word - BATCH_WORDS + 1 if zero_for_one else missing.word
            wanted = [w for w in range(first, first + BATCH_WORDS) if w not in pool.words]
            pools[address] = asyncio.run(_fetch(url, pool, wanted))


def _count(crossed: int) -> str:
    return str(crossed) if crossed < 3 else "3 or more"


def test_every_devnet_v3_pool_loads_from_its_factory(chain_world, v3_pools):
    expected = {p["address"].lower(): p for p in chain_world.v3["pools"]}
    assert set(v3_pools) == set(expected) and len(expected) == 15
    deployer = Deployer(chain_world.rpc["http"])
    for address, pool in v3_pools.items():
        assert (pool.fee, pool.tick_spacing) == (
            expected[address]["fee"],
            expected[address]["tick_spacing"],
        )
        sqrt_price, tick, *_ = deployer.call("UniswapV3Pool", address, "slot0")
        assert (pool.sqrt_price_x96, pool.tick) == (sqrt_price, tick)
        assert pool.liquidity == deployer.call("UniswapV3Pool", address, "liquidity")[0]
        assert len(pool.ticks) >= 2 and not pool.bitmap_complete


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    index=st.integers(0, 14),
    zero_for_one=st.booleans(),
    exact_in=st.booleans(),
    scale=st.floats(-7.0, 0.3),
)
def test_quotes_equal_quoterv2(chain_world, v3_pools, index, zero_for_one, exact_in, scale):
    url = chain_world.rpc["http"]
    deployer = Deployer(url)
    address = sorted(v3_pools)[index]
    pool = v3_pools[address]
    token_in, token_out = (pool.token0, pool.token1) if zero_for_one else (pool.token1, pool.token0)
    # Amounts from dust to more than the pool holds of the token that gets scarce.
    held = deployer.call("ERC20Token", token_in if exact_in else token_out, "balanceOf", address)[0]
    amount = max(1, int(held * 10**scale))
    if exact_in:
        quoted, price_after, _, _ = deployer.call(
            "QuoterV2",
            chain_world.v3["quoter"],
            "quoteExactInputSingle",
            (token_in, token_out, amount, pool.fee, 0),
        )
        result = _simulate(url, v3_pools, address, zero_for_one, amount)
        event(f"exact in crossing {_count(result.ticks_crossed)} initialized ticks")
        ours = -(result.amount1 if zero_for_one else result.amount0)
        assert (ours, result.sqrt_price_x96) == (quoted, price_after)
        return
    result = _simulate(url, v3_pools, address, zero_for_one, -amount)
    paid, received = (
        (result.amount0, -result.amount1) if zero_for_one else (result.amount1, -result.amount0)
    )
    assert v3_pools[address].amount_in(token_in, amount) == (paid if received == amount else None)
    try:
        quoted, price_after, _, _ = deployer.call(
            "QuoterV2",
            chain_world.v3["quoter"],
            "quoteExactOutputSingle",
            (token_in, token_out, amount, pool.fee, 0),
        )
    except DeployError:
        event("exact out the pool cannot pay")
        assert received < amount, "QuoterV2 reverts only when the pool cannot pay it all"
        return
    event(f"exact out crossing {_count(result.ticks_crossed)} initialized ticks")
    assert (received, paid, result.sqrt_price_x96) == (amount, quoted, price_after)
