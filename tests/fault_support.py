"""Shared pieces of the fault, load and bad-input scenarios: a bot on a devnet stack, waiting for
a condition, signing swaps and transfers, reading balances and reserves, process memory and the
processes a killed parent left behind.

Import into a test module (``from fault_support import bot_on, until``); the devnet state cache
comes from the ``devnet_cache`` fixture of tests/conftest.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_utils import to_checksum_address

from anvil import artifacts
from anvil.builder import BlockReport
from anvil.stack import DevnetStack
from chain.abi import Abi, load_artifact
from chain.types import SignedTx
from execution.bundler import BundlePlan
from execution.inclusion import in_bundle_order
from mevbot.config import load_config
from mevbot.deployment import Deployment, deployment_from_world, devnet_keys
from mevbot.runtime import Bot

ERC20 = load_artifact("ERC20Token").abi
PAIR = artifacts.load("UniswapV2Pair").abi
ROUTER = artifacts.load("UniswapV2Router02").abi


async def until(predicate: Callable[[], object], timeout: float = 15.0, what: str = "") -> None:
    """Poll ``predicate`` every 20 ms until it is truthy; AssertionError after ``timeout`` s."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.02)


def bot_config(ledger: Path, **overrides: str) -> Any:
    """The devnet config with the ledger at ``ledger``; ``overrides`` are MEVBOT_* variables."""
    environ = {
        "MEVBOT_STORE__LEDGER_PATH": str(ledger),
        "MEVBOT_STRATEGIES__TARGET_BLOCKS": "1",
        "MEVBOT_METRICS__ENABLED": "false",  # no fixed port shared with other test runs
        **overrides,
    }
    return load_config(network="devnet", environ=environ)


@contextlib.asynccontextmanager
async def bot_on(
    stack: DevnetStack,
    workdir: Path,
    *,
    deployment: Deployment | None = None,
    journal_path: Path | None = None,
    **overrides: str,
) -> AsyncIterator[Bot]:
    """A started bot wired to ``stack`` (or to ``deployment``); stopped on exit."""
    bot = Bot(
        bot_config(workdir / "ledger.sqlite", **overrides),
        deployment or deployment_from_world(stack.world, stack.relay_url),
        devnet_keys(stack.world),
        journal_path=str(journal_path) if journal_path else None,
    )
    await bot.start()
    try:
        yield bot
    finally:
        await bot.stop()


def with_relays(stack: DevnetStack, relays: Mapping[str, str]) -> Deployment:
    """The devnet deployment with the devnet relay first and ``relays`` (name -> url) after it."""
    base = deployment_from_world(stack.world, stack.relay_url)
    return replace(base, relays=(*base.relays, *relays.items()))


async def mine(stack: DevnetStack, bot: Bot, timeout: float = 15.0) -> BlockReport:
    """Build one block with the stack's builder and wait until the bot has processed it."""
    report = await stack.builder.build_block()
    await until(
        lambda: bot.engine.processed_block >= report.number,
        timeout,
        f"the bot to process block {report.number}",
    )
    return report


async def call(rpc: Any, to: str, data: bytes) -> bytes:
    answer = await rpc.call("eth_call", [{"to": to, "data": "0x" + data.hex()}, "latest"])
    return bytes.fromhex(answer[2:])


async def token_balance(rpc: Any, token: str, holder: str) -> int:
    fn = ERC20.function("balanceOf")
    return fn.decode_output(await call(rpc, token, fn.encode(holder)))[0]


async def eth_balance(rpc: Any, holder: str) -> int:
    return int(await rpc.call("eth_getBalance", [holder, "latest"]), 16)


async def chain_reserves(rpc: Any, pair: str) -> tuple[int, int]:
    fn = PAIR.function("getReserves")
    reserve0, reserve1, _ = fn.decode_output(await call(rpc, pair, fn.encode()))
    return reserve0, reserve1


V3_POOL = Abi.from_signatures(
    "function slot0() returns (uint160, int24, uint16, uint16, uint16, uint8, bool)",
    "function liquidity() returns (uint128)",
)


async def pool_on_chain(rpc: Any, pool: Any) -> tuple[int, ...]:
    """What the chain says of a tracked pool, in the terms the bot keeps: a V2 pair's reserves,
    a V3 pool's sqrt price, tick and in-range liquidity."""
    if pool.kind == "uniswap-v2":
        return await chain_reserves(rpc, pool.address)
    slot0, liquidity = V3_POOL.function("slot0"), V3_POOL.function("liquidity")
    sqrt_price, tick, *_ = slot0.decode_output(await call(rpc, pool.address, slot0.encode()))
    (active,) = liquidity.decode_output(await call(rpc, pool.address, liquidity.encode()))
    return sqrt_price, tick, active


def pool_kept(pool: Any) -> tuple[int, ...]:
    """The same figures from the bot's own state."""
    if pool.kind == "uniswap-v2":
        return pool.reserve0, pool.reserve1
    return pool.sqrt_price_x96, pool.tick, pool.liquidity


async def send_raw(rpc: Any, tx: SignedTx) -> str:
    return await rpc.call("eth_sendRawTransaction", [tx.raw_hex])


def sign_transfer(key: str, nonce: int, to: str, base_fee: int, chain_id: int = 31337) -> SignedTx:
    """A plain ETH transfer of 1 wei: a pending tx that touches no pool (irrelevant work)."""
    account = Account.from_key(key)
    signed = account.sign_transaction(
        {
            "type": 2,
            "chainId": chain_id,
            "nonce": nonce,
            "to": to_checksum_address(to),
            "value": 1,
            "gas": 21_000,
            "maxFeePerGas": 2 * base_fee + 10**9,
            "maxPriorityFeePerGas": 10**9,
        }
    )
    return SignedTx(
        bytes(signed.raw_transaction), "0x" + signed.hash.hex(), account.address.lower(), nonce
    )


def proc_status_kb(field: str, pid: int | str = "self") -> int:
    """A ``/proc/<pid>/status`` memory line in kB (``VmHWM`` = peak RSS, ``VmRSS`` = now)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise KeyError(field)


def descendants(pid: int) -> list[int]:
    """Every live process below ``pid`` (children, grandchildren…), from /proc."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            # The command name may hold spaces or parentheses: the ppid follows the last ')'.
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        parents.setdefault(int(fields[1]), []).append(int(entry.name))
    found: list[int] = []
    frontier = [pid]
    while frontier:
        children = parents.get(frontier.pop(), [])
        found.extend(children)
        frontier.extend(children)
    return found


def kill_pids(pids: list[int]) -> None:
    """SIGKILL the given processes (those we started and orphaned); gone ones are skipped."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


async def latest_base_fee(rpc: Any) -> int:
    head = await rpc.call("eth_getBlockByNumber", ["latest", False])
    return int(head["baseFeePerGas"], 16)


async def push_victim(
    stack: DevnetStack,
    traffic: Any,
    *,
    dex: str = "uniswap",
    pair: str = "WETH/USDC",
    percent: int = 3,
    deadline: int = 2**40,
) -> SignedTx:
    """Send a pending swap selling ``percent``% of the pool's WETH (reserves read on chain):
    prices move apart, so a bot has a backrun to make (the trade of tests/test_e2e.py).
    ``traffic`` is a synced :class:`anvil.traffic.Traffic`; a ``deadline`` in the past makes
    the router revert the swap."""
    world = stack.world
    weth = world.tokens["WETH"]["address"]
    entry = world.dexes[dex]["pairs"][pair]
    other = entry["token1"] if entry["token0"] == weth else entry["token0"]
    reserves = await chain_reserves(stack.rpc, entry["address"])
    amount = reserves[0 if entry["token0"] == weth else 1] * percent // 100
    trader = world.traders[0].address
    data = ROUTER.function("swapExactTokensForTokens").encode(
        amount, 0, [weth, other], trader, deadline
    )
    base_fee = await latest_base_fee(stack.rpc)
    victim = traffic.sign(trader, world.dexes[dex]["router"], data, base_fee)
    await send_raw(stack.rpc, victim)
    return victim


def sent_for(bot: Bot, trigger: str) -> list[Any]:
    """The engine's ``sent`` verdicts for candidates triggered by the tx ``trigger``."""
    return [
        v
        for c, v in bot.engine.submitter.verdicts
        if c.trigger_hash == trigger and v.outcome == "sent"
    ]


def landed_in(report: BlockReport, plan: BundlePlan) -> bool:
    """Whether ``plan``'s txs (its victims, then our executor call) landed in the built block
    together and in order, inside whichever of our bundles carried them."""
    ours = [tx.hash for tx in plan.bundles[0].txs]
    return any(in_bundle_order(landed.tx_hashes, ours) for landed in report.landed)
