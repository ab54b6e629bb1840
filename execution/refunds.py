"""Builder refunds: the documented tracking methods' answers as typed values, and the tracker
that reconciles them into the ledger.

BuilderNet refunds bundles that land in its blocks and pays them to the signer of the
X-Flashbots-Signature header (or the address set with ``flashbots_setFeeRefundRecipient``), in
batches, from refunds.buildernet.eth (flashbots-docs advanced/gas-fee-refunds.md @272fd13).
They are tracked with (advanced/rpc-endpoint.mdx @272fd13):

- ``flashbots_getFeeRefundTotalsByRecipient [recipient]`` -> ``{pending, received,
  maxBlockNumber}`` (hex wei / hex block);
- ``flashbots_getFeeRefundsByRecipient [{recipient, cursor?}]`` -> ``{refunds: [{hash, amount,
  blockNumber, status, recipient}], cursor?}`` (paginated, ``cursor`` only when more follow);
- ``buildernet_getDelayedRefunds [{recipient, blockRangeFrom?, blockRangeTo?, cursor?}]`` ->
  ``{refunds: [...], nextCursor?, indexedUpTo}``;
- ``buildernet_getDelayedRefundTotalsByRecipient [{recipient, ...}]`` -> ``{pending, received,
  indexedUpTo}``.

A refund is one (source, hash, block, recipient); its status goes from ``pending`` to
``received``. :class:`RefundTracker` pulls every page and writes each refund to the ledger, which
keeps one row per refund however often the same answer is reconciled.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from chain.types import MalformedError, hex_to_int, norm_address, norm_hash

if TYPE_CHECKING:
    from execution.ledger import Ledger
    from execution.relay import RelayClient

log = logging.getLogger(__name__)

MAX_PAGES = 1000  # a relay that keeps answering with a cursor is not followed forever


class RefundSource(enum.StrEnum):
    FEE = "fee"  # flashbots_getFeeRefunds*: gas-fee refunds to the signer
    DELAYED = "delayed"  # buildernet_getDelayedRefunds*: refunds asked for with delayedRefund


class RefundStatus(enum.StrEnum):
    PENDING = "pending"
    RECEIVED = "received"


@dataclass(frozen=True, slots=True)
class Refund:
    """One refund as a relay reports it; ``hash`` is the bundle (or tx) hash it is for."""

    source: RefundSource
    hash: str
    amount: int
    block_number: int
    status: RefundStatus
    recipient: str


@dataclass(frozen=True, slots=True)
class RefundTotals:
    """What a recipient has earned and not yet received, and received (wei); ``up_to_block`` is
    the highest block the builder has processed."""

    pending: int
    received: int
    up_to_block: int


@dataclass(frozen=True, slots=True)
class RefundPage:
    refunds: tuple[Refund, ...]
    cursor: str | None


def _object(value: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise MalformedError(f"{what}: expected an object, got {type(value).__name__}")
    return value


def parse_refund(obj: Any, source: RefundSource) -> Refund:
    entry = _object(obj, "refund")
    status = entry.get("status")
    if status not in (RefundStatus.PENDING, RefundStatus.RECEIVED):
        raise MalformedError(f"status: expected pending or received, got {status!r:.40}")
    return Refund(
        source=source,
        hash=norm_hash(entry.get("hash"), "hash"),
        amount=hex_to_int(entry.get("amount"), "amount"),
        block_number=hex_to_int(entry.get("blockNumber"), "blockNumber"),
        status=RefundStatus(status),
        recipient=norm_address(entry.get("recipient"), "recipient"),
    )


def parse_refund_page(obj: Any, source: RefundSource) -> RefundPage:
    """A page of refunds; the continuation is ``cursor`` (fee) or ``nextCursor`` (delayed)."""
    result = _object(obj, "refunds result")
    entries = result.get("refunds")
    if not isinstance(entries, list):
        raise MalformedError("refunds: expected a list")
    cursor = result.get("cursor" if source is RefundSource.FEE else "nextCursor")
    if cursor is not None and not isinstance(cursor, str):
        raise MalformedError(f"cursor: expected a string, got {cursor!r:.40}")
    return RefundPage(tuple(parse_refund(e, source) for e in entries), cursor or None)


def parse_refund_totals(obj: Any, source: RefundSource) -> RefundTotals:
    result = _object(obj, "refund totals")
    block_key = "maxBlockNumber" if source is RefundSource.FEE else "indexedUpTo"
    return RefundTotals(
        pending=hex_to_int(result.get("pending"), "pending"),
        received=hex_to_int(result.get("received"), "received"),
        up_to_block=hex_to_int(result.get(block_key, "0x0"), block_key),
    )


@dataclass(frozen=True, slots=True)
class Reconciled:
    """One reconciliation: refunds first seen, refunds whose status or amount changed, and the
    ledger's totals afterwards (wei)."""

    new: int
    changed: int
    pending_wei: int
    received_wei: int


class RefundTracker:
    """Reconciles one recipient's refunds from one relay into the ledger.

    The recipient is the searcher identity: the first reconciliation records it in the ledger and
    warns when the ledger knew another one (refunds keep going to the old address, and this
    tracker no longer sees them).
    """

    def __init__(self, client: RelayClient, ledger: Ledger, recipient: str) -> None:
        self.client = client
        self.ledger = ledger
        self.recipient = norm_address(recipient, "refund recipient")
        self._identity_checked = False

    async def reconcile(self) -> Reconciled:
        if not self._identity_checked:
            previous = self.ledger.note_searcher(self.recipient)
            if previous is not None:
                log.warning(
                    "searcher identity changed from %s to %s: builders pay refunds to the "
                    "signing address, so refunds earned by %s are no longer tracked here",
                    previous,
                    self.recipient,
                    previous,
                )
            self._identity_checked = True
        refunds = [
            *await self.client.fee_refunds(self.recipient),
            *await self.client.delayed_refunds(self.recipient),
        ]
        new = changed = 0
        for refund in refunds:
            outcome = self.ledger.record_refund(refund, self.client.name)
            new += outcome == "new"
            changed += outcome == "changed"
        sums = self.ledger.refund_totals(self.recipient)
        return Reconciled(new, changed, sums.pending_wei, sums.received_wei)
