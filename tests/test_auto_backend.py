"""``simulation.backend = "auto"`` (the default): the node itself when it is local and answers
eth_simulateV1, revm when it is far or cannot, never the final check's own backend."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import pytest
from aiohttp import web

from chain.node import AnvilProcess
from simulation.backends import LOCAL_NODE_MS, choose_backend
from simulation.simulator import SimulationError

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def proxy(anvil: AnvilProcess) -> AsyncIterator[Callable[..., Awaitable[str]]]:
    """``await proxy(delay_s=..., refuse=...)``: the anvil's HTTP endpoint behind a loopback
    proxy that waits ``delay_s`` before each answer (a node across a network) and answers the
    ``refuse``d methods as geth answers an unknown one (a provider without them)."""
    runners: list[web.AppRunner] = []
    session = aiohttp.ClientSession()

    async def start(delay_s: float = 0.0, refuse: tuple[str, ...] = ()) -> str:
        async def answer(request: web.Request) -> web.Response:
            body = await request.json()
            await asyncio.sleep(delay_s)
            if body.get("method") in refuse:
                error = {"code": -32601, "message": f"the method {body['method']} does not exist"}
                return web.json_response({"jsonrpc": "2.0", "id": body.get("id"), "error": error})
            async with session.post(anvil.http_url, json=body) as reply:
                return web.json_response(await reply.json())

        app = web.Application()
        app.router.add_post("/", answer)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        runners.append(runner)
        return f"http://127.0.0.1:{runner.addresses[0][1]}"

    yield start
    for runner in runners:
        await runner.cleanup()
    await session.close()


async def test_a_local_node_that_simulates_is_chosen(anvil: AnvilProcess) -> None:
    choice = await choose_backend(anvil.http_url)
    assert choice.backend == "node"
    assert choice.reason.startswith("the node answers in ")
    assert choice.reason.endswith(" ms and serves eth_simulateV1")
    # With node as the final check, the first simulator must be another one.
    avoided = await choose_backend(anvil.http_url, avoid="node")
    assert avoided.backend == "revm"
    assert avoided.reason.endswith("; node is the final check")
    assert (await choose_backend(anvil.http_url, avoid="revm")).backend == "node"


async def test_a_node_far_away_gets_revm(proxy) -> None:
    url = await proxy(delay_s=0.003)  # 3 ms each way is a node across a network
    choice = await choose_backend(url)
    assert choice.backend == "revm"
    assert choice.reason.endswith(f" ms (over {LOCAL_NODE_MS:g} ms: not a local node)")


async def test_a_node_without_eth_simulate_v1_gets_revm_or_anvil(proxy) -> None:
    url = await proxy(refuse=("eth_simulateV1",))
    choice = await choose_backend(url)
    assert choice.backend == "revm"
    assert choice.reason.endswith(" but has no eth_simulateV1")
    assert (await choose_backend(url, avoid="revm")).backend == "anvil"


async def test_a_node_that_is_down_is_one_reason() -> None:
    with pytest.raises(SimulationError) as failure:
        await choose_backend("http://127.0.0.1:9", timeout=2.0)
    assert failure.value.reason.startswith("upstream http://127.0.0.1:9 unreachable: ")
