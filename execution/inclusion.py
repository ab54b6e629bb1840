"""Inclusion tracking: on every new block, settle each bundle that targeted it.

For a bundle at its target block: *landed* when every bundle tx is in the block, contiguous, in
bundle order (so ours sits right after the txs it backruns) and ours succeeded; *failed* when our
tx is in the block but reverted; *unbundled* when ours succeeded outside that arrangement;
*missed* when the block passed without our tx; the later targets of a tx that already landed are
*superseded*. Realized profit comes from our receipt: the Executor event's profit (in wei, or
converted from the profit token at the candidate's own ratio) minus the coinbase tip it paid
minus gas used × effective gas price.

Some providers announce a block number before they serve its transactions (web3-flashbots
PR#63), so a block that looks empty while it used gas, or is not found, is fetched once more
after a short delay; if it is still not visible its bundles stay pending for the next call,
rather than being declared missed and resent although they landed (after
``max_defer_blocks`` blocks a block never served counts as one without our txs).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from chain.abi import Event, load_artifact
from chain.errors import ChainError
from chain.rpc import Rpc
from chain.types import Log, MalformedError, hex_to_int, norm_hash
from execution.ledger import Ledger, OutcomeStatus, PendingBundle, PublicTxStatus, Settlement

RPC_TIMEOUT_S = 2.0
DEFAULT_RETRY_DELAY_S = 0.25
DEFAULT_MAX_DEFER_BLOCKS = 8


@dataclass(frozen=True, slots=True)
class TxReceipt:
    """The parts of a receipt that settle a bundle."""

    tx_hash: str
    status: int
    block_number: int
    gas_used: int
    effective_gas_price: int
    logs: tuple[Log, ...]

    @property
    def gas_cost_wei(self) -> int:
        return self.gas_used * self.effective_gas_price

    @classmethod
    def from_rpc(cls, obj: Any) -> TxReceipt:
        if not isinstance(obj, dict):
            raise MalformedError(f"receipt: expected an object, got {type(obj).__name__}")
        try:
            logs = obj.get("logs", [])
            if not isinstance(logs, list):
                raise MalformedError("receipt: logs is not a list")
            return cls(
                tx_hash=norm_hash(obj["transactionHash"], "transactionHash"),
                status=hex_to_int(obj["status"], "status"),
                block_number=hex_to_int(obj["blockNumber"], "blockNumber"),
                gas_used=hex_to_int(obj["gasUsed"], "gasUsed"),
                effective_gas_price=hex_to_int(obj["effectiveGasPrice"], "effectiveGasPrice"),
                logs=tuple(Log.from_rpc(item) for item in logs),
            )
        except KeyError as missing:
            raise MalformedError(f"receipt: missing field {missing.args[0]!r}") from None


@dataclass(frozen=True, slots=True)
class BlockTxs:
    """A block's number, its tx hashes in order, and who built it (the builder's extra-data tag
    when it is printable text, else the fee recipient)."""

    number: int
    tx_hashes: tuple[str, ...]
    builder: str | None = None


def builder_of(block: Mapping[str, Any]) -> str | None:
    """A block's builder as builders sign their blocks: the extra data when it is text (e.g.
    "Titan (titanbuilder.xyz)"), else the fee recipient."""
    extra = block.get("extraData")
    if isinstance(extra, str):
        try:
            text = bytes.fromhex(extra.removeprefix("0x")).decode()
        except (ValueError, UnicodeDecodeError):
            text = ""
        if text and text.isprintable():
            return text[:64]
    miner = block.get("miner")
    return miner.lower() if isinstance(miner, str) else None


@dataclass(frozen=True, slots=True)
class Settled:
    bundle_hash: str
    target_block: int
    settlement: Settlement


@dataclass(frozen=True, slots=True)
class TrackReport:
    """What one call settled, and the target blocks left pending because they were not visible."""

    settled: tuple[Settled, ...]
    deferred_blocks: tuple[int, ...]
    public_settled: tuple[tuple[str, PublicTxStatus], ...] = ()


def _executor_events() -> tuple[Event, Event]:
    abi = load_artifact("Executor").abi
    return abi.event("ArbitrageExecuted"), abi.event("LiquidationExecuted")


def in_bundle_order(block_txs: Sequence[str], bundle_txs: Sequence[str]) -> bool:
    """True when ``bundle_txs`` appear in ``block_txs`` contiguously and in order."""
    if not bundle_txs or bundle_txs[0] not in block_txs:
        return False
    start = block_txs.index(bundle_txs[0])
    return tuple(block_txs[start : start + len(bundle_txs)]) == tuple(bundle_txs)


class InclusionTracker:
    """Settles the ledger's pending bundles as blocks arrive."""

    def __init__(
        self,
        ledger: Ledger,
        executor: str,
        weth: str,
        *,
        retry_delay: float = DEFAULT_RETRY_DELAY_S,
        max_defer_blocks: int = DEFAULT_MAX_DEFER_BLOCKS,
    ) -> None:
        self.ledger = ledger
        self.executor = executor.lower()
        self.weth = weth.lower()
        self.retry_delay = retry_delay
        self.max_defer_blocks = max_defer_blocks
        self._arbitrage, self._liquidation = _executor_events()

    # --- pure part: given a block and receipts ----------------------------------------------------

    def booked(self, receipt: TxReceipt, pending: PendingBundle) -> tuple[int, int]:
        """(the Executor events' profit in wei, the coinbase tips they paid) of ``receipt``."""
        gain = paid = 0
        if receipt.status == 1:
            for log in receipt.logs:
                if log.address != self.executor:
                    continue
                if log.topic0 == self._arbitrage.topic0:
                    values = self._arbitrage.decode(log)
                    token = values["tokenIn"]
                elif log.topic0 == self._liquidation.topic0:
                    values = self._liquidation.decode(log)
                    token = values["profitToken"]
                else:
                    continue
                gain += self._to_wei(token.lower(), values["profit"], pending)
                paid += values["coinbasePaid"]
        return gain, paid

    def _to_wei(self, token: str, amount: int, pending: PendingBundle) -> int:
        if token == self.weth:
            return amount
        if token != pending.profit_token or pending.expected_profit <= 0:
            return 0  # no price for it: count nothing rather than guess
        return amount * pending.expected_profit_wei // pending.expected_profit

    def judge(
        self, block: BlockTxs, pending: PendingBundle, receipt: TxReceipt | None
    ) -> Settlement | None:
        """The verdict for ``pending`` at ``block`` (``receipt``: of our tx, if in the block);
        None when our tx is in the block but its receipt is not available yet."""
        if pending.our_tx_hash not in block.tx_hashes:
            victims = pending.tx_hashes[:-1]
            landed = any(v in block.tx_hashes for v in victims) if victims else None
            where = f"block {block.number} built by {block.builder or 'an unknown builder'}"
            detail = f"victim landed without us in {where}" if landed else f"not in {where}"
            return Settlement(
                OutcomeStatus.MISSED, detail=detail, lost_to=block.builder, victim_landed=landed
            )
        if receipt is None:
            return None
        gain, coinbase_paid = self.booked(receipt, pending)
        profit = gain - coinbase_paid - receipt.gas_cost_wei
        if receipt.status != 1:
            status, detail = OutcomeStatus.FAILED, "reverted"
        elif in_bundle_order(block.tx_hashes, pending.tx_hashes):
            status, detail = OutcomeStatus.LANDED, None
        else:
            status, detail = OutcomeStatus.UNBUNDLED, "included outside bundle order"
        return Settlement(
            status,
            block.number,
            receipt.gas_used,
            profit,
            detail,
            gas_cost_wei=receipt.gas_cost_wei,
            coinbase_paid_wei=coinbase_paid,
        )

    def settle_block(
        self,
        block: BlockTxs,
        pending: Sequence[PendingBundle],
        receipts: Mapping[str, TxReceipt],
    ) -> list[Settled]:
        """Write the verdict of every bundle in ``pending`` that targeted ``block``."""
        settled = []
        for bundle in pending:
            if bundle.target_block != block.number:
                continue
            verdict = self.judge(block, bundle, receipts.get(bundle.our_tx_hash))
            if verdict is None:
                continue
            if self.ledger.settle(bundle.bundle_hash, bundle.target_block, verdict):
                settled.append(Settled(bundle.bundle_hash, bundle.target_block, verdict))
            if verdict.included_block is not None:
                settled += self._supersede(bundle.our_tx_hash, block.number)
        return settled

    def _supersede(self, our_tx_hash: str, included_block: int) -> list[Settled]:
        superseded = Settlement(
            OutcomeStatus.SUPERSEDED, included_block, detail=f"included in block {included_block}"
        )
        settled = []
        for bundle_hash, target in self.ledger.pending_for_tx(our_tx_hash):
            if target > included_block and self.ledger.settle(bundle_hash, target, superseded):
                settled.append(Settled(bundle_hash, target, superseded))
        return settled

    # --- I/O part ---------------------------------------------------------------------------------

    async def on_block(self, rpc: Rpc, number: int) -> TrackReport:
        """Settle every pending bundle targeting block ``number`` or earlier, and the pending
        public txs found in block ``number``."""
        pending = self.ledger.pending_bundles(number)
        public = {tx.hash for tx in self.ledger.pending_public_txs()}
        targets = {bundle.target_block for bundle in pending}
        if public:
            targets.add(number)
        settled: list[Settled] = []
        deferred: list[int] = []
        public_settled: list[tuple[str, PublicTxStatus]] = []
        for target in sorted(targets):
            block = await self.fetch_block(rpc, target)
            if block is None:
                if number - target < self.max_defer_blocks:
                    deferred.append(target)
                    continue
                # Long past and still not served: stop waiting for it.
                block = BlockTxs(target, ())
            ours = {b.our_tx_hash for b in pending if b.target_block == target}
            if target == number:
                ours |= public
            receipts = await self.fetch_receipts(rpc, [h for h in ours if h in block.tx_hashes])
            settled += self.settle_block(block, pending, receipts)
            for tx_hash in public & receipts.keys():
                mined = receipts[tx_hash].status == 1
                status = PublicTxStatus.MINED if mined else PublicTxStatus.FAILED
                self.ledger.update_public_tx(tx_hash, status, block.number)
                public_settled.append((tx_hash, status))
        return TrackReport(tuple(settled), tuple(deferred), tuple(public_settled))

    async def fetch_block(self, rpc: Rpc, number: int) -> BlockTxs | None:
        """The block's tx hashes, asking twice if the first answer looks incomplete."""
        for attempt in range(2):
            block = await self._get_block(rpc, number)
            if block is not None:
                return block
            if attempt == 0:
                await asyncio.sleep(self.retry_delay)
        return None

    async def _get_block(self, rpc: Rpc, number: int) -> BlockTxs | None:
        try:
            result = await rpc.call(
                "eth_getBlockByNumber", (hex(number), False), timeout=RPC_TIMEOUT_S
            )
        except ChainError:
            return None
        if not isinstance(result, dict):
            return None
        try:
            txs = result.get("transactions")
            if not isinstance(txs, list):
                return None
            if not txs and hex_to_int(result.get("gasUsed", "0x0"), "gasUsed") > 0:
                return None  # a header whose txs are not served yet
            hashes = tuple(norm_hash(h, "transaction") for h in txs)
            return BlockTxs(number, hashes, builder_of(result))
        except MalformedError:
            return None

    async def fetch_receipts(self, rpc: Rpc, tx_hashes: Sequence[str]) -> dict[str, TxReceipt]:
        if not tx_hashes:
            return {}
        answers = await rpc.batch(
            [("eth_getTransactionReceipt", (h,)) for h in tx_hashes], timeout=RPC_TIMEOUT_S
        )
        receipts = {}
        for tx_hash, answer in zip(tx_hashes, answers, strict=True):
            if isinstance(answer, Exception) or answer is None:
                continue  # not served yet: the bundle stays pending
            try:
                receipts[tx_hash] = TxReceipt.from_rpc(answer)
            except MalformedError:
                continue
        return receipts
