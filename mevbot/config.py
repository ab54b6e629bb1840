"""Configuration: a TOML file, a network preset under it, ``MEVBOT_...`` environment overrides.

Precedence, lowest first: the preset named by ``network`` (chain id, relays, routers, factories,
stream URL), the TOML file, then environment variables (``MEVBOT_NODE__WS=ws://...``: double
underscores separate nested fields). The result is validated by pydantic; any problem is one
:class:`ConfigError` naming the field and the fix.

Keys never come from the config file: a value that looks like a private key is refused.
Signing keys are read from environment variables (names configurable) or an eth-account
encrypted keystore whose password is in an environment variable.
For ``network = "devnet"`` the addresses (and the devnet's public development keys) come from
the JSON that ``mevbot devnet --out`` writes.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from execution.dialects import DIALECTS
from mevbot.networks import preset_fields
from simulation.simulator import Backend, BackendChoice

ENV_PREFIX = "MEVBOT_"
_KEY_LIKE = re.compile(r"^(0x)?[0-9a-fA-F]{64}$")
_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
_HTTP_SCHEMES = ("http://", "https://")
# What chain.rpc.connect opens as a stream (it takes ".ipc" endings too, checked apart).
_STREAM_SCHEMES = ("ws://", "wss://", "ipc://", "/", "./", "../")


class ConfigError(ValueError):
    """A configuration problem: which field, what is wrong, how to fix it."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _address(value: str) -> str:
    if not _ADDRESS.match(value):
        raise ValueError(f"not an address: {value!r} (expected 0x + 40 hex digits)")
    return value.lower()


def check_stream_url(value: str) -> str:
    """``value`` if it can carry subscriptions (ws://, wss://, ipc://PATH or a socket path),
    else ValueError saying what to give instead."""
    if value.startswith(_STREAM_SCHEMES) or value.endswith(".ipc"):
        return value
    if value.startswith(_HTTP_SCHEMES):
        raise ValueError(
            f"{value!r} cannot carry subscriptions (pending txs, heads): give ws://, wss:// "
            "or the node's IPC socket path"
        )
    raise ValueError(f"{value!r}: give ws://, wss:// or the node's IPC socket path")


def _http_url(value: str) -> str:
    if not value.startswith(_HTTP_SCHEMES):
        raise ValueError(f"{value!r}: give an http:// or https:// URL")
    return value


class NodeConfig(_Model):
    """The upstream node: WebSocket (or IPC socket path) for subscriptions and reads, HTTP for
    the simulator (its fork reads from here)."""

    ws: str | None = Field(None, description="ws://, wss:// or the node's IPC socket path")
    http: str | None = None
    timeout_s: float = Field(10.0, gt=0)

    @field_validator("ws")
    @classmethod
    def _stream(cls, value: str | None) -> str | None:
        return None if value is None else check_stream_url(value)

    @field_validator("http")
    @classmethod
    def _http(cls, value: str | None) -> str | None:
        return None if value is None else _http_url(value)


class RelayConfig(_Model):
    name: str
    url: str
    dialect: str = Field("generic", description="the builder's bundle dialect (execution.dialects)")

    @field_validator("dialect")
    @classmethod
    def _known_dialect(cls, value: str) -> str:
        if value not in DIALECTS:
            raise ValueError(f"unknown dialect {value!r}; choose one of {', '.join(DIALECTS)}")
        return value

    @field_validator("url")
    @classmethod
    def _http(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"relay url must be http(s)://, got {value!r}")
        return value


class BackrunConfig(_Model):
    enabled: bool = True
    min_profit_wei: int = Field(10**14, ge=0)
    coinbase_share_bps: int = Field(5000, ge=0, le=10_000)


class LiquidationConfig(_Model):
    enabled: bool = True
    min_profit_wei: int = Field(10**14, ge=0)
    coinbase_share_bps: int = Field(5000, ge=0, le=10_000)


class StrategiesConfig(_Model):
    backrun: BackrunConfig = BackrunConfig()
    liquidation: LiquidationConfig = LiquidationConfig()
    target_blocks: int = Field(3, ge=1, le=25, description="bundle sent for the next N blocks")


class ReferenceSource(_Model):
    """Where the oracle keeper reads the reference price: the number at ``json_path``
    ("data.price", "0.last" for lists) in the JSON that ``GET url`` answers."""

    kind: Literal["http"]
    url: str
    json_path: str = Field(min_length=1)

    @field_validator("url")
    @classmethod
    def _http(cls, value: str) -> str:
        return _http_url(value)


class OracleFeedConfig(_Model):
    feed: str
    deviation_bps: int = Field(50, gt=0, le=10_000)
    heartbeat_s: int = Field(3600, gt=0)
    source: ReferenceSource

    @field_validator("feed")
    @classmethod
    def _feed_address(cls, value: str) -> str:
        return _address(value)


class KeepersConfig(_Model):
    """``liquidation_mode``: "bundle" sends liquidations privately to the relays, "public"
    as a transaction from the executor key. A public keeper tx not mined within
    ``replace_after_blocks`` blocks is replaced with a fee bump (never above ``fee_cap_gwei``)."""

    oracle: tuple[OracleFeedConfig, ...] = ()
    liquidation: bool = True
    liquidation_mode: Literal["bundle", "public"] = "bundle"
    replace_after_blocks: int = Field(3, ge=1)
    fee_cap_gwei: float = Field(500.0, gt=0)


class SimulationConfig(_Model):
    """Where candidates are simulated: forks fork ``node.http``, ``node`` simulates over
    ``node.ws`` (the same node).
    ``revm`` (in-process over a warm cache), ``anvil`` (a fork process), ``node``
    (``eth_simulateV1`` on the node itself) or ``auto``: node when ``node.http`` is local and
    serves eth_simulateV1, else revm (:func:`simulation.backends.choose_backend`); README
    "Verifying bundles" compares them. ``final_check`` names a second backend that simulates
    again every bundle the first passes; its result decides."""

    backend: BackendChoice = "auto"
    final_check: Backend | None = None

    @model_validator(mode="after")
    def _two_backends(self) -> SimulationConfig:
        if self.final_check == self.backend:
            raise ValueError(
                f"final_check {self.final_check!r} is the backend itself: name another one "
                "(anvil, revm or node) or leave it out"
            )
        return self


class StateConfig(_Model):
    """The tracked pools: at most ``max_pools`` are loaded at start (None: every pool of the
    factories; see :func:`simulation.loader.load_pools` for which), and every
    ``verify_every_blocks`` blocks (0: never) the state verifier re-reads the next
    ``verify_sample`` pools from the node, in rotation, and reloads the ones that drifted."""

    max_pools: int | None = Field(None, ge=1)
    verify_every_blocks: int = Field(10, ge=0)
    verify_sample: int = Field(32, ge=1)


class StoreConfig(_Model):
    """``redis_url`` set: keeper leases, effect claims and the shared ledger live in Redis,
    shared by every instance (``mevbot run --redis URL`` overrides it)."""

    redis_url: str | None = None
    ledger_path: Path = Path("mevbot-ledger.sqlite")

    @field_validator("redis_url")
    @classmethod
    def _redis(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError(f"{value!r}: give redis://host:port/db, rediss:// or unix://")
        return value


class KeysConfig(_Model):
    """Names of the environment variables (or keystore files) that hold the keys."""

    executor_env: str = "MEVBOT_EXECUTOR_KEY"
    searcher_env: str = "MEVBOT_SEARCHER_KEY"
    keeper_env: str = "MEVBOT_KEEPER_KEY"
    executor_keystore: Path | None = None
    keeper_keystore: Path | None = None
    # The relay signing identity, created here once when MEVBOT_SEARCHER_KEY is not set:
    # builders pay refunds to the signing address, so it must not change between runs.
    searcher_keystore: Path = Path("mevbot-searcher-keystore.json")
    keystore_password_env: str = "MEVBOT_KEYSTORE_PASSWORD"


class MetricsConfig(_Model):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(9464, ge=0, le=65535)


class Config(_Model):
    network: Literal["devnet", "sepolia", "hoodi", "mainnet"]
    chain_id: int = Field(gt=0)
    node: NodeConfig = NodeConfig()
    relays: tuple[RelayConfig, ...] = ()
    devnet_json: Path | None = None
    executor: str | None = None
    weth: str | None = None
    routers: dict[
        str,
        Literal[
            "uniswap-v2",
            "uniswap-v3",
            "uniswap-v3-02",
            "universal-router",
            "universal-router-v1",
            "universal-router-v1.2",
            "universal-router-v2",
            "universal-router-v2.1",
            "universal-router-v2.1.1",
        ],
    ] = {}
    v2_factories: dict[str, str] = Field(
        default_factory=dict, description="V2 router address -> its factory (pools to track)"
    )
    lending_pool: str | None = None
    lending_from_block: int = Field(0, ge=0)
    mev_share_url: str | None = Field(
        None,
        description="the MEV-Share event stream (SSE) whose hints `mevbot run` backruns "
        "(mainnet, sepolia: Flashbots'; \"\" leaves the preset's out)",
    )
    mev_share_bundle_url: str | None = Field(
        None,
        description="where the backruns of MEV-Share hints go (mev_sendBundle, signed by the "
        "searcher key): the MEV-Share node's bundle endpoint (mainnet, sepolia: the Flashbots "
        'relay; "" leaves the preset\'s out)',
    )
    strategies: StrategiesConfig = StrategiesConfig()
    keepers: KeepersConfig = KeepersConfig()
    simulation: SimulationConfig = SimulationConfig()
    state: StateConfig = StateConfig()
    store: StoreConfig = StoreConfig()
    keys: KeysConfig = KeysConfig()
    metrics: MetricsConfig = MetricsConfig()
    dry_run: bool = False

    @field_validator("relays")
    @classmethod
    def _distinct_names(cls, value: tuple[RelayConfig, ...]) -> tuple[RelayConfig, ...]:
        names = [relay.name for relay in value]
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise ValueError(f"relay names must differ: {', '.join(twice)} is used twice")
        return value

    @field_validator("mev_share_url", "mev_share_bundle_url")
    @classmethod
    def _mev_share(cls, value: str | None) -> str | None:
        return _http_url(value) if value else None

    @field_validator("executor", "lending_pool", "weth")
    @classmethod
    def _optional_address(cls, value: str | None) -> str | None:
        return None if value is None else _address(value)

    @field_validator("routers")
    @classmethod
    def _address_keys(cls, value: dict[str, Any]) -> dict[str, Any]:
        return {_address(k): v for k, v in value.items()}

    @field_validator("v2_factories")
    @classmethod
    def _address_pairs(cls, value: dict[str, str]) -> dict[str, str]:
        return {_address(k): _address(v) for k, v in value.items()}


# The major builders and the dialect each speaks (execution/dialects.py has each one's source).
# Flashbots: flashbots-docs advanced/rpc-endpoint.mdx; Titan: docs.titanbuilder.xyz (geo
# endpoints eu./us./ap.rpc.titanbuilder.xyz, testnet rpc-hoodi); beaver: rpc.beaverbuild.org
# (beaverbuild.org/docs.html as quoted by client code); rsync: rsync-builder.xyz/docs; Ultra
# Sound: ultrasoundmoney/builder-docs README ("Bundles are propagated to all instances").
MAINNET_RELAYS = (
    {"name": "flashbots", "url": "https://relay.flashbots.net", "dialect": "flashbots"},
    {"name": "titan", "url": "https://rpc.titanbuilder.xyz", "dialect": "titan"},
    {"name": "beaver", "url": "https://rpc.beaverbuild.org", "dialect": "beaver"},
    {"name": "rsync", "url": "https://rsync-builder.xyz", "dialect": "rsync"},
    {
        "name": "ultrasound",
        "url": "https://builder-rpc-eu.ultrasound.money",
        "dialect": "ultrasound",
    },
)

# SushiSwap's Router02 -> its factory (a Uniswap V2 fork: decoded and loaded like Uniswap V2).
_SUSHISWAP = {
    "0xd9e1ce17f2641f24ae83637ab66a2cca9c378b9f": "0xc0aee478e3658e2610c5f7a4a2e1777ce9e4f2ac"
}

# Each network's addresses come from mevbot/networks.py, which cites their sources.
PRESETS: Mapping[str, Mapping[str, Any]] = {
    "mainnet": {
        "chain_id": 1,
        "relays": list(MAINNET_RELAYS),
        **preset_fields("mainnet", v2_forks=_SUSHISWAP),
    },
    "sepolia": {
        "chain_id": 11155111,
        **preset_fields("sepolia"),
        "relays": [
            {
                "name": "flashbots-sepolia",
                "url": "https://relay-sepolia.flashbots.net",
                "dialect": "flashbots",
            }
        ],
    },
    "hoodi": {
        "chain_id": 560048,
        **preset_fields("hoodi"),
        "relays": [
            {
                "name": "titan-hoodi",
                "url": "https://rpc-hoodi.titanbuilder.xyz/",
                "dialect": "titan",
            },
            {
                "name": "ultrasound-hoodi",
                "url": "https://builder-rpc-eu-hoodi.ultrasound.money",
                "dialect": "ultrasound",
            },
        ],
    },
    "devnet": {"chain_id": 31337, "devnet_json": "devnet.json"},
}


def _reject_keys(data: Any, path: str = "") -> None:
    if isinstance(data, dict):
        for key, value in data.items():
            _reject_keys(value, f"{path}.{key}" if path else str(key))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            _reject_keys(value, f"{path}[{index}]")
    elif isinstance(data, str) and _KEY_LIKE.match(data):
        raise ConfigError(
            f"{path}: this looks like a private key; keys never go in the config file. "
            f"Put it in an environment variable (default names: MEVBOT_EXECUTOR_KEY, "
            f"MEVBOT_SEARCHER_KEY, MEVBOT_KEEPER_KEY) or an encrypted keystore "
            f"(keys.executor_keystore)"
        )


def _deep_merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _secret_names(keys: Any) -> set[str]:
    """The variables that hold keys and passwords (the defaults, and any the file names)."""
    fields = ("executor_env", "searcher_env", "keeper_env", "keystore_password_env")
    named = [getattr(KeysConfig(), field) for field in fields]
    if isinstance(keys, dict):
        named += [keys[field] for field in fields if isinstance(keys.get(field), str)]
    return set(named)


def _env_overrides(
    environ: Mapping[str, str], secret_names: set[str]
) -> tuple[dict[str, Any], dict[tuple[str, ...], str]]:
    """``MEVBOT_A__B=v`` -> {"a": {"b": v}} (values parsed as JSON when they parse), and each
    overridden field's path -> the variable that set it, so that an error can name it. The
    variables in ``secret_names`` are keys, never config."""
    overrides: dict[str, Any] = {}
    names: dict[tuple[str, ...], str] = {}
    for name, raw in sorted(environ.items()):
        if not name.startswith(ENV_PREFIX) or name in secret_names or name.endswith("PASSWORD"):
            continue
        parts = tuple(name[len(ENV_PREFIX) :].lower().split("__"))
        try:
            value: Any = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        target = overrides
        for depth, part in enumerate(parts[:-1], start=1):
            target = target.setdefault(part, {})
            if not isinstance(target, dict):
                raise ConfigError(
                    f"{name}: {names[parts[:depth]]} already sets {'.'.join(parts[:depth])} "
                    "to a value; set one or the other"
                )
        target[parts[-1]] = value
        names[parts] = name
    return overrides, names


def _env_name(path: tuple[str, ...]) -> str:
    return ENV_PREFIX + "__".join(path).upper()


def _model_of(annotation: Any) -> type[BaseModel] | None:
    """The config section an annotation holds (``NodeConfig``, ``tuple[RelayConfig, ...]``)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return next(filter(None, map(_model_of, get_args(annotation))), None)


def _known_fields(section: tuple[str, ...]) -> list[str]:
    model: type[BaseModel] | None = Config
    for part in section:
        field = model.model_fields.get(part) if model is not None else None
        model = None if field is None else _model_of(field.annotation)
    return [] if model is None else list(model.model_fields)


def _describe(error: ValidationError, env_names: Mapping[tuple[str, ...], str]) -> str:
    lines = []
    for item in error.errors():
        loc = tuple(str(p) for p in item["loc"])
        path = tuple(p for p in loc if not p.isdigit())  # list indexes are not field names
        field = ".".join(loc) or "(top level)"
        variable = next(
            (env_names[path[:n]] for n in range(len(path), 0, -1) if path[:n] in env_names),
            None,
        )
        message = item["msg"]
        if item["type"] == "extra_forbidden":
            close = difflib.get_close_matches(path[-1], _known_fields(path[:-1]), n=1)
            if variable is not None:
                hint = f"; did you mean {_env_name((*path[:-1], close[0]))}?" if close else ""
                lines.append(f"{variable}: unknown field {field}{hint}")
                continue
            hint = f"did you mean {close[0]}?" if close else "check the spelling"
            message = f"unknown field; {hint} (see README: Configuration)"
        elif item["type"] == "missing":
            message = "required field is missing"
        where = f"{field} (from {variable})" if variable is not None else field
        lines.append(f"{where}: {message}")
    return "; ".join(lines)


def load_config(
    path: Path | None = None,
    *,
    network: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> Config:
    """Read, merge and validate; raise :class:`ConfigError` with a clear message."""
    environ = os.environ if environ is None else environ
    data: dict[str, Any] = {}
    if path is not None:
        try:
            data = tomllib.loads(Path(path).read_text())
        except FileNotFoundError:
            raise ConfigError(f"config file {path} does not exist") from None
        except IsADirectoryError:
            raise ConfigError(f"{path} is a directory, not a config file (TOML)") from None
        except OSError as error:
            raise ConfigError(f"config file {path}: {error.strerror}") from None
        except tomllib.TOMLDecodeError as error:
            raise ConfigError(f"{path}: not valid TOML: {error}") from None
        except UnicodeDecodeError as error:
            raise ConfigError(
                f"{path}: not UTF-8 text (byte {error.start}): not a TOML file"
            ) from None
        _reject_keys(data)
    env, env_names = _env_overrides(environ, _secret_names(data.get("keys")))
    _reject_keys(env)
    chosen = network or env.get("network") or data.get("network")
    if chosen is None:
        raise ConfigError(
            'network: required field is missing; set network = "devnet" | "sepolia" | '
            '"hoodi" | "mainnet" in the config file or MEVBOT_NETWORK'
        )
    if not isinstance(chosen, str) or chosen not in PRESETS:
        where = (
            "network"
            if network or "network" not in env
            else f"network (from {env_names[('network',)]})"
        )
        raise ConfigError(
            f"{where}: unknown network {chosen!r}; choose one of {', '.join(sorted(PRESETS))}"
        )
    merged = _deep_merge(_deep_merge(dict(PRESETS[chosen]), data), env)
    merged["network"] = chosen
    try:
        return Config.model_validate(merged)
    except ValidationError as error:
        raise ConfigError(_describe(error, env_names)) from None
