"""Fill a :class:`~simulation.state.ChainState` from the chain with batched JSON-RPC calls.

Pools are loaded by their kind (:class:`~simulation.pools.PoolKind`) from the factories the
state follows; feed proxies via ``latestRoundData``, ``aggregator()`` and ``phaseId()``; the
Aave V3 Pool's revision, reserves, oracle sources and users' scaled positions at one block.
Every read is one batch per kind of call (chunked), never one round trip per pool. A state loaded
at an earlier block is brought up to a later one by :func:`catch_up`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from chain.abi import Abi
from chain.rpc import eth_get_block
from chain.topics import BALANCE_TRANSFER, BORROW, SUPPLY
from chain.types import Log
from simulation.aave_v3 import AavePosition, ReserveState, check_revision
from simulation.calls import LoadError, eth_calls
from simulation.pools import PoolKind
from simulation.state import ChainState, FeedAnswer, FeedLink

__all__ = [
    "AaveSnapshot",
    "LoadError",
    "catch_up",
    "load_aave",
    "load_feeds",
    "load_lending",
    "load_pools",
]

# EACAggregatorProxy's reads (Chainlink AggregatorProxy.sol): the answer and the current phase.
FEED = Abi.from_signatures(
    "function latestRoundData() returns (uint80, int256, uint256, uint256, uint80)",
    "function aggregator() returns (address)",
    "function phaseId() returns (uint16)",
)
# Aave V3's IPool, AaveOracle and scaled-balance tokens; the ReserveData and
# UserConfigurationMap structs are all-static, so their fields are read as flat words.
AAVE = Abi.from_signatures(
    "function POOL_REVISION() returns (uint256)",
    "function getReservesList() returns (address[])",
    "function getReserveData(address) returns (uint256, uint128, uint128, uint128, uint128,"
    " uint128, uint40, uint16, address, address, address, address, uint128, uint128, uint128)",
    "function getUserConfiguration(address) returns (uint256)",
    "function scaledBalanceOf(address) returns (uint256)",
    "function getAssetPrice(address) returns (uint256)",
    "function getSourceOfAsset(address) returns (address)",
    "function ADDRESSES_PROVIDER() returns (address)",
    "function getPriceOracle() returns (address)",
    "function FLASHLOAN_PREMIUM_TOTAL() returns (uint128)",
)


@dataclass(frozen=True, slots=True)
class AaveSnapshot:
    """Aave V3 as of one block: the pool's revision, its reserves, the oracle's prices and the
    positions of the users asked for."""

    revision: int
    reserves: dict[str, ReserveState]
    prices: dict[str, int]
    positions: dict[str, AavePosition]


async def load_pools(
    rpc: Any, state: ChainState, block: str = "latest", limit: int | None = None
) -> int:
    """The pools of the state's factories, each kind loaded its own way; returns the count.
    ``limit`` bounds it: the kinds in the order of their first factory in ``state.factories``,
    each factory's oldest pools first, until ``limit`` are loaded (None: every pool)."""
    by_kind: dict[PoolKind, list[str]] = {}
    for factory, kind in state.factories.items():
        by_kind.setdefault(kind, []).append(factory)
    count = 0
    for kind, factories in by_kind.items():
        left = None if limit is None else limit - count
        if left == 0:
            break
        for factory, pool in await kind.load(rpc, factories, block, left):
            state.add_pool(factory, pool)
            count += 1
    return count


async def load_feeds(
    rpc: Any, state: ChainState, feeds: Iterable[str], block: str = "latest"
) -> None:
    """Each proxy's latest answer and the aggregator it reads now (whose transmits and events
    the state follows), in one batch."""
    reads = [FEED.function(name) for name in ("latestRoundData", "aggregator", "phaseId")]
    feeds = list(feeds)
    raw = await eth_calls(rpc, [(feed, fn.encode()) for feed in feeds for fn in reads], block)
    for index, feed in enumerate(feeds):
        answer, aggregator, phase = (
            fn.decode_output(data)
            for fn, data in zip(reads, raw[3 * index : 3 * index + 3], strict=True)
        )
        round_id, value, _, updated_at, _ = answer
        state.set_feed(FeedAnswer(feed, round_id, value, updated_at))
        state.link_aggregator(aggregator[0].lower(), FeedLink(feed, phase[0]))


async def load_aave(
    rpc: Any, pool: str, oracle: str, users: Iterable[str], block: str = "latest"
) -> AaveSnapshot:
    """Reserves, prices and the users' scaled positions, in three batches; a pool revision this
    bot has no rules for is refused (:class:`~simulation.aave_v3.UnsupportedRevision`)."""
    fn = AAVE.function
    revision_raw, list_raw = await eth_calls(
        rpc, [(pool, fn("POOL_REVISION").encode()), (pool, fn("getReservesList").encode())], block
    )
    (revision,) = fn("POOL_REVISION").decode_output(revision_raw)
    check_revision(revision)
    assets = [a.lower() for a in fn("getReservesList").decode_output(list_raw)[0]]
    raw = await eth_calls(
        rpc,
        [(pool, fn("getReserveData").encode(a)) for a in assets]
        + [(oracle, fn("getAssetPrice").encode(a)) for a in assets],
        block,
    )
    reserves = {}
    for asset, data in zip(assets, raw, strict=False):
        (
            config,
            liquidity_index,
            liquidity_rate,
            borrow_index,
            borrow_rate,
            _,
            updated,
            rid,
            a_token,
            _,
            debt_token,
            *_,
        ) = fn("getReserveData").decode_output(data)
        reserves[asset] = ReserveState(
            asset,
            rid,
            config,
            liquidity_index,
            liquidity_rate,
            borrow_index,
            borrow_rate,
            updated,
            a_token.lower(),
            debt_token.lower(),
        )
    prices = {
        a: fn("getAssetPrice").decode_output(data)[0]
        for a, data in zip(assets, raw[len(assets) :], strict=True)
    }
    users = list(users)
    balance = fn("scaledBalanceOf")
    calls = [(pool, fn("getUserConfiguration").encode(u)) for u in users]
    calls += [
        (token, balance.encode(u))
        for u in users
        for a in assets
        for token in (reserves[a].a_token, reserves[a].variable_debt_token)
    ]
    raw = await eth_calls(rpc, calls, block)
    positions = {}
    per_user = 2 * len(assets)
    for index, user in enumerate(users):
        (configuration,) = fn("getUserConfiguration").decode_output(raw[index])
        start = len(users) + index * per_user
        values = [balance.decode_output(r)[0] for r in raw[start : start + per_user]]
        positions[user] = AavePosition(
            dict(zip(assets, values[0::2], strict=True)),
            dict(zip(assets, values[1::2], strict=True)),
            configuration,
        )
    return AaveSnapshot(revision, reserves, prices, positions)


async def load_lending(
    rpc: Any, state: ChainState, from_block: int, to_block: int | str = "latest"
) -> int:
    """The state's Aave V3 Pool as of ``to_block``: its reserves, the oracle's feed proxies
    (``getSourceOfAsset``: the feeds whose answers price each asset) and the scaled position of
    every user its Supply and Borrow events (and its aTokens' transfers) since ``from_block``
    name; returns the count of users with a position. An unsupported pool revision is a
    :class:`LoadError` saying so."""
    pool = state.lending_pool
    if pool is None:
        raise LoadError("no lending pool configured")
    header = await rpc.call("eth_getBlockByNumber", [_block_tag(to_block), False])
    if not isinstance(header, dict):
        raise LoadError(f"block {to_block} not found")
    block, timestamp = header["number"], int(header["timestamp"], 16)
    fn = AAVE.function
    names = ("POOL_REVISION", "ADDRESSES_PROVIDER", "FLASHLOAN_PREMIUM_TOTAL")
    revision_raw, provider_raw, premium_raw = await eth_calls(
        rpc, [(pool, fn(name).encode()) for name in names], block
    )
    check_revision(fn("POOL_REVISION").decode_output(revision_raw)[0])  # before any other read
    (provider,) = fn("ADDRESSES_PROVIDER").decode_output(provider_raw)
    (state.flash_loan_premium,) = fn("FLASHLOAN_PREMIUM_TOTAL").decode_output(premium_raw)
    (oracle_raw,) = await eth_calls(rpc, [(provider, fn("getPriceOracle").encode())], block)
    oracle = fn("getPriceOracle").decode_output(oracle_raw)[0].lower()
    users = await _users(rpc, pool, from_block, block)
    snapshot = await load_aave(rpc, pool, oracle, [], block)
    a_tokens = [r.a_token for r in snapshot.reserves.values()]
    if a_tokens:
        users |= await _users(rpc, a_tokens, from_block, block, BALANCE_TRANSFER)
    snapshot = await load_aave(rpc, pool, oracle, sorted(users), block)
    assets = list(snapshot.reserves)
    sources = await eth_calls(
        rpc, [(oracle, fn("getSourceOfAsset").encode(a)) for a in assets], block
    )
    for asset, raw in zip(assets, sources, strict=True):
        state.feed_assets[fn("getSourceOfAsset").decode_output(raw)[0].lower()] = asset
        state.set_reserve(snapshot.reserves[asset])
    for user, position in snapshot.positions.items():
        if position.scaled_collateral or position.scaled_debt or position.configuration:
            state.set_position(user, position)
    state.timestamp = timestamp
    return len(state.positions)


def _block_tag(block: int | str) -> str:
    return block if isinstance(block, str) else hex(block)


async def _users(
    rpc: Any,
    address: str | list[str],
    from_block: int,
    to_block: str,
    topic: bytes | None = None,
) -> set[str]:
    """Users an Aave pool's Supply and Borrow events (``onBehalfOf``, topic 2), or its aTokens'
    BalanceTransfer events (the recipient, topic 2), name between the two blocks."""
    topics = [SUPPLY, BORROW] if topic is None else [topic]
    raw_logs = await rpc.call(
        "eth_getLogs",
        [
            {
                "address": address,
                "fromBlock": hex(from_block),
                "toBlock": to_block,
                "topics": [["0x" + t.hex() for t in topics]],
            }
        ],
    )
    return {"0x" + Log.from_rpc(raw).topics[2][-20:].hex() for raw in raw_logs}


async def catch_up(rpc: Any, state: ChainState, number: int, block_hash: str) -> int:
    """Bring a state loaded at an earlier block up to block ``number``: the logs it follows from
    the blocks after its own (one ``eth_getLogs``) are applied block by block, in order, each at
    its block's time (Aave's indexes are dated with it). Returns how many blocks had such logs."""
    start = state.block_number + 1
    if number < start:
        return 0
    raw_logs = await rpc.call(
        "eth_getLogs",
        [
            {
                "fromBlock": hex(start),
                "toBlock": hex(number),
                "topics": [["0x" + t.hex() for t in state.log_topics]],
            }
        ],
    )
    by_block: dict[tuple[int, str], list[Log]] = {}
    for raw in raw_logs:
        log = Log.from_rpc(raw)
        by_block.setdefault((log.block_number, log.block_hash), []).append(log)
    for (block, hash_), logs in sorted(by_block.items()):
        header = await eth_get_block(rpc, block)
        timestamp = header.timestamp if header is not None else None
        state.apply_block(block, hash_, sorted(logs, key=lambda log: log.log_index), timestamp)
    head = await eth_get_block(rpc, number)
    if head is not None:
        state.timestamp = head.timestamp
    state.block_number, state.block_hash = number, block_hash
    return len(by_block)
