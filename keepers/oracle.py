"""The oracle keeper: keeps Chainlink-style feeds fresh by the rule real feeds publish.

It is one oracle of each feed's OCR committee: it reads the feed through its proxy and posts the
new answer as an OCR1 ``transmit`` to the proxy's current aggregator, signed by a transmitter
key (the report layout is :mod:`chain.ocr`'s, the mainnet one).

A feed gets a new answer when the reference price deviates from the on-chain answer by at least
``deviation_bps`` or when ``heartbeat_s`` has passed since its ``updatedAt`` (chain time) —
whichever comes first (Chainlink's deviation and heartbeat thresholds, set per feed). The
update for the round after the current one has the idempotency key ``(job, feed, round)``,
claimed in the store before anything is signed: never two transactions for the same round, in
any instance. An update still pending when the feed moves to another round (someone else
answered) is cancelled.

The reference price is pluggable (:class:`ReferencePrice`): a deterministic series by block or
time (the devnet's), a DEX mid-price from tracked pools, or an HTTP JSON source with a JSON path.
Prices are integers in the feed's answer units (e.g. USD with 8 decimals). A source that fails
returns None and counts the failure; it never stops the keeper.
"""

from __future__ import annotations

import asyncio
from bisect import bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Literal, Protocol

import aiohttp

from chain.abi import Abi
from chain.errors import ChainError
from chain.ocr import transmit_answer
from chain.rpc import Rpc, eth_get_block
from chain.types import BlockHeader, MalformedError, hex_to_bytes
from execution.sender import Recovery, SendRefused, TxRequest, TxSender
from keepers.scheduler import Tick, action_key
from keepers.store import KeeperStore
from simulation.state import ChainState

BPS = 10_000
# The proxy's reads (EACAggregatorProxy) and the OCR1 aggregator's transmission details.
FEED = Abi.from_signatures(
    "function latestRoundData() returns (uint80, int256, uint256, uint256, uint80)",
    "function aggregator() returns (address)",
    "function latestTransmissionDetails() returns (bytes16, uint32, uint8, int192, uint64)",
)
LATEST_ROUND_DATA = FEED.function("latestRoundData")
AGGREGATOR = FEED.function("aggregator")
TRANSMISSION_DETAILS = FEED.function("latestTransmissionDetails")


def update_reason(
    reference: int,
    answer: int,
    updated_at: int,
    now: int,
    *,
    deviation_bps: int,
    heartbeat_s: int | None,
) -> str | None:
    """ "deviation", "heartbeat" or None: whether a feed answering ``answer`` (last updated at
    ``updated_at``) needs ``reference`` posted at chain time ``now``."""
    if abs(reference - answer) * BPS >= deviation_bps * abs(answer) and reference != answer:
        return "deviation"
    if heartbeat_s is not None and now - updated_at >= heartbeat_s:
        return "heartbeat"
    return None


# ------------------------------------------------------------------------- reference prices


class ReferencePrice(Protocol):
    """Where the keeper reads the price a feed should answer; None when unavailable now."""

    name: str

    async def price(self, tick: Tick) -> int | None: ...


@dataclass(frozen=True, slots=True)
class SeriesPrice:
    """A deterministic price path: ``path(x)`` with x the block number or the block timestamp."""

    name: str
    path: Callable[[int], int]
    by: Literal["block", "time"] = "block"

    @classmethod
    def table(
        cls, name: str, points: Sequence[tuple[int, int]], by: Literal["block", "time"] = "block"
    ) -> SeriesPrice:
        """A step function: the price of the last point at or before x (the first before it)."""
        ordered = sorted(points)
        if not ordered:
            raise ValueError("a price table needs at least one point")
        xs = [x for x, _ in ordered]

        def step(x: int) -> int:
            return ordered[max(bisect_right(xs, x) - 1, 0)][1]

        return cls(name, step, by)

    async def price(self, tick: Tick) -> int | None:
        if tick.header is None:
            return None
        return self.path(tick.header.number if self.by == "block" else tick.header.timestamp)


@dataclass(frozen=True, slots=True)
class DexMidPrice:
    """The mid-price of ``base`` in ``quote`` in a tracked V2 pool (reserve ratio, no fee),
    times ``quote_price`` (the quote token's price in answer units, e.g. 1e8 for a dollar)."""

    name: str
    state: ChainState
    pool: str
    base: str
    base_decimals: int
    quote_decimals: int
    quote_price: int

    async def price(self, tick: Tick) -> int | None:
        pool = self.state.pools.get(self.pool.lower())
        if pool is None:
            return None
        base_reserve, quote_reserve = pool.reserves_for(self.base.lower())
        if base_reserve == 0:
            return None
        return (
            quote_reserve
            * 10**self.base_decimals
            * self.quote_price
            // (base_reserve * 10**self.quote_decimals)
        )


class HttpJsonPrice:
    """``GET url`` and read the number at ``path`` ("data.price", "0.last" for lists), scaled
    to ``decimals``. A bad answer (HTTP error, timeout, not JSON, missing or non-positive
    value) is counted in ``errors`` with ``last_error`` and gives None."""

    def __init__(
        self,
        name: str,
        url: str,
        path: str,
        *,
        decimals: int = 8,
        timeout_s: float = 3.0,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self.name = name
        self.url = url
        self.path = tuple(part for part in path.split(".") if part)
        self.decimals = decimals
        self.timeout_s = timeout_s
        self._session = session
        self.errors = 0
        self.last_error: str | None = None

    async def price(self, tick: Tick) -> int | None:
        try:
            document = await self._fetch()
            return self._scaled(_walk(document, self.path))
        except (aiohttp.ClientError, TimeoutError, ValueError) as error:
            self.errors += 1
            self.last_error = f"{type(error).__name__}: {error}"[:200]
            return None

    async def _fetch(self) -> Any:
        session = self._session or aiohttp.ClientSession()
        try:
            async with (
                asyncio.timeout(self.timeout_s),
                session.get(self.url, headers={"Accept": "application/json"}) as reply,
            ):
                if reply.status != 200:
                    raise ValueError(f"HTTP {reply.status}")
                return await reply.json(content_type=None)
        finally:
            if self._session is None:
                await session.close()

    def _scaled(self, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise ValueError(f"not a number at {'.'.join(self.path)}: {value!r:.40}")
        try:
            number = Decimal(str(value))
        except InvalidOperation:
            raise ValueError(f"not a number at {'.'.join(self.path)}: {value!r:.40}") from None
        if not number.is_finite() or number <= 0:
            raise ValueError(f"not a positive price: {value!r:.40}")
        return int(number.scaleb(self.decimals).to_integral_value())


def _walk(document: Any, path: Sequence[str]) -> Any:
    node = document
    for part in path:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            raise ValueError(f"no {'.'.join(path)} in the answer")
    return node


# ------------------------------------------------------------------------- the keeper


@dataclass(frozen=True, slots=True)
class OracleFeed:
    """One feed to keep: its proxy's address, reference and thresholds; ``faults`` is the OCR
    committee's f (a report carries 2f+1 observations and f+1 signatures)."""

    address: str
    reference: ReferencePrice
    deviation_bps: int
    heartbeat_s: int | None
    faults: int = 1


@dataclass(frozen=True, slots=True)
class RoundData:
    """A proxy's latest round and the aggregator it reads now."""

    round_id: int
    answer: int
    updated_at: int
    aggregator: str


class OracleKeeper:
    """Posts ``transmit`` through ``sender`` (an oracle's transmitter account) when due.

    ``run`` also drives the sender (settles, bumps and cancels its txs) on each head, unless
    ``drive_sender`` is False because the application already does.
    """

    def __init__(
        self,
        name: str,
        *,
        rpc: Rpc,
        sender: TxSender,
        store: KeeperStore,
        owner: str,
        feeds: Sequence[OracleFeed],
        drive_sender: bool = True,
        timeout_s: float = 5.0,
    ) -> None:
        self.name = name
        self.rpc = rpc
        self.sender = sender
        self.store = store
        self.owner = owner
        self.feeds = {feed.address.lower(): feed for feed in feeds}
        self.drive_sender = drive_sender
        self.timeout_s = timeout_s
        self.reference_failures = 0
        self.updates_sent = 0

    async def recover(self) -> Recovery:
        """After a restart: reconcile the sender with the chain; the rounds whose update never
        reached a node are claimable again."""
        recovery = await self.sender.recover()
        for key in recovery.dropped:
            await self.store.release_claim(key, self.owner)
        return recovery

    async def run(self, tick: Tick) -> str | None:
        header = tick.header or await eth_get_block(self.rpc, "latest")
        if header is None:
            return None
        if self.drive_sender:
            await self.sender.on_block(header)
        rounds = await self.read_rounds(header.number)
        actions = []
        for address, feed in self.feeds.items():
            action = await self._keep(feed, rounds[address], header, tick)
            if action is not None:
                actions.append(action)
        return "; ".join(actions) or None

    async def read_rounds(self, block: int | str = "latest") -> dict[str, RoundData]:
        """``latestRoundData`` and ``aggregator()`` of every feed in one batch."""
        tag = hex(block) if isinstance(block, int) else block
        reads = (LATEST_ROUND_DATA, AGGREGATOR)
        answers = await self.rpc.batch(
            [
                ("eth_call", ({"to": a, "data": "0x" + fn.encode().hex()}, tag))
                for a in self.feeds
                for fn in reads
            ],
            timeout=self.timeout_s,
        )
        rounds = {}
        for index, address in enumerate(self.feeds):
            (round_id, value, _, updated_at, _), (aggregator,) = (
                _decoded(fn, answer, address)
                for fn, answer in zip(reads, answers[2 * index : 2 * index + 2], strict=True)
            )
            rounds[address] = RoundData(round_id, value, updated_at, aggregator.lower())
        return rounds

    async def _transmit_calldata(self, feed: OracleFeed, aggregator: str, answer: int) -> bytes:
        """A report past the aggregator's latest epoch, under its current config digest."""
        raw = await self.rpc.call(
            "eth_call",
            [{"to": aggregator, "data": "0x" + TRANSMISSION_DETAILS.encode().hex()}, "latest"],
            timeout=self.timeout_s,
        )
        digest, epoch, _, _, _ = _decoded(TRANSMISSION_DETAILS, raw, aggregator)
        return transmit_answer(answer, digest, epoch + 1, feed.faults)

    async def _keep(
        self, feed: OracleFeed, current: RoundData, header: BlockHeader, tick: Tick
    ) -> str | None:
        address = feed.address.lower()
        next_key = action_key(self.name, address, current.round_id + 1)
        for tracked in self.sender.tracked:
            if tracked.key.startswith(f"{self.name}:{address}:") and tracked.key != next_key:
                await self.sender.cancel(tracked.key)  # the feed moved on without our update
        try:
            reference = await feed.reference.price(tick)
        except Exception:  # a broken source is counted; the other feeds go on
            reference = None
        if reference is None or reference <= 0:
            self.reference_failures += 1
            return None
        reason = update_reason(
            reference,
            current.answer,
            current.updated_at,
            header.timestamp,
            deviation_bps=feed.deviation_bps,
            heartbeat_s=feed.heartbeat_s,
        )
        if reason is None or self.sender.pending(next_key) is not None:
            return None
        if not await self.store.claim(next_key, self.owner):
            return None
        calldata = await self._transmit_calldata(feed, current.aggregator, reference)
        request = TxRequest(next_key, current.aggregator, calldata)
        try:
            sent = await self.sender.send(request, block=header.number, base_fee=header.base_fee)
        except SendRefused as refused:
            await self.store.release_claim(next_key, self.owner)
            return f"transmit for {address} refused: {refused}"
        except BaseException:
            if self.sender.pending(next_key) is None:  # nothing went out: the round is free
                await self.store.release_claim(next_key, self.owner)
            raise
        self.updates_sent += 1
        round_id = current.round_id + 1
        return (
            f"{reason} transmit to {current.aggregator} for {address} round {round_id}"
            f" -> {reference} ({sent.hash})"
        )


def _decoded(fn: Any, answer: Any, address: str) -> tuple[Any, ...]:
    if isinstance(answer, ChainError):
        raise answer
    try:
        return fn.decode_output(hex_to_bytes(answer))
    except MalformedError as error:
        raise ChainError(f"{fn.name} of {address}: {error.reason}") from None
