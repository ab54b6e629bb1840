"""Uniswap V2 as a pool kind: pairs discovered from their factories, followed by ``Sync``.

Pairs are listed with ``allPairsLength`` then ``allPairs(i)``, and their tokens and reserves
read, each kind of call in batches; a new pair arrives with its factory's ``PairCreated`` and
fills in from its first ``Sync``. The pool values and their exact math are
:class:`simulation.amm.Pool`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from chain.abi import Abi
from chain.topics import PAIR_CREATED, SYNC
from chain.types import Log
from simulation.amm import Pool
from simulation.calls import LoadError, eth_calls
from simulation.pools import Calls, PoolKind, PoolState

FACTORY = Abi.from_signatures(
    "function allPairsLength() returns (uint256)",
    "function allPairs(uint256) returns (address)",
)
PAIR = Abi.from_signatures(
    "function token0() returns (address)",
    "function token1() returns (address)",
    "function getReserves() returns (uint112, uint112, uint32)",
    "function balanceOf(address) returns (uint256)",
)


def _address(word: bytes) -> str:
    return "0x" + word[-20:].hex()


def pair_from_creation_log(log: Log) -> Pool:
    """``PairCreated(token0 indexed, token1 indexed, pair, index)``: the new, empty pair."""
    if len(log.topics) != 3 or len(log.data) != 64:
        raise ValueError("PairCreated needs 3 topics and two data words")
    return Pool(_address(log.data[:32]), _address(log.topics[1]), _address(log.topics[2]), 0, 0)


async def load_pairs(
    rpc: Any, pairs: Sequence[tuple[str, str]], block: str = "latest"
) -> list[tuple[str, PoolState]]:
    """Token0, token1 and reserves of known ``(factory, pair)`` addresses."""
    fns = [PAIR.function(name) for name in ("token0", "token1", "getReserves")]
    raw = await eth_calls(rpc, [(pair, fn.encode()) for _, pair in pairs for fn in fns], block)
    loaded: list[tuple[str, PoolState]] = []
    for index, (factory, pair) in enumerate(pairs):
        (token0,) = fns[0].decode_output(raw[3 * index])
        (token1,) = fns[1].decode_output(raw[3 * index + 1])
        reserve0, reserve1, _ = fns[2].decode_output(raw[3 * index + 2])
        loaded.append((factory, Pool(pair, token0.lower(), token1.lower(), reserve0, reserve1)))
    return loaded


async def load_factories(
    rpc: Any, factories: Sequence[str], block: str = "latest", limit: int | None = None
) -> list[tuple[str, PoolState]]:
    """The pairs of the factories, as ``(factory, pair)``: each factory's in ``allPairs``
    order (the oldest first), at most ``limit`` in all."""
    length_fn, pair_fn = FACTORY.function("allPairsLength"), FACTORY.function("allPairs")
    lengths = await eth_calls(rpc, [(f, length_fn.encode()) for f in factories], block)
    indexed = [
        (factory, index)
        for factory, raw in zip(factories, lengths, strict=True)
        for index in range(length_fn.decode_output(raw)[0])
    ][:limit]
    raw_pairs = await eth_calls(rpc, [(f, pair_fn.encode(i)) for f, i in indexed], block)
    pairs = [pair_fn.decode_output(raw)[0].lower() for raw in raw_pairs]
    return await load_pairs(rpc, [(f, p) for (f, _), p in zip(indexed, pairs, strict=True)], block)


async def reread(rpc: Any, pairs: Sequence[Pool], block: str = "latest") -> list[Pool]:
    """The pairs with their reserves as the node has them at ``block``, in one batch."""
    fn = PAIR.function("getReserves")
    raw = await eth_calls(rpc, [(pair.address, fn.encode()) for pair in pairs], block)
    fresh = []
    for pair, answer in zip(pairs, raw, strict=True):
        try:
            reserve0, reserve1, _ = fn.decode_output(answer)
        except ValueError as error:
            raise LoadError(f"V2 pair {pair.address}: {error}") from None
        fresh.append(replace(pair, reserve0=reserve0, reserve1=reserve1))
    return fresh


def warmup(pool: PoolState) -> Calls:
    """The pair's reserves and its token balances (what a swap through it reads)."""
    balance = PAIR.function("balanceOf")
    return [
        (pool.address, PAIR.function("getReserves").encode()),
        (pool.token0, balance.encode(pool.address)),
        (pool.token1, balance.encode(pool.address)),
    ]


UNISWAP_V2 = PoolKind(
    name=Pool.kind,
    pool_topics=frozenset({SYNC}),
    creation_topic=PAIR_CREATED,
    from_creation_log=pair_from_creation_log,
    load=load_factories,
    warmup=warmup,
    executor_hop=0,  # Executor.Kind.V2 (anvil/contracts/Executor.sol)
    reread=reread,
)
