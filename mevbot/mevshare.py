"""MEV-Share backruns from hint to landed: bid, sign, ``mev_sendBundle``, inclusion, ledger, counts.

For each hint the :class:`~strategies.mevshare.HintBackrun` strategy proposes backruns; each is
priced with the strategy's bid policy (a coinbase transfer from the Executor inside our tx, so
the builder is paid only if it lands behind the user's tx), signed with the executor key at its
next nonce and sent to the MEV-Share node as ``[{hash}, our tx]`` for the next ``blocks`` blocks,
with ``refundConfig`` naming our searcher address for any refund our own bundle earns. The node
refuses a backrun that reverts behind the user's tx; that is counted, not retried. At each head
the desk looks up the receipts of what it sent: landed (our tx mined and succeeded, right after
the user's) or missed (its last block passed). The ledger holds each backrun's candidate with
its outcome; the counters and the latest rows feed the dashboard and the metrics. For a landed
backrun the desk reads what the user got back from the block itself: builders pay a MEV-Share
refund as a plain transfer from the block's fee recipient right after the bundle (mev-share
``specs/bundles/refund-recipient.md``: "at the end of the bundle"; flashbots/builder
``commitSBundle`` ``commitPayoutTx``), so the tx after ours, sent by the block's ``miner`` with no
calldata, is the refund; without one the user got nothing. Each goes into the ledger
(:class:`~execution.ledger.UserRefund`) and the counts.
"""

from __future__ import annotations

import logging
from collections import Counter, deque
from dataclasses import dataclass, replace
from typing import Any

from chain.types import BlockHeader, MalformedError, SignedTx, hex_to_int, norm_address
from execution.bids import BidPolicy, Rejected
from execution.executor_calls import executor_call, gas_limit_for, sign_executor_call
from execution.ledger import Ledger, UserRefund
from execution.relay import RelayClient, RelayFailure, mev_bundle
from execution.signer import LocalSigner
from mevbot.status import MevShareRow, MevShareStatus
from simulation.state import ChainState
from strategies.mevshare import HintBackrun, HintCandidate
from watcher.events import MevShareHint
from watcher.source import SourceStats

log = logging.getLogger("mevbot.mevshare")

MIN_GAS_LIMIT = 600_000  # a limit costs nothing unless used; a V3 hop crossing ticks needs room
ROWS = 12


@dataclass(slots=True)
class _Sent:
    hint: HintCandidate
    tx: SignedTx
    coinbase_wei: int
    bundle_hash: str
    last_block: int


class MevShareDesk:
    """Turns hints into backruns at the MEV-Share node ``node`` and follows them to the chain."""

    def __init__(
        self,
        *,
        strategy: HintBackrun,
        state: ChainState,
        node: RelayClient,
        signer: LocalSigner,
        rpc: Any,
        ledger: Ledger,
        policy: BidPolicy,
        executor: str,
        weth: str,
        chain_id: int,
        source: SourceStats,
        blocks: int = 2,
    ) -> None:
        self.strategy = strategy
        self.state = state
        self.node = node
        self.signer = signer
        self.rpc = rpc
        self.ledger = ledger
        self.policy = policy
        self.executor = executor
        self.weth = weth
        self.chain_id = chain_id
        self.source = source
        self.blocks = blocks
        self.head: BlockHeader | None = None
        self.counts: Counter[str] = Counter()
        self.rows: deque[MevShareRow] = deque(maxlen=ROWS)
        self._sent: dict[str, _Sent] = {}  # by our tx hash

    async def on_hint(self, hint: MevShareHint) -> None:
        self.counts["hints"] += 1
        head = self.head
        if head is None:
            self.counts["before_first_head"] += 1
            return
        for found in self.strategy.on_hint(hint, self.state, head.number + 1):
            self.counts[f"candidates_{found.sizing}"] += 1
            await self._send(found, head)

    async def _send(self, found: HintCandidate, head: BlockHeader) -> None:
        candidate = found.candidate
        if not self.ledger.record_candidate(candidate, status="new"):
            self.counts["duplicate"] += 1
            return
        gas = candidate.action.gas_guess
        bid = self.policy.price(candidate.expected_profit_wei, gas, head.base_fee, self.blocks)
        if isinstance(bid, Rejected):
            self.counts["no_bid"] += 1
            self.ledger.mark_candidate(candidate.key, "dropped", bid.reason.value)
            return
        call = executor_call(
            self.executor, candidate, bid, max(gas_limit_for(gas), MIN_GAS_LIMIT), self.weth
        )
        nonce = hex_to_int(
            await self.rpc.call("eth_getTransactionCount", [self.signer.address, "latest"])
        )
        tx = sign_executor_call(self.signer, call, bid, nonce, self.chain_id)
        target = candidate.target_block
        bundle = mev_bundle(
            target,
            [found.hint_hash, tx],
            max_block=target + self.blocks - 1,
            refund_config=[(self.node.searcher_address, 100)],
        )
        try:
            receipt = await self.node.send_mev_bundle(bundle)
        except RelayFailure as failure:
            self.counts["refused"] += 1
            self.ledger.mark_candidate(candidate.key, "dropped", str(failure)[:200])
            self._row(found, tx.hash, "refused", bid.coinbase_wei)
            return
        self.counts["sent"] += 1
        self.ledger.mark_candidate(candidate.key, "sent")
        self._sent[tx.hash] = _Sent(
            found, tx, bid.coinbase_wei, receipt.bundle_hash, target + self.blocks - 1
        )
        self._row(found, tx.hash, "pending", bid.coinbase_wei)

    async def on_head(self, header: BlockHeader) -> None:
        """Settle what was sent: landed when our tx is mined and succeeded, missed when its last
        block passed without it."""
        self.head = header
        if not self._sent:
            return
        hashes = list(self._sent)
        receipts = await self.rpc.batch([("eth_getTransactionReceipt", [h]) for h in hashes])
        for tx_hash, receipt in zip(hashes, receipts, strict=True):
            sent = self._sent[tx_hash]
            if isinstance(receipt, dict):
                ok = hex_to_int(receipt.get("status", "0x0")) == 1
                if ok:
                    await self._user_refund(sent, receipt)
                self._settle(sent, "landed" if ok else "failed")
            elif header.number >= sent.last_block:
                self._settle(sent, "missed")

    async def _user_refund(self, sent: _Sent, receipt: dict[str, Any]) -> None:
        """Read the user's refund from the block our backrun landed in; ledger and count it."""
        try:
            block = hex_to_int(receipt.get("blockNumber"), "blockNumber")
            after = hex_to_int(receipt.get("transactionIndex"), "transactionIndex") + 1
            header, payout = await self.rpc.batch(
                [
                    ("eth_getBlockByNumber", [hex(block), False]),
                    ("eth_getTransactionByBlockNumberAndIndex", [hex(block), hex(after)]),
                ]
            )
            if not isinstance(header, dict):
                raise MalformedError(f"block {block}: no header")
            miner = norm_address(header.get("miner"), "miner")
            refund_tx, amount = None, 0
            if (
                isinstance(payout, dict)
                and norm_address(payout.get("from"), "from") == miner
                and payout.get("input") in ("0x", "")
            ):
                amount = hex_to_int(payout.get("value"), "value")
                refund_tx = str(payout.get("hash")).lower()
        except MalformedError as error:
            self.counts["refund_unreadable"] += 1
            log.warning("mev-share: the refund for %s cannot be read: %s", sent.tx.hash, error)
            return
        self.counts["user_refunds_wei"] += amount
        self.ledger.record_user_refund(
            UserRefund(sent.tx.hash, sent.hint.candidate.key, block, refund_tx, amount)
        )

    def _settle(self, sent: _Sent, outcome: str) -> None:
        del self._sent[sent.tx.hash]
        self.counts[outcome] += 1
        if outcome == "landed":
            self.counts["coinbase_paid_wei"] += sent.coinbase_wei
        self.ledger.mark_candidate(sent.hint.candidate.key, outcome)
        self._row(sent.hint, sent.tx.hash, outcome, sent.coinbase_wei)

    def _row(self, found: HintCandidate, tx_hash: str, status: str, coinbase_wei: int) -> None:
        for index, row in enumerate(self.rows):
            if row.tx_hash == tx_hash:
                self.rows[index] = replace(row, status=status)
                return
        self.rows.append(
            MevShareRow(
                hint_hash=found.hint_hash,
                tx_hash=tx_hash,
                sizing=found.sizing,
                target_block=found.candidate.target_block,
                expected_profit_wei=found.candidate.expected_profit_wei,
                coinbase_wei=coinbase_wei,
                status=status,
            )
        )

    def status(self) -> MevShareStatus:
        counts, source = self.counts, self.source
        return MevShareStatus(
            url=self.node.url,
            connected=source.connected,
            hints=counts["hints"],
            malformed=source.malformed.total,
            candidates={
                k.removeprefix("candidates_"): v
                for k, v in counts.items()
                if k.startswith("candidates_")
            },
            sent=counts["sent"],
            refused=counts["refused"],
            landed=counts["landed"],
            missed=counts["missed"] + counts["failed"],
            coinbase_paid_wei=counts["coinbase_paid_wei"],
            user_refunds_wei=counts["user_refunds_wei"],
            rows=tuple(self.rows),
        )
