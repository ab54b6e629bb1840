"""The devnet's MEV-Share node: private order flow in, hints out, merged backruns to the builder.

Users send private transactions (``eth_sendPrivateTransaction``) or bundles (``mev_sendBundle``
without a ``{hash}``, with ``privacy.hints``); each becomes an *order*, kept for up to 25 blocks
(the documented lifetime, rpc-endpoint.mdx). An order's hint goes to every subscriber of the
event stream (``GET /``, Server-Sent Events: ``data: {json}`` lines and a ``:ping`` comment when
idle, mev-share ``specs/events/v0.1.md``), holding only what the user shares, by the node's rules
(flashbots/mev-share-node ``mevshare/hints.go``): ``hash`` is the double hash ``keccak(tx or
bundle hash)`` and without the ``hash`` hint nothing is published; ``logs`` shares the order's
simulated logs; ``default_logs`` only the swap logs of Uniswap V2/V3, Curve and Balancer with
their topics after the first zeroed and no data; ``calldata`` implies ``function_selector``,
which implies ``contract_address`` (``to``); ``tx_hash`` shares each tx's own hash. With no
preferences a private tx shares ``hash`` and ``default_logs`` (Flashbots Protect's default,
docs settings-guide).

Searchers answer with ``mev_sendBundle`` v0.1: ``[{hash}, {tx}]`` (one backrun tx, the docs' rule
since 2025-10-20), checked as :func:`anvil.relay.parse_mev_bundle` checks it, its inclusion range
intersected with the order's (:func:`merge_inclusion`, mev-share-node
``MergeInclusionIntervals``). Each backrun is simulated right behind its order on the head: one
that reverts is refused, otherwise its coinbase payment is its bid. ``mev_simBundle`` simulates
signed txs and answers the documented fields.

Per block the node hands each live order to the devnet builder through the relay, as the
MEV-Share node hands bundles to refund-recipient builders (mev-share ``specs/bundles/
refund-recipient.md``, mev-share-node ``ConvertBundleToRefundRecipient``): the order with its best
backrun as one ``eth_sendBundle`` whose ``refundPercent`` is the user's share of the backrun's
coinbase payment (90 % unless the user asked otherwise: mev-share-node ``RefundPercent``, Protect's
"90% of MEV refunds are sent to tx.origin") with ``refundRecipient`` the user (or its
``refundConfig`` address), and the order alone as a second bundle that lands when the merged one
cannot. The builder pays the refund inside that block, right after the backrun, from its fee
recipient (:mod:`anvil.builder`); :class:`MatchedBackrun` holds what that payout carried.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson
from aiohttp import web
from eth_account import Account
from eth_utils import keccak

from anvil.builder import BlockReport, LandedBundle, TxRun, simulate_raw_txs
from anvil.relay import (
    CUSTOM_ERROR,
    INVALID_PARAMS,
    LocalRelay,
    RpcError,
    decode_raw_tx,
    param_object,
    parse_mev_bundle,
)
from chain.rpc import Rpc, eth_get_block
from chain.types import BlockHeader, Bundle, MalformedError, SignedTx, hex_to_int, norm_address
from execution.dialects import RefundTerms, Replacement, Submission
from execution.relay import RelayClient, RelayFailure
from simulation.prepared import decode_signed
from simulation.simulator import BlockEnv, SimLog, SimulationError, next_base_fee

log = logging.getLogger(__name__)

# The relay-request key of the node; it holds no funds (the builder pays the refunds).
MATCHMAKER_KEY = "0x" + keccak(b"mevbot devnet mev-share node").hex()
ORDER_LIFETIME_BLOCKS = 25  # rpc-endpoint.mdx: "clamped to current+25"
MAX_BLOCK_OFFSET = 5  # mev-share-node MaxBlockOffset
DEFAULT_REFUND_PERCENT = 90  # mev-share-node RefundPercent
DEFAULT_HINTS = frozenset({"hash", "default_logs"})  # Protect's default (settings-guide)
KNOWN_HINTS = frozenset(
    {"calldata", "contract_address", "logs", "default_logs", "function_selector", "hash", "tx_hash"}
)
BACKRUNS_PER_ORDER = 16
MAX_ORDERS = 4096
MATCHED_KEPT = 1024  # the latest landed backruns kept for inspection (the totals are counters)
SUBSCRIBER_QUEUE = 1024

# Swap events whose topics identify the pool (mev-share-node hints.go filterSpecialLogs).
UNISWAP_V2_SWAP = bytes.fromhex("d78ad95fa46c994b6551d0da85fc275fe613ce37657fb8d5e3d130840159d822")
UNISWAP_V3_SWAP = bytes.fromhex("c42079f94a6350d7e6235f29174924f928cc2ac818eb64fed8004e115fbcca67")
CURVE_EXCHANGE = bytes.fromhex("8b3e96f2b889fa771c53c981b40daf005f63f637f1869f707052d15a3dd97140")
BALANCER_SWAP = bytes.fromhex("2170c741c41531aec20e7c107c24eecfdd15e69c9bb0a8dd37b1840b9e0b207b")
_ZERO_TOPIC = bytes(32)


# --- pure rules -------------------------------------------------------------------------------


def merge_inclusion(top: tuple[int, int], bottom: tuple[int, int]) -> tuple[int, int]:
    """The blocks both ``(block, maxBlock)`` ranges allow, or ``"invalid inclusion"``."""
    low, high = max(top[0], bottom[0]), min(top[1], bottom[1])
    if low > high:
        raise RpcError(CUSTOM_ERROR, "invalid inclusion")
    return low, high


def default_logs(logs: Iterable[SimLog]) -> list[SimLog]:
    """The swap logs only, with every topic but the event (Balancer: and the pool id) zeroed and
    no data: what the ``default_logs`` hint shares."""
    shared: list[SimLog] = []
    for entry in logs:
        if not entry.topics:
            continue
        event = entry.topics[0]
        if event in (UNISWAP_V2_SWAP, UNISWAP_V3_SWAP, CURVE_EXCHANGE):
            kept = (event,)
        elif event == BALANCER_SWAP and len(entry.topics) >= 2:
            kept = (event, entry.topics[1])
        else:
            continue
        topics = kept + (_ZERO_TOPIC,) * (len(entry.topics) - len(kept))
        shared.append(SimLog(entry.address, topics, b""))
    return shared


def _log_json(entry: SimLog) -> dict[str, Any]:
    return {
        "address": entry.address,
        "topics": ["0x" + topic.hex() for topic in entry.topics],
        "data": "0x" + entry.data.hex(),
    }


def tx_hint(tx: SignedTx, to: str | None, data: bytes, hints: frozenset[str]) -> dict[str, Any]:
    """One tx's part of a hint: calldata implies the selector, which implies ``to``."""
    want = set(hints)
    if want & {"function_selector", "calldata"}:
        want.add("contract_address")
    if "calldata" in want:
        want.add("function_selector")
    hint: dict[str, Any] = {}
    if "tx_hash" in want:
        hint["hash"] = tx.hash
    if "contract_address" in want and to is not None:
        hint["to"] = to
    if "function_selector" in want:
        hint["functionSelector"] = "0x" + data[:4].ljust(4, b"\0").hex()
    if "calldata" in want:
        hint["callData"] = "0x" + data.hex()
    return hint


def hint_event(order: Order) -> dict[str, Any] | None:
    """The stream event for ``order``, or None when the user shares nothing (no ``hash``)."""
    hints = order.hints
    if "hash" not in hints:
        return None
    logs: list[SimLog] | None = None
    if "logs" in hints:
        logs = list(order.logs)
    elif "default_logs" in hints:
        logs = default_logs(order.logs)
    txs = [tx_hint(tx, to, data, hints) for tx, to, data in order.calls]
    return {
        "hash": order.matching_hash,
        "logs": None if logs is None else [_log_json(entry) for entry in logs],
        "txs": [hint for hint in txs if hint] or None,
    }


def _block_option(options: Mapping[str, Any], name: str) -> int | None:
    """A simOptions block number: a JSON number (the docs) or a hex string (what
    mev-share-client-ts sends, ``mungeSimBundleOptions``)."""
    value = options.get(name)
    if value is None or value == "latest":
        return None
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    try:
        return hex_to_int(value, name)
    except MalformedError as error:
        raise RpcError(INVALID_PARAMS, error.reason) from None


def parse_hints(value: Any) -> frozenset[str]:
    """A ``privacy.hints`` list as the node reads it: snake_case names only; any hint at all
    brings the ``hash`` hint with it."""
    if not isinstance(value, list) or not all(isinstance(h, str) for h in value):
        raise RpcError(CUSTOM_ERROR, "invalid bundle privacy")
    hints = frozenset(value)
    if hints - KNOWN_HINTS:
        raise RpcError(CUSTOM_ERROR, f"invalid hint {sorted(hints - KNOWN_HINTS)[0]!r}")
    # mev-share-node: any non-empty hints add the hash hint.
    return hints | {"hash"} if hints else hints


def _percent(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 100:
        raise RpcError(CUSTOM_ERROR, "invalid bundle constraints")
    return value


def _refund_target(entries: Any, default_recipient: str, share_of: int) -> tuple[int, str]:
    """(percent of the backrun's payment, recipient) from a ``[{address, percent}]`` list: the
    devnet builder pays one recipient, so at most one entry (mev-share-node refuses more when it
    converts to a refund-recipient bundle)."""
    if entries is None or entries == []:
        return share_of, default_recipient
    if not isinstance(entries, list) or len(entries) != 1 or not isinstance(entries[0], dict):
        raise RpcError(CUSTOM_ERROR, "invalid bundle constraints: one refund address at most")
    try:
        recipient = norm_address(entries[0].get("address"), "refund address")
    except MalformedError:
        raise RpcError(CUSTOM_ERROR, "invalid bundle constraints") from None
    return share_of * _percent(entries[0].get("percent")) // 100, recipient


# --- orders and backruns ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Backrun:
    """A searcher's backrun of an order: its tx, the blocks it may land in, what it paid the
    coinbase when simulated behind the order, and the searcher's answer hash."""

    tx: SignedTx
    first_block: int
    last_block: int
    payment: int
    searcher: str
    bundle_hash: str


@dataclass(slots=True)
class Order:
    """A user's private tx or bundle waiting for its block."""

    txs: tuple[SignedTx, ...]
    calls: tuple[tuple[SignedTx, str | None, bytes], ...]  # (tx, to, calldata)
    matching_hash: str
    last_block: int
    hints: frozenset[str]
    refund_percent: int
    refund_recipient: str
    logs: tuple[SimLog, ...] = ()
    backruns: list[Backrun] = field(default_factory=list)
    uuid: str = ""
    seq: int = 0

    def best(self, block: int) -> Backrun | None:
        valid = [b for b in self.backruns if b.first_block <= block <= b.last_block]
        return max(valid, key=lambda b: b.payment, default=None)


@dataclass(frozen=True, slots=True)
class MatchedBackrun:
    """A backrun that landed right behind its order, and the refund its user was paid in that
    block (wei; 0 when the payment could not cover one) with the payout's tx hash."""

    order_hash: str
    backrun_hash: str
    bundle_hash: str  # of the merged eth_sendBundle that landed (the refund desk's key)
    searcher: str
    block_number: int
    payment: int
    refund: int
    refund_recipient: str
    refund_tx: str | None = None


@dataclass(frozen=True, slots=True)
class MatchmakerStats:
    """Counters: orders received, hints published, backruns accepted and refused, orders landed
    (with or without a backrun), orders expired, refunds paid to users in the blocks (wei)."""

    orders: int
    hints: int
    backruns: int
    backruns_refused: int
    landed: int
    backruns_landed: int
    expired: int
    refunds_wei: int
    subscribers: int


def _calls(txs: Sequence[SignedTx]) -> tuple[tuple[SignedTx, str | None, bytes], ...]:
    decoded = ((tx, decode_signed(tx.raw)) for tx in txs)
    return tuple((tx, prepared.to, prepared.data) for tx, prepared in decoded)


# --- the node ---------------------------------------------------------------------------------


class Matchmaker:
    """The MEV-Share node over the devnet: an RPC and event-stream server on one port (``POST /``
    JSON-RPC with ``X-Flashbots-Signature``, ``GET /`` the stream), handing orders to ``relay_url``.

    Wire :meth:`after_block` into the builder's after-block hook: it settles what landed and
    hands the live orders over for the next block.
    """

    def __init__(
        self,
        rpc: Rpc,
        relay_url: str,
        *,
        block_time: float = 1.0,
        ping_interval: float = 15.0,
        sim_timeout: float = 5.0,
    ) -> None:
        self.rpc = rpc
        self.relay_url = relay_url
        self.block_time = block_time
        self.ping_interval = ping_interval
        self.sim_timeout = sim_timeout
        self.orders: dict[str, Order] = {}  # by matching hash
        self.matched: deque[MatchedBackrun] = deque(maxlen=MATCHED_KEPT)
        self._subscribers: set[asyncio.Queue[bytes | None]] = set()
        self._counts: dict[str, int] = dict.fromkeys(
            (
                "orders",
                "hints",
                "backruns",
                "backruns_refused",
                "landed",
                "backruns_landed",
                "expired",
                "refunds_wei",
            ),
            0,
        )
        self._lock = asyncio.Lock()
        self._session: aiohttp.ClientSession | None = None
        self._client: RelayClient | None = None
        self._server = LocalRelay(
            methods={
                "eth_sendPrivateTransaction": self._send_private_tx,
                "eth_sendPrivateRawTransaction": self._send_private_raw_tx,
                "mev_sendBundle": self._send_bundle,
                "mev_simBundle": self._sim_bundle,
            }
        )
        self._server.app.router.add_get("/", self._stream)

    @property
    def url(self) -> str:
        return self._server.url

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> Matchmaker:
        self._session = aiohttp.ClientSession()
        self._client = RelayClient(
            self.relay_url,
            Account.from_key(MATCHMAKER_KEY),
            name="devnet-builder",
            dialect="buildernet",
            session=self._session,
        )
        await self._server.start(host, port)
        return self

    async def stop(self) -> None:
        for queue in list(self._subscribers):
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(None)
        await self._server.stop()
        if self._session is not None:
            await self._session.close()
            self._session = None

    def stats(self) -> MatchmakerStats:
        return MatchmakerStats(**self._counts, subscribers=len(self._subscribers))

    # -- users --

    async def _send_private_tx(self, params: Any, signer: str) -> Any:
        obj = param_object(params, "eth_sendPrivateTransaction")
        tx = decode_raw_tx(obj.get("tx"))
        preferences = obj.get("preferences") or {}
        if not isinstance(preferences, dict):
            raise RpcError(INVALID_PARAMS, "preferences: expected an object")
        privacy = preferences.get("privacy") or {}
        validity = preferences.get("validity") or {}
        if not isinstance(privacy, dict) or not isinstance(validity, dict):
            raise RpcError(INVALID_PARAMS, "preferences: privacy and validity are objects")
        hints = parse_hints(privacy["hints"]) if "hints" in privacy else DEFAULT_HINTS
        percent, recipient = _refund_target(
            validity.get("refund"), tx.sender, DEFAULT_REFUND_PERCENT
        )
        last = obj.get("maxBlockNumber")
        await self._add_order((tx,), hints, percent, recipient, last, tx.hash)
        return tx.hash

    async def _send_private_raw_tx(self, params: Any, signer: str) -> Any:
        if not isinstance(params, list) or not 1 <= len(params) <= 2:
            raise RpcError(INVALID_PARAMS, "eth_sendPrivateRawTransaction: expected [tx, prefs?]")
        obj: dict[str, Any] = {"tx": params[0]}
        if len(params) == 2:
            obj["preferences"] = params[1]
        return await self._send_private_tx([obj], signer)

    async def _add_order(
        self,
        txs: tuple[SignedTx, ...],
        hints: frozenset[str],
        percent: int,
        recipient: str,
        max_block: Any,
        order_hash: str,
    ) -> Order:
        head = await self._head()
        last = head.number + ORDER_LIFETIME_BLOCKS
        if max_block is not None:
            try:
                last = min(last, hex_to_int(max_block, "maxBlockNumber"))
            except MalformedError as error:
                raise RpcError(INVALID_PARAMS, error.reason) from None
        if last <= head.number:
            raise RpcError(CUSTOM_ERROR, "invalid inclusion")
        matching = "0x" + keccak(bytes.fromhex(order_hash[2:])).hex()
        order = Order(
            txs=txs,
            calls=_calls(txs),
            matching_hash=matching,
            last_block=last,
            hints=hints,
            refund_percent=percent,
            refund_recipient=recipient,
            uuid=order_hash,
        )
        runs = await self._simulate([tx.raw for tx in txs], head)
        if runs is not None:
            order.logs = tuple(entry for run in runs for entry in run.outcome.logs)
        async with self._lock:
            if matching in self.orders:
                return self.orders[matching]
            if len(self.orders) >= MAX_ORDERS:
                raise RpcError(CUSTOM_ERROR, "too many pending orders")
            self.orders[matching] = order
            self._counts["orders"] += 1
            self._publish(order)
            await self._hand_over(order, head.number + 1)
        return order

    def _publish(self, order: Order) -> None:
        event = hint_event(order)
        if event is None:
            return
        self._counts["hints"] += 1
        line = b"data: " + orjson.dumps(event) + b"\n\n"
        for queue in list(self._subscribers):
            try:
                queue.put_nowait(line)
            except asyncio.QueueFull:
                # A subscriber this far behind is dropped, never allowed to hold memory.
                self._subscribers.discard(queue)

    # -- searchers (and users' bundles) --

    async def _send_bundle(self, params: Any, signer: str) -> Any:
        obj = param_object(params, "mev_sendBundle")
        bundle = parse_mev_bundle(obj, signer)
        head = await self._head()
        if bundle.block_number > head.number + MAX_BLOCK_OFFSET or head.number >= bundle.max_block:
            raise RpcError(CUSTOM_ERROR, "invalid inclusion")
        if bundle.backrun_of is None:
            return await self._user_bundle(obj, bundle.txs, bundle.bundle_hash, bundle.max_block)
        if len(bundle.txs) != 1:
            # Flashbots docs: "as of October 20, 2025, a bundle can now only contain one
            # backrun transaction".
            raise RpcError(CUSTOM_ERROR, "invalid bundle body: one backrun tx only")
        order = self.orders.get(bundle.backrun_of)
        if order is None:
            raise RpcError(CUSTOM_ERROR, "backrun target not found")
        first, last = merge_inclusion(
            (bundle.block_number, bundle.max_block), (head.number + 1, order.last_block)
        )
        backrun_tx = bundle.txs[0]
        runs = await self._simulate([*(tx.raw for tx in order.txs), backrun_tx.raw], head)
        if runs is None or not runs[-1].outcome.success:
            self._counts["backruns_refused"] += 1
            why = "tx failed" if runs is None else runs[-1].outcome.revert_reason
            raise RpcError(CUSTOM_ERROR, f"backrun simulation failed: {why}")
        backrun = Backrun(
            backrun_tx, first, last, runs[-1].coinbase_diff, signer, bundle.bundle_hash
        )
        async with self._lock:
            if order.matching_hash not in self.orders:
                raise RpcError(CUSTOM_ERROR, "backrun target not found")
            previous = order.best(head.number + 1)
            order.backruns = [*order.backruns, backrun][-BACKRUNS_PER_ORDER:]
            self._counts["backruns"] += 1
            if previous is None or backrun.payment > previous.payment:
                await self._hand_over(order, head.number + 1)
        return {"bundleHash": bundle.bundle_hash}

    async def _user_bundle(
        self, obj: Mapping[str, Any], txs: tuple[SignedTx, ...], bundle_hash: str, max_block: int
    ) -> Any:
        if any("bundle" in element for element in obj.get("body", ())):
            raise RpcError(CUSTOM_ERROR, "invalid bundle body: nested user bundles")
        privacy = obj.get("privacy") or {}
        validity = obj.get("validity") or {}
        if not isinstance(privacy, dict) or not isinstance(validity, dict):
            raise RpcError(CUSTOM_ERROR, "invalid bundle privacy")
        hints = parse_hints(privacy.get("hints") or [])
        want = privacy.get("wantRefund", DEFAULT_REFUND_PERCENT)
        percent, recipient = _refund_target(
            validity.get("refundConfig"), txs[0].sender, _percent(want)
        )
        await self._add_order(txs, hints, percent, recipient, hex(max_block), bundle_hash)
        return {"bundleHash": bundle_hash}

    async def _sim_bundle(self, params: Any, signer: str) -> Any:
        bundle = parse_mev_bundle(param_object(params, "mev_simBundle", max_params=2), signer)
        if bundle.backrun_of is not None:
            # Docs: no results "unless the private transaction being backrun has already landed".
            raise RpcError(CUSTOM_ERROR, "mev_simBundle takes signed txs only, not a {hash}")
        options = params[1] if len(params) == 2 else {}
        if not isinstance(options, dict):
            raise RpcError(INVALID_PARAMS, "mev_simBundle: simOptions must be an object")
        parent = _block_option(options, "parentBlock")
        head = await eth_get_block(self.rpc, "latest" if parent is None else parent)
        if head is None:
            raise RpcError(CUSTOM_ERROR, "unknown parent block")
        number = _block_option(options, "blockNumber")
        number = head.number + 1 if number is None else number
        if not bundle.block_number <= number <= bundle.max_block:
            raise RpcError(CUSTOM_ERROR, "invalid inclusion")
        runs = await self._simulate([tx.raw for tx in bundle.txs], head)
        if runs is None:
            return {"success": False, "error": "tx failed", "stateBlock": hex(head.number)}
        return sim_bundle_result(runs, head.number)

    # -- blocks --

    async def after_block(self, report: BlockReport) -> None:
        """Settle the orders that landed or expired; hand the rest over for the next block."""
        landed = {tx_hash: bundle for bundle in report.landed for tx_hash in bundle.tx_hashes}
        async with self._lock:
            for matching, order in list(self.orders.items()):
                bundle = landed.get(order.txs[0].hash)
                if bundle is not None:
                    self._settle(order, bundle)
                    del self.orders[matching]
                elif report.number >= order.last_block:
                    self._counts["expired"] += 1
                    del self.orders[matching]
                else:
                    await self._hand_over(order, report.number + 1)

    def _settle(self, order: Order, bundle: LandedBundle) -> None:
        self._counts["landed"] += 1
        if len(bundle.tx_hashes) == len(order.txs):
            return
        backrun = next(b for b in order.backruns if b.tx.hash == bundle.tx_hashes[-1])
        payment = bundle.tx_payments[-1]
        payout = bundle.payout
        refund = payout.amount if payout is not None else 0
        self._counts["backruns_landed"] += 1
        self._counts["refunds_wei"] += refund
        self.matched.append(
            MatchedBackrun(
                order_hash=order.uuid,
                backrun_hash=backrun.tx.hash,
                bundle_hash=bundle.bundle_hash,
                searcher=backrun.searcher,
                block_number=bundle.block_number,
                payment=payment,
                refund=refund,
                refund_recipient=order.refund_recipient,
                refund_tx=payout.tx_hash if payout is not None else None,
            )
        )

    async def _hand_over(self, order: Order, block: int) -> None:
        """Send the order (alone, and with its best backrun) to the builder for ``block``."""
        assert self._client is not None
        order.seq += 1
        sends = [Submission(_bundle(order.txs, block), Replacement(order.uuid, order.seq))]
        best = order.best(block)
        # The builder takes refundPercent 1..99 (buildernet.org/docs/api).
        percent = min(order.refund_percent, 99)
        if best is not None:
            refund = RefundTerms(percent, order.refund_recipient, best.tx.hash) if percent else None
            sends.append(
                Submission(
                    _bundle((*order.txs, best.tx), block),
                    Replacement(order.uuid + ":backrun", order.seq),
                    refund=refund,
                )
            )
        for submission in sends:
            try:
                await self._client.send_bundle(submission)
            except RelayFailure as error:
                log.warning("devnet mev-share node: builder refused %s: %s", order.uuid, error)

    # -- helpers --

    async def _head(self) -> BlockHeader:
        head = await eth_get_block(self.rpc, "latest")
        if head is None:
            raise RpcError(CUSTOM_ERROR, "no head block")
        return head

    async def _simulate(self, raws: Sequence[bytes], head: BlockHeader) -> list[TxRun] | None:
        env = BlockEnv(
            number=head.number + 1,
            timestamp=head.timestamp + max(1, round(self.block_time)),
            base_fee=next_base_fee(head),
            coinbase=head.miner,
            gas_limit=head.gas_limit,
        )
        try:
            return await simulate_raw_txs(
                self.rpc, raws, env, state_block=head.number, timeout=self.sim_timeout
            )
        except SimulationError as error:
            log.info("devnet mev-share node: simulation failed: %s", error.reason)
            return None

    async def _stream(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await response.prepare(request)
        queue: asyncio.Queue[bytes | None] = asyncio.Queue(SUBSCRIBER_QUEUE)
        self._subscribers.add(queue)
        try:
            while queue in self._subscribers:
                try:
                    line = await asyncio.wait_for(queue.get(), self.ping_interval)
                except TimeoutError:
                    line = b":ping\n\n"
                if line is None:
                    break
                await response.write(line)
        except (ConnectionResetError, aiohttp.ClientConnectionError):
            pass
        finally:
            self._subscribers.discard(queue)
        return response


def _bundle(txs: Sequence[SignedTx], block: int) -> Bundle:
    return Bundle(txs=tuple(txs), block_number=block)


def sim_bundle_result(runs: Sequence[TxRun], state_block: int) -> dict[str, Any]:
    """The documented mev_simBundle answer: ``profit`` and ``refundableValue`` are what the
    bundle paid the coinbase (no kickback: a simulated bundle backruns nothing), ``mevGasPrice``
    is profit per gas; ``logs`` one ``{txLogs}`` per body tx."""
    gas_used = sum(run.outcome.gas_used for run in runs)
    profit = sum(run.coinbase_diff for run in runs)
    failed = next((run for run in runs if not run.outcome.success), None)
    result: dict[str, Any] = {
        "success": failed is None,
        "stateBlock": hex(state_block),
        "mevGasPrice": hex(profit // gas_used if gas_used else 0),
        "profit": hex(profit),
        "refundableValue": hex(profit),
        "gasUsed": hex(gas_used),
        "logs": [{"txLogs": [_log_json(e) for e in run.outcome.logs]} for run in runs],
    }
    if failed is not None:
        result["error"] = "tx failed"
        result["execError"] = failed.outcome.revert_reason
    return result


async def start_matchmaker(
    rpc: Rpc, relay_url: str, host: str = "127.0.0.1", port: int = 0, **options: Any
) -> Matchmaker:
    """Run a devnet MEV-Share node; ``port=0`` picks a free one (see ``.url``)."""
    return await Matchmaker(rpc, relay_url, **options).start(host, port)
