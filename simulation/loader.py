"""Fill a :class:`~simulation.state.ChainState` from the chain with batched JSON-RPC calls.

Pools are discovered from factories (``allPairsLength`` then ``allPairs(i)``), then their tokens
and reserves are read; feeds via ``latestRoundData``; the lending market's reserves via its
config getters and positions by replaying its events since a start block. Every read is one
batch per kind of call (chunked), never one round trip per pool.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from chain.abi import Abi
from chain.errors import RpcError
from chain.topics import LENDING_TOPICS
from chain.types import Log, MalformedError, hex_to_bytes
from simulation.amm import Pool
from simulation.lending import ReserveConfig
from simulation.state import ChainState, FeedAnswer

FACTORY = Abi.from_signatures(
    "function allPairsLength() returns (uint256)",
    "function allPairs(uint256) returns (address)",
)
PAIR = Abi.from_signatures(
    "function token0() returns (address)",
    "function token1() returns (address)",
    "function getReserves() returns (uint112, uint112, uint32)",
)
FEED = Abi.from_signatures(
    "function latestRoundData() returns (uint80, int256, uint256, uint256, uint80)"
)
LENDING = Abi.from_signatures(
    "function getReservesList() returns (address[])",
    "function getReserveConfig(address) returns (address, uint8, uint256, uint256, uint256)",
)
ERC20 = Abi.from_signatures("function decimals() returns (uint8)")
CHUNK = 500


class LoadError(RuntimeError):
    """A state read failed (which call, and the node's answer)."""


async def _eth_calls(
    rpc: Any, calls: Sequence[tuple[str, bytes]], block: str = "latest"
) -> list[bytes]:
    """``eth_call`` each (to, data) in batches; any failure is a :class:`LoadError`."""
    results: list[bytes] = []
    for start in range(0, len(calls), CHUNK):
        chunk = calls[start : start + CHUNK]
        answers = await rpc.batch(
            [("eth_call", [{"to": to, "data": "0x" + data.hex()}, block]) for to, data in chunk]
        )
        for (to, data), answer in zip(chunk, answers, strict=True):
            if isinstance(answer, RpcError):
                raise LoadError(f"eth_call to {to} (0x{data[:4].hex()}) failed: {answer}")
            try:
                results.append(hex_to_bytes(answer))
            except MalformedError as error:
                raise LoadError(f"eth_call to {to}: {error.reason}") from None
    return results


async def load_pools(
    rpc: Any, state: ChainState, factories: Iterable[str], block: str = "latest"
) -> int:
    """Discover every pair of the factories and load tokens and reserves; returns the count."""
    length_fn, pair_fn = FACTORY.function("allPairsLength"), FACTORY.function("allPairs")
    factories = list(factories)
    lengths = await _eth_calls(rpc, [(f, length_fn.encode()) for f in factories], block)
    indexed = [
        (factory, index)
        for factory, raw in zip(factories, lengths, strict=True)
        for index in range(length_fn.decode_output(raw)[0])
    ]
    raw_pairs = await _eth_calls(rpc, [(f, pair_fn.encode(i)) for f, i in indexed], block)
    pairs = [pair_fn.decode_output(raw)[0].lower() for raw in raw_pairs]
    await load_pairs(rpc, state, [(f, p) for (f, _), p in zip(indexed, pairs, strict=True)], block)
    return len(pairs)


async def load_pairs(
    rpc: Any, state: ChainState, pairs: Sequence[tuple[str, str]], block: str = "latest"
) -> None:
    """Load token0, token1 and reserves of known (factory, pair) addresses."""
    fns = [PAIR.function(name) for name in ("token0", "token1", "getReserves")]
    calls = [(pair, fn.encode()) for _, pair in pairs for fn in fns]
    raw = await _eth_calls(rpc, calls, block)
    for index, (factory, pair) in enumerate(pairs):
        (token0,) = fns[0].decode_output(raw[3 * index])
        (token1,) = fns[1].decode_output(raw[3 * index + 1])
        reserve0, reserve1, _ = fns[2].decode_output(raw[3 * index + 2])
        state.add_pool(factory, Pool(pair, token0.lower(), token1.lower(), reserve0, reserve1))


async def load_feeds(
    rpc: Any, state: ChainState, feeds: Iterable[str], block: str = "latest"
) -> None:
    fn = FEED.function("latestRoundData")
    feeds = list(feeds)
    raw = await _eth_calls(rpc, [(feed, fn.encode()) for feed in feeds], block)
    for feed, answer in zip(feeds, raw, strict=True):
        round_id, value, _, updated_at, _ = fn.decode_output(answer)
        state.set_feed(FeedAnswer(feed, round_id, value, updated_at))


async def load_lending(
    rpc: Any, state: ChainState, from_block: int, to_block: int | str = "latest"
) -> int:
    """Reserve configs and every position, replayed from the pool's events; returns the count
    of users with a position."""
    pool = state.lending_pool
    if pool is None:
        raise LoadError("no lending pool configured")
    list_fn, config_fn = LENDING.function("getReservesList"), LENDING.function("getReserveConfig")
    (assets,) = list_fn.decode_output((await _eth_calls(rpc, [(pool, list_fn.encode())]))[0])
    configs = await _eth_calls(rpc, [(pool, config_fn.encode(a)) for a in assets])
    for asset, raw in zip(assets, configs, strict=True):
        feed, decimals, ltv, threshold, bonus = config_fn.decode_output(raw)
        asset = asset.lower()
        state.reserve_configs[asset] = ReserveConfig(asset, decimals, ltv, threshold, bonus)
        state.feed_assets[feed.lower()] = asset
    to = to_block if isinstance(to_block, str) else hex(to_block)
    raw_logs = await rpc.call(
        "eth_getLogs",
        [
            {
                "address": pool,
                "fromBlock": hex(from_block),
                "toBlock": to,
                "topics": [["0x" + t.hex() for t in LENDING_TOPICS]],
            }
        ],
    )
    state.replay_lending(Log.from_rpc(raw) for raw in raw_logs)
    return len(state.positions)
