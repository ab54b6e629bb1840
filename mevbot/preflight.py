"""Checks before the bot starts: the node is the chain the config names, the executor is deployed
and obeys the executor key, the executor and searcher keys differ, the shared Redis (if any) and
every relay answer.

Each result is a :class:`Check` (name, passed or not, what was found, the fix) that also says
what a failure is: ``config`` (the config or the keys must change: exit 2) or ``runtime``
(something is down or silent: exit 1). ``mevbot run`` refuses to start on any failure, one line
per failed check; the records are typed so that a command can print them all as a table.
Checks that need the node are skipped when the node does not answer.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlsplit

import aiohttp

from chain.abi import Abi
from chain.errors import ChainError
from chain.rpc import Rpc, connect, eth_call, eth_chain_id
from chain.types import MalformedError, hex_to_bytes
from mevbot.config import PRESETS, Config

if TYPE_CHECKING:  # `mevbot watch` checks its node without loading the bot
    from mevbot.deployment import Deployment, Keys

# anvil/contracts/Executor.sol: `address public immutable owner` (its getter) is the only
# account the executor obeys.
OWNER = Abi.from_signatures("function owner() returns (address)").function("owner")
RELAY_TIMEOUT_S = 5.0
_NETWORKS = {int(preset["chain_id"]): name for name, preset in PRESETS.items()}

Kind = Literal["config", "runtime"]


@dataclass(frozen=True, slots=True)
class Check:
    """One start-up check. ``kind`` says what a failure is: ``config`` or ``runtime``."""

    name: str
    ok: bool
    detail: str
    fix: str = ""
    kind: Kind = "config"

    def line(self) -> str:
        return f"{self.name}: {self.detail}" + (f"; {self.fix}" if self.fix else "")


def exit_code(checks: Sequence[Check]) -> int:
    """0 when every check passed, 2 when a configuration check failed, else 1."""
    failed = {check.kind for check in checks if not check.ok}
    return 2 if "config" in failed else 1 if failed else 0


def _chain(chain_id: int) -> str:
    network = _NETWORKS.get(chain_id)
    return f"chain {chain_id}" + (f" ({network})" if network else "")


def _where(url: str) -> str:
    """scheme://host[:port] of a URL (paths of some endpoints carry API keys); paths as given."""
    parts = urlsplit(url)
    if not parts.hostname:
        return url
    return f"{parts.scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else "")


def _why(error: BaseException, url: str, timeout: float) -> str:
    """Why ``url`` gave no answer, in a few words (the root cause of a connection failure)."""
    if isinstance(error, TimeoutError):
        return f"no answer within {timeout:g} s"
    root: BaseException = error
    while root.__cause__ is not None or root.__context__ is not None:
        root = root.__cause__ or root.__context__  # type: ignore[assignment]
    if isinstance(root, ConnectionRefusedError):
        return "connection refused"
    if isinstance(root, socket.gaierror):
        return f"unknown host ({root.strerror})"
    if isinstance(root, OSError) and root.strerror:
        return root.strerror
    # The URL once, without its path: some carry API keys.
    return (str(error) or type(error).__name__).replace(url, _where(url))


def _unreachable(name: str, url: str, error: BaseException, field: str, timeout: float) -> Check:
    return Check(
        name,
        False,
        f"{_where(url)}: {_why(error, url, timeout)}",
        f"start the node or correct {field}",
        "runtime",
    )


def check_keys(keys: Keys, config: Config) -> Check:
    executor, searcher = keys.executor.address.lower(), keys.searcher.address.lower()
    if executor == searcher:
        return Check(
            "keys",
            False,
            f"the executor key and the searcher key are the same key ({executor})",
            f"give {config.keys.searcher_env} a key of its own (it signs relay requests only)",
        )
    return Check("keys", True, f"executor {executor}, searcher {searcher}")


async def check_executor(rpc: Rpc, deployment: Deployment, keys: Keys) -> list[Check]:
    """The executor has code, and its owner() is the executor key's address."""
    executor = deployment.executor
    code = hex_to_bytes(await rpc.call("eth_getCode", [executor, "latest"]), "code")
    if not code:
        return [
            Check(
                "executor",
                False,
                f"no contract at {executor} on {_chain(deployment.chain_id)}",
                "deploy anvil/contracts/Executor.sol and set executor to its address",
            )
        ]
    try:
        (owner,) = OWNER.decode_output(await eth_call(rpc, executor, OWNER.encode()))
    except (ChainError, MalformedError, ValueError) as error:
        return [
            Check(
                "executor",
                False,
                f"{executor} does not answer owner(): not a mevbot Executor ({error})",
                "set executor to the address of your deployed Executor",
            )
        ]
    found = [Check("executor", True, f"{executor} has code")]
    owner, signer = str(owner).lower(), keys.executor.address.lower()
    if owner != signer:
        found.append(
            Check(
                "executor owner",
                False,
                f"{executor} obeys {owner}, but the executor key is {signer}",
                "give the executor owner's key (keys.executor_env or keys.executor_keystore)",
            )
        )
    else:
        found.append(Check("executor owner", True, f"{executor} obeys the executor key"))
    return found


def check_chain(name: str, url: str, field: str, chain_id: int, deployment: Deployment) -> Check:
    wanted = deployment.chain_id
    if chain_id == wanted:
        return Check(name, True, f"{_where(url)} is {_chain(chain_id)}")
    return Check(
        name,
        False,
        f"{_where(url)} is {_chain(chain_id)}, but the config is for {deployment.network} "
        f"(chain {wanted})",
        f"point {field} at a {deployment.network} node, or set network to the node's chain",
    )


async def _node(deployment: Deployment, keys: Keys, timeout: float) -> list[Check]:
    """node.ws answers as the configured chain; then the executor is checked there."""
    url = deployment.node_ws
    try:
        async with asyncio.timeout(timeout), connect(url, timeout=timeout) as rpc:
            found = [check_chain("node", url, "node.ws", await eth_chain_id(rpc), deployment)]
            if found[0].ok:
                found += await check_executor(rpc, deployment, keys)
            return found
    except (ChainError, MalformedError, OSError, TimeoutError) as error:
        return [_unreachable("node", url, error, "node.ws", timeout)]


async def check_reachable(name: str, url: str, field: str, timeout: float) -> Check | int:
    """The chain id the node at ``url`` answers, or the failed check saying why not."""
    try:
        async with asyncio.timeout(timeout), connect(url, timeout=timeout) as rpc:
            return await eth_chain_id(rpc)
    except (ChainError, OSError, TimeoutError) as error:
        return _unreachable(name, url, error, field, timeout)


async def _fork_node(deployment: Deployment, timeout: float) -> Check:
    """node.http (where the simulator forks from) answers as the same chain."""
    url = deployment.node_http
    found = await check_reachable("fork node", url, "node.http", timeout)
    if isinstance(found, Check):
        return found
    return check_chain("fork node", url, "node.http", found, deployment)


async def check_relay(session: aiohttp.ClientSession, name: str, url: str) -> Check:
    """Any HTTP answer will do: the relay is up (a bundle's fate is the relay client's)."""
    try:
        async with (
            asyncio.timeout(RELAY_TIMEOUT_S),
            session.get(url, allow_redirects=False) as reply,
        ):
            status = reply.status
    except (aiohttp.ClientError, OSError, TimeoutError) as error:
        return Check(
            f"relay {name}",
            False,
            f"{_where(url)}: {_why(error, url, RELAY_TIMEOUT_S)}",
            "check the relay URL, or set dry_run = true to submit nothing",
            "runtime",
        )
    return Check(f"relay {name}", True, f"{_where(url)} answers (HTTP {status})")


async def check_redis(url: str, timeout: float) -> Check:
    """The Redis that instances share answers PING."""
    from redis.exceptions import RedisError

    from mevbot.redis_store import connect_redis

    client = connect_redis(url, command_timeout_s=timeout)
    try:
        async with asyncio.timeout(timeout):
            await client.ping()
    except (RedisError, OSError, TimeoutError) as error:
        return Check(
            "redis",
            False,
            f"{_where(url)}: {_why(error, url, timeout)}",
            "start redis-server, or correct --redis (or store.redis_url)",
            "runtime",
        )
    finally:
        await client.aclose()
    return Check("redis", True, f"{_where(url)} answers")


async def run_checks(
    config: Config, deployment: Deployment, keys: Keys, redis_url: str | None = None
) -> tuple[Check, ...]:
    """Every start-up check, in the order a person would fix them; ``redis_url`` is the Redis
    the instances share, if any."""
    timeout = config.node.timeout_s
    found = [check_keys(keys, config), *await _node(deployment, keys, timeout)]
    found.append(await _fork_node(deployment, timeout))
    if redis_url is not None:
        found.append(await check_redis(redis_url, timeout))
    if not config.dry_run and deployment.relays:
        async with aiohttp.ClientSession() as session:
            found += await asyncio.gather(
                *(check_relay(session, name, url) for name, url in deployment.relays)
            )
    return tuple(found)
