"""The devnet relay's HTTP front: the Flashbots relay protocol over aiohttp, feeding a bundle book.

Every request must carry a valid ``X-Flashbots-Signature`` (missing: ``-32600 "signature is
required"``; bad: ``-32025 "invalid flashbots signature"``). ``eth_sendBundle`` speaks BuilderNet's
dialect (buildernet.org/docs/api; the rules of rbuilder's parser,
``crates/rbuilder-primitives/src/serialize.rs``): EIP-2718 txs that decode, hex ``blockNumber``, at
most 100 txs and 300,000 bytes; ``version`` v1 or v2 (absent: v2), v1 refusing the v2 fields;
``refundPercent`` below 100 with at most one ``refundTxHashes`` entry (``refundRecipient``
defaults to the sender of the first tx). A ``replacementUuid`` (alias ``uuid``) needs a
``replacementNonce``; per (signer, uuid) a bundle with a lower nonce than the latest accepted one
is ignored, otherwise it replaces the previous one, and the same uuid with empty, null or missing
``txs`` cancels it (so does ``eth_cancelBundle``). Bundles are kept per target block in a bounded
:class:`BundleBook` with per-searcher counts. The answer is
``{"bundleHash": keccak(concat(tx hashes))}``. ``mev_sendBundle`` is checked against the
MEV-Share node's rules. Simulation (``eth_callBundle``, ``mev_simBundle``) and what happens to an
accepted bundle are delegated to the pluggable ``simulator`` and ``on_bundle`` callables, so the
devnet can wire its block builder and fork simulator here; further methods (the refund-tracking
ones) plug in as ``methods``. Error shapes follow the relay: JSON-RPC
errors at HTTP 200 with ``id`` null before the body is parsed (flashbots/go-utils rpcserver), and
the bare HTTP 400 ``{"error":"unable to decode txs"}`` for undecodable transactions.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import orjson
from aiohttp import web
from eth_utils import keccak

from chain.types import (
    Bundle,
    MalformedError,
    SignedTx,
    hex_to_bytes,
    hex_to_int,
    norm_address,
    norm_hash,
)
from execution.dialects import RefundTerms, Replacement, Submission
from execution.signature import HEADER, SignatureError, verify_flashbots_signature
from simulation.prepared import decode_signed

log = logging.getLogger(__name__)

MAX_BUNDLE_TXS = 100
MAX_BUNDLE_BYTES = 300_000
MEV_MAX_BLOCK_RANGE = 30
MEV_MAX_BODY_TXS = 50
MEV_VERSIONS = ("v0.1", "beta-1")

INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
PARSE_ERROR = -32700
CUSTOM_ERROR = -32000
INVALID_SIGNATURE = -32025


class RpcError(Exception):
    """An error answer. ``bare`` selects the relay's non-JSON-RPC ``{"error": message}`` shape
    with ``http_status``; simulators and hooks raise this to refuse with their own message."""

    def __init__(
        self, code: int, message: str, *, bare: bool = False, http_status: int = 200
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.bare = bare
        self.http_status = http_status


def _undecodable() -> RpcError:
    return RpcError(INVALID_PARAMS, "unable to decode txs", bare=True, http_status=400)


# --- what the relay accepted --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReceivedBundle:
    """An accepted eth_sendBundle: the decoded submission (bundle, replacement, refund terms),
    who signed it and when it arrived."""

    submission: Submission
    bundle_hash: str
    searcher: str
    received_at: float

    @property
    def bundle(self) -> Bundle:
        return self.submission.bundle

    @property
    def block_number(self) -> int:
        return self.bundle.block_number

    @property
    def uuid(self) -> str | None:
        replacement = self.submission.replacement
        return None if replacement is None else replacement.uuid


@dataclass(frozen=True, slots=True)
class ReceivedMevBundle:
    """An accepted mev_sendBundle. ``txs`` are its signed txs in order (nested ones flattened);
    ``backrun_of`` is the ``{hash}`` it backruns, if any; ``params`` is the validated object."""

    params: Mapping[str, Any]
    txs: tuple[SignedTx, ...]
    backrun_of: str | None
    block_number: int
    max_block: int
    bundle_hash: str
    searcher: str
    received_at: float


@dataclass(frozen=True, slots=True)
class CallBundleRequest:
    """A validated eth_callBundle: simulate ``txs`` as block ``block_number`` on ``state_block``."""

    txs: tuple[SignedTx, ...]
    block_number: int
    state_block: int | str
    timestamp: int | None
    bundle_hash: str
    searcher: str


@dataclass(frozen=True, slots=True)
class SimMevBundleRequest:
    """A validated mev_simBundle: the bundle and the optional ``simOptions`` object."""

    bundle: ReceivedMevBundle
    options: Mapping[str, Any]


Simulator = Callable[[CallBundleRequest | SimMevBundleRequest], Awaitable[Any]]
OnBundle = Callable[[ReceivedBundle | ReceivedMevBundle], Awaitable[None]]
# A further JSON-RPC method: (params, signer address) -> result, or RpcError.
Method = Callable[[Any, str], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class SearcherStats:
    """What one searcher sent: bundles received in total, per target block, cancelled, and
    ignored (a replacement nonce lower than the latest accepted one)."""

    address: str
    received: int
    by_block: Mapping[int, int]
    cancelled: int
    ignored: int


@dataclass(slots=True)
class _SearcherCounts:
    received: int = 0
    cancelled: int = 0
    ignored: int = 0
    by_block: dict[int, int] = field(default_factory=dict)


BookEntry = ReceivedBundle | ReceivedMevBundle
_MAX_NONCES = 100_000


class BundleBook:
    """Accepted bundles by target block, bounded in blocks, bundles per block and searchers.

    The lowest target block is dropped when more than ``max_blocks`` are held; a block holding
    ``max_bundles_per_block`` refuses more. ``(searcher, uuid)`` names one live bundle; the
    latest replacement nonce accepted for it is kept after the bundle is gone, so a late, lower
    one is still ignored.
    """

    def __init__(
        self, *, max_blocks: int = 64, max_bundles_per_block: int = 1000, max_searchers: int = 1024
    ) -> None:
        self.max_blocks = max_blocks
        self.max_bundles_per_block = max_bundles_per_block
        self.max_searchers = max_searchers
        self._by_block: dict[int, list[BookEntry]] = {}
        self._by_uuid: dict[tuple[str, str], ReceivedBundle] = {}
        self._nonces: OrderedDict[tuple[str, str], int] = OrderedDict()
        self._searchers: OrderedDict[str, _SearcherCounts] = OrderedDict()

    def for_block(self, block_number: int) -> tuple[BookEntry, ...]:
        """Bundles targeting this block, in arrival order (mev bundles by their first block)."""
        return tuple(self._by_block.get(block_number, ()))

    def blocks(self) -> tuple[int, ...]:
        return tuple(sorted(self._by_block))

    def add(self, entry: BookEntry) -> bool:
        """Store an accepted bundle, replacing the searcher's bundle with the same uuid; False
        (nothing stored) when its replacement nonce is lower than the latest accepted one."""
        replacement = entry.submission.replacement if isinstance(entry, ReceivedBundle) else None
        replaced: ReceivedBundle | None = None
        if replacement is not None:
            if not self._accept_nonce((entry.searcher, replacement.uuid), replacement.seq):
                self._counts(entry.searcher).ignored += 1
                return False
            replaced = self._by_uuid.get((entry.searcher, replacement.uuid))
        held = self._by_block.get(entry.block_number, [])
        if len(held) - (replaced in held) >= self.max_bundles_per_block:
            raise RpcError(CUSTOM_ERROR, f"too many bundles for block {entry.block_number}")
        if replaced is not None:
            self._remove(replaced)
        self._by_block.setdefault(entry.block_number, []).append(entry)
        if replacement is not None and isinstance(entry, ReceivedBundle):
            self._by_uuid[(entry.searcher, replacement.uuid)] = entry
            self._note_nonce((entry.searcher, replacement.uuid), replacement.seq)
        counts = self._counts(entry.searcher)
        counts.received += 1
        counts.by_block[entry.block_number] = counts.by_block.get(entry.block_number, 0) + 1
        while len(self._by_block) > self.max_blocks:
            self.prune_below(min(self._by_block) + 1)
        return True

    def cancel(self, searcher: str, replacement: Replacement | str) -> tuple[str, ...]:
        """Remove the searcher's bundle named by ``replacement`` (a bare uuid: eth_cancelBundle,
        which carries no nonce); the hashes of what was removed. A cancel with a lower nonce than
        the latest accepted one is ignored."""
        if isinstance(replacement, Replacement):
            key = (searcher, replacement.uuid)
            if not self._accept_nonce(key, replacement.seq):
                self._counts(searcher).ignored += 1
                return ()
            self._note_nonce(key, replacement.seq)
        else:
            key = (searcher, replacement)
        entry = self._by_uuid.pop(key, None)
        if entry is None:
            return ()
        self._remove(entry)
        self._counts(searcher).cancelled += 1
        return (entry.bundle_hash,)

    def prune_below(self, block_number: int) -> None:
        """Forget every bundle targeting a block lower than ``block_number``."""
        for old in [b for b in self._by_block if b < block_number]:
            for entry in self._by_block.pop(old):
                if isinstance(entry, ReceivedBundle) and entry.uuid is not None:
                    key = (entry.searcher, entry.uuid)
                    if self._by_uuid.get(key) is entry:
                        del self._by_uuid[key]
        for counts in self._searchers.values():
            for old in [b for b in counts.by_block if b < block_number]:
                del counts.by_block[old]

    def _accept_nonce(self, key: tuple[str, str], nonce: int) -> bool:
        # "Bundles received with a lower replacementNonce than the latest accepted one are
        # ignored" (buildernet.org/docs/api).
        latest = self._nonces.get(key)
        return latest is None or nonce >= latest

    def _note_nonce(self, key: tuple[str, str], nonce: int) -> None:
        self._nonces[key] = nonce
        self._nonces.move_to_end(key)
        while len(self._nonces) > _MAX_NONCES:
            self._nonces.popitem(last=False)

    def searcher_stats(self, address: str) -> SearcherStats:
        counts = self._searchers.get(address.lower(), _SearcherCounts())
        return SearcherStats(
            address=address.lower(),
            received=counts.received,
            by_block=MappingProxyType(dict(counts.by_block)),
            cancelled=counts.cancelled,
            ignored=counts.ignored,
        )

    def _remove(self, entry: BookEntry) -> None:
        block = self._by_block.get(entry.block_number, [])
        if entry in block:
            block.remove(entry)
        if not block:
            self._by_block.pop(entry.block_number, None)

    def _counts(self, searcher: str) -> _SearcherCounts:
        counts = self._searchers.get(searcher)
        if counts is None:
            counts = self._searchers[searcher] = _SearcherCounts()
            if len(self._searchers) > self.max_searchers:
                self._searchers.popitem(last=False)
        return counts


# --- request validation -------------------------------------------------------------------------


def decode_raw_tx(raw_hex: Any) -> SignedTx:
    """A signed EIP-2718 envelope (legacy or typed) from 0x hex, or the relay's decode error."""
    try:
        raw = hex_to_bytes(raw_hex, "tx")
        tx = decode_signed(raw)  # sender recovered with coincurve, cached per envelope
    except MalformedError:
        raise _undecodable() from None
    assert tx.hash is not None and tx.nonce is not None
    return SignedTx(raw=raw, hash=tx.hash, sender=tx.sender, nonce=tx.nonce)


def param_object(params: Any, method: str, *, max_params: int = 1) -> Mapping[str, Any]:
    """The object in ``[object]`` (or ``[object, ...]`` up to ``max_params``), or the error."""
    if not isinstance(params, list) or not 1 <= len(params) <= max_params:
        raise RpcError(INVALID_PARAMS, f"{method}: expected params [object]")
    if not isinstance(params[0], dict):
        raise RpcError(INVALID_PARAMS, f"{method}: expected params [object]")
    return params[0]


def _decode_bundle_txs(txs: Any) -> tuple[SignedTx, ...]:
    if not isinstance(txs, list) or not txs:
        raise RpcError(INVALID_PARAMS, "bundle missing txs")
    if len(txs) > MAX_BUNDLE_TXS:
        raise RpcError(INVALID_PARAMS, f"bundle has more than {MAX_BUNDLE_TXS} txs")
    decoded = tuple(decode_raw_tx(tx) for tx in txs)
    if sum(len(tx.raw) for tx in decoded) > MAX_BUNDLE_BYTES:
        raise RpcError(INVALID_PARAMS, f"bundle is larger than {MAX_BUNDLE_BYTES} bytes")
    return decoded


def _block_number(value: Any, name: str = "blockNumber") -> int:
    if value is None:
        raise RpcError(INVALID_PARAMS, f"bundle missing {name}")
    if not isinstance(value, str):
        raise RpcError(INVALID_PARAMS, f"{name}: expected a hex string")
    try:
        return hex_to_int(value, name)
    except MalformedError as exc:
        raise RpcError(INVALID_PARAMS, exc.reason) from None


def _opt_timestamp(obj: Mapping[str, Any], name: str) -> int | None:
    value = obj.get(name)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise RpcError(INVALID_PARAMS, f"{name}: expected a number")
    return value


def _str_list(obj: Mapping[str, Any], name: str) -> tuple[str, ...]:
    value = obj.get(name) or []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise RpcError(INVALID_PARAMS, f"{name}: expected a list of strings")
    return tuple(value)


def _bundle_hash(tx_hashes: list[str]) -> str:
    return "0x" + keccak(b"".join(bytes.fromhex(h[2:]) for h in tx_hashes)).hex()


# Fields rbuilder refuses under version v1 (serialize.rs validate_fields).
_V2_ONLY = (
    "droppingTxHashes",
    "refundPercent",
    "refundRecipient",
    "refundTxHashes",
    "delayedRefund",
)
_BUNDLE_VERSIONS = ("v1", "v2")


def _hashes(obj: Mapping[str, Any], name: str) -> tuple[str, ...]:
    try:
        return tuple(norm_hash(h, name) for h in _str_list(obj, name))
    except MalformedError as exc:
        raise RpcError(INVALID_PARAMS, exc.reason) from None


def _opt_uint(obj: Mapping[str, Any], name: str) -> int | None:
    value = obj.get(name)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise RpcError(INVALID_PARAMS, f"{name}: expected a non-negative number")
    return value


def _replacement(obj: Mapping[str, Any]) -> Replacement | None:
    # ``uuid`` wins over ``replacementUuid``, and a uuid needs a nonce (serialize.rs
    # decode_replacement_data: otherwise IncorrectReplacementData).
    uuid = obj.get("uuid") or obj.get("replacementUuid")
    if uuid is None:
        return None
    if not isinstance(uuid, str):
        raise RpcError(INVALID_PARAMS, "replacementUuid: expected a string")
    nonce = _opt_uint(obj, "replacementNonce")
    if nonce is None:
        raise RpcError(INVALID_PARAMS, "Incorrect replacement data: a uuid needs replacementNonce")
    return Replacement(uuid, nonce)


def _refund_terms(obj: Mapping[str, Any], txs: tuple[SignedTx, ...]) -> RefundTerms | None:
    percent = _opt_uint(obj, "refundPercent")
    if percent is not None and percent >= 100:
        raise RpcError(INVALID_PARAMS, f"Invalid refund percent {percent}")
    refund_hashes = _hashes(obj, "refundTxHashes")
    if len(refund_hashes) > 1:
        raise RpcError(INVALID_PARAMS, "More than one refund tx hash not supported")
    if not percent:  # 0 means no refund (serialize.rs parse_refund)
        return None
    if refund_hashes and refund_hashes[0] not in {tx.hash for tx in txs}:
        raise RpcError(INVALID_PARAMS, "refundTxHashes: not a tx of the bundle")
    recipient = obj.get("refundRecipient") or txs[0].sender
    delayed = obj.get("delayedRefund") or False
    if not isinstance(delayed, bool):
        raise RpcError(INVALID_PARAMS, "delayedRefund: expected a boolean")
    try:
        return RefundTerms(
            percent,
            norm_address(recipient, "refundRecipient"),
            refund_hashes[0] if refund_hashes else None,
            delayed,
        )
    except MalformedError as exc:
        raise RpcError(INVALID_PARAMS, exc.reason) from None


def parse_send_bundle(params: Any) -> Submission | Replacement:
    """eth_sendBundle params -> the :class:`Submission`, or the :class:`Replacement` naming the
    bundle to cancel (a uuid with empty, null or missing txs), or the relay's error."""
    obj = param_object(params, "eth_sendBundle")
    version = obj.get("version")
    if version is not None and version not in _BUNDLE_VERSIONS:
        raise RpcError(INVALID_PARAMS, f"Unsupported version {version!r:.20}")
    replacement = _replacement(obj)
    if not obj.get("txs") and replacement is not None:
        return replacement
    if version == "v1":
        for name in _V2_ONLY:
            if obj.get(name) is not None:
                raise RpcError(INVALID_PARAMS, f"Field {name} not supported by version v1")
    txs = _decode_bundle_txs(obj.get("txs"))
    if _hashes(obj, "droppingTxHashes"):
        raise RpcError(INVALID_PARAMS, "droppingTxHashes: the devnet builder never drops txs")
    bundle = Bundle(
        txs=txs,
        block_number=_block_number(obj.get("blockNumber")),
        min_timestamp=_opt_timestamp(obj, "minTimestamp"),
        # 0 means unset (serialize.rs: max_timestamp.filter(|t| *t != 0)).
        max_timestamp=_opt_timestamp(obj, "maxTimestamp") or None,
        reverting_tx_hashes=_hashes(obj, "revertingTxHashes"),
        builders=_str_list(obj, "builders"),
    )
    return Submission(bundle, replacement=replacement, refund=_refund_terms(obj, txs))


def parse_mev_bundle(obj: Any, searcher: str, *, depth: int = 0) -> ReceivedMevBundle:
    """A mev_sendBundle v0.1 object checked as the MEV-Share node checks it, or its error."""
    if not isinstance(obj, dict):
        raise RpcError(INVALID_PARAMS, "invalid bundle body")
    if obj.get("version") not in MEV_VERSIONS:
        raise RpcError(CUSTOM_ERROR, "unsupported bundle version")
    inclusion = obj.get("inclusion")
    if not isinstance(inclusion, dict):
        raise RpcError(CUSTOM_ERROR, "invalid inclusion")
    block = _block_number(inclusion.get("block"), "inclusion.block")
    max_block = block
    if inclusion.get("maxBlock") is not None:
        max_block = _block_number(inclusion.get("maxBlock"), "inclusion.maxBlock") or block
    if not block <= max_block <= block + MEV_MAX_BLOCK_RANGE:
        raise RpcError(CUSTOM_ERROR, "invalid inclusion")
    body = obj.get("body")
    if not isinstance(body, list) or not body:
        raise RpcError(CUSTOM_ERROR, "invalid bundle body")

    txs: list[SignedTx] = []
    element_hashes: list[str] = []
    backrun_of: str | None = None
    for index, element in enumerate(body):
        if not isinstance(element, dict):
            raise RpcError(CUSTOM_ERROR, "invalid bundle body")
        if "hash" in element:
            if index != 0 or len(body) == 1:
                raise RpcError(CUSTOM_ERROR, "invalid bundle body")
            try:
                backrun_of = norm_hash(element["hash"], "hash")
            except MalformedError:
                raise RpcError(CUSTOM_ERROR, "invalid bundle body") from None
            element_hashes.append(backrun_of)
        elif "tx" in element:
            tx = decode_raw_tx(element["tx"])
            txs.append(tx)
            element_hashes.append(tx.hash)
        elif "bundle" in element:
            if depth >= 1:
                raise RpcError(CUSTOM_ERROR, "bundle too deep")
            nested = parse_mev_bundle(element["bundle"], searcher, depth=depth + 1)
            txs.extend(nested.txs)
            element_hashes.append(nested.bundle_hash)
        else:
            raise RpcError(CUSTOM_ERROR, "invalid bundle body")
    if len(txs) > MEV_MAX_BODY_TXS:
        raise RpcError(CUSTOM_ERROR, "invalid bundle body size")
    _check_mev_validity(obj.get("validity"), len(body), has_hash=backrun_of is not None)
    privacy = obj.get("privacy")
    if isinstance(privacy, dict) and privacy.get("hints") and backrun_of is not None:
        raise RpcError(CUSTOM_ERROR, "invalid bundle privacy")
    return ReceivedMevBundle(
        params=MappingProxyType(dict(obj)),
        txs=tuple(txs),
        backrun_of=backrun_of,
        block_number=block,
        max_block=max_block,
        bundle_hash=element_hashes[0] if len(element_hashes) == 1 else _bundle_hash(element_hashes),
        searcher=searcher,
        received_at=time.monotonic(),
    )


def _check_mev_validity(validity: Any, body_len: int, *, has_hash: bool) -> None:
    if validity is None:
        return
    constraints = RpcError(CUSTOM_ERROR, "invalid bundle constraints")
    if not isinstance(validity, dict):
        raise constraints
    refund = validity.get("refund") or []
    refund_config = validity.get("refundConfig") or []
    if not isinstance(refund, list) or not isinstance(refund_config, list):
        raise constraints
    if refund and has_hash:
        raise constraints
    for entries in (refund, refund_config):
        percents = [e.get("percent") if isinstance(e, dict) else None for e in entries]
        if not all(isinstance(p, int) and 0 <= p <= 100 for p in percents):
            raise constraints
        if sum(percents) > 100:  # type: ignore[arg-type]
            raise constraints
    indexes = [e.get("bodyIdx") for e in refund]
    if len(set(indexes)) != len(indexes) or not all(
        isinstance(i, int) and 0 <= i < body_len for i in indexes
    ):
        raise constraints


# --- the HTTP server ----------------------------------------------------------------------------


class LocalRelay:
    """The relay's aiohttp application; :func:`start_relay` runs one on a loopback port."""

    def __init__(
        self,
        *,
        simulator: Simulator | None = None,
        on_bundle: OnBundle | None = None,
        book: BundleBook | None = None,
        max_request_bytes: int = 1024 * 1024,
        methods: Mapping[str, Method] | None = None,
    ) -> None:
        self.simulator = simulator
        self.on_bundle = on_bundle
        self.book = book if book is not None else BundleBook()
        self.max_request_bytes = max_request_bytes
        self.app = web.Application(client_max_size=max_request_bytes)
        self.app.router.add_post("/", self._handle)
        self._runner: web.AppRunner | None = None
        self.url = ""
        self._methods: dict[str, Method] = {
            "eth_sendBundle": self._send_bundle,
            "eth_callBundle": self._call_bundle,
            "eth_cancelBundle": self._cancel_bundle,
            "mev_sendBundle": self._send_mev_bundle,
            "mev_simBundle": self._sim_mev_bundle,
            **(methods or {}),
        }

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> LocalRelay:
        # In-flight requests (a slow simulation) get a moment to finish, then stop() returns.
        self._runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        bound_host, bound_port = self._runner.addresses[0][:2]
        self.url = f"http://{bound_host}:{bound_port}"
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _handle(self, request: web.Request) -> web.Response:
        if request.content_type != "application/json":
            return web.Response(status=415, text="header Content-Type must be application/json")
        if request.content_length is not None and request.content_length > self.max_request_bytes:
            return _too_big(self.max_request_bytes)
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return _too_big(self.max_request_bytes)
        header = request.headers.get(HEADER, "")
        if not header:
            return _error_response(None, RpcError(INVALID_REQUEST, "signature is required"))
        try:
            searcher = verify_flashbots_signature(body, header)
        except SignatureError:
            return _error_response(None, RpcError(INVALID_SIGNATURE, "invalid flashbots signature"))
        try:
            message = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            return _error_response(None, RpcError(PARSE_ERROR, str(exc)))
        if not isinstance(message, dict) or message.get("jsonrpc") != "2.0":
            return _error_response(None, RpcError(PARSE_ERROR, "invalid jsonrpc version"))
        request_id = message.get("id")
        handler = self._methods.get(message.get("method"))  # type: ignore[arg-type]
        if handler is None:
            return _error_response(request_id, RpcError(METHOD_NOT_FOUND, "method not found"))
        try:
            result = await handler(message.get("params"), searcher)
        except RpcError as error:
            return _error_response(request_id, error)
        except Exception:
            log.exception("local relay: %s failed", message.get("method"))
            return _error_response(request_id, RpcError(INTERNAL_ERROR, "internal server error"))
        return web.Response(
            body=orjson.dumps({"jsonrpc": "2.0", "id": request_id, "result": result}),
            content_type="application/json",
        )

    async def _send_bundle(self, params: Any, searcher: str) -> Any:
        parsed = parse_send_bundle(params)
        if isinstance(parsed, Replacement):
            self.book.cancel(searcher, parsed)
            # Ultra Sound answers a cancel with the hash of the empty tx set (bundle-rpc.md).
            return {"bundleHash": _bundle_hash([])}
        entry = ReceivedBundle(parsed, parsed.bundle.bundle_hash, searcher, time.monotonic())
        await self._accept(entry)
        result: dict[str, Any] = {"bundleHash": entry.bundle_hash}
        if parsed.bundle.builders:
            result["smart"] = "true"
        return result

    async def _cancel_bundle(self, params: Any, searcher: str) -> Any:
        uuid = param_object(params, "eth_cancelBundle").get("replacementUuid")
        if not isinstance(uuid, str) or not uuid:
            raise RpcError(INVALID_PARAMS, "eth_cancelBundle: missing replacementUuid")
        return list(self.book.cancel(searcher, uuid))

    async def _call_bundle(self, params: Any, searcher: str) -> Any:
        obj = param_object(params, "eth_callBundle")
        txs = _decode_bundle_txs(obj.get("txs"))
        state_block = obj.get("stateBlockNumber", "latest")
        if not isinstance(state_block, str):
            raise RpcError(INVALID_PARAMS, "stateBlockNumber: expected a hex number or tag")
        if state_block.startswith(("0x", "0X")):
            state_block = _block_number(state_block, "stateBlockNumber")
        call = CallBundleRequest(
            txs=txs,
            block_number=_block_number(obj.get("blockNumber")),
            state_block=state_block,
            timestamp=_opt_timestamp(obj, "timestamp"),
            bundle_hash=_bundle_hash([tx.hash for tx in txs]),
            searcher=searcher,
        )
        return await self._simulate(call)

    async def _send_mev_bundle(self, params: Any, searcher: str) -> Any:
        entry = parse_mev_bundle(param_object(params, "mev_sendBundle"), searcher)
        await self._accept(entry)
        return {"bundleHash": entry.bundle_hash}

    async def _sim_mev_bundle(self, params: Any, searcher: str) -> Any:
        bundle = parse_mev_bundle(param_object(params, "mev_simBundle", max_params=2), searcher)
        options = params[1] if len(params) == 2 else {}
        if not isinstance(options, dict):
            raise RpcError(INVALID_PARAMS, "mev_simBundle: simOptions must be an object")
        return await self._simulate(SimMevBundleRequest(bundle, MappingProxyType(options)))

    async def _accept(self, entry: BookEntry) -> None:
        """Store the bundle, then hand it on. Once stored it is accepted, as on a real relay that
        forwards to builders after answering, so a failing hook is logged, not returned. A
        replacement the book ignores (lower nonce) is answered like any bundle and not passed on."""
        if not self.book.add(entry) or self.on_bundle is None:
            return
        try:
            await self.on_bundle(entry)
        except Exception:
            log.exception("local relay: on_bundle hook failed for %s", entry.bundle_hash)

    async def _simulate(self, request: CallBundleRequest | SimMevBundleRequest) -> Any:
        if self.simulator is None:
            raise RpcError(METHOD_NOT_FOUND, "method not found")
        return await self.simulator(request)


def _error_response(request_id: Any, error: RpcError) -> web.Response:
    if error.bare:
        payload = {"error": error.message}
    else:
        payload = {
            "jsonrpc": "2.0",
            "id": request_id,
            "error": {"code": error.code, "message": error.message},
        }
    return web.Response(
        body=orjson.dumps(payload), status=error.http_status, content_type="application/json"
    )


def _too_big(limit: int) -> web.Response:
    return _error_response(
        None, RpcError(INVALID_REQUEST, f"request body is too big, max size: {limit}")
    )


async def start_relay(
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    simulator: Simulator | None = None,
    on_bundle: OnBundle | None = None,
    book: BundleBook | None = None,
    max_request_bytes: int = 1024 * 1024,
    methods: Mapping[str, Method] | None = None,
) -> LocalRelay:
    """Run a local relay; ``port=0`` picks a free one (see ``.url``). Stop it with ``.stop()``."""
    relay = LocalRelay(
        simulator=simulator,
        on_bundle=on_bundle,
        book=book,
        max_request_bytes=max_request_bytes,
        methods=methods,
    )
    return await relay.start(host, port)
