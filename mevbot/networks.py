"""What the protocols the bot knows have deployed on each public network, with the source of every
address, and what the bot therefore will not do there.

The config presets (:data:`mevbot.config.PRESETS`) take from here what the bot reads (WETH, the
routers it decodes, Universal Routers among them, the V2 factories whose pools it loads, the
MEV-Share stream and the endpoint its bundles go to); the rest (V3 factories and quoters, Aave's
PoolAddressesProvider) is what :func:`limits` names when it tells the user, at start and in
``mevbot doctor``, what the bot will not do on a network.

Sources, one per family (quoted in the comments below):
- Uniswap V2: docs.uniswap.org "V2 Deployment Addresses" (Uniswap/docs
  content/protocols/v2/deployments.mdx): Mainnet and Sepolia rows; no Hoodi row.
- Uniswap V3, SwapRouter02, Universal Router and WETH: Uniswap/docs
  content/protocols/v3/deployments/v3-ethereum-deployments.mdx (Mainnet and Ethereum Sepolia
  columns, "Wrapped Native Token Addresses" table); the Universal Router versions per chain:
  Uniswap/universal-router deploy-addresses/mainnet.json and sepolia.json (there is no Hoodi file).
- Aave V3: bgd-labs/aave-address-book src/AaveV3Ethereum.sol and src/AaveV3Sepolia.sol
  (POOL_ADDRESSES_PROVIDER); the address book has no Hoodi market.
- MEV-Share: flashbots-docs (mainnet stream https://mev-share.flashbots.net; Sepolia
  https://mev-share-sepolia.flashbots.net; Holesky's was decommissioned in July 2025, commit
  3f68e1a; Flashbots runs none on Hoodi): /work/shared/reference/relay-keepers-uniswap.md §1.
  Its bundles (``mev_sendBundle``) go to the Flashbots bundle relay: flashbots-docs
  flashbots-mev-share/release-notes/2023-03 ("New endpoints added to Flashbots bundle relay
  (relay.flashbots.net): mev_sendBundle ... mev_simBundle"); the Sepolia relay is
  https://relay-sepolia.flashbots.net (flashbots-docs flashbots-auction/advanced/testnets,
  "Bundle Relay URLS").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mevbot.deployment import Deployment


@dataclass(frozen=True, slots=True)
class Protocols:
    """The known protocols' addresses on one network (lowercase); None where not deployed."""

    weth: str | None = None
    uniswap_v2_factory: str | None = None
    uniswap_v2_router: str | None = None
    uniswap_v3_factory: str | None = None
    quoter_v2: str | None = None
    swap_router: str | None = None
    swap_router02: str | None = None
    # address -> the decoder's version name (watcher/decode_universal.py's command tables)
    universal_routers: Mapping[str, str] = field(default_factory=dict)
    aave_v3_addresses_provider: str | None = None
    mev_share_stream: str | None = None
    mev_share_bundles: str | None = None  # where mev_sendBundle goes


NETWORKS: dict[str, Protocols] = {
    "mainnet": Protocols(
        # v3-ethereum-deployments.mdx, Wrapped Native Token Addresses: Ethereum WETH
        weth="0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2",
        # v2 deployments.mdx, Mainnet: Factory, V2Router02
        uniswap_v2_factory="0x5c69bee701ef814a2b6a3edd4b1652cb9cc5aa6f",
        uniswap_v2_router="0x7a250d5630b4cf539739df2c5dacb4c659f2488d",
        # v3-ethereum-deployments.mdx, Mainnet column: UniswapV3Factory, QuoterV2, SwapRouter,
        # SwapRouter02
        uniswap_v3_factory="0x1f98431c8ad98523631ae4a59f267346ea31f984",
        quoter_v2="0x61ffe014ba17989e743c5f6cb21bf9697530b21e",
        swap_router="0xe592427a0aece92de3edee1f18e0157c05861564",
        swap_router02="0x68b3465833fb72a70ecdf485e0e4c7bd8665fc45",
        # universal-router deploy-addresses/mainnet.json: UniversalRouterV2_1_1,
        # UniversalRouterV2, UniversalRouterV1_2_V2Support, UniversalRouterV1
        universal_routers={
            "0x4c82d1fbfe28c977cbb58d8c7ff8fcf9f70a2cca": "universal-router-v2.1.1",
            "0x66a9893cc07d91d95644aedd05d03f95e1dba8af": "universal-router-v2",
            "0x3fc91a3afd70395cd496c647d5a6cc9d4b2b7fad": "universal-router-v1.2",
            "0xef1c6e67703c7bd7107eed8303fbe6ec2554bf6b": "universal-router-v1",
        },
        # aave-address-book AaveV3Ethereum.POOL_ADDRESSES_PROVIDER
        aave_v3_addresses_provider="0x2f39d218133afab8f2b819b1066c7e434ad94e9e",
        mev_share_stream="https://mev-share.flashbots.net",
        mev_share_bundles="https://relay.flashbots.net",
    ),
    "sepolia": Protocols(
        # v3-ethereum-deployments.mdx, Wrapped Native Token Addresses: Sepolia WETH
        weth="0xfff9976782d46cc05630d1f6ebab18b2324d6b14",
        # v2 deployments.mdx, Sepolia: Factory, V2Router02
        uniswap_v2_factory="0xf62c03e08ada871a0beb309762e260a7a6a880e6",
        uniswap_v2_router="0xee567fe1712faf6149d80da1e6934e354124cfe3",
        # v3-ethereum-deployments.mdx, Ethereum Sepolia column: UniswapV3Factory, QuoterV2,
        # SwapRouter02 (no SwapRouter there)
        uniswap_v3_factory="0x0227628f3f023bb0b980b67d528571c95c6dac1c",
        quoter_v2="0xed1f6473345f45b75f8179591dd5ba1888cf2fb3",
        swap_router02="0x3bfa4769fb09eefc5a80d6e87c3b9c650f7ae48e",
        # universal-router deploy-addresses/sepolia.json: UniversalRouterV2,
        # UniversalRouterV1_2_V2Support
        universal_routers={
            "0x3a9d48ab9751398bbfa63ad67599bb04e4bdf98b": "universal-router-v2",
            "0x3fc91a3afd70395cd496c647d5a6cc9d4b2b7fad": "universal-router-v1.2",
        },
        # aave-address-book AaveV3Sepolia.POOL_ADDRESSES_PROVIDER
        aave_v3_addresses_provider="0x012bac54348c0e635dcac9d5fb99f06f24136c9a",
        mev_share_stream="https://mev-share-sepolia.flashbots.net",
        mev_share_bundles="https://relay-sepolia.flashbots.net",
    ),
    # Hoodi is a staking and infrastructure testnet (eth-clients/hoodi README: "For testing
    # decentralized applications ... please use Sepolia"): none of the sources above lists it.
    "hoodi": Protocols(),
}


def preset_fields(network: str, v2_forks: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The config fields the bot reads, as the network's protocols give them; ``v2_forks``
    adds Uniswap V2 forks (router -> factory)."""
    known = NETWORKS[network]
    fields: dict[str, Any] = {}
    if known.weth:
        fields["weth"] = known.weth
    v2 = dict(v2_forks or {})
    if known.uniswap_v2_router and known.uniswap_v2_factory:
        v2 = {known.uniswap_v2_router: known.uniswap_v2_factory, **v2}
    routers = dict.fromkeys(v2, "uniswap-v2")
    if known.swap_router:
        routers[known.swap_router] = "uniswap-v3"
    if known.swap_router02:
        routers[known.swap_router02] = "uniswap-v3-02"
    routers.update(known.universal_routers)
    if v2:
        fields["v2_factories"] = v2
    if routers:
        fields["routers"] = routers
    if known.mev_share_stream and known.mev_share_bundles:
        fields["mev_share_url"] = known.mev_share_stream
        fields["mev_share_bundle_url"] = known.mev_share_bundles
    return fields


def limits(deployment: Deployment) -> list[str]:
    """What the bot will not do on the deployment's network, one sentence each."""
    known = NETWORKS.get(deployment.network)
    if known is None:
        return []
    network = deployment.network
    found = []
    if not deployment.pool_kinds:
        found.append(
            f"no Uniswap V2 on {network} (Uniswap's deployments list none): no backrun "
            "arbitrage unless v2_factories names a DEX"
        )
    if known.uniswap_v3_factory:
        found.append(
            f"Uniswap V3 (factory {known.uniswap_v3_factory}): its pools are not tracked, "
            "so V3 swaps are not backrun"
        )
    if deployment.lending_pool is None:
        aave = known.aave_v3_addresses_provider
        found.append(
            f"Aave V3 (PoolAddressesProvider {aave}) is not read by the liquidation keeper: "
            "no liquidations"
            if aave
            else f"no Aave V3 on {network} (Aave's address book has none): no liquidations"
        )
    if deployment.mevshare_stream is None or deployment.mevshare_rpc is None:
        found.append(
            f"no MEV-Share on {network}: no backruns of private flow (set mev_share_url and "
            "mev_share_bundle_url to follow a MEV-Share node)"
            if known.mev_share_stream
            else f"no MEV-Share on {network} (Flashbots runs it on mainnet and sepolia only)"
        )
    return found
