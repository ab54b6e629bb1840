"""Uniswap V3 as a pool kind: pools found from their factories' PoolCreated logs, loaded with
batched calls, followed by Swap, Mint, Burn and Initialize.

A V3 factory cannot be enumerated (it has no ``allPools``): :func:`load_factories` reads its
``PoolCreated`` logs with ``eth_getLogs`` (one request per factory, in one batch), then
:func:`load_pools` reads each pool's tokens, fee, tick spacing, ``slot0`` and ``liquidity``, the
tick-bitmap words within :data:`WORDS_AROUND` of the current tick and the ``ticks(int24)`` those
words mark, each kind of read in batched ``eth_call`` s. A swap that needs a word beyond them
raises :class:`~simulation.uniswap_v3_pool.MissingTickWordError`; :func:`load_words` fetches it.
A pool that arrives by its ``PoolCreated`` log is followed from its first state, so it knows its
whole (empty) bitmap. Selectors and events: ``../shared/reference/relay-keepers-uniswap.md``
§4.4 (v3-core ``IUniswapV3Pool*.sol``, ``IUniswapV3Factory.sol`` @d8b1c63).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any

from chain.abi import Abi
from chain.errors import RpcError
from chain.topics import V3_BURN, V3_INITIALIZE, V3_MINT, V3_POOL_CREATED, V3_SWAP
from chain.types import Log
from simulation.calls import LoadError, eth_calls
from simulation.pools import Calls, PoolKind, PoolState
from simulation.uniswap_v3_pool import V3Pool

WORDS_AROUND = 2
"""Bitmap words loaded each side of the current tick's word (5 words: with spacing 60 that is
±76,800 ticks, a price range of about ×2,000 either way)."""

POOL = Abi.from_signatures(
    "function token0() returns (address)",
    "function token1() returns (address)",
    "function fee() returns (uint24)",
    "function tickSpacing() returns (int24)",
    "function slot0() returns (uint160, int24, uint16, uint16, uint16, uint8, bool)",
    "function liquidity() returns (uint128)",
    "function tickBitmap(int16) returns (uint256)",
    "function ticks(int24) returns "
    "(uint128, int128, uint256, uint256, int56, uint160, uint32, bool)",
)
ERC20 = Abi.from_signatures("function balanceOf(address) returns (uint256)")
_SCALARS = ("token0", "token1", "fee", "tickSpacing", "slot0", "liquidity")


def _address(word: bytes) -> str:
    return "0x" + word[-20:].hex()


def _signed(word: bytes) -> int:
    value = int.from_bytes(word, "big")
    return value - (1 << 256) if value >> 255 else value


def pool_from_creation_log(log: Log) -> V3Pool:
    """``PoolCreated(token0 indexed, token1 indexed, fee indexed, tickSpacing, pool)``: the
    new pool, not initialized yet, with an empty bitmap it will follow from its logs."""
    if len(log.topics) != 4 or len(log.data) != 64:
        raise ValueError("PoolCreated needs 4 topics and two data words")
    return V3Pool(
        _address(log.data[32:]),
        _address(log.topics[1]),
        _address(log.topics[2]),
        int.from_bytes(log.topics[3], "big"),
        _signed(log.data[:32]),
        bitmap_complete=True,
    )


Words = dict[int, int]
Ticks = dict[int, tuple[int, int]]


async def load_words(
    rpc: Any, pool: V3Pool, indexes: Iterable[int], block: str = "latest"
) -> V3Pool:
    """``pool`` knowing the bitmap words ``indexes`` too, with the ticks they mark."""
    ((words, ticks),) = await read_words(rpc, [(pool, sorted(set(indexes)))], block)
    try:
        return pool.with_words(words, ticks)
    except ValueError as error:
        raise LoadError(f"V3 pool {pool.address}: {error}") from None


async def read_words(
    rpc: Any, wanted: Sequence[tuple[V3Pool, Sequence[int]]], block: str
) -> list[tuple[Words, Ticks]]:
    """For each ``(pool, word indexes)``: those bitmap words as the node has them at ``block``
    and the ``(liquidity_gross, liquidity_net)`` of every tick they mark, in two batches."""
    bitmap_fn, ticks_fn = POOL.function("tickBitmap"), POOL.function("ticks")
    raw = await eth_calls(
        rpc,
        [(pool.address, bitmap_fn.encode(index)) for pool, indexes in wanted for index in indexes],
        block,
    )
    answers = iter(raw)
    try:
        words = [
            {index: bitmap_fn.decode_output(next(answers))[0] for index in indexes}
            for _, indexes in wanted
        ]
    except ValueError as error:
        raise LoadError(f"V3 tickBitmap: {error}") from None
    marked = [
        [
            ((index << 8) + bit) * pool.tick_spacing
            for index, word in pool_words.items()
            for bit in range(256)
            if word >> bit & 1
        ]
        for (pool, _), pool_words in zip(wanted, words, strict=True)
    ]
    raw = await eth_calls(
        rpc,
        [
            (pool.address, ticks_fn.encode(tick))
            for (pool, _), ticks in zip(wanted, marked, strict=True)
            for tick in ticks
        ],
        block,
    )
    answers = iter(raw)
    read: list[tuple[Words, Ticks]] = []
    for (pool, _), pool_words, ticks in zip(wanted, words, marked, strict=True):
        try:
            infos = {tick: ticks_fn.decode_output(next(answers))[:2] for tick in ticks}
        except ValueError as error:
            raise LoadError(f"V3 pool {pool.address}: {error}") from None
        read.append((pool_words, infos))
    return read


async def load_pools(
    rpc: Any, pools: Sequence[tuple[str, str]], block: str = "latest"
) -> list[tuple[str, PoolState]]:
    """The state of known ``(factory, pool)`` addresses, with the bitmap words around their
    price (:data:`WORDS_AROUND` each side) and the ticks in them."""
    fns = [POOL.function(name) for name in _SCALARS]
    raw = await eth_calls(rpc, [(pool, fn.encode()) for _, pool in pools for fn in fns], block)
    scalars: list[tuple[V3Pool, Sequence[int]]] = []
    for index, (_, address) in enumerate(pools):
        try:
            values = [
                fn.decode_output(raw[len(fns) * index + offset]) for offset, fn in enumerate(fns)
            ]
            (token0,), (token1,), (fee,), (spacing,), slot0, (liquidity,) = values
            pool = V3Pool(
                address, token0.lower(), token1.lower(), fee, spacing, slot0[0], slot0[1], liquidity
            )
            pool.check()
        except ValueError as error:
            raise LoadError(f"V3 pool {address}: {error}") from None
        centre = pool.tick // pool.tick_spacing >> 8
        scalars.append((pool, range(centre - WORDS_AROUND, centre + WORDS_AROUND + 1)))
    loaded = []
    for (factory, _), (pool, _), (words, ticks) in zip(
        pools, scalars, await read_words(rpc, scalars, block), strict=True
    ):
        try:
            loaded.append((factory, pool.with_words(words, ticks)))
        except ValueError as error:
            raise LoadError(f"V3 pool {pool.address}: {error}") from None
    return loaded


async def load_factories(
    rpc: Any, factories: Sequence[str], block: str = "latest", limit: int | None = None
) -> list[tuple[str, PoolState]]:
    """The pools the factories created up to ``block``, as ``(factory, pool)``: in the order
    of their ``PoolCreated`` logs (the oldest first), at most ``limit``."""
    answers = await rpc.batch(
        [
            (
                "eth_getLogs",
                [
                    {
                        "address": factory,
                        "fromBlock": "0x0",
                        "toBlock": block,
                        "topics": ["0x" + V3_POOL_CREATED.hex()],
                    }
                ],
            )
            for factory in factories
        ]
    )
    pools: list[tuple[str, str]] = []
    for factory, answer in zip(factories, answers, strict=True):
        if isinstance(answer, RpcError):
            raise LoadError(f"eth_getLogs of V3 factory {factory} failed: {answer}")
        try:
            created = [pool_from_creation_log(Log.from_rpc(raw)) for raw in answer]
        except (ValueError, TypeError) as error:
            raise LoadError(f"V3 factory {factory}: bad PoolCreated log: {error}") from None
        pools.extend((factory, pool.address) for pool in created)
    return await load_pools(rpc, pools[:limit], block)


async def reread(rpc: Any, pools: Sequence[V3Pool], block: str = "latest") -> list[V3Pool]:
    """The pools as the node has them at ``block``: slot0's price and tick, the in-range
    liquidity, and the bitmap words each holds with the ticks they mark (three batches)."""
    slot0, liquidity = POOL.function("slot0"), POOL.function("liquidity")
    raw = await eth_calls(
        rpc, [(p.address, fn.encode()) for p in pools for fn in (slot0, liquidity)], block
    )
    read = await read_words(rpc, [(p, sorted(p.words)) for p in pools], block)
    fresh = []
    for index, (pool, (words, ticks)) in enumerate(zip(pools, read, strict=True)):
        try:
            price, tick, *_ = slot0.decode_output(raw[2 * index])
            (in_range,) = liquidity.decode_output(raw[2 * index + 1])
            node = replace(
                pool, sqrt_price_x96=price, tick=tick, liquidity=in_range, words=words, ticks=ticks
            )
            node.check()
        except ValueError as error:
            raise LoadError(f"V3 pool {pool.address}: {error}") from None
        fresh.append(node)
    return fresh


def warmup(pool: PoolState) -> Calls:
    """slot0, liquidity and the pool's token balances (what every swap through it reads)."""
    balance = ERC20.function("balanceOf")
    return [
        (pool.address, POOL.function("slot0").encode()),
        (pool.address, POOL.function("liquidity").encode()),
        (pool.token0, balance.encode(pool.address)),
        (pool.token1, balance.encode(pool.address)),
    ]


UNISWAP_V3 = PoolKind(
    name=V3Pool.kind,
    pool_topics=frozenset({V3_SWAP, V3_MINT, V3_BURN, V3_INITIALIZE}),
    creation_topic=V3_POOL_CREATED,
    from_creation_log=pool_from_creation_log,
    load=load_factories,
    warmup=warmup,
    executor_hop=1,  # Executor.Kind.V3 (anvil/contracts/Executor.sol)
    reread=reread,
)
