"""The bound on the pools loaded, on the devnet: `mevbot run` (`state.max_pools`, through its
start-up checks, which load the bot's state) and `mevbot fork --max-pools N` load the
factories' oldest pools first, the V2 pairs in `allPairs` order, then the V3 pools in the order
of their `PoolCreated` logs, until N."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from test_run_for_real import _mevbot

from anvil.devnet import Devnet
from anvil.discover import Venues, describe_fork
from anvil.world import World
from chain.rpc import connect
from mevbot.deployment import chain_state, deployment_from_world
from mevbot.preflight import check_state
from simulation.loader import load_pools
from simulation.uniswap_v3_pool import V3Pool


@pytest.fixture(scope="module")
def chain_world(devnet_cache: Path) -> Iterator[World]:
    with Devnet(block_time=0, state_dir=devnet_cache) as world:
        yield world


def _v2_pairs(world: World) -> int:
    return sum(len(dex["pairs"]) for dex in world.dexes.values())


async def test_run_loads_the_oldest_pools_up_to_the_bound(chain_world):
    world = chain_world
    deployment = deployment_from_world(world, None)
    bound = _v2_pairs(world) + 2
    everything, bounded = chain_state(deployment), chain_state(deployment)
    async with connect(world.rpc["http"]) as rpc:
        total = await load_pools(rpc, everything)
        checks = await check_state(rpc, deployment, bounded, max_pools=bound)
    factories = len(deployment.pool_kinds)
    (pools,) = [check.line() for check in checks if check.name == "pools"]
    assert pools == f"pools: {bound} pools from {factories} factories (the state.max_pools bound)"
    assert total > bound
    assert list(bounded.pools) == list(everything.pools)[:bound], "the oldest, in order"
    assert sum(isinstance(p, V3Pool) for p in bounded.pools.values()) == 2
    assert bounded.block_number > 0, "the positions loaded too: the state is the bot's"


async def test_fork_describes_the_oldest_pools_up_to_the_bound(chain_world):
    world = chain_world
    v2 = {dex["router"]: dex["factory"] for dex in world.dexes.values()}
    venues = Venues(
        weth=world.tokens["WETH"]["address"],
        v2=v2,
        v3_factory=world.v3["factory"],
        max_pools=_v2_pairs(world) - 1,
    )
    described = await describe_fork(world.rpc["http"], world.rpc["ws"], venues)
    assert _v2_pairs(described) == _v2_pairs(world) - 1
    assert described.v3["pools"] == []
    venues = Venues(weth=venues.weth, v2=v2, v3_factory=venues.v3_factory, max_pools=10**6)
    assert len((await describe_fork(world.rpc["http"], world.rpc["ws"], venues)).v3["pools"]) == 15


def test_a_bound_below_one_is_refused_in_one_line():
    refused = _mevbot("fork", "--rpc", "http://127.0.0.1:9", "--max-pools", "0")
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines()[-1] == (
        "mevbot fork: error: argument --max-pools: '0' is not a whole number of at least 1"
    )
