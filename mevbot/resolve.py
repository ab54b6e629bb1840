"""From a validated config to what the bot runs with: the deployment and the keys.

For ``network = "devnet"`` the deployment comes from the JSON ``mevbot devnet --out`` wrote (its
relay URL included), with what the config file sets itself on top: its node URLs, executor,
WETH and lending pool replace the world's, its routers, factories and relays join the world's.
The keys default to the devnet's public development keys. For the other networks the config
names the node, relays and contracts, and the keys come from the environment variables (or
keystore) the config names. Errors say which field or variable is missing and never show a key.
The searcher (relay signing) key is a persistent identity: ``MEVBOT_SEARCHER_KEY`` when set,
otherwise the keystore at ``keys.searcher_keystore``, created once. A warning says when the
identity changes.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from dataclasses import replace
from typing import Literal

from eth_account import Account
from eth_account.signers.local import LocalAccount

from anvil.world import World
from execution.identity import keystore_address, load_or_create
from execution.signer import LocalSigner, SignerKeyError
from mevbot.config import Config, ConfigError
from mevbot.deployment import ROUTER_KINDS, Deployment, Keys, deployment_from_world, devnet_keys
from mevbot.networks import NETWORKS

log = logging.getLogger("mevbot.resolve")


def load_world(config: Config) -> World:
    path = config.devnet_json
    if path is None:
        raise ConfigError("devnet_json: required for network devnet (the JSON of `mevbot devnet`)")
    try:
        return World.from_json(json.loads(path.read_text()))
    except FileNotFoundError:
        raise ConfigError(
            f"devnet_json: {path} does not exist; start the devnet first: "
            f"`mevbot devnet --out {path}`"
        ) from None
    except (ValueError, KeyError, TypeError) as error:
        raise ConfigError(f"devnet_json: {path} is not a devnet description ({error})") from None


def resolve_deployment(config: Config, world: World | None = None) -> Deployment:
    if config.network == "devnet":
        world = world or load_world(config)
        return _on_top_of_world(config, deployment_from_world(world, world.extra.get("relay")))
    missing = [
        name
        for name, value in (
            ("node.ws", config.node.ws),
            ("node.http", config.node.http),
            ("executor", config.executor),
            ("weth", config.weth),
        )
        if not value
    ]
    if missing:
        raise ConfigError(f"{', '.join(missing)}: required for network {config.network}")
    if not config.relays and not config.dry_run:
        raise ConfigError("relays: at least one relay is needed unless dry_run = true")
    if (config.mev_share_url is None) != (config.mev_share_bundle_url is None):
        raise ConfigError(
            "mev_share_url, mev_share_bundle_url: MEV-Share needs both (its stream and where "
            'its bundles go), or "" for both'
        )
    assert config.node.ws and config.node.http and config.executor and config.weth
    return Deployment(
        network=config.network,
        chain_id=config.chain_id,
        node_ws=config.node.ws,
        node_http=config.node.http,
        relays=tuple((r.name, r.url) for r in config.relays),
        executor=config.executor,
        weth=config.weth,
        routers={address: ROUTER_KINDS[kind] for address, kind in config.routers.items()},
        router_factories=dict(config.v2_factories),
        lending_pool=config.lending_pool,
        lending_from_block=config.lending_from_block,
        relay_dialects={r.name: r.dialect for r in config.relays},
        aave_provider=NETWORKS[config.network].aave_v3_addresses_provider,
        mevshare_stream=config.mev_share_url,
        mevshare_rpc=config.mev_share_bundle_url,
    )


def _on_top_of_world(config: Config, world: Deployment) -> Deployment:
    """The devnet's deployment with the config file's own settings honoured."""
    relays = (*world.relays, *((relay.name, relay.url) for relay in config.relays))
    taken = {name for name, _ in world.relays} & {relay.name for relay in config.relays}
    if taken:
        raise ConfigError(
            f"relays: {', '.join(sorted(taken))} is the devnet's own relay; name yours otherwise"
        )
    return replace(
        world,
        node_ws=config.node.ws or world.node_ws,
        node_http=config.node.http or world.node_http,
        executor=config.executor or world.executor,
        weth=config.weth or world.weth,
        routers={
            **world.routers,
            **{address: ROUTER_KINDS[kind] for address, kind in config.routers.items()},
        },
        router_factories={**world.router_factories, **config.v2_factories},
        lending_pool=config.lending_pool or world.lending_pool,
        lending_from_block=config.lending_from_block or world.lending_from_block,
        relays=relays,
        relay_dialects={
            **world.relay_dialects,
            **{relay.name: relay.dialect for relay in config.relays},
        },
        mevshare_stream=config.mev_share_url or world.mevshare_stream,
        mevshare_rpc=config.mev_share_bundle_url or world.mevshare_rpc,
    )


def resolve_keys(
    config: Config, world: World | None = None, environ: Mapping[str, str] | None = None
) -> Keys:
    environ = os.environ if environ is None else environ
    names = config.keys
    if config.network == "devnet" and names.executor_env not in environ:
        return devnet_keys(world or load_world(config))
    try:
        executor = resolve_signer(config, "executor", environ)
        searcher = _searcher(config, environ)
        keeper = (
            resolve_signer(config, "keeper", environ)
            if names.keeper_env in environ or names.keeper_keystore is not None
            else None
        )
    except SignerKeyError as error:
        raise ConfigError(f"keys: {error}") from None
    return Keys(executor=executor, searcher=searcher, keeper=keeper)


def resolve_executor_signer(
    config: Config, environ: Mapping[str, str] | None = None
) -> LocalSigner:
    """The executor owner's key alone (the devnet's development key unless its variable is set)."""
    environ = os.environ if environ is None else environ
    if config.network == "devnet" and config.keys.executor_env not in environ:
        return devnet_keys(load_world(config)).executor
    try:
        return resolve_signer(config, "executor", environ)
    except SignerKeyError as error:
        raise ConfigError(f"keys: {error}") from None


def resolve_signer(
    config: Config, role: Literal["executor", "keeper"], environ: Mapping[str, str]
) -> LocalSigner:
    """The executor's or keeper's key: its keystore when the config names one (password in
    ``keys.keystore_password_env``), else its environment variable."""
    names = config.keys
    keystore = names.executor_keystore if role == "executor" else names.keeper_keystore
    if keystore is not None:
        return LocalSigner.from_keystore(
            keystore, names.keystore_password_env, environ=dict(environ)
        )
    variable = names.executor_env if role == "executor" else names.keeper_env
    return LocalSigner.from_env(variable, environ=dict(environ))


def _searcher(config: Config, environ: Mapping[str, str]) -> LocalAccount:
    """The searcher key from its variable, else from its keystore (created the first time)."""
    names = config.keys
    path = names.searcher_keystore
    if names.searcher_env in environ:
        LocalSigner.from_env(names.searcher_env, environ=dict(environ))  # validates, clear errors
        account = Account.from_key(environ[names.searcher_env].strip())
        kept = keystore_address(path)
        if kept is not None and kept != account.address.lower():
            log.warning(
                "searcher identity changed: %s signs relay requests, but the keystore %s holds "
                "%s; refunds for %s keep going there",
                account.address.lower(),
                path,
                kept,
                kept,
            )
        return account
    password = environ.get(names.keystore_password_env)
    if password is None:
        raise SignerKeyError(
            f"set {names.searcher_env}, or {names.keystore_password_env} to open (or create "
            f"once) the searcher keystore {path}"
        )
    identity = load_or_create(path, password)
    if identity.created:
        log.warning(
            "created the searcher identity %s in %s: builders pay refunds to it, back the file up",
            identity.address,
            path,
        )
    return identity.account
