"""Shared fixtures: real anvil processes on free loopback ports, stopped after use."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from chain.node import AnvilProcess


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
