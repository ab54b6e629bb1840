"""Clients for Flashbots-compatible relays: eth_sendBundle, eth_callBundle, eth_cancelBundle,
mev_sendBundle and mev_simBundle, with signing, retries, client-side rate limits and counters.

Each request body is serialized once (orjson) and those exact bytes are signed and POSTed. A call
has one deadline (``timeout``) covering rate-limit waits, attempts and backoff. Only transport
failures (timeouts, connection errors, HTTP 5xx) are retried, with jittered exponential backoff;
HTTP 429 backs off too. A relay's refusal (JSON-RPC ``{"error":{code,message}}`` or the bare
``{"error":"..."}`` shape) is raised once as :class:`RelayError` with the relay's message verbatim.
Relay answers are untrusted: anything unparsable becomes :class:`RelayBadResponse`.
Each client speaks one builder's dialect (:mod:`execution.dialects`): the eth_sendBundle fields,
replacement and cancel shapes that builder accepts, and whether it takes the signature header; a
submission the builder cannot take fails as :class:`RelayUnsupported` before anything is sent.
:class:`MultiRelay` fans a bundle out to several relays at once, each in its own dialect; a slow
or failing relay only affects its own outcome. The refund-tracking methods answer typed values
(:mod:`execution.refunds`).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
import time
from collections import Counter, deque
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any, TypeVar
from urllib.parse import urlsplit

import aiohttp
import orjson
from eth_account.signers.local import LocalAccount

from chain.types import (
    Bundle,
    MalformedError,
    SignedTx,
    hex_to_bytes,
    hex_to_int,
    norm_address,
    norm_hash,
)
from execution.dialects import Dialect, DialectError, Replacement, Submission, get_dialect
from execution.refunds import (
    MAX_PAGES,
    Refund,
    RefundPage,
    RefundSource,
    RefundTotals,
    parse_refund_page,
    parse_refund_totals,
)
from execution.signature import HEADER, FlashbotsSigner

log = logging.getLogger(__name__)

T = TypeVar("T")

# Requests per IP per minute, docs flashbots-mev-share/searchers/ratelimiting.mdx.
DEFAULT_RATE_LIMITS: Mapping[str, int] = MappingProxyType(
    {
        "eth_sendBundle": 1800,
        "mev_sendBundle": 1800,
        "eth_cancelBundle": 600,
        "eth_callBundle": 300,
        "mev_simBundle": 300,
    }
)
DEFAULT_OTHER_RATE_LIMIT = 120

FLASHBOTS_MAINNET = "https://relay.flashbots.net"
FLASHBOTS_SEPOLIA = "https://relay-sepolia.flashbots.net"

_EXCERPT_CHARS = 200
_MAX_BACKOFF_S = 1.0
_MAX_RETRY_AFTER_S = 5.0
# A relay that stays down fails every bundle: its first failure is logged, the rest only as a
# count at most this often (the stats keep every one, and the last error's text).
FAILURE_LOG_EVERY_S = 30.0


# --- errors ---------------------------------------------------------------------------------


class RelayFailure(Exception):
    """Any failed relay call; ``relay`` names the relay, ``kind`` is the counter it lands in."""

    kind = "failure"

    def __init__(self, relay: str, detail: str) -> None:
        super().__init__(f"{relay}: {detail}")
        self.relay = relay
        self.detail = detail


class RelayError(RelayFailure):
    """The relay answered with an error. ``message`` is the relay's text, verbatim."""

    def __init__(self, relay: str, status: int, code: int | None, message: str) -> None:
        code_part = "" if code is None else f" code {code}"
        super().__init__(relay, f"HTTP {status}{code_part}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.kind = "rejected" if status < 500 else "server_error"


class RelayTimeout(RelayFailure):
    """No answer within the call's deadline (after any retries)."""

    kind = "timeout"


class RelayUnreachable(RelayFailure):
    """Connection refused, reset or dropped on every attempt."""

    kind = "unreachable"


class RelayThrottled(RelayFailure):
    """The relay kept answering 429, or the local rate limit leaves no room before the deadline."""

    kind = "throttled"


class RelayUnsupported(RelayFailure):
    """The relay's builder does not accept this submission as it is (nothing was sent)."""

    kind = "unsupported"


class RelayBadResponse(RelayFailure):
    """The relay's answer is not the JSON we expect; ``excerpt`` shows the start of it."""

    kind = "bad_response"

    def __init__(self, relay: str, status: int, reason: str, excerpt: str) -> None:
        super().__init__(relay, f"HTTP {status}: {reason}: {excerpt}")
        self.status = status
        self.reason = reason
        self.excerpt = excerpt


# --- results ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BundleReceipt:
    """A relay accepted a bundle. ``smart`` is set when it was routed to other builders."""

    bundle_hash: str
    smart: bool
    relay: str
    raw: Any


@dataclass(frozen=True, slots=True)
class CancelReceipt:
    """The relay's answer to eth_cancelBundle; ``cancelled`` holds bundle hashes when it lists them.

    The result shape is undocumented; the official ethers provider reads it as the cancelled
    bundle hashes, so that is parsed when present and ``raw`` keeps whatever came back.
    """

    relay: str
    cancelled: tuple[str, ...]
    raw: Any


@dataclass(frozen=True, slots=True)
class TxSimResult:
    """One transaction of an eth_callBundle result. ``value`` is the return data on success;
    on failure ``error`` (e.g. ``"execution reverted"``) and ``revert`` (the reason) are set."""

    tx_hash: str
    gas_used: int
    gas_price: int
    gas_fees: int
    coinbase_diff: int
    eth_sent_to_coinbase: int
    from_address: str | None
    to_address: str | None
    value: bytes | None
    error: str | None
    revert: str | None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True, slots=True)
class CallBundleResult:
    """eth_callBundle's answer: amounts in wei, gas in gas units, per-tx results in order."""

    bundle_gas_price: int
    bundle_hash: str
    coinbase_diff: int
    eth_sent_to_coinbase: int
    gas_fees: int
    results: tuple[TxSimResult, ...]
    state_block_number: int
    total_gas_used: int

    @property
    def first_failure(self) -> TxSimResult | None:
        return next((r for r in self.results if not r.ok), None)


@dataclass(frozen=True, slots=True)
class SimMevBundleResult:
    """mev_simBundle's answer (hex quantities parsed to ints; ``logs`` kept as sent)."""

    success: bool
    error: str | None
    state_block: int
    mev_gas_price: int
    profit: int
    refundable_value: int
    gas_used: int
    exec_error: str | None
    revert: bytes | None
    logs: Any


@dataclass(frozen=True, slots=True)
class RelayStats:
    """A point-in-time copy of one relay client's counters."""

    relay: str
    sent: int
    ok: int
    errors: Mapping[str, int]
    retries: int
    throttled: int
    rate_limited: int
    last_error: str | None = None


# --- parsers (untrusted relay answers -> typed values or MalformedError) ----------------------


def _wei(obj: Mapping[str, Any], key: str) -> int:
    """A wei amount: documented as a decimal string; 0x quantities and JSON ints also parse."""
    value = obj.get(key)
    if isinstance(value, str) and value.isdecimal() and value.isascii():
        return int(value)
    if isinstance(value, str | int) and not isinstance(value, bool):
        return hex_to_int(value, key)
    raise MalformedError(f"{key}: expected a decimal wei string, got {value!r:.80}")


def _gas(obj: Mapping[str, Any], key: str) -> int:
    """Gas and block numbers: documented as JSON numbers."""
    value = obj.get(key)
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str):
        return hex_to_int(value, key)
    raise MalformedError(f"{key}: expected a JSON number, got {value!r:.80}")


def _opt_str(obj: Mapping[str, Any], key: str) -> str | None:
    value = obj.get(key)
    if value is None or isinstance(value, str):
        return value
    raise MalformedError(f"{key}: expected a string, got {value!r:.80}")


def _opt_address(obj: Mapping[str, Any], key: str) -> str | None:
    value = obj.get(key)
    # "0x" marks a contract creation in toAddress.
    if value is None or value in ("0x", ""):
        return None
    return norm_address(value, key)


def _require_object(value: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise MalformedError(f"{what}: expected an object, got {type(value).__name__}")
    return value


def parse_tx_sim_result(obj: Any) -> TxSimResult:
    entry = _require_object(obj, "eth_callBundle result entry")
    value = entry.get("value")
    return TxSimResult(
        tx_hash=norm_hash(entry.get("txHash"), "txHash"),
        gas_used=_gas(entry, "gasUsed"),
        gas_price=_wei(entry, "gasPrice"),
        gas_fees=_wei(entry, "gasFees"),
        coinbase_diff=_wei(entry, "coinbaseDiff"),
        eth_sent_to_coinbase=_wei(entry, "ethSentToCoinbase"),
        from_address=_opt_address(entry, "fromAddress"),
        to_address=_opt_address(entry, "toAddress"),
        value=None if value is None else hex_to_bytes(value, "value"),
        error=_opt_str(entry, "error"),
        revert=_opt_str(entry, "revert"),
    )


def parse_call_bundle_result(obj: Any) -> CallBundleResult:
    """Parse eth_callBundle's ``result`` object, or :class:`MalformedError`."""
    result = _require_object(obj, "eth_callBundle result")
    entries = result.get("results")
    if not isinstance(entries, list):
        raise MalformedError("results: expected a list")
    return CallBundleResult(
        bundle_gas_price=_wei(result, "bundleGasPrice"),
        bundle_hash=norm_hash(result.get("bundleHash"), "bundleHash"),
        coinbase_diff=_wei(result, "coinbaseDiff"),
        eth_sent_to_coinbase=_wei(result, "ethSentToCoinbase"),
        gas_fees=_wei(result, "gasFees"),
        results=tuple(parse_tx_sim_result(e) for e in entries),
        state_block_number=_gas(result, "stateBlockNumber"),
        total_gas_used=_gas(result, "totalGasUsed"),
    )


def parse_sim_mev_bundle_result(obj: Any) -> SimMevBundleResult:
    """Parse mev_simBundle's ``result`` object, or :class:`MalformedError`."""
    result = _require_object(obj, "mev_simBundle result")
    success = result.get("success")
    if not isinstance(success, bool):
        raise MalformedError(f"success: expected a boolean, got {success!r:.80}")
    revert = result.get("revert")
    return SimMevBundleResult(
        success=success,
        error=_opt_str(result, "error"),
        state_block=hex_to_int(result.get("stateBlock", "0x0"), "stateBlock"),
        mev_gas_price=hex_to_int(result.get("mevGasPrice", "0x0"), "mevGasPrice"),
        profit=hex_to_int(result.get("profit", "0x0"), "profit"),
        refundable_value=hex_to_int(result.get("refundableValue", "0x0"), "refundableValue"),
        gas_used=hex_to_int(result.get("gasUsed", "0x0"), "gasUsed"),
        exec_error=_opt_str(result, "execError"),
        revert=None if revert is None else hex_to_bytes(revert, "revert"),
        logs=result.get("logs"),
    )


def parse_bundle_receipt(obj: Any, relay: str) -> BundleReceipt:
    result = _require_object(obj, "bundle result")
    return BundleReceipt(
        bundle_hash=norm_hash(result.get("bundleHash"), "bundleHash"),
        smart=result.get("smart") in ("true", True),
        relay=relay,
        raw=result,
    )


def parse_cancel_receipt(obj: Any, relay: str) -> CancelReceipt:
    cancelled: tuple[str, ...] = ()
    if isinstance(obj, list) and all(isinstance(h, str) and len(h) == 66 for h in obj):
        cancelled = tuple(norm_hash(h, "bundle hash") for h in obj)
    return CancelReceipt(relay=relay, cancelled=cancelled, raw=obj)


# --- MEV-Share bundle building ------------------------------------------------------------------

# A body item: a stream tx hash (backrun target), a signed tx (may not revert), (signed tx,
# can_revert), or a nested bundle built by mev_bundle().
MevBodyItem = str | SignedTx | tuple[SignedTx, bool] | Mapping[str, Any]

MEV_MAX_BLOCK_RANGE = 30
MEV_MAX_BODY_TXS = 50


def _mev_body_element(item: MevBodyItem, index: int) -> dict[str, Any]:
    if isinstance(item, str):
        if index != 0:
            raise ValueError("a {hash} body element may only come first")
        return {"hash": norm_hash(item, "body hash")}
    if isinstance(item, SignedTx):
        return {"tx": item.raw_hex, "canRevert": False}
    if isinstance(item, tuple):
        tx, can_revert = item
        return {"tx": tx.raw_hex, "canRevert": bool(can_revert)}
    if isinstance(item, Mapping) and "body" in item:
        if any("bundle" in element for element in item["body"]):
            raise ValueError("bundle too deep: nesting depth is at most 1")
        return {"bundle": dict(item)}
    raise ValueError(f"not a MEV-Share body item: {type(item).__name__}")


def mev_bundle(
    block: int,
    body: Sequence[MevBodyItem],
    *,
    max_block: int | None = None,
    refund: Sequence[tuple[int, int]] = (),
    refund_config: Sequence[tuple[str, int]] = (),
    hints: Sequence[str] = (),
    builders: Sequence[str] = (),
    origin_id: str | None = None,
) -> dict[str, Any]:
    """The mev_sendBundle v0.1 parameter object, checked against the MEV-Share node's rules.

    ``refund`` is (body index, percent), ``refund_config`` is (address, percent).
    Raises ``ValueError`` for a bundle the node would reject.
    """
    if max_block is not None and not block <= max_block <= block + MEV_MAX_BLOCK_RANGE:
        raise ValueError(f"invalid inclusion: maxBlock must be within block..block+30, {max_block}")
    elements = [_mev_body_element(item, index) for index, item in enumerate(body)]
    if not elements or (len(elements) == 1 and "hash" in elements[0]):
        raise ValueError("invalid bundle body: needs at least one tx besides a {hash}")
    tx_count = sum(
        len([n for n in e["bundle"]["body"] if "tx" in n]) if "bundle" in e else "tx" in e
        for e in elements
    )
    if tx_count > MEV_MAX_BODY_TXS:
        raise ValueError(f"invalid bundle body size: more than {MEV_MAX_BODY_TXS} txs")
    has_hash = "hash" in elements[0]
    for name, percents in (
        ("refund", [p for _, p in refund]),
        ("refundConfig", [p for _, p in refund_config]),
    ):
        if any(not 0 <= p <= 100 for p in percents) or sum(percents) > 100:
            raise ValueError(f"invalid bundle constraints: {name} percents must sum to <= 100")
    if refund and has_hash:
        raise ValueError("invalid bundle constraints: refund is not allowed with a {hash}")
    indexes = [i for i, _ in refund]
    if len(set(indexes)) != len(indexes) or any(not 0 <= i < len(elements) for i in indexes):
        raise ValueError("invalid bundle constraints: refund bodyIdx must be unique and valid")
    if hints and has_hash:
        raise ValueError("invalid bundle privacy: hints are not allowed with a {hash}")

    inclusion: dict[str, Any] = {"block": hex(block)}
    if max_block is not None:
        inclusion["maxBlock"] = hex(max_block)
    params: dict[str, Any] = {"version": "v0.1", "inclusion": inclusion, "body": elements}
    if refund or refund_config:
        params["validity"] = {
            "refund": [{"bodyIdx": i, "percent": p} for i, p in refund],
            "refundConfig": [
                {"address": norm_address(a, "refund address"), "percent": p}
                for a, p in refund_config
            ],
        }
    privacy: dict[str, Any] = {}
    if hints:
        privacy["hints"] = list(hints)
    if builders:
        privacy["builders"] = list(builders)
    if privacy:
        params["privacy"] = privacy
    if origin_id is not None:
        params["metadata"] = {"originId": origin_id}
    return params


# --- rate limiting ----------------------------------------------------------------------------


class SlidingWindowLimiter:
    """At most ``limit`` acquisitions in any ``window`` seconds (what a per-minute quota means)."""

    def __init__(self, limit: int, window: float) -> None:
        if limit < 1 or window <= 0:
            raise ValueError("limit must be >= 1 and window > 0")
        self.limit = limit
        self.window = window
        self._stamps: deque[float] = deque()
        self._lock = asyncio.Lock()

    async def acquire(self, deadline: float) -> bool:
        """Take a slot, waiting for one if needed; True if it had to wait. ``TimeoutError`` when
        no slot frees up before ``deadline`` (``time.monotonic()`` seconds)."""
        # The lock is only ever held across a sleep, so finding it held means queueing.
        waited = self._lock.locked()
        async with self._lock:
            while True:
                now = time.monotonic()
                while self._stamps and self._stamps[0] <= now - self.window:
                    self._stamps.popleft()
                if len(self._stamps) < self.limit:
                    self._stamps.append(now)
                    return waited
                free_at = self._stamps[0] + self.window
                if free_at > deadline:
                    raise TimeoutError
                waited = True
                await asyncio.sleep(free_at - now)


# --- the client -------------------------------------------------------------------------------


def _excerpt(payload: bytes) -> str:
    text = payload[: _EXCERPT_CHARS * 4].decode("utf-8", errors="replace")
    return repr(text[:_EXCERPT_CHARS])


def _redacted(url: str) -> str:
    """scheme://host[:port]: paths and queries of some builder URLs carry API keys."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else "")


class RelayClient:
    """One relay endpoint, signing every request with the searcher key.

    ``timeout`` is the whole budget of one call (rate-limit wait, attempts, backoff).
    ``rate_limit_per_min`` overrides entries of :data:`DEFAULT_RATE_LIMITS` (others: 120);
    ``rate_window`` is the quota's window in seconds (60 for the documented per-minute limits).
    A failure is logged when it follows a success; the ones after it only as a count, at most
    once per ``failure_log_every_s``; the stats keep the last error's text.
    ``dialect`` is the builder's bundle dialect (a name of :data:`execution.dialects.DIALECTS`).
    """

    def __init__(
        self,
        url: str,
        searcher_account: LocalAccount | FlashbotsSigner,
        *,
        name: str | None = None,
        dialect: str | Dialect = "generic",
        session: aiohttp.ClientSession,
        timeout: float = 2.0,
        max_retries: int = 2,
        rate_limit_per_min: Mapping[str, int] | None = None,
        rate_window: float = 60.0,
        backoff_base: float = 0.05,
        max_response_bytes: int = 4 * 1024 * 1024,
        failure_log_every_s: float = FAILURE_LOG_EVERY_S,
    ) -> None:
        self.url = url
        self.name = name or _redacted(url)
        self.dialect = get_dialect(dialect)
        self._signer = (
            searcher_account
            if isinstance(searcher_account, FlashbotsSigner)
            else FlashbotsSigner(searcher_account)
        )
        self._session = session
        self.timeout = timeout
        self.max_retries = max_retries
        self._limits = {**DEFAULT_RATE_LIMITS, **(rate_limit_per_min or {})}
        self._rate_window = rate_window
        self._limiters: dict[str, SlidingWindowLimiter] = {}
        self._backoff_base = backoff_base
        self._max_response_bytes = max_response_bytes
        self.failure_log_every_s = failure_log_every_s
        self._ids = itertools.count(1)
        self._sent = 0
        self._ok = 0
        self._errors: Counter[str] = Counter()
        self._retries = 0
        self._throttled = 0
        self._rate_limited = 0
        self._last_error: str | None = None
        self._unlogged = 0  # failures since the last failure logged
        self._logged_at: float | None = None  # when a failure was last logged

    @property
    def searcher_address(self) -> str:
        return self._signer.address

    def __repr__(self) -> str:
        return (
            f"RelayClient(name={self.name!r}, url={_redacted(self.url)!r}, "
            f"searcher={self._signer.address})"
        )

    def stats(self) -> RelayStats:
        return RelayStats(
            relay=self.name,
            sent=self._sent,
            ok=self._ok,
            errors=MappingProxyType(dict(self._errors)),
            retries=self._retries,
            throttled=self._throttled,
            rate_limited=self._rate_limited,
            last_error=self._last_error,
        )

    # -- protocol methods --

    async def send_bundle(self, bundle: Bundle | Submission) -> BundleReceipt:
        """eth_sendBundle with exactly the fields this relay's builder accepts."""
        submission = bundle if isinstance(bundle, Submission) else Submission(bundle)
        params = self._dialect_call(lambda: self.dialect.send_params(submission))
        return await self._call("eth_sendBundle", [params], self._receipt)

    async def replace(self, submission: Submission) -> BundleReceipt:
        """Send ``submission`` in place of the bundle its replacement uuid names; its sequence
        number must be higher than the one sent before (:meth:`Replacement.next`)."""
        if submission.replacement is None:
            raise ValueError("a replacement needs a Submission with a Replacement")
        return await self.send_bundle(submission)

    async def cancel(self, replacement: Replacement) -> CancelReceipt:
        """Cancel the bundle named by ``replacement`` in the builder's own way (eth_cancelBundle,
        or the same uuid with no txs); pass the next sequence number."""
        call = self._dialect_call(lambda: self.dialect.cancel_call(replacement))
        return await self._call(call.method, call.params, self._cancel_receipt)

    async def call_bundle(
        self,
        txs: Sequence[SignedTx],
        block_number: int,
        state_block: int | str = "latest",
        timestamp: int | None = None,
    ) -> CallBundleResult:
        params: dict[str, Any] = {
            "txs": [tx.raw_hex for tx in txs],
            "blockNumber": hex(block_number),
            "stateBlockNumber": hex(state_block) if isinstance(state_block, int) else state_block,
        }
        if timestamp is not None:
            params["timestamp"] = timestamp
        return await self._call("eth_callBundle", [params], parse_call_bundle_result)

    async def send_mev_bundle(self, bundle: Mapping[str, Any]) -> BundleReceipt:
        """Send a bundle built by :func:`mev_bundle`."""
        return await self._call("mev_sendBundle", [dict(bundle)], self._receipt)

    async def sim_mev_bundle(
        self, bundle: Mapping[str, Any], sim_options: Mapping[str, Any] | None = None
    ) -> SimMevBundleResult:
        params: list[Any] = [dict(bundle)]
        if sim_options:
            params.append(dict(sim_options))
        return await self._call("mev_simBundle", params, parse_sim_mev_bundle_result)

    # -- refunds (see execution.refunds) --

    async def fee_refund_totals(self, recipient: str) -> RefundTotals:
        return await self._call(
            "flashbots_getFeeRefundTotalsByRecipient",
            [recipient],
            lambda result: parse_refund_totals(result, RefundSource.FEE),
        )

    async def delayed_refund_totals(self, recipient: str) -> RefundTotals:
        return await self._call(
            "buildernet_getDelayedRefundTotalsByRecipient",
            [{"recipient": recipient}],
            lambda result: parse_refund_totals(result, RefundSource.DELAYED),
        )

    async def fee_refunds(self, recipient: str) -> list[Refund]:
        """Every gas-fee refund of ``recipient``, all pages."""
        return await self._refund_pages(
            "flashbots_getFeeRefundsByRecipient", recipient, RefundSource.FEE
        )

    async def delayed_refunds(self, recipient: str) -> list[Refund]:
        """Every delayed refund of ``recipient``, all pages."""
        return await self._refund_pages(
            "buildernet_getDelayedRefunds", recipient, RefundSource.DELAYED
        )

    async def set_fee_refund_recipient(self, recipient: str) -> Any:
        """Send this signer's gas-fee refunds to ``recipient`` (flashbots_setFeeRefundRecipient)."""
        return await self.request(
            "flashbots_setFeeRefundRecipient", [self.searcher_address, recipient]
        )

    async def _refund_pages(
        self, method: str, recipient: str, source: RefundSource
    ) -> list[Refund]:
        refunds: list[Refund] = []
        cursor: str | None = None
        for _ in range(MAX_PAGES):
            query: dict[str, Any] = {"recipient": recipient}
            if cursor is not None:
                query["cursor"] = cursor
            page: RefundPage = await self._call(
                method, [query], lambda result: parse_refund_page(result, source)
            )
            refunds += page.refunds
            # A cursor with an empty page means "more later" (rpc-endpoint.mdx): stop for now.
            if page.cursor is None or not page.refunds:
                break
            cursor = page.cursor
        return refunds

    def _dialect_call(self, build: Callable[[], T]) -> T:
        try:
            return build()
        except DialectError as error:
            failure = RelayUnsupported(self.name, str(error))
            self._count_failure(failure)
            raise failure from None

    def _receipt(self, result: Any) -> BundleReceipt:
        return parse_bundle_receipt(result, self.name)

    def _cancel_receipt(self, result: Any) -> CancelReceipt:
        return parse_cancel_receipt(result, self.name)

    # -- transport --

    async def request(self, method: str, params: list[Any]) -> Any:
        """One signed JSON-RPC call; the ``result`` value, or a :class:`RelayFailure`."""
        return await self._call(method, params, _as_is)

    async def _call(self, method: str, params: list[Any], parse: Callable[[Any], T]) -> T:
        request_id = next(self._ids)
        body = orjson.dumps(
            {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}
        )
        headers = {"Content-Type": "application/json"}
        if self.dialect.signs:
            headers[HEADER] = self._signer.sign(body)
        self._sent += 1
        try:
            status, payload = await self._post_with_retries(method, body, headers)
            try:
                result = parse(self._decode(status, payload))
            except MalformedError as exc:
                raise RelayBadResponse(self.name, status, exc.reason, _excerpt(payload)) from None
        except RelayFailure as failure:
            self._count_failure(failure)
            raise
        self._ok += 1
        if self._logged_at is not None:
            log.info("relay %s answers again (%d failures not logged)", self.name, self._unlogged)
            self._unlogged, self._logged_at = 0, None
        return result

    def _count_failure(self, failure: RelayFailure) -> None:
        self._errors[failure.kind] += 1
        self._last_error = failure.detail
        now = time.monotonic()
        if self._logged_at is None:
            log.warning("relay %s: %s", self.name, failure.detail)
        elif now - self._logged_at >= self.failure_log_every_s:
            log.warning(
                "relay %s: %d more failures in %.0f s, the last: %s",
                self.name,
                self._unlogged + 1,
                now - self._logged_at,
                failure.detail,
            )
        else:
            self._unlogged += 1
            return
        self._unlogged, self._logged_at = 0, now

    def _limiter(self, method: str) -> SlidingWindowLimiter:
        limiter = self._limiters.get(method)
        if limiter is None:
            limit = self._limits.get(method, DEFAULT_OTHER_RATE_LIMIT)
            limiter = self._limiters[method] = SlidingWindowLimiter(limit, self._rate_window)
        return limiter

    def _backoff(self, attempt: int) -> float:
        return min(_MAX_BACKOFF_S, self._backoff_base * 2**attempt) * random.uniform(0.5, 1.5)

    async def _post_with_retries(
        self, method: str, body: bytes, headers: Mapping[str, str]
    ) -> tuple[int, bytes]:
        deadline = time.monotonic() + self.timeout
        limiter = self._limiter(method)
        attempt = 0
        while True:
            try:
                if await limiter.acquire(deadline):
                    self._rate_limited += 1
            except TimeoutError:
                raise RelayThrottled(
                    self.name, f"local {method} rate limit leaves no slot within the deadline"
                ) from None
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise RelayTimeout(self.name, f"{method}: no answer within {self.timeout:.3g} s")
            pause: float | None = None
            try:
                async with asyncio.timeout(remaining):
                    status, payload, retry_after = await self._post_once(body, headers)
            except TimeoutError:
                failure: RelayFailure = RelayTimeout(
                    self.name, f"{method}: no answer within {self.timeout:.3g} s"
                )
            except aiohttp.ClientError as exc:
                failure = RelayUnreachable(self.name, f"{method}: {type(exc).__name__}: {exc}")
            else:
                if status == 429:
                    self._throttled += 1
                    failure = RelayThrottled(self.name, f"{method}: HTTP 429 from the relay")
                    pause = retry_after
                elif status >= 500:
                    failure = self._http_error(status, payload)
                else:
                    return status, payload
            if attempt >= self.max_retries:
                raise failure
            pause = self._backoff(attempt) if pause is None else pause
            if time.monotonic() + pause >= deadline:
                raise failure
            attempt += 1
            self._retries += 1
            await asyncio.sleep(pause)

    async def _post_once(
        self, body: bytes, headers: Mapping[str, str]
    ) -> tuple[int, bytes, float | None]:
        async with self._session.post(self.url, data=body, headers=headers) as response:
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.content.iter_chunked(65536):
                size += len(chunk)
                if size > self._max_response_bytes:
                    raise RelayBadResponse(
                        self.name,
                        response.status,
                        f"response larger than {self._max_response_bytes} bytes",
                        _excerpt(b"".join(chunks)),
                    )
                chunks.append(chunk)
            return response.status, b"".join(chunks), _retry_after(response.headers)

    def _http_error(self, status: int, payload: bytes) -> RelayError:
        """An HTTP error status: the relay's own error text if it sent one, else the body."""
        try:
            self._decode(status, payload)
        except RelayError as error:
            return error
        except RelayBadResponse:
            pass
        return RelayError(self.name, status, None, payload.decode("utf-8", errors="replace"))

    def _decode(self, status: int, payload: bytes) -> Any:
        """The ``result`` of a JSON-RPC answer. The ``id`` is not compared: each POST carries one
        request, and the docs' own example answers ``"id": "123"`` to a request with id 1."""
        try:
            message = orjson.loads(payload)
        except orjson.JSONDecodeError:
            if status >= 400:
                raise RelayError(
                    self.name, status, None, payload.decode("utf-8", errors="replace")
                ) from None
            raise RelayBadResponse(self.name, status, "not JSON", _excerpt(payload)) from None
        if not isinstance(message, dict):
            raise RelayBadResponse(
                self.name,
                status,
                f"a JSON {type(message).__name__}, not an object",
                _excerpt(payload),
            )
        error = message.get("error")
        if isinstance(error, dict):
            code, text = error.get("code"), error.get("message")
            if (
                isinstance(code, int | None)
                and not isinstance(code, bool)
                and isinstance(text, str)
            ):
                raise RelayError(self.name, status, code, text)
            raise RelayBadResponse(self.name, status, "malformed error object", _excerpt(payload))
        if isinstance(error, str):
            raise RelayError(self.name, status, None, error)
        if error is not None:
            raise RelayBadResponse(self.name, status, "malformed error", _excerpt(payload))
        if status >= 400:
            raise RelayError(self.name, status, None, payload.decode("utf-8", errors="replace"))
        if "result" not in message:
            raise RelayBadResponse(self.name, status, "no result", _excerpt(payload))
        return message["result"]


def _as_is(result: Any) -> Any:
    return result


def _retry_after(headers: Mapping[str, str]) -> float | None:
    value = headers.get("Retry-After")
    try:
        return None if value is None else min(_MAX_RETRY_AFTER_S, max(0.0, float(value)))
    except ValueError:
        return None


# --- several relays at once ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RelayOutcome:
    """What one relay did with one submission; ``elapsed`` is seconds from fan-out to answer."""

    relay: str
    block_number: int
    receipt: BundleReceipt | None
    error: RelayFailure | None
    elapsed: float

    @property
    def ok(self) -> bool:
        return self.receipt is not None


class MultiRelay:
    """Sends each bundle to every relay concurrently, each in its own builder's dialect; each
    relay's answer is its own outcome."""

    def __init__(self, clients: Sequence[RelayClient]) -> None:
        if not clients:
            raise ValueError("MultiRelay needs at least one relay client")
        if len({client.name for client in clients}) != len(clients):
            raise ValueError("relay client names must be unique")
        self.clients = tuple(clients)

    def stats(self) -> tuple[RelayStats, ...]:
        return tuple(client.stats() for client in self.clients)

    async def iter_send(self, bundle: Bundle | Submission) -> AsyncIterator[RelayOutcome]:
        """Outcomes in the order relays answer, so a fast relay is reported at once."""
        started = time.monotonic()
        block = (bundle.bundle if isinstance(bundle, Submission) else bundle).block_number

        async def one(client: RelayClient) -> RelayOutcome:
            try:
                receipt = await client.send_bundle(bundle)
            except RelayFailure as failure:
                return RelayOutcome(client.name, block, None, failure, time.monotonic() - started)
            return RelayOutcome(client.name, block, receipt, None, time.monotonic() - started)

        pending = {asyncio.create_task(one(client)) for client in self.clients}
        try:
            while pending:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    yield task.result()
        finally:
            for task in pending:
                task.cancel()

    async def send_bundle(self, bundle: Bundle | Submission) -> tuple[RelayOutcome, ...]:
        """Every relay's outcome, in the order of ``clients``."""
        outcomes = {outcome.relay: outcome async for outcome in self.iter_send(bundle)}
        return tuple(outcomes[client.name] for client in self.clients)

    async def cancel(self, replacement: Replacement) -> dict[str, CancelReceipt | RelayFailure]:
        """Cancel at every relay in its builder's way; each relay's receipt or failure by name."""

        async def one(client: RelayClient) -> CancelReceipt | RelayFailure:
            try:
                return await client.cancel(replacement)
            except RelayFailure as failure:
                return failure

        answers = await asyncio.gather(*(one(client) for client in self.clients))
        return {c.name: a for c, a in zip(self.clients, answers, strict=True)}

    async def send_for_blocks(self, bundle: Bundle, n: int) -> dict[int, tuple[RelayOutcome, ...]]:
        """Submit the same txs for target blocks ``bundle.block_number`` .. ``+ n - 1``.

        A replacement uuid would make each submission replace the previous one, so a bundle
        carrying one can only target a single block.
        """
        if n < 1:
            raise ValueError("n must be >= 1")
        if bundle.replacement_uuid is not None and n > 1:
            raise ValueError("a bundle with a replacementUuid can target only one block")
        targets = [replace(bundle, block_number=bundle.block_number + o) for o in range(n)]
        results = await asyncio.gather(*(self.send_bundle(target) for target in targets))
        return {
            target.block_number: result for target, result in zip(targets, results, strict=True)
        }
