"""Shared fixtures: real anvil processes on free loopback ports, stopped after use."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from anvil.devnet import Devnet
from anvil.world import World
from chain.node import AnvilProcess
from chain.rpc import Rpc, connect


@pytest.fixture
def anvil_factory() -> Iterator[Callable[..., AnvilProcess]]:
    """Start anvil processes with the given extra arguments; all are stopped at teardown."""
    started: list[AnvilProcess] = []

    def start(*args: str) -> AnvilProcess:
        node = AnvilProcess(args=args).start()
        started.append(node)
        return node

    yield start
    for node in started:
        node.stop()


@pytest.fixture
def anvil(anvil_factory: Callable[..., AnvilProcess]) -> AnvilProcess:
    """A fresh automining anvil for one test."""
    return anvil_factory()


@pytest.fixture(scope="session")
def devnet_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One deployed-state cache per test session: the first devnet deploys, the rest load it."""
    return tmp_path_factory.mktemp("devnet-state")


@pytest.fixture
def devnet_factory(devnet_cache: Path) -> Iterator[Callable[..., Devnet]]:
    """Start devnets (anvil + the world); ``block_time=None`` leaves mining to the test."""
    started: list[Devnet] = []

    def start(block_time: int | None = None, anvil_args: tuple[str, ...] = ()) -> Devnet:
        devnet = Devnet(block_time=block_time, state_dir=devnet_cache, anvil_args=anvil_args)
        devnet.start()
        started.append(devnet)
        return devnet

    yield start
    for devnet in started:
        devnet.stop()


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    """An automining devnet for one test module (a module may define its own ``world``)."""
    devnet = Devnet(block_time=0, state_dir=None)
    yield devnet.start()
    devnet.stop()


@pytest.fixture(scope="module")
async def upstream(world: World) -> AsyncIterator[Rpc]:
    """A WebSocket client of the module's ``world``."""
    async with connect(world.rpc["ws"]) as rpc:
        yield rpc
