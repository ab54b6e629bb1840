"""Checks before the bot starts (``mevbot run``) and for ``mevbot doctor``: the node answers over
WebSocket and HTTP as the chain the config names, serves the subscriptions the watcher uses and
has a recent head; the simulator the config chooses can run; the executor is the committed
artifact, obeys the executor key and holds funds; the keys differ and hold gas; every relay
answers and accepts the searcher's signature; the MEV-Share event stream (when configured)
answers as one, and its bundle endpoint answers and accepts the searcher's signature as a relay
does; Aave's PoolAddressesProvider (where the network has Aave V3) names a pool whose
revision the bot knows; the shared Redis (if any) answers; pools and lending positions load.

Each result is a :class:`Check` (name, passed or not, what was found, the fix) that also says
what a failure is: ``config`` (the config or the keys must change: exit 2) or ``runtime``
(something is down or silent: exit 1). ``mevbot run`` refuses to start on any failure, one line
per failed check; the records are typed so that a command can print them all as a table.
Checks that need the node are skipped when the node does not answer.

The relay's signature check sends ``eth_cancelBundle`` (or the builder's own cancel shape) for a
fresh replacement uuid: it names no bundle of ours, so it changes nothing; unlike
``eth_callBundle`` it spends no simulation quota nor reputation (flashbots-docs
advanced/reputation.md counts simulated gas), and the stats methods that once answered a signed
request (``flashbots_getUserStatsV2``) return 403 since 2025-06-09 (flashbots-docs commit
70c6c4d). A relay that checks signatures refuses a bad one before reading the method
(``-32025 invalid flashbots signature``, or HTTP 401/403).
"""

from __future__ import annotations

import asyncio
import importlib.util
import socket
import time
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlsplit

import aiohttp

from chain.abi import Abi
from chain.errors import ChainError, RpcError
from chain.rpc import Rpc, connect, eth_call, eth_chain_id, eth_get_balance, eth_get_block
from chain.types import MalformedError, hex_to_bytes
from mevbot.config import PRESETS, Config
from simulation.block_diff import DIFF_TRACER

if TYPE_CHECKING:  # `mevbot watch` checks its node without loading the bot
    from mevbot.deployment import Deployment, Keys
    from simulation.state import ChainState

# anvil/contracts/Executor.sol: `address public immutable owner` (its getter) is the only
# account the executor obeys.
OWNER = Abi.from_signatures("function owner() returns (address)").function("owner")
RELAY_TIMEOUT_S = 5.0
# A synced node's head is one slot (12 s) old; a minute means it is behind or stuck.
HEAD_MAX_AGE_S = 60.0
# The relay's answer to a bad X-Flashbots-Signature (flashbots/mev-share#25); the older relay
# answered HTTP 403 "error in signature check" (ethers-provider-flashbots-bundle#110).
INVALID_SIGNATURE = -32025
BALANCE = Abi.from_signatures("function balanceOf(address) returns (uint256)").function("balanceOf")
# aave-v3-core IPoolAddressesProvider.getPool() and the Pool's POOL_REVISION() (read-only).
GET_POOL = Abi.from_signatures("function getPool() returns (address)").function("getPool")
POOL_REVISION = Abi.from_signatures("function POOL_REVISION() returns (uint256)").function(
    "POOL_REVISION"
)
# What the watcher subscribes to (watcher/pending.py full and hash-only, watcher/heads.py).
SUBSCRIPTIONS = (
    ("newHeads",),
    ("newPendingTransactions", True),
    ("newPendingTransactions",),
)
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


def origin(url: str) -> str:
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
    return (str(error) or type(error).__name__).replace(url, origin(url))


def _unreachable(name: str, url: str, error: BaseException, field: str, timeout: float) -> Check:
    return Check(
        name,
        False,
        f"{origin(url)}: {_why(error, url, timeout)}",
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
                "deploy one: mevbot executor deploy --config FILE --write-config",
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
    owner, signer = str(owner).lower(), keys.executor.address.lower()
    found = [
        Check("executor", True, f"{executor} has code"),
        await _artifact(rpc, executor, code, owner),
    ]
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
    try:
        found.append(await _funds(rpc, deployment))
    except (RpcError, MalformedError):
        found.append(
            Check(
                "executor funds",
                False,
                f"WETH {deployment.weth} does not answer balanceOf: no token there",
                "set weth to the network's WETH",
            )
        )
    return found


async def _artifact(rpc: Rpc, executor: str, code: bytes, owner: str) -> Check:
    """The code is the committed artifact's (chain/artifacts/Executor.json), immutables aside."""
    from mevbot.executor_code import WETH, is_artifact_code

    try:
        (weth,) = WETH.decode_output(await eth_call(rpc, executor, WETH.encode()))
    except (ChainError, MalformedError):
        weth = None
    if weth is not None and is_artifact_code(code, owner, str(weth)):
        return Check(
            "executor code", True, "the committed artifact (chain/artifacts/Executor.json)"
        )
    return Check(
        "executor code",
        False,
        f"{executor} is not the committed Executor artifact (another build or contract)",
        "deploy the committed one: mevbot executor deploy --config FILE --write-config",
    )


async def _funds(rpc: Rpc, deployment: Deployment) -> Check:
    """The executor trades its own inventory: it needs ETH or WETH."""
    executor = deployment.executor
    eth = await eth_get_balance(rpc, executor)
    (weth,) = BALANCE.decode_output(await eth_call(rpc, deployment.weth, BALANCE.encode(executor)))
    detail = f"{executor} holds {_ether(eth)} ETH and {_ether(weth)} WETH"
    if eth or weth:
        return Check("executor funds", True, detail)
    return Check(
        "executor funds",
        False,
        detail,
        "fund it: mevbot executor fund --config FILE --weth AMOUNT",
        "runtime",
    )


def _ether(wei: int) -> str:
    return f"{wei / 10**18:.6g}"


async def check_gas(rpc: Rpc, keys: Keys) -> list[Check]:
    """The executor key (and the keeper's) pay gas: each holds ether."""
    found = []
    for role, signer in (("executor", keys.executor), ("keeper", keys.keeper)):
        if signer is None:
            continue
        balance = await eth_get_balance(rpc, signer.address)
        found.append(
            Check(
                f"{role} key gas",
                balance > 0,
                f"{signer.address} holds {_ether(balance)} ETH",
                "" if balance else f"send {signer.address} ether: it pays its transactions' gas",
                "runtime",
            )
        )
    return found


async def check_methods(rpc: Rpc) -> Check:
    """The node serves what the watcher uses: the subscriptions and txpool_content."""
    missing = []
    for args in SUBSCRIPTIONS:
        try:
            subscription = await rpc.subscribe(*args)  # type: ignore[attr-defined]
            await subscription.unsubscribe()
        except RpcError:
            missing.append("eth_subscribe " + " ".join(map(str, args)).replace(" True", " (full)"))
    try:
        await rpc.call("txpool_content", [])
    except RpcError:
        missing.append("txpool_content")
    if not missing:
        return Check("node methods", True, "eth_subscribe newHeads/newPendingTransactions, txpool")
    return Check(
        "node methods",
        False,
        f"the node does not serve {', '.join(missing)}",
        "the watcher needs them: point node.ws at a node that serves them (geth, reth, anvil)",
        "runtime",
    )


async def check_head(rpc: Rpc, deployment: Deployment) -> Check:
    head = await eth_get_block(rpc, "latest")
    assert head is not None
    if deployment.network == "devnet":
        return Check("head", True, f"head {head.number} (devnet blocks are built on demand)")
    age = time.time() - head.timestamp
    detail = f"head {head.number}, {age:.0f} s old"
    if age <= HEAD_MAX_AGE_S:
        return Check("head", True, detail)
    return Check(
        "head",
        False,
        f"{detail}: the node is behind",
        "wait until it has synced, or point node.ws at a synced node",
        "runtime",
    )


def check_chain(name: str, url: str, field: str, chain_id: int, deployment: Deployment) -> Check:
    wanted = deployment.chain_id
    if chain_id == wanted:
        return Check(name, True, f"{origin(url)} is {_chain(chain_id)}")
    return Check(
        name,
        False,
        f"{origin(url)} is {_chain(chain_id)}, but the config is for {deployment.network} "
        f"(chain {wanted})",
        f"point {field} at a {deployment.network} node, or set network to the node's chain",
    )


async def _node(
    deployment: Deployment,
    keys: Keys,
    timeout: float,
    state: ChainState | None,
    max_pools: int | None = None,
) -> list[Check]:
    """node.ws answers as the configured chain; then everything that needs the node is checked
    there: its methods and head, the executor, the keys' gas, the pools and positions."""
    url = deployment.node_ws
    try:
        async with asyncio.timeout(4 * timeout), connect(url, timeout=timeout) as rpc:
            found = [check_chain("node", url, "node.ws", await eth_chain_id(rpc), deployment)]
            if found[0].ok:
                found.append(await check_methods(rpc))
                found += await _guard("head", check_head(rpc, deployment))
                found += await _guard("executor", check_executor(rpc, deployment, keys))
                found += await _guard("keys gas", check_gas(rpc, keys))
                found += await _guard("pools", check_state(rpc, deployment, state, max_pools))
                found += await check_aave(rpc, deployment)
            return found
    except (ChainError, MalformedError, OSError, TimeoutError) as error:
        return [_unreachable("node", url, error, "node.ws", timeout)]


async def _guard(name: str, work: Awaitable[Check | list[Check]]) -> list[Check]:
    """``work``'s checks; one failed check when the node answers it with an error or nonsense
    (a contract missing at a configured address), so the other checks still run."""
    from simulation.loader import LoadError

    try:
        found = await work
    except (RpcError, MalformedError, LoadError) as error:
        return [Check(name, False, str(error), "check the addresses the config gives")]
    return found if isinstance(found, list) else [found]


async def check_state(
    rpc: Rpc,
    deployment: Deployment,
    state: ChainState | None = None,
    max_pools: int | None = None,
) -> list[Check]:
    """Pools load from the deployment's factories (at most ``max_pools``:
    :func:`simulation.loader.load_pools`), positions from its lending market, both at the head:
    what the bot would work with, and what it will not do where a protocol is missing. They load
    into ``state`` when given (the bot's, which then starts from it); its block is set to the
    head only when both loaded."""
    from mevbot.deployment import chain_state
    from simulation.loader import LoadError, load_pools

    state = chain_state(deployment) if state is None else state
    head = await eth_get_block(rpc, "latest")
    assert head is not None
    factories = len(deployment.pool_kinds)
    try:
        pools = await load_pools(rpc, state, hex(head.number), max_pools)
    except (RpcError, MalformedError, LoadError) as error:
        listed = ", ".join(deployment.pool_kinds)
        found = [
            Check(
                "pools",
                False,
                f"the factories {listed} do not load on this node ({error})",
                "set v2_factories to factories this network has (or point node.ws at it)",
            )
        ]
    else:
        found = [
            Check(
                "pools",
                True,
                f"{pools} pools from {factories} factories"
                + (" (the state.max_pools bound)" if pools == max_pools else ""),
            )
            if pools
            else Check(
                "pools",
                False,
                f"0 pools from {factories} factories on {deployment.network}: no arbitrage",
                "set routers and v2_factories to the DEXes of this network",
            )
        ]
    if deployment.lending_pool is None:
        found.append(Check("positions", True, "no lending market configured: no liquidations"))
    else:
        found.append(await _positions(rpc, deployment, state, head.number))
    if all(check.ok for check in found):
        state.block_number, state.block_hash = head.number, head.hash
    return found


async def _positions(rpc: Rpc, deployment: Deployment, state: ChainState, head: int) -> Check:
    from simulation.loader import LoadError, load_lending

    try:
        positions = await load_lending(rpc, state, deployment.lending_from_block, head)
    except LoadError as error:
        return Check(
            "positions",
            False,
            f"the lending market {deployment.lending_pool} does not load: {error}",
            "correct lending_pool, or remove it to run without liquidations",
        )
    return Check("positions", True, f"{positions} positions in {deployment.lending_pool}")


async def check_aave(rpc: Rpc, deployment: Deployment) -> list[Check]:
    """Aave V3's PoolAddressesProvider names its pool, and the pool's revision is one whose
    liquidation rules the bot knows; nothing where the network has no Aave V3."""
    from simulation.aave_v3 import UnsupportedRevision, check_revision

    provider = deployment.aave_provider
    if provider is None:
        return []
    try:
        (pool,) = GET_POOL.decode_output(await eth_call(rpc, provider, GET_POOL.encode()))
    except (ChainError, MalformedError, ValueError):
        return [
            Check(
                "aave",
                False,
                f"the PoolAddressesProvider {provider} does not answer getPool()",
                "point node.ws at the network's node (Aave V3 is deployed there)",
            )
        ]
    pool = str(pool).lower()
    try:
        (revision,) = POOL_REVISION.decode_output(await eth_call(rpc, pool, POOL_REVISION.encode()))
        check_revision(revision)
    except UnsupportedRevision as error:
        return [Check("aave", False, f"pool {pool}: {error}", "run without liquidations there")]
    except (ChainError, MalformedError, ValueError):
        return [
            Check(
                "aave",
                False,
                f"the pool {pool} that {provider} names does not answer POOL_REVISION()",
                "point node.ws at the network's node (Aave V3 is deployed there)",
            )
        ]
    return [Check("aave", True, f"pool {pool} (from {provider}), revision {revision}")]


async def check_mev_share(session: aiohttp.ClientSession, url: str) -> Check:
    """The MEV-Share stream answers a GET as a Server-Sent Events stream (its headers are enough:
    events may be minutes apart)."""
    headers = {"Accept": "text/event-stream"}
    try:
        async with (
            asyncio.timeout(RELAY_TIMEOUT_S),
            session.get(url, headers=headers, allow_redirects=False) as reply,
        ):
            status, kind = reply.status, reply.content_type
    except (aiohttp.ClientError, OSError, TimeoutError) as error:
        return Check(
            "mev-share",
            False,
            f"{origin(url)}: {_why(error, url, RELAY_TIMEOUT_S)}",
            "check mev_share_url",
            "runtime",
        )
    if status != 200 or kind != "text/event-stream":
        return Check(
            "mev-share",
            False,
            f"{origin(url)} answers HTTP {status} ({kind}), not an event stream",
            "point mev_share_url at a MEV-Share event stream",
        )
    return Check("mev-share", True, f"{origin(url)} streams events")


def check_simulator(config: Config) -> Check:
    """The chosen simulation backend can run here (the node it needs is checked apart)."""
    from chain.node import AnvilNotFound, find_anvil

    backend = config.simulation.backend
    if backend == "anvil":
        try:
            return Check("simulator", True, f"anvil fork of node.http ({find_anvil()})")
        except AnvilNotFound as error:
            return Check("simulator", False, "anvil not found", str(error))
    if backend in ("revm", "auto") and importlib.util.find_spec("pyrevm") is None:
        return Check(
            "simulator",
            False,
            f"simulation.backend is {backend}, but pyrevm is not installed",
            'install pyrevm (make setup), or set simulation.backend = "anvil"',
        )
    return Check("simulator", True, f"{backend}")


async def check_reachable(name: str, url: str, field: str, timeout: float) -> Check | int:
    """The chain id the node at ``url`` answers, or the failed check saying why not."""
    try:
        async with asyncio.timeout(timeout), connect(url, timeout=timeout) as rpc:
            return await eth_chain_id(rpc)
    except (ChainError, OSError, TimeoutError) as error:
        return _unreachable(name, url, error, field, timeout)


async def _fork_node(config: Config, deployment: Deployment, timeout: float) -> list[Check]:
    """node.http (where the simulator forks from, or simulates on) answers as the same chain;
    with the node backend it answers eth_simulateV1, with a fork it serves diff traces."""
    url = deployment.node_http
    found = await check_reachable("fork node", url, "node.http", timeout)
    if isinstance(found, Check):
        return [found]
    checks = [check_chain("fork node", url, "node.http", found, deployment)]
    if not checks[0].ok:
        return checks
    backend = config.simulation.backend
    if backend == "auto":
        from simulation.backends import choose_backend  # loads the simulators: not for `watch`
        from simulation.simulator import SimulationError

        try:
            choice = await choose_backend(url, avoid=config.simulation.final_check, timeout=timeout)
        except SimulationError as error:
            return [*checks, Check("auto simulator", False, error.reason, "check node.http")]
        checks.append(Check("auto simulator", True, f"{choice.backend}: {choice.reason}"))
        backend = choice.backend
    if backend == "node":
        checks.append(await _simulate_v1(url, timeout))
    else:
        checks.append(await _diff_traces(url, backend, timeout))
    return checks


_NO_METHOD = ("not found", "does not exist", "not available", "not supported", "not allowed")


async def _diff_traces(url: str, backend: str, timeout: float) -> Check:
    """The node serves the prestate diff traces a fork follows heads with (simulation.block_diff).
    Without them revm forks a cold cache at every head, each fetch holding the bot's loop, so
    that fails; anvil resets its fork instead, which only costs speed."""
    try:
        async with asyncio.timeout(timeout), connect(url, timeout=timeout) as rpc:
            # The genesis block: no transactions to trace, only whether the method is there.
            await rpc.call("debug_traceBlockByNumber", ["0x0", DIFF_TRACER])
    except RpcError as error:
        if error.code == -32601 or any(words in error.message.lower() for words in _NO_METHOD):
            return _no_diff_traces(url, backend, error.message)
    except (ChainError, OSError, TimeoutError) as error:
        return _unreachable("diff traces", url, error, "node.http", timeout)
    return Check("diff traces", True, f"{origin(url)} serves debug_traceBlockByNumber")


def _no_diff_traces(url: str, backend: str, reason: str) -> Check:
    missing = f"{origin(url)} does not serve debug_traceBlockByNumber ({reason})"
    if backend == "anvil":
        return Check("diff traces", True, f"{missing}: the anvil fork is reset at every head")
    return Check(
        "diff traces",
        False,
        f"{missing}: revm would fork a cold cache at every head",
        'use a node that serves it (geth, reth, anvil), or set simulation.backend = "anvil"',
    )


async def _simulate_v1(url: str, timeout: float) -> Check:
    # An empty block of no calls: the cheapest request the method answers.
    try:
        async with asyncio.timeout(timeout), connect(url, timeout=timeout) as rpc:
            await rpc.call("eth_simulateV1", [{"blockStateCalls": [{"calls": []}]}, "latest"])
    except RpcError as error:
        return Check(
            "simulator node",
            False,
            f"{origin(url)} does not answer eth_simulateV1 ({error.message})",
            'set simulation.backend = "anvil" (a local fork of node.http)',
        )
    except (ChainError, OSError, TimeoutError) as error:
        return _unreachable("simulator node", url, error, "node.http", timeout)
    return Check("simulator node", True, f"{origin(url)} answers eth_simulateV1")


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
            f"{origin(url)}: {_why(error, url, RELAY_TIMEOUT_S)}",
            "check the relay URL, or set dry_run = true to submit nothing",
            "runtime",
        )
    return Check(f"relay {name}", True, f"{origin(url)} answers (HTTP {status})")


async def check_signature(
    session: aiohttp.ClientSession, name: str, url: str, dialect: str, keys: Keys
) -> Check:
    """The relay takes a request signed by the searcher key (see the module's docstring)."""
    from execution.dialects import Replacement, get_dialect
    from execution.relay import RelayClient, RelayError, RelayFailure

    if not get_dialect(dialect).signs:
        return Check(f"relay {name} signature", True, f"{dialect} takes no signature header")
    client = RelayClient(
        url,
        keys.searcher,
        name=name,
        dialect=dialect,
        session=session,
        timeout=RELAY_TIMEOUT_S,
        max_retries=0,
    )
    signer = keys.searcher.address.lower()
    try:
        await client.cancel(Replacement.new())
    except RelayError as error:
        refused = error.status in (401, 403) or error.code == INVALID_SIGNATURE
        if refused or "signature" in error.message.lower():
            return Check(
                f"relay {name} signature",
                False,
                f"refuses the searcher's signature ({signer}): {error.detail}",
                "check the relay's URL and dialect; some builders only take known searchers",
            )
    except RelayFailure as error:
        return Check(
            f"relay {name} signature", False, error.detail, "check the relay URL", "runtime"
        )
    return Check(f"relay {name} signature", True, f"accepts requests signed by {signer}")


async def _relay(
    session: aiohttp.ClientSession, name: str, url: str, dialect: str, keys: Keys
) -> list[Check]:
    found = [await check_relay(session, name, url)]
    if found[0].ok:
        found.append(await check_signature(session, name, url, dialect, keys))
    return found


async def check_mev_share_bundles(
    session: aiohttp.ClientSession, url: str, keys: Keys
) -> list[Check]:
    """The MEV-Share node's bundle endpoint answers and takes the searcher's signature: the
    relays' checks (Flashbots' node signs as its relay does), named and fixed for it."""
    return [
        replace(
            check,
            name=check.name.replace("relay mev-share", "mev-share bundles", 1),
            fix=check.fix and "check mev_share_bundle_url",
        )
        for check in await _relay(session, "mev-share", url, "flashbots", keys)
    ]


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
            f"{origin(url)}: {_why(error, url, timeout)}",
            "start redis-server, or correct --redis (or store.redis_url)",
            "runtime",
        )
    finally:
        await client.aclose()
    return Check("redis", True, f"{origin(url)} answers")


async def run_checks(
    config: Config,
    deployment: Deployment,
    keys: Keys,
    redis_url: str | None = None,
    state: ChainState | None = None,
) -> tuple[Check, ...]:
    """Every start-up check, in the order a person would fix them; ``redis_url`` is the Redis
    the instances share, if any; the pools and positions load into ``state`` when given (see
    :func:`check_state`)."""
    timeout = config.node.timeout_s
    node = await _node(deployment, keys, timeout, state, config.state.max_pools)
    found = [check_keys(keys, config), *node]
    found += await _fork_node(config, deployment, timeout)
    found.append(check_simulator(config))
    if redis_url is not None:
        found.append(await check_redis(redis_url, timeout))
    relays = deployment.relays if not config.dry_run else ()
    dialects = deployment.relay_dialects
    async with aiohttp.ClientSession() as session:
        for checks in await asyncio.gather(
            *(
                _relay(session, name, url, dialects.get(name, "generic"), keys)
                for name, url in relays
            )
        ):
            found += checks
        if deployment.mevshare_stream is not None:
            found.append(await check_mev_share(session, deployment.mevshare_stream))
        if deployment.mevshare_rpc is not None and not config.dry_run:
            found += await check_mev_share_bundles(session, deployment.mevshare_rpc, keys)
    return tuple(found)
