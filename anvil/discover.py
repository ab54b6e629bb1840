"""The world description of a fork of any chain, read from the chain itself (what ``mevbot fork``
writes when it is given no world JSON of the upstream).

The protocols come in as :class:`Venues` (a network preset's addresses or the user's flags); the
rest is read from the fork at its first block: the pools are what the factories created, found by
each pool kind's own loader (V2 ``allPairs``, V3 ``PoolCreated`` logs, as the bot finds them);
the pools' tokens answer their symbol and decimals; Aave's pool and oracle are what its
PoolAddressesProvider names, and its borrowers are the accounts its pool's ``Borrow`` events name.
:func:`describe_fork` also deploys a fresh Executor (the committed artifact) owned by the
executor role, trusting the pools of those factories, and gives it ether, so the description
works with ``mevbot run`` unchanged, in the shape ``mevbot devnet --out`` writes. The roles are
anvil's public development keys, which a fork holds unlocked and funded.
"""

from __future__ import annotations

import asyncio
import string
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from anvil.deployer import Deployer
from anvil.world import World, deploy_executor, dev_roles
from chain.abi import Abi
from chain.errors import RpcError
from chain.rpc import Rpc, connect, eth_block_number, eth_chain_id, eth_get_logs
from chain.topics import BORROW
from chain.types import MalformedError, hex_to_bytes
from simulation.calls import eth_calls
from simulation.pools import PoolState
from simulation.uniswap_v2 import UNISWAP_V2
from simulation.uniswap_v3 import UNISWAP_V3
from simulation.uniswap_v3_pool import V3Pool

EXECUTOR_ETH = 10 * 10**18  # gas money and the "executor funds" check; fork ether only
TOKEN = Abi.from_signatures(
    "function symbol() returns (string)", "function decimals() returns (uint8)"
)
# aave-v3-core IPoolAddressesProvider: getPool(), getPriceOracle().
PROVIDER = Abi.from_signatures(
    "function getPool() returns (address)", "function getPriceOracle() returns (address)"
)
P = TypeVar("P", bound=PoolState)
_SYMBOL_CHARACTERS = frozenset(string.ascii_letters + string.digits + "-_.+$")


@dataclass(frozen=True, slots=True)
class Venues:
    """Where the protocols are on the forked chain (lowercase addresses).

    ``v2``: each Uniswap V2 (or fork) router with its factory; the first one's factory is the V2
    side of SwapRouter02 and the Universal Router. ``routers``: the other routers by kind
    (``uniswap-v3``, ``uniswap-v3-02``, ``universal-router[-vX]``). ``max_pools`` bounds the
    pools described: the V2 factories' oldest pairs first (in factory order), then the V3
    factory's oldest pools, until that many (None: every pool; mainnet's V2 factory alone has
    hundreds of thousands)."""

    weth: str
    v2: Mapping[str, str] = field(default_factory=dict)
    routers: Mapping[str, str] = field(default_factory=dict)
    v3_factory: str | None = None
    aave_provider: str | None = None
    max_pools: int | None = None


async def describe_fork(http_url: str, ws_url: str, venues: Venues) -> World:
    """Deploy the Executor on the fork at ``http_url`` and describe the fork (see the module)."""
    roles = dev_roles()
    owner = roles["executor"].address
    deployer = Deployer(http_url)
    v2_factories = list(dict.fromkeys(venues.v2.values()))
    executor = await asyncio.to_thread(
        deploy_executor, deployer, owner, venues.weth, v2_factories, venues.v3_factory
    )
    await asyncio.to_thread(deployer.rpc, "anvil_setBalance", executor, hex(EXECUTOR_ETH))
    async with connect(http_url) as rpc:
        chain_id, head = await eth_chain_id(rpc), await eth_block_number(rpc)
        block = hex(head)
        limit = venues.max_pools
        v2 = await UNISWAP_V2.load(rpc, v2_factories, block, limit) if v2_factories else []
        left = None if limit is None else limit - len(v2)
        v3 = []
        if venues.v3_factory and left != 0:
            v3 = await UNISWAP_V3.load(rpc, [venues.v3_factory], block, left)
        pools = [pool for _, pool in (*v2, *v3)]
        tokens = await _tokens(rpc, [venues.weth, *(t for p in pools for t in _pair(p))], block)
        aave = await _aave(rpc, venues.aave_provider, block)
    symbols = {entry["address"]: name for name, entry in tokens.items()}
    return World(
        chain_id=chain_id,
        rpc={"http": http_url, "ws": ws_url},
        roles=roles,
        traders=[],
        tokens=tokens,
        dexes=_dexes(venues, v2, symbols),
        feeds={},
        executor=executor,
        deployed_block=head,
        routers=[
            {"address": a, "kind": "uniswap-v2", "name": f"v2-{i}"}
            for i, a in enumerate(venues.v2, 1)
        ]
        + [{"address": a, "kind": kind, "name": kind} for a, kind in venues.routers.items()],
        v3=_v3(venues, v2_factories, v3, symbols),
        aave=aave,
    )


def _pair(pool: PoolState) -> tuple[str, str]:
    return pool.token0, pool.token1


def _named(taken: Mapping[str, Any], name: str, address: str) -> str:
    """``name``, or ``name@0x1234abcd`` when another address already has it (tokens anyone can
    deploy share symbols)."""
    return name if name not in taken else f"{name}@{address[:10]}"


async def _tokens(rpc: Rpc, addresses: Iterable[str], block: str) -> dict[str, dict[str, Any]]:
    """Each token's symbol (WETH's as ``WETH``) and decimals, by symbol; a token that does not
    answer keeps its address as its name (and 18 decimals)."""
    unique = list(dict.fromkeys(addresses))
    symbol, decimals = TOKEN.function("symbol"), TOKEN.function("decimals")
    answers = await rpc.batch(
        [
            ("eth_call", [{"to": token, "data": "0x" + fn.encode().hex()}, block])
            for token in unique
            for fn in (symbol, decimals)
        ]
    )
    tokens: dict[str, dict[str, Any]] = {}
    for index, address in enumerate(unique):
        name = "WETH" if index == 0 else _read(symbol, answers[2 * index], _symbol) or address
        places = _read(decimals, answers[2 * index + 1], int)
        key = _named(tokens, name, address)
        tokens[key] = {"address": address, "symbol": name, "decimals": places or 18}
    return tokens


def _symbol(value: Any) -> str:
    return "".join(c for c in str(value) if c in _SYMBOL_CHARACTERS)[:20]


def _read(fn: Any, answer: Any, parse: Any) -> Any:
    """The call's single output through ``parse``; None for an error or undecodable answer."""
    if isinstance(answer, RpcError):
        return None
    try:
        return parse(fn.decode_output(hex_to_bytes(answer))[0])
    except (MalformedError, ValueError, TypeError, IndexError):
        return None


def _pool_names(
    pools: Iterable[P], symbols: Mapping[str, str], suffix: Callable[[P], str] = lambda _: ""
) -> dict[str, P]:
    """The pools by ``TOKEN0/TOKEN1`` (and ``suffix``), as the devnet's description names them."""
    named: dict[str, P] = {}
    for pool in pools:
        name = f"{symbols[pool.token0]}/{symbols[pool.token1]}{suffix(pool)}"
        named[_named(named, name, pool.address)] = pool
    return named


def _dexes(
    venues: Venues, v2: list[tuple[str, PoolState]], symbols: Mapping[str, str]
) -> dict[str, dict[str, Any]]:
    dexes = {}
    for index, (router, factory) in enumerate(venues.v2.items(), 1):
        pairs = _pool_names((p for f, p in v2 if f == factory), symbols)
        dexes[f"v2-{index}"] = {
            "factory": factory,
            "router": router,
            "pairs": {
                name: {"address": p.address, "token0": p.token0, "token1": p.token1}
                for name, p in pairs.items()
            },
        }
    return dexes


def _v3(
    venues: Venues,
    v2_factories: list[str],
    v3: list[tuple[str, PoolState]],
    symbols: Mapping[str, str],
) -> dict[str, Any]:
    if venues.v3_factory is None:
        return {}
    pools = (p for _, p in v3 if isinstance(p, V3Pool))
    named = _pool_names(pools, symbols, lambda p: f" {p.fee}")
    return {
        "factory": venues.v3_factory,
        "v2_factory": v2_factories[0] if v2_factories else None,
        "pools": [
            {
                "name": name,
                "address": p.address,
                "token0": p.token0,
                "token1": p.token1,
                "fee": p.fee,
                "tick_spacing": p.tick_spacing,
            }
            for name, p in named.items()
        ],
    }


async def _aave(rpc: Rpc, provider: str | None, block: str) -> dict[str, Any]:
    """Aave V3's pool and oracle as its PoolAddressesProvider names them, and every account that
    borrowed from the pool up to ``block`` (the ``onBehalfOf`` of its Borrow events: the debt's
    owner)."""
    if provider is None:
        return {}
    reads = [PROVIDER.function("getPool"), PROVIDER.function("getPriceOracle")]
    raw = await eth_calls(rpc, [(provider, fn.encode()) for fn in reads], block)
    pool, oracle = (str(fn.decode_output(r)[0]).lower() for fn, r in zip(reads, raw, strict=True))
    topics = ["0x" + BORROW.hex()]
    borrows = await eth_get_logs(
        rpc, {"address": pool, "fromBlock": "0x0", "toBlock": block, "topics": topics}
    )
    # IPool.Borrow(reserve indexed, user, onBehalfOf indexed, amount, mode, rate, referral indexed)
    owners = ("0x" + log.topics[2][12:].hex() for log in borrows if len(log.topics) > 2)
    accounts = dict.fromkeys(owners)
    return {
        "addresses_provider": provider,
        "pool": pool,
        "oracle": oracle,
        "borrowers": [{"address": account} for account in accounts],
    }
