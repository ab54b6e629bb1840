"""Builder dialects of eth_sendBundle: one typed :class:`Submission` in, the exact JSON one builder
accepts out, and the shape of a cancellation at that builder.

Builders took the Flashbots bundle in different directions (versions, refund fields, replacement
sequence numbers, cancel shapes). Each builder is one :class:`Dialect` entry of :data:`DIALECTS`,
so a new builder is one table entry. A submission a builder cannot take as it is (a field it does
not document, a refund percent outside its range) raises :class:`DialectError` naming the builder
and the field: nothing is silently dropped, except beaver's replacement uuid, which beaver
deprecated (a replacement there is a new bundle; both spend the same nonce, so at most one lands).

Rules every dialect keeps (rbuilder ``crates/rbuilder-primitives/src/serialize.rs``): refund
fields only with ``refundPercent`` > 0, ``refundRecipient`` always set with it (rbuilder's comment
says a bundle without it is discarded; rsync requires it), at most one refund tx hash, and a
replacement uuid paired with the builder's sequence field where it has one.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal

from chain.types import Bundle, norm_address, norm_hash


class DialectError(ValueError):
    """A submission this builder does not accept as it is; the message names builder and field."""


@dataclass(frozen=True, slots=True)
class Replacement:
    """Names a bundle for replacing or cancelling: ``uuid`` plus a sequence number that must grow
    with each replacement (BuilderNet ``replacementNonce``, Titan ``replacementSeqNumber``)."""

    uuid: str
    seq: int = 0

    def __post_init__(self) -> None:
        if not self.uuid or not isinstance(self.uuid, str):
            raise ValueError("a replacement needs a non-empty uuid")
        if self.seq < 0:
            raise ValueError(f"replacement sequence numbers are >= 0, got {self.seq}")

    @classmethod
    def new(cls) -> Replacement:
        """A fresh UUIDv4 (rsync asks for v4; Titan for a 16-byte id, which a UUID is)."""
        return cls(str(uuid.uuid4()))

    def next(self) -> Replacement:
        """The same uuid with the next sequence number: what a replacement or cancel carries."""
        return Replacement(self.uuid, self.seq + 1)


@dataclass(frozen=True, slots=True)
class RefundTerms:
    """Share of the bundle's payment the builder pays back: ``percent`` of the priority fees plus
    coinbase transfers of ``tx_hash`` (the bundle's last tx when None) to ``recipient``;
    ``delayed`` asks BuilderNet for a delayed refund."""

    percent: int
    recipient: str
    tx_hash: str | None = None
    delayed: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.percent, bool) or not 0 <= self.percent <= 100:
            raise ValueError(f"refund percent is 0..100, got {self.percent!r}")
        object.__setattr__(self, "recipient", norm_address(self.recipient, "refund recipient"))
        if self.tx_hash is not None:
            object.__setattr__(self, "tx_hash", norm_hash(self.tx_hash, "refund tx hash"))


@dataclass(frozen=True, slots=True)
class Submission:
    """A bundle as sent to a builder: the txs and target (:class:`Bundle`) plus what builders
    added since: a replacement id, txs that may be dropped, refund terms.

    A ``bundle.replacement_uuid`` without ``replacement`` becomes ``Replacement(uuid, 0)``.
    """

    bundle: Bundle
    replacement: Replacement | None = None
    dropping_tx_hashes: tuple[str, ...] = ()
    refund: RefundTerms | None = None

    def __post_init__(self) -> None:
        uuid_in_bundle = self.bundle.replacement_uuid
        if uuid_in_bundle is not None:
            if self.replacement is None:
                object.__setattr__(self, "replacement", Replacement(uuid_in_bundle))
            elif self.replacement.uuid != uuid_in_bundle:
                raise ValueError("bundle.replacement_uuid and replacement.uuid differ")
        hashes = {tx.hash for tx in self.bundle.txs}
        stray = [h for h in self.dropping_tx_hashes if h not in hashes]
        if stray:
            raise ValueError(f"droppingTxHashes: {stray[0]} is not a tx of the bundle")
        if self.refund is not None and self.refund.tx_hash not in (None, *hashes):
            raise ValueError(f"refundTxHashes: {self.refund.tx_hash} is not a tx of the bundle")
        if not self.bundle.txs:
            raise ValueError("a bundle needs at least one tx (cancel with a Replacement instead)")


CancelShape = Literal["endpoint", "empty-bundle"]


@dataclass(frozen=True, slots=True)
class RpcCall:
    """A JSON-RPC method and its params, ready to be serialized, signed and posted."""

    method: str
    params: list[Any]


@dataclass(frozen=True, slots=True)
class Dialect:
    """What one builder accepts in eth_sendBundle, and how it cancels.

    ``replacement_field`` carries the uuid (None: the builder has none), ``sequence_field`` the
    replacement sequence number; ``refund_range`` is the accepted ``refundPercent`` range (None:
    no refund fields); ``cancel`` is ``"endpoint"`` (eth_cancelBundle), ``"empty-bundle"`` (the
    same uuid with no txs) or None; ``signs`` says whether requests carry X-Flashbots-Signature.
    """

    name: str
    version: str | None = None
    timestamps: bool = True
    builders: bool = False
    dropping_field: str | None = None
    replacement_field: str | None = "replacementUuid"
    sequence_field: str | None = None
    refund_range: tuple[int, int] | None = None
    refund_tx_field: str = "refundTxHashes"
    delayed_refund: bool = False
    cancel: CancelShape | None = "endpoint"
    signs: bool = True

    def send_params(self, submission: Submission) -> dict[str, Any]:
        """The eth_sendBundle parameter object for this builder."""
        bundle = submission.bundle
        params: dict[str, Any] = {
            "txs": [tx.raw_hex for tx in bundle.txs],
            "blockNumber": hex(bundle.block_number),
        }
        if self.version is not None:
            params["version"] = self.version
        for name, value in (
            ("minTimestamp", bundle.min_timestamp),
            ("maxTimestamp", bundle.max_timestamp),
        ):
            if value is not None:
                self._require(self.timestamps, name)
                params[name] = value
        if bundle.reverting_tx_hashes:
            params["revertingTxHashes"] = list(bundle.reverting_tx_hashes)
        if submission.dropping_tx_hashes:
            self._require(self.dropping_field is not None, "droppingTxHashes")
            params[str(self.dropping_field)] = list(submission.dropping_tx_hashes)
        if bundle.builders:
            self._require(self.builders, "builders")
            params["builders"] = list(bundle.builders)
        replacement = submission.replacement
        if replacement is not None and self.replacement_field is not None:
            params[self.replacement_field] = replacement.uuid
            if self.sequence_field is not None:
                params[self.sequence_field] = replacement.seq
        refund = submission.refund
        if refund is not None and refund.percent > 0:
            params.update(self._refund_fields(refund))
        return params

    def cancel_call(self, replacement: Replacement) -> RpcCall:
        """The request that cancels the bundle named by ``replacement`` (pass the next sequence
        number: BuilderNet ignores a lower one than the latest it accepted)."""
        if self.cancel == "endpoint":
            return RpcCall("eth_cancelBundle", [{"replacementUuid": replacement.uuid}])
        if self.cancel == "empty-bundle" and self.replacement_field is not None:
            params: dict[str, Any] = {"txs": [], self.replacement_field: replacement.uuid}
            if self.version is not None:
                params["version"] = self.version
            if self.sequence_field is not None:
                params[self.sequence_field] = replacement.seq
            return RpcCall("eth_sendBundle", [params])
        raise DialectError(f"{self.name}: no way to cancel a bundle (no replacement uuid)")

    def _refund_fields(self, refund: RefundTerms) -> dict[str, Any]:
        if self.refund_range is None:
            raise DialectError(f"{self.name}: refundPercent is not accepted")
        low, high = self.refund_range
        if not low <= refund.percent <= high:
            raise DialectError(
                f"{self.name}: refundPercent must be {low}..{high}, got {refund.percent}"
            )
        fields: dict[str, Any] = {
            "refundPercent": refund.percent,
            "refundRecipient": refund.recipient,
        }
        if refund.tx_hash is not None:
            fields[self.refund_tx_field] = [refund.tx_hash]
        if refund.delayed:
            self._require(self.delayed_refund, "delayedRefund")
            fields["delayedRefund"] = True
        return fields

    def _require(self, accepted: bool, name: str) -> None:
        if not accepted:
            raise DialectError(f"{self.name}: {name} is not accepted")


_DIALECT_LIST = (
    # The fields relay.flashbots.net documents (flashbots-docs advanced/rpc-endpoint.mdx
    # @272fd13, eth_sendBundle and eth_cancelBundle): what any Flashbots-compatible relay takes.
    Dialect(name="generic", builders=True),
    # relay.flashbots.net: every eth_sendBundle goes to BuilderNet first (gas-fee-refunds.md
    # @272fd13), whose parser honours a uuid only with replacementNonce (rbuilder serialize.rs
    # decode_replacement_data). Gas-fee refunds go to the signer without any field.
    Dialect(name="flashbots", builders=True, sequence_field="replacementNonce"),
    # BuilderNet directly (buildernet.org/docs/api; rbuilder serialize.rs@0681a72): v2 fields,
    # refundPercent 1-99, cancel = the same uuid with empty txs.
    Dialect(
        name="buildernet",
        version="v2",
        dropping_field="droppingTxHashes",
        sequence_field="replacementNonce",
        refund_range=(1, 99),
        delayed_refund=True,
        cancel="empty-bundle",
    ),
    # Titan (docs.titanbuilder.xyz/api/eth_sendbundle, /api/eth_cancelbundle): no timestamps,
    # replacementSeqNumber, refundPercent 0-99.
    Dialect(
        name="titan",
        timestamps=False,
        dropping_field="droppingTxHashes",
        sequence_field="replacementSeqNumber",
        refund_range=(0, 99),
    ),
    # beaverbuild (beaverbuild.org/docs.html as quoted by a client type, code corpus id
    # 44467667156): replacementUuid deprecated, refundPercent 1-99, refundTransactionHashes;
    # "doesn't care about your authentication headers and signatures".
    Dialect(
        name="beaver",
        dropping_field="droppingTransactionHashes",
        replacement_field=None,
        refund_range=(1, 99),
        refund_tx_field="refundTransactionHashes",
        cancel=None,
        signs=False,
    ),
    # rsync (rsync-builder.xyz/docs): refundPercent 0-100 with a mandatory refundRecipient,
    # eth_cancelBundle; no signature header.
    Dialect(
        name="rsync",
        dropping_field="droppingTxHashes",
        refund_range=(0, 100),
        signs=False,
    ),
    # Ultra Sound (ultrasoundmoney/builder-docs bundle-rpc.md): no timestamps, refundPercent
    # 0-99, eth_cancelBundle; authentication is an optional X-Api-Key, not a signature.
    Dialect(
        name="ultrasound",
        timestamps=False,
        dropping_field="droppingTxHashes",
        refund_range=(0, 99),
        signs=False,
    ),
)

DIALECTS: Mapping[str, Dialect] = MappingProxyType({d.name: d for d in _DIALECT_LIST})


def get_dialect(name: str | Dialect) -> Dialect:
    """The dialect called ``name`` (a :class:`Dialect` is returned as is)."""
    if isinstance(name, Dialect):
        return name
    try:
        return DIALECTS[name]
    except KeyError:
        raise ValueError(
            f"unknown builder dialect {name!r}; choose one of {', '.join(DIALECTS)}"
        ) from None
