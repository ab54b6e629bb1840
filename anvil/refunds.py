"""The devnet's refund desk: computes BuilderNet-style refunds for the bundles that landed, pays
them with real ETH transfers from a refund-payer key, and answers the refund-tracking methods.

The rules, per landed eth_sendBundle bundle (wei, floor division):

- ``refundPercent`` with ``delayedRefund`` (buildernet.org/docs/api: "of the total priority fee +
  coinbase payment"; rbuilder serialize.rs: of the refund tx, the last one by default):
  ``percent`` of what the refund tx paid the coinbase, to ``refundRecipient``, listed by
  ``buildernet_getDelayedRefunds``. Without ``delayedRefund`` the builder itself pays it inside
  the block (:mod:`anvil.builder`); the desk only counts it out of the gas-fee refund below.
- Gas-fee refund (flashbots-docs advanced/gas-fee-refunds.md @272fd13: "refunded the difference
  between their bid and the bid of the next-best bundle ... targeting the same state ... some
  fraction of this amount depending on how much profit BuilderNet makes"): ``share_bps`` of
  (the bundle's payment, less its refundPercent refund, less the best payment of a bundle it
  displaced), to the signer, or to the address the signer set with
  ``flashbots_setFeeRefundRecipient``. Bundles holding only public-pool txs get none ("bundles
  containing only public mempool transactions do not receive refunds").

After each block the desk sends one transfer per recipient from the payer key (as BuilderNet pays
in batches from refunds.buildernet.eth); a refund is ``pending`` until its transfer is mined, then
``received``. The payer pays the transfer's gas, so a recipient's balance grows by exactly the
refunds listed for it.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from anvil.builder import BlockReport, LandedBundle, refund_share
from anvil.relay import INVALID_PARAMS, RpcError
from chain.errors import RpcError as NodeRpcError
from chain.rpc import Rpc
from chain.types import MalformedError, hex_to_int, norm_address
from execution.refunds import RefundSource, RefundStatus
from execution.signer import LocalSigner

log = logging.getLogger(__name__)

PAGE_SIZE = 100
TRANSFER_GAS = 21_000
PAYOUT_TIP = 10**9


@dataclass(slots=True)
class RefundEntry:
    """One refund the desk owes or paid; ``source`` is the method family that reports it."""

    source: RefundSource
    hash: str
    block_number: int
    recipient: str
    amount: int
    status: RefundStatus = RefundStatus.PENDING
    payout_tx: str | None = None

    def to_rpc(self) -> dict[str, str]:
        return {
            "hash": self.hash,
            "amount": hex(self.amount),
            "blockNumber": hex(self.block_number),
            "status": self.status.value,
            "recipient": self.recipient,
        }


def refunds_for(
    bundle: LandedBundle, share_bps: int, recipient_of: Mapping[str, str]
) -> list[RefundEntry]:
    """What one landed bundle earns by the rules above."""
    entries: list[RefundEntry] = []
    explicit = 0
    terms = bundle.refund
    if terms is not None and terms.percent > 0:
        explicit = refund_share(terms, bundle.tx_hashes, bundle.tx_payments)
        if terms.delayed:
            entries.append(
                RefundEntry(
                    RefundSource.DELAYED,
                    bundle.bundle_hash,
                    bundle.block_number,
                    terms.recipient,
                    explicit,
                )
            )
    if bundle.private:
        surplus = bundle.payment - explicit - bundle.displaced
        fee = max(surplus, 0) * share_bps // 10_000
        if fee > 0:
            recipient = recipient_of.get(bundle.searcher, bundle.searcher)
            entries.append(
                RefundEntry(
                    RefundSource.FEE, bundle.bundle_hash, bundle.block_number, recipient, fee
                )
            )
    return [entry for entry in entries if entry.amount > 0]


class RefundDesk:
    """Owes, pays and reports refunds. Wire :meth:`after_block` as the builder's ``after_block``
    hook and :attr:`methods` into the relay."""

    def __init__(self, rpc: Rpc, payer: LocalSigner, *, share_bps: int = 5000) -> None:
        if not 0 <= share_bps <= 10_000:
            raise ValueError(f"share_bps is 0..10000, got {share_bps}")
        self.rpc = rpc
        self.payer = payer
        self.share_bps = share_bps
        self.entries: list[RefundEntry] = []
        self._recipient_of: dict[str, str] = {}
        self._processed_up_to = 0
        self._chain_id: int | None = None
        self.methods: Mapping[str, Callable[[Any, str], Awaitable[Any]]] = {
            "flashbots_getFeeRefundTotalsByRecipient": self._fee_totals,
            "flashbots_getFeeRefundsByRecipient": self._fee_refunds,
            "buildernet_getDelayedRefunds": self._delayed_refunds,
            "buildernet_getDelayedRefundTotalsByRecipient": self._delayed_totals,
            "flashbots_setFeeRefundRecipient": self._set_recipient,
        }

    async def after_block(self, report: BlockReport) -> None:
        """Mark paid refunds received, then owe this block's and pay every unpaid one (a payout
        the node refused is tried again after the next block)."""
        await self._mark_received()
        self.entries += [
            entry
            for bundle in report.landed
            for entry in refunds_for(bundle, self.share_bps, self._recipient_of)
        ]
        await self._pay([e for e in self.entries if e.payout_tx is None], report)
        self._processed_up_to = report.number

    async def _mark_received(self) -> None:
        unpaid = sorted({e.payout_tx for e in self.entries if e.status is RefundStatus.PENDING})
        sent = [tx for tx in unpaid if tx is not None]
        if not sent:
            return
        receipts = await self.rpc.batch([("eth_getTransactionReceipt", [tx]) for tx in sent])
        mined = {
            tx
            for tx, receipt in zip(sent, receipts, strict=True)
            if isinstance(receipt, dict) and hex_to_int(receipt.get("status", "0x0")) == 1
        }
        for entry in self.entries:
            if entry.payout_tx in mined:
                entry.status = RefundStatus.RECEIVED

    async def _pay(self, owed: list[RefundEntry], report: BlockReport) -> None:
        by_recipient: defaultdict[str, list[RefundEntry]] = defaultdict(list)
        for entry in owed:
            by_recipient[entry.recipient].append(entry)
        if not by_recipient:
            return
        if self._chain_id is None:
            self._chain_id = hex_to_int(await self.rpc.call("eth_chainId", []))
        nonce = hex_to_int(
            await self.rpc.call("eth_getTransactionCount", [self.payer.address, "pending"])
        )
        base_fee = hex_to_int(
            (await self.rpc.call("eth_getBlockByNumber", [hex(report.number), False]))[
                "baseFeePerGas"
            ]
        )
        for recipient, entries in by_recipient.items():
            payout = self.payer.sign_eip1559(
                chain_id=self._chain_id,
                nonce=nonce,
                to=recipient,
                data=b"",
                value=sum(e.amount for e in entries),
                gas=TRANSFER_GAS,
                max_fee_per_gas=2 * base_fee + PAYOUT_TIP,
                max_priority_fee_per_gas=PAYOUT_TIP,
            )
            nonce += 1
            try:
                await self.rpc.call("eth_sendRawTransaction", [payout.raw_hex])
            except NodeRpcError as error:
                log.warning("devnet refunds: payout to %s refused: %s", recipient, error)
                continue
            for entry in entries:
                entry.payout_tx = payout.hash

    # -- the refund-tracking methods (flashbots-docs advanced/rpc-endpoint.mdx @272fd13) --

    def _listed(self, source: RefundSource, recipient: str) -> list[RefundEntry]:
        return [e for e in self.entries if e.source is source and e.recipient == recipient]

    def _totals(self, source: RefundSource, recipient: str, block_key: str) -> dict[str, str]:
        listed = self._listed(source, recipient)
        return {
            "pending": hex(sum(e.amount for e in listed if e.status is RefundStatus.PENDING)),
            "received": hex(sum(e.amount for e in listed if e.status is RefundStatus.RECEIVED)),
            block_key: hex(self._processed_up_to),
        }

    def _page(
        self, source: RefundSource, query: Mapping[str, Any], cursor_key: str
    ) -> dict[str, Any]:
        listed = self._listed(source, _recipient(query.get("recipient")))
        low = _opt_block(query, "blockRangeFrom", 0)
        high = _opt_block(query, "blockRangeTo", 2**63)
        listed = [e for e in listed if low <= e.block_number <= high]
        start = _opt_block(query, "cursor", 0)
        page: dict[str, Any] = {"refunds": [e.to_rpc() for e in listed[start : start + PAGE_SIZE]]}
        if start + PAGE_SIZE < len(listed):
            page[cursor_key] = hex(start + PAGE_SIZE)
        return page

    async def _fee_totals(self, params: Any, searcher: str) -> Any:
        if not isinstance(params, list) or len(params) != 1:
            raise RpcError(INVALID_PARAMS, "expected params [recipient]")
        return self._totals(RefundSource.FEE, _recipient(params[0]), "maxBlockNumber")

    async def _fee_refunds(self, params: Any, searcher: str) -> Any:
        return self._page(RefundSource.FEE, _query(params), "cursor")

    async def _delayed_refunds(self, params: Any, searcher: str) -> Any:
        page = self._page(RefundSource.DELAYED, _query(params), "nextCursor")
        page["indexedUpTo"] = hex(self._processed_up_to)
        return page

    async def _delayed_totals(self, params: Any, searcher: str) -> Any:
        query = _query(params)
        recipient = _recipient(query.get("recipient"))
        return self._totals(RefundSource.DELAYED, recipient, "indexedUpTo")

    async def _set_recipient(self, params: Any, searcher: str) -> Any:
        # "If the first address matches the authentication signature" (rpc-endpoint.mdx).
        if not isinstance(params, list) or len(params) != 2:
            raise RpcError(INVALID_PARAMS, "expected params [signer, recipient]")
        signer, recipient = _recipient(params[0]), _recipient(params[1])
        if signer != searcher:
            raise RpcError(INVALID_PARAMS, "the first address must be the request's signer")
        self._recipient_of[signer] = recipient
        return {"from": signer, "to": recipient}


def _query(params: Any) -> Mapping[str, Any]:
    if not isinstance(params, list) or len(params) != 1 or not isinstance(params[0], dict):
        raise RpcError(INVALID_PARAMS, "expected params [object]")
    return params[0]


def _recipient(value: Any) -> str:
    try:
        return norm_address(value, "recipient")
    except MalformedError as error:
        raise RpcError(INVALID_PARAMS, error.reason) from None


def _opt_block(query: Mapping[str, Any], key: str, default: int) -> int:
    value = query.get(key)
    if value is None:
        return default
    try:
        return hex_to_int(value, key)
    except MalformedError as error:
        raise RpcError(INVALID_PARAMS, error.reason) from None
