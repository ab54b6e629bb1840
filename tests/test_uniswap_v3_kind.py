"""Uniswap V3 as a pool kind: followed by the state from its factory's and pools' logs, routed by
fee tier, and loaded with batched reads.

The loader tests read from a small JSON-RPC node over HTTP that answers ``eth_getLogs`` and the
pool's view functions (ABI-encoded, batched, as a node does) from pool values: the official V3
contracts are deployed on the devnet by another branch (wt15), and quotes against them belong
with that devnet.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import eth_abi
import orjson
import pytest
from aiohttp import web
from v3_fixtures import encode_price_sqrt, max_tick, min_tick, pool_with_positions

from chain.intents import SwapIntent
from chain.node import free_port
from chain.rpc import connect
from chain.topics import V3_INITIALIZE, V3_MINT, V3_POOL_CREATED, V3_SWAP
from chain.types import Log
from simulation.calls import LoadError
from simulation.loader import load_pools
from simulation.pool_kinds import pool_kind
from simulation.state import ChainState
from simulation.uniswap_v3 import POOL, UNISWAP_V3, load_words, warmup
from simulation.uniswap_v3_pool import MissingTickWordError, V3Pool

FACTORY, ROUTER = "0x" + "1f" * 20, "0x" + "e5" * 20
WETH, USDC = "0x" + "c0" * 20, "0x" + "a0" * 20  # USDC < WETH: token0 is USDC
POOL_3000, POOL_500 = "0x" + "30" * 20, "0x" + "05" * 20
E18 = 10**18


def _word(value: int | str) -> bytes:
    if isinstance(value, str):
        value = int(value, 16)
    return (value % (1 << 256)).to_bytes(32, "big")


def _log(address: str, topics: tuple[bytes, ...], *words: int | str, block: int = 5) -> Log:
    data = b"".join(_word(w) for w in words)
    return Log(address, topics, data, block, "0x" + f"{block:064x}", "0x" + "00" * 32, 0, 0)


def _created(pool: str, fee: int, spacing: int, block: int = 5) -> Log:
    topics = (V3_POOL_CREATED, _word(USDC), _word(WETH), _word(fee))
    return _log(FACTORY, topics, spacing, pool, block=block)


def test_the_selectors_are_the_pools():
    # ../shared/reference/relay-keepers-uniswap.md §4.4
    assert POOL.function("slot0").selector.hex() == "3850c7bd"
    assert POOL.function("liquidity").selector.hex() == "1a686502"
    assert POOL.function("fee").selector.hex() == "ddca3f43"
    assert POOL.function("tickSpacing").selector.hex() == "d0c93a7c"
    assert [call[1][:4].hex() for call in warmup(_chain_pools()[0])] == [
        "3850c7bd",
        "1a686502",
        "70a08231",
        "70a08231",
    ]


def test_the_state_follows_a_v3_pool_from_its_creation():
    state = ChainState(
        routers={ROUTER: {"uniswap-v3": FACTORY}}, factories={FACTORY: pool_kind("uniswap-v3")}
    )
    assert {V3_SWAP, V3_MINT, V3_INITIALIZE, V3_POOL_CREATED} <= set(state.log_topics)
    price = encode_price_sqrt(1, 2000)  # 2000 USDC-units per WETH-unit, raw
    tick = -76013
    mint = (V3_MINT, _word(0xABC), _word(-887220), _word(887220))
    changes = state.apply_block(
        5,
        "0x" + "05" * 32,
        [
            _created(POOL_3000, 3000, 60),
            _log(POOL_3000, (V3_INITIALIZE,), price, tick),
            _log(POOL_3000, mint, 0xABC, 5 * E18, 1, 1),
            _created(POOL_500, 500, 10),
        ],
    )
    assert changes.new_pairs == (
        (FACTORY, USDC, WETH, POOL_3000),
        (FACTORY, USDC, WETH, POOL_500),
    )
    pool = state.pair_for(FACTORY, WETH, USDC, 3000)
    assert isinstance(pool, V3Pool) and pool.address == POOL_3000 and pool.liquidity == 5 * E18
    assert state.pair_for(FACTORY, WETH, USDC, 500).address == POOL_500
    expected = pool_with_positions(3000, price, [(-887220, 887220, 5 * E18)])[0]
    assert pool.amount_out(USDC, 10**9) == expected.amount_out(expected.token0, 10**9)
    # A pending exact-in swap through the 0.3 % pool moves that pool only.
    intent = SwapIntent(
        protocol="uniswap-v3",
        router=ROUTER,
        method="exactInputSingle",
        kind="exact_in",
        path=(USDC, WETH),
        fees=(3000,),
        amount_in=10**9,
        amount_out_min=0,
        amount_out=None,
        amount_in_max=None,
        recipient="0x" + "77" * 20,
        deadline=None,
        value=0,
        eth_in=False,
        eth_out=False,
        fee_on_transfer=False,
    )
    effect = state.after(intent)
    assert set(effect.pools) == {POOL_3000}
    assert effect.pools[POOL_3000] == pool.swap(USDC, 10**9)[1]
    # Its Swap log sets the pool exactly; a reorg takes the block back.
    result = pool.simulate(True, 10**9)
    swap = (V3_SWAP, _word(ROUTER), _word(ROUTER))
    state.apply_block(
        6,
        "0x" + "06" * 32,
        [
            _log(
                POOL_3000,
                swap,
                result.amount0,
                result.amount1,
                result.sqrt_price_x96,
                result.liquidity,
                result.tick,
                block=6,
            )
        ],
    )
    assert state.pools[POOL_3000] == pool.after(result)
    state.rollback_to(5)
    assert state.pools[POOL_3000] == pool
    state.rollback_to(4)
    assert POOL_3000 not in state.pools


# ---------------------------------------------------------------- loading


def _chain_pools() -> list[V3Pool]:
    """Pools as the chain has them: liquidity spread over many bitmap words."""
    positions = [(-120_000 + 6_000 * i, -100_020 + 6_000 * i, E18 * (1 + i)) for i in range(30)]
    positions.append((min_tick(60), max_tick(60), E18))
    wide, _, _ = pool_with_positions(3000, encode_price_sqrt(1, 1), positions)
    narrow, _, _ = pool_with_positions(500, encode_price_sqrt(1, 4), [(-14_000, -13_000, E18)])
    return [
        V3Pool(
            address,
            USDC,
            WETH,
            pool.fee,
            pool.tick_spacing,
            pool.sqrt_price_x96,
            pool.tick,
            pool.liquidity,
            pool.words,
            pool.ticks,
            bitmap_complete=True,
        )
        for address, pool in ((POOL_3000, wide), (POOL_500, narrow))
    ]


def _view(pool: V3Pool, data: bytes) -> bytes:
    """What the pool's view function answers to ``data`` (ABI-encoded)."""
    for name, types, values in (
        ("token0", ["address"], lambda: [pool.token0]),
        ("token1", ["address"], lambda: [pool.token1]),
        ("fee", ["uint24"], lambda: [pool.fee]),
        ("tickSpacing", ["int24"], lambda: [pool.tick_spacing]),
        ("liquidity", ["uint128"], lambda: [pool.liquidity]),
    ):
        if data == POOL.function(name).encode():
            return eth_abi.encode(types, values())
    if data == POOL.function("slot0").encode():
        return eth_abi.encode(
            ["uint160", "int24", "uint16", "uint16", "uint16", "uint8", "bool"],
            [pool.sqrt_price_x96, pool.tick, 0, 1, 1, 0, True],
        )
    bitmap, ticks = POOL.function("tickBitmap"), POOL.function("ticks")
    if data[:4] == bitmap.selector:
        (index,) = bitmap.decode_input(data)
        return eth_abi.encode(["uint256"], [pool.words.get(index, 0)])
    (tick,) = ticks.decode_input(data)
    gross, net = pool.ticks.get(tick, (0, 0))
    return eth_abi.encode(
        ["uint128", "int128", "uint256", "uint256", "int56", "uint160", "uint32", "bool"],
        [gross, net, 0, 0, 0, 0, 0, gross > 0],
    )


class V3Node:
    """A JSON-RPC node over HTTP holding the pools and their PoolCreated logs."""

    def __init__(self, pools: list[V3Pool]) -> None:
        self.pools = {pool.address: pool for pool in pools}
        self.created = list(pools)
        self.requests: list[int] = []  # batch sizes

    def answer(self, message: dict[str, Any]) -> dict[str, Any]:
        method, params = message["method"], message["params"]
        if method == "eth_getLogs":
            spacing = {500: 10, 3000: 60}
            result: Any = [
                {
                    "address": FACTORY,
                    "topics": ["0x" + t.hex() for t in _created(p.address, p.fee, 0).topics],
                    "data": "0x" + (_word(spacing[p.fee]) + _word(p.address)).hex(),
                    "blockNumber": "0x5",
                    "blockHash": "0x" + "05" * 32,
                    "transactionHash": "0x" + "00" * 32,
                    "transactionIndex": "0x0",
                    "logIndex": "0x0",
                }
                for p in self.created
            ]
        elif params[0]["to"] in self.pools:
            data = bytes.fromhex(params[0]["data"][2:])
            result = "0x" + _view(self.pools[params[0]["to"]], data).hex()
        else:
            error = {"code": 3, "message": "execution reverted"}
            return {"jsonrpc": "2.0", "id": message["id"], "error": error}
        return {"jsonrpc": "2.0", "id": message["id"], "result": result}

    async def handle(self, request: web.Request) -> web.Response:
        message = orjson.loads(await request.read())
        if isinstance(message, list):
            self.requests.append(len(message))
            body = orjson.dumps([self.answer(m) for m in message])
        else:
            self.requests.append(1)
            body = orjson.dumps(self.answer(message))
        return web.Response(body=body, content_type="application/json")


@pytest.fixture
async def v3_node() -> AsyncIterator[tuple[str, V3Node]]:
    node = V3Node(_chain_pools())
    app = web.Application()
    app.router.add_post("/", node.handle)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield f"http://127.0.0.1:{port}/", node
    await runner.cleanup()


async def test_pools_load_from_the_factory_logs_with_batched_reads(v3_node):
    url, node = v3_node
    chain = {pool.address: pool for pool in _chain_pools()}
    state = ChainState(factories={FACTORY: UNISWAP_V3})
    async with connect(url) as rpc:
        assert await load_pools(rpc, state) == 2
        # getLogs, the scalars of both pools, their bitmap words, the ticks those mark.
        assert len(node.requests) == 4 and node.requests[1] == 12
        loaded = state.pools[POOL_3000]
        truth = chain[POOL_3000]
        assert isinstance(loaded, V3Pool) and not loaded.bitmap_complete
        assert (loaded.fee, loaded.tick_spacing, loaded.sqrt_price_x96, loaded.liquidity) == (
            3000,
            60,
            truth.sqrt_price_x96,
            truth.liquidity,
        )
        assert sorted(loaded.words) == [-2, -1, 0, 1, 2]
        assert state.pair_for(FACTORY, WETH, USDC, 500).amount_out(WETH, E18 // 10**6) == (
            chain[POOL_500].amount_out(WETH, E18 // 10**6)
        )
        # A swap past the loaded words asks for the next one; fetched, it matches the chain.
        big = 1000 * E18
        with pytest.raises(MissingTickWordError) as missing:
            loaded.amount_out(USDC, big)
        assert missing.value.word == -3
        pool = loaded
        while True:
            try:
                out = pool.amount_out(USDC, big)
                break
            except MissingTickWordError as error:
                pool = await load_words(rpc, pool, [error.word])
        assert out == truth.amount_out(USDC, big) > 0


async def test_a_pool_the_node_cannot_read_is_a_load_error(v3_node):
    url, node = v3_node
    del node.pools[POOL_500]  # its factory log stays; its calls revert
    async with connect(url) as rpc:
        with pytest.raises(LoadError, match="eth_call to 0x0505"):
            await UNISWAP_V3.load(rpc, [FACTORY], "latest")
