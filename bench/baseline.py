"""The baseline: the same backrun bot written the obvious way with web3.py's high-level API.

What a user would write in an afternoon, with the two easy courtesies (one ``asyncio.gather``
per group of independent calls, a reused HTTP session) so that the comparison flatters it
rather than us. An ``AsyncWeb3`` over ``WebSocketProvider`` subscribes to pending tx hashes
(``w3.eth.subscribe`` + ``w3.socket.process_subscriptions``); for each hash it:

1. ``get_transaction`` and ``get_raw_transaction`` (the victim's envelope for the bundle);
2. ``router.decode_function_input`` (only ``swapExactTokensForTokens`` on a known router);
3. ``pair.functions.getReserves().call()`` on every pool of the WETH cycles (2 and 3 hops, as
   mevbot's) through the victim's pool, with ``get_block("latest")`` (target block, base fee)
   and ``get_transaction_count`` (nonce);
4. the best cycle on the reserves the swap leaves: the textbook closed form on the hops folded
   into one virtual pool (floats), the profit checked with the pools' integer math;
5. ``executor.functions.arbitrage(...).call(block_identifier="pending")`` — anvil's pending
   block holds the victim, so a revert here means the backrun would revert;
6. ``.build_transaction`` and ``w3.eth.account.sign_transaction``;
7. ``eth_sendBundle`` ``[victim, ours]`` for the next block, POSTed to the relay with the
   ``X-Flashbots-Signature`` header (the project's signer, so both bots hit the same relay).

Every stage is timed; :class:`BaselineOutcome` carries the monotonic time at which the
relay's answer was read, so the caller measures from the same wire event as for mevbot.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson
from eth_account import Account
from web3 import AsyncWeb3, WebSocketProvider
from web3.exceptions import ContractLogicError, Web3Exception

from anvil import artifacts
from execution.signature import HEADER, FlashbotsSigner

FEE_NUMERATOR, FEE_DENOMINATOR = 997, 1000
GAS_ESTIMATE = 200_000  # what the afternoon bot assumes an arbitrage costs
GAS_LIMIT = 300_000
COINBASE_SHARE = 2  # half of what is left after gas goes to the builder, as mevbot's default
RPC_TIMEOUT_S = 5.0


def _abi(name: str) -> list[dict[str, Any]]:
    abi: list[dict[str, Any]] = artifacts.artifact_json(name)["abi"]
    return abi


def amount_out(amount_in: int, reserve_in: int, reserve_out: int) -> int:
    """``UniswapV2Library.getAmountOut`` with the 0.3% fee."""
    with_fee = amount_in * FEE_NUMERATOR
    return with_fee * reserve_out // (reserve_in * FEE_DENOMINATOR + with_fee)


@dataclass(frozen=True, slots=True)
class PairInfo:
    address: str
    dex: str
    token0: str
    token1: str


@dataclass(frozen=True, slots=True)
class Hop:
    """Sell ``token_in`` into ``pair``."""

    pair: str
    token_in: str
    zero_for_one: bool


Cycle = tuple[Hop, ...]


def weth_cycles(pairs: Sequence[PairInfo], weth: str, max_hops: int = 3) -> list[Cycle]:
    """Every path of 2..max_hops pairs from WETH back to WETH, no pair used twice."""
    found: list[Cycle] = []

    def extend(path: list[Hop], token: str) -> None:
        for pair in pairs:
            if token not in (pair.token0, pair.token1) or any(h.pair == pair.address for h in path):
                continue
            hop = Hop(pair.address, token, token == pair.token0)
            token_out = pair.token1 if hop.zero_for_one else pair.token0
            if token_out == weth:
                if path:
                    found.append((*path, hop))
            elif len(path) + 1 < max_hops:
                extend([*path, hop], token_out)

    extend([], weth)
    return found


@dataclass(frozen=True, slots=True)
class Backrun:
    """Trade ``amount_in`` WETH through ``hops`` in order for ``profit`` WETH."""

    hops: Cycle
    amount_in: int
    profit: int


def best_backrun(
    cycles: Sequence[Cycle], reserves: Mapping[str, tuple[int, int]]
) -> Backrun | None:
    """The most profitable cycle, its input from the textbook closed form: fold the hops into
    one virtual constant-product pool (float math), then check the profit in exact integers."""
    fee = FEE_NUMERATOR / FEE_DENOMINATOR
    best: Backrun | None = None
    for cycle in cycles:
        legs = []
        for hop in cycle:
            reserve0, reserve1 = reserves[hop.pair]
            legs.append((reserve0, reserve1) if hop.zero_for_one else (reserve1, reserve0))
        virtual_in, virtual_out = float(legs[0][0]), float(legs[0][1])
        for reserve_in, reserve_out in legs[1:]:
            denominator = reserve_in + fee * virtual_out
            virtual_in, virtual_out = (
                virtual_in * reserve_in / denominator,
                fee * virtual_out * reserve_out / denominator,
            )
        if fee * virtual_out <= virtual_in:
            continue
        amount = int((math.sqrt(virtual_in * virtual_out * fee) - virtual_in) / fee)
        out = amount
        for reserve_in, reserve_out in legs:
            out = amount_out(out, reserve_in, reserve_out)
        profit = out - amount
        if profit > 0 and (best is None or profit > best.profit):
            best = Backrun(cycle, amount, profit)
    return best


def reserves_after_swap(
    pair: PairInfo, reserves: tuple[int, int], token_in: str, amount_in: int
) -> tuple[int, int]:
    """A pair's reserves after a swap of ``amount_in`` of ``token_in`` into it."""
    reserve0, reserve1 = reserves
    if token_in == pair.token0:
        return reserve0 + amount_in, reserve1 - amount_out(amount_in, reserve0, reserve1)
    return reserve0 - amount_out(amount_in, reserve1, reserve0), reserve1 + amount_in


@dataclass(frozen=True, slots=True)
class BaselineOutcome:
    """What the baseline did with one pending hash, and how long each stage took (ms)."""

    tx_hash: str
    outcome: str  # sent | skipped | no_opportunity | reverts | relay_error | error
    seen_ns: int
    stages: dict[str, float] = field(default_factory=dict)
    relay_answered_ns: int | None = None
    backrun: Backrun | None = None
    detail: str = ""


@dataclass(frozen=True, slots=True)
class BaselineSetup:
    """The chain facts the afternoon bot is configured with (from the devnet's world)."""

    ws_url: str
    relay_url: str
    chain_id: int
    weth: str
    executor: str
    executor_key: str
    searcher_key: str
    routers: dict[str, str]  # router -> dex name
    pairs: tuple[PairInfo, ...]

    @classmethod
    def from_world(cls, world: Any, relay_url: str) -> BaselineSetup:
        return cls(
            ws_url=world.rpc["ws"],
            relay_url=relay_url,
            chain_id=world.chain_id,
            weth=world.tokens["WETH"]["address"],
            executor=world.executor,
            executor_key=world.roles["executor"].private_key,
            searcher_key=world.roles["searcher"].private_key,
            routers={d["router"]: name for name, d in world.dexes.items()},
            pairs=tuple(
                PairInfo(p["address"], name, p["token0"], p["token1"])
                for name, d in world.dexes.items()
                for p in d["pairs"].values()
            ),
        )

    def pair_of(self, dex: str, token_a: str, token_b: str) -> PairInfo:
        tokens = {token_a, token_b}
        return next(p for p in self.pairs if p.dex == dex and {p.token0, p.token1} == tokens)


class _Clock:
    """Stage timings of one pending tx."""

    def __init__(self) -> None:
        self.stages: dict[str, float] = {}

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        started = time.perf_counter_ns()
        try:
            yield
        finally:
            self.stages[name] = (time.perf_counter_ns() - started) / 1e6


class Web3Backrunner:
    """``await start()``; ``await run(on_outcome)`` handles pending hashes until cancelled."""

    def __init__(self, setup: BaselineSetup) -> None:
        self.setup = setup
        self.account = Account.from_key(setup.executor_key)
        self.flashbots = FlashbotsSigner(Account.from_key(setup.searcher_key))
        self.subscribed = asyncio.Event()
        self._request_id = 0

    async def start(self) -> None:
        self.w3 = await AsyncWeb3(WebSocketProvider(self.setup.ws_url))
        self.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=RPC_TIMEOUT_S))
        router_abi, pair_abi = _abi("UniswapV2Router02"), _abi("UniswapV2Pair")
        w3, checksum = self.w3, AsyncWeb3.to_checksum_address
        self.routers = {a: w3.eth.contract(checksum(a), abi=router_abi) for a in self.setup.routers}
        self.pair_contracts = {
            p.address: w3.eth.contract(checksum(p.address), abi=pair_abi) for p in self.setup.pairs
        }
        self.executor = w3.eth.contract(checksum(self.setup.executor), abi=_abi("Executor"))
        self.cycles = weth_cycles(self.setup.pairs, self.setup.weth)

    async def close(self) -> None:
        await self.session.close()
        await self.w3.provider.disconnect()

    async def run(self, on_outcome: Callable[[BaselineOutcome], None]) -> None:
        """Subscribe to pending hashes and handle them one by one, until cancelled."""
        subscription = await self.w3.eth.subscribe("newPendingTransactions")
        self.subscribed.set()
        try:
            async for message in self.w3.socket.process_subscriptions():
                seen_ns = time.monotonic_ns()
                tx_hash = AsyncWeb3.to_hex(message["result"])
                on_outcome(await self.handle(tx_hash, seen_ns))
        finally:
            self.subscribed.clear()
            with contextlib.suppress(Web3Exception, TimeoutError, OSError):
                await asyncio.wait_for(self.w3.eth.unsubscribe(subscription), RPC_TIMEOUT_S)

    async def handle(self, tx_hash: str, seen_ns: int) -> BaselineOutcome:
        clock = _Clock()
        try:
            return await self._handle(tx_hash, seen_ns, clock)
        except (Web3Exception, aiohttp.ClientError, TimeoutError, ValueError) as error:
            return BaselineOutcome(tx_hash, "error", seen_ns, clock.stages, detail=repr(error))

    async def _handle(self, tx_hash: str, seen_ns: int, clock: _Clock) -> BaselineOutcome:
        w3, setup = self.w3, self.setup
        with clock.stage("get_transaction"):
            tx, raw = await asyncio.gather(
                w3.eth.get_transaction(tx_hash), w3.eth.get_raw_transaction(tx_hash)
            )
        to = (tx.get("to") or "").lower()
        router = self.routers.get(to)
        if router is None:
            return BaselineOutcome(tx_hash, "skipped", seen_ns, clock.stages, detail="not a router")
        with clock.stage("decode"):
            function, params = router.decode_function_input(tx["input"])
        if function.fn_name != "swapExactTokensForTokens" or len(params["path"]) != 2:
            return BaselineOutcome(tx_hash, "skipped", seen_ns, clock.stages, detail="not a swap")
        token_in, token_out = (address.lower() for address in params["path"])
        victim = setup.pair_of(setup.routers[to], token_in, token_out)
        cycles = [c for c in self.cycles if any(hop.pair == victim.address for hop in c)]
        involved = sorted({hop.pair for cycle in cycles for hop in cycle})
        with clock.stage("reserves_block_nonce"):
            *answers, block, nonce = await asyncio.gather(
                *(self.pair_contracts[a].functions.getReserves().call() for a in involved),
                w3.eth.get_block("latest"),
                w3.eth.get_transaction_count(self.account.address),
            )
        with clock.stage("compute"):
            reserves = {a: (r[0], r[1]) for a, r in zip(involved, answers, strict=True)}
            reserves[victim.address] = reserves_after_swap(
                victim, reserves[victim.address], token_in, params["amountIn"]
            )
            backrun = best_backrun(cycles, reserves)
            max_fee = 2 * block["baseFeePerGas"]
            gas_cost = GAS_ESTIMATE * max_fee
        if backrun is None or backrun.profit <= gas_cost:
            return BaselineOutcome(tx_hash, "no_opportunity", seen_ns, clock.stages)
        coinbase = (backrun.profit - gas_cost) // COINBASE_SHARE
        # Executor.arbitrageHops from inventory: hops (pool, Kind.V2 = 0, zeroForOne).
        call = self.executor.functions.arbitrageHops(
            [(AsyncWeb3.to_checksum_address(h.pair), 0, h.zero_for_one) for h in backrun.hops],
            backrun.amount_in,
            False,
            gas_cost,
            coinbase,
        )
        with clock.stage("eth_call_pending"):
            try:
                await call.call({"from": self.account.address}, block_identifier="pending")
            except ContractLogicError as error:
                return BaselineOutcome(
                    tx_hash, "reverts", seen_ns, clock.stages, backrun=backrun, detail=str(error)
                )
        with clock.stage("build_transaction"):
            unsigned = await call.build_transaction(
                {
                    "from": self.account.address,
                    "nonce": nonce,
                    "gas": GAS_LIMIT,
                    "maxFeePerGas": max_fee,
                    "maxPriorityFeePerGas": 0,
                    "chainId": setup.chain_id,
                }
            )
        with clock.stage("sign"):
            signed = w3.eth.account.sign_transaction(unsigned, self.account.key)
        with clock.stage("relay_post"):
            self._request_id += 1
            body = orjson.dumps(
                {
                    "jsonrpc": "2.0",
                    "id": self._request_id,
                    "method": "eth_sendBundle",
                    "params": [
                        {
                            "txs": [
                                AsyncWeb3.to_hex(raw),
                                AsyncWeb3.to_hex(signed.raw_transaction),
                            ],
                            "blockNumber": hex(block["number"] + 1),
                        }
                    ],
                }
            )
            headers = {"Content-Type": "application/json", HEADER: self.flashbots.sign(body)}
            async with self.session.post(setup.relay_url, data=body, headers=headers) as response:
                answer = await response.json(content_type=None)
            answered_ns = time.monotonic_ns()
        if not isinstance(answer, dict) or "result" not in answer:
            return BaselineOutcome(
                tx_hash, "relay_error", seen_ns, clock.stages, answered_ns, backrun, str(answer)
            )
        return BaselineOutcome(tx_hash, "sent", seen_ns, clock.stages, answered_ns, backrun)
