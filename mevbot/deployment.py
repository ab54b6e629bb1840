"""What the bot works with, wherever it came from: the chain-side deployment and the keys.

:class:`Deployment` holds the node endpoints, relays, the executor, WETH, routers, factories and
the lending pool, resolved from the config file (:mod:`mevbot.resolve`) or from the devnet's
JSON (:func:`deployment_from_world`). :class:`Keys` holds the bot's signing keys and never
shows them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount

from execution.signer import LocalSigner
from simulation.pool_kinds import pool_kind
from simulation.pools import PoolKind
from simulation.state import ChainState
from simulation.uniswap_v2 import UNISWAP_V2
from watcher.decode import RouterKind

# Router kind names in the config and the devnet's world JSON. "universal-router" is the version
# the devnet deploys: the npm package @uniswap/universal-router 2.1.0.
ROUTER_KINDS = {
    "uniswap-v2": RouterKind.UNISWAP_V2_ROUTER,
    "uniswap-v3": RouterKind.UNISWAP_V3_SWAP_ROUTER,
    "uniswap-v3-02": RouterKind.UNISWAP_V3_SWAP_ROUTER02,
    "universal-router": RouterKind.UNIVERSAL_ROUTER_V2_1,
    **{kind.value: kind for kind in RouterKind if kind.value.startswith("universal-router-")},
}


@dataclass(frozen=True, slots=True)
class Deployment:
    """The chain-side facts the bot needs, wherever they came from."""

    network: str
    chain_id: int
    node_ws: str
    node_http: str
    relays: tuple[tuple[str, str], ...]
    executor: str
    weth: str
    routers: dict[str, RouterKind]
    router_factories: dict[str, str]
    lending_pool: str | None
    lending_from_block: int = 0
    # Factories whose pools are tracked without a router of ours: factory -> pool kind name.
    pool_factories: dict[str, str] = field(default_factory=dict)
    # Routers that trade other protocols too (SwapRouter, SwapRouter02, the Universal Router):
    # router -> protocol ("uniswap-v2", "uniswap-v3") -> the factory whose pools it uses.
    router_protocols: dict[str, dict[str, str]] = field(default_factory=dict)
    relay_dialects: dict[str, str] = field(default_factory=dict)  # relay name -> dialect
    aave_provider: str | None = None  # Aave V3's PoolAddressesProvider, where it is deployed
    # A MEV-Share node: its event stream (GET) and the JSON-RPC endpoint for mev_sendBundle
    # (Flashbots: mev-share.flashbots.net and relay.flashbots.net; the devnet's serves both).
    mevshare_stream: str | None = None
    mevshare_rpc: str | None = None
    svr_aggregators: tuple[str, ...] = ()  # SVR dual aggregators whose updates come as hints

    @property
    def factories(self) -> list[str]:
        """Every V2 factory the routers trade through, once each."""
        return sorted(set(self.router_factories.values()))

    @property
    def venues(self) -> dict[str, dict[str, str]]:
        """Every router's factories by protocol: what routes a pending swap to its pools."""
        venues = {router: {"uniswap-v2": f} for router, f in self.router_factories.items()}
        for router, by_protocol in self.router_protocols.items():
            venues.setdefault(router, {}).update(by_protocol)
        return venues

    @property
    def pool_kinds(self) -> dict[str, PoolKind]:
        """Every factory whose pools the bot tracks, with its pool kind (the routers' factories
        are Uniswap V2's)."""
        kinds = {factory: UNISWAP_V2 for factory in self.factories}
        kinds.update({factory: pool_kind(name) for factory, name in self.pool_factories.items()})
        return kinds


def chain_state(deployment: Deployment, history: int = 128) -> ChainState:
    """An empty state of what the deployment's bot follows: the routers' venues, the factories'
    pool kinds and the lending market (``history`` blocks of undo for reorgs)."""
    return ChainState(
        routers=deployment.venues,
        factories=deployment.pool_kinds,
        lending_pool=deployment.lending_pool,
        history=history,
    )


@dataclass(frozen=True, slots=True)
class Keys:
    """The bot's keys: the executor owner signs bundles, the searcher key signs relay requests."""

    executor: LocalSigner
    searcher: LocalAccount
    keeper: LocalSigner | None = None  # signs the oracle keeper's public updates

    def __repr__(self) -> str:
        keeper = self.keeper.address if self.keeper else None
        return (
            f"Keys(executor={self.executor.address}, "
            f"searcher={self.searcher.address.lower()}, keeper={keeper})"
        )


def deployment_from_world(world: Any, relay_url: str | None) -> Deployment:
    """The devnet's deployment, from its JSON description (``mevbot devnet --out``)."""
    return Deployment(
        network="devnet",
        chain_id=world.chain_id,
        node_ws=world.rpc["ws"],
        node_http=world.rpc["http"],
        relays=(("devnet", relay_url),) if relay_url else (),
        executor=world.executor,
        weth=world.tokens["WETH"]["address"],
        # Worlds from before the V3 side list only their V2 routers, in ``dexes``.
        routers={d["router"]: RouterKind.UNISWAP_V2_ROUTER for d in world.dexes.values()}
        | {r["address"]: ROUTER_KINDS[r["kind"]] for r in world.routers},
        router_factories={d["router"]: d["factory"] for d in world.dexes.values()},
        router_protocols=_v3_venues(world),
        pool_factories={world.v3["factory"]: "uniswap-v3"} if world.v3 else {},
        lending_pool=world.aave["pool"],
        relay_dialects={"devnet": "buildernet"},  # the devnet relay speaks BuilderNet
        aave_provider=world.aave.get("addresses_provider"),
        mevshare_stream=world.extra.get("mevshare"),
        mevshare_rpc=world.extra.get("mevshare"),
        svr_aggregators=tuple(
            f["svr_aggregator"] for f in world.feeds.values() if "svr_aggregator" in f
        ),
    )


def _v3_venues(world: Any) -> dict[str, dict[str, str]]:
    """The devnet's V3 routers: SwapRouter trades V3 pools; SwapRouter02 and the Universal Router
    trade V3 pools and the pairs of the V2 factory they were deployed with."""
    if not world.v3:
        return {}
    v3 = {"uniswap-v3": world.v3["factory"]}
    both = {**v3, "uniswap-v2": world.v3["v2_factory"]}
    return {
        r["address"]: v3 if r["kind"] == "uniswap-v3" else both
        for r in world.routers
        # every Universal Router version (a fork's world names them by version) trades both
        if r["kind"] in ("uniswap-v3", "uniswap-v3-02") or r["kind"].startswith("universal-router")
    }


def devnet_keys(world: Any) -> Keys:
    """The devnet's public development keys: executor owner, searcher, oracle updater."""
    return Keys(
        executor=LocalSigner(world.roles["executor"].private_key),
        searcher=Account.from_key(world.roles["searcher"].private_key),
        keeper=LocalSigner(world.roles["oracle_updater"].private_key),
    )
