"""Public keeper transactions: send, watch by nonce, replace with a fee bump, cancel, recover.

The pattern every mature keeper shares (pymaker, Chainlink's transaction manager): simulate the
call first (``eth_estimateGas``; a revert refuses the send and takes no nonce), sign an EIP-1559
tx with ``maxFee = base fee x multiplier + tip`` (never above the fee cap), and on each block
check the receipts of every hash sent for the nonce. A tx not mined within ``bump_after_blocks``
is replaced at the same nonce with both ``maxFeePerGas`` and ``maxPriorityFeePerGas`` raised by at
least 12.5% (geth wants 10% on both, parity/pymaker 12.5%); a node answering "underpriced" or
"fee too low" gets another bump at once, a few times per block at most. A stale action (its
``stale_after_block`` passed, or :meth:`TxSender.cancel`) is cancelled: a 0-value self-transfer
at the same nonce with bumped fees. Nonces come from the :class:`~execution.nonces.NonceManager`
shared with the bundle pipeline.

Every signed tx is written to the ledger *before* it is broadcast, so after a crash
:meth:`TxSender.recover` reconciles the ledger with the chain: mined txs are marked, txs still
in the node's pool are adopted (tracked and bumped again), nonces with nothing behind them are
filled with a cancellation so that no later nonce stays stuck, and the keys of txs that never
reached a node are reported as dropped (their action may be taken again).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from chain.errors import ChainError, RpcError
from chain.rpc import Rpc
from chain.types import BlockHeader, MalformedError, SignedTx, hex_to_bytes, hex_to_int
from execution.ledger import Ledger, PublicTxStatus
from execution.nonces import NonceManager
from execution.signer import LocalSigner

BPS = 10_000
TRANSFER_GAS = 21_000
MIN_REPLACEMENT_BUMP_BPS = 1_250
_RETRY_WITH_MORE_FEE = ("underpriced", "fee too low", "less than block base fee", "feecap")
_ALREADY_KNOWN = ("already known", "known transaction", "already imported")


class SendRefused(RuntimeError):
    """The tx was not sent (the call reverts in simulation, fees above the cap...)."""


def bump(fee: int, bump_bps: int) -> int:
    """``fee`` raised by ``bump_bps`` (rounded up), and by at least 1 wei."""
    return max(fee + 1, -(-fee * (BPS + bump_bps) // BPS))


@dataclass(frozen=True, slots=True)
class FeePolicy:
    """How keeper txs pay: ``maxFee = base_fee * base_fee_multiplier + tip``, capped."""

    priority_fee_wei: int
    max_fee_cap_wei: int
    base_fee_multiplier: int = 2
    bump_after_blocks: int = 3
    bump_bps: int = MIN_REPLACEMENT_BUMP_BPS
    gas_margin_bps: int = 2_500
    max_resends_per_block: int = 4

    def __post_init__(self) -> None:
        if self.bump_bps < MIN_REPLACEMENT_BUMP_BPS:
            raise ValueError("nodes refuse replacements bumped by less than 12.5% (1250 bps)")
        if self.priority_fee_wei > self.max_fee_cap_wei:
            raise ValueError("the priority fee exceeds the fee cap")

    def initial_fees(self, base_fee: int) -> tuple[int, int]:
        """(max fee, tip) for a first send on top of a block with ``base_fee``."""
        wanted = base_fee * self.base_fee_multiplier + self.priority_fee_wei
        max_fee = min(wanted, self.max_fee_cap_wei)
        if max_fee <= base_fee:
            raise SendRefused(f"fee cap {self.max_fee_cap_wei} does not exceed the base fee")
        return max_fee, min(self.priority_fee_wei, max_fee)

    def bumped_fees(self, max_fee: int, tip: int) -> tuple[int, int] | None:
        """The replacement's (max fee, tip); None when the cap forbids a valid replacement."""
        new_max, new_tip = bump(max_fee, self.bump_bps), bump(tip, self.bump_bps)
        if new_max > self.max_fee_cap_wei or new_tip > new_max:
            return None
        return new_max, new_tip


@dataclass(frozen=True, slots=True)
class TxRequest:
    """One keeper action as a call; ``gas`` None estimates it (and refuses a reverting call)."""

    key: str
    to: str
    data: bytes = b""
    value: int = 0
    gas: int | None = None
    stale_after_block: int | None = None


@dataclass(frozen=True, slots=True)
class Payload:
    to: str
    data: bytes
    value: int
    gas: int


@dataclass(frozen=True, slots=True)
class TrackedTx:
    """A nonce in flight. ``payload`` None means only a cancellation may be sent for it (a gap,
    or a tx adopted after a restart whose content the node no longer shows)."""

    key: str
    nonce: int
    payload: Payload | None
    max_fee_per_gas: int
    max_priority_fee_per_gas: int
    hash: str | None
    hashes: tuple[str, ...]
    sent_block: int
    cancelling: bool = False
    stale_after_block: int | None = None
    capped: bool = False


class TxEventKind(enum.StrEnum):
    SENT = "sent"
    REPLACED = "replaced"
    CANCEL_SENT = "cancel_sent"
    MINED = "mined"
    FAILED = "failed"  # mined but reverted
    CANCELLED = "cancelled"  # the cancellation was mined
    DROPPED = "dropped"  # the nonce was used by a tx we do not know, or never reached a node
    CAPPED = "capped"  # a bump would exceed the fee cap: waiting at the current fees


@dataclass(frozen=True, slots=True)
class TxEvent:
    kind: TxEventKind
    key: str
    nonce: int
    tx_hash: str | None
    block: int | None = None
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Recovery:
    """What :meth:`TxSender.recover` found: keys adopted (still pending on the node), keys mined
    meanwhile, keys whose tx never reached a node (safe to act on again), gaps filled."""

    adopted: tuple[str, ...]
    mined: tuple[str, ...]
    dropped: tuple[str, ...]
    gaps_filled: tuple[int, ...]


class TxSender:
    """Public transactions of one account (the nonce manager's)."""

    def __init__(
        self,
        rpc: Rpc,
        signer: LocalSigner,
        nonces: NonceManager,
        ledger: Ledger,
        *,
        chain_id: int,
        policy: FeePolicy,
        timeout: float = 5.0,
    ) -> None:
        if nonces.address != signer.address:
            raise ValueError("the nonce manager belongs to another account than the signer")
        self.rpc = rpc
        self.signer = signer
        self.nonces = nonces
        self.ledger = ledger
        self.chain_id = chain_id
        self.policy = policy
        self.timeout = timeout
        self.address = signer.address
        self._tracked: dict[str, TrackedTx] = {}
        self._base_fee = 0
        self._block = 0

    # -- queries ---------------------------------------------------------------------------

    @property
    def tracked(self) -> tuple[TrackedTx, ...]:
        return tuple(sorted(self._tracked.values(), key=lambda t: t.nonce))

    def pending(self, key: str) -> TrackedTx | None:
        return self._tracked.get(key)

    # -- sending ---------------------------------------------------------------------------

    async def send(self, request: TxRequest, *, block: int, base_fee: int) -> TrackedTx:
        """Sign and broadcast ``request`` on top of ``block`` (whose base fee is ``base_fee``);
        a key already in flight returns the tracked tx unchanged."""
        known = self._tracked.get(request.key)
        if known is not None:
            return known
        self._block, self._base_fee = max(self._block, block), base_fee
        gas = request.gas if request.gas is not None else await self._estimate(request)
        max_fee, tip = self.policy.initial_fees(base_fee)
        nonce = await self.nonces.reserve(block, None, request.key)
        tracked = TrackedTx(
            key=request.key,
            nonce=nonce,
            payload=Payload(request.to.lower(), request.data, request.value, gas),
            max_fee_per_gas=max_fee,
            max_priority_fee_per_gas=tip,
            hash=None,
            hashes=(),
            sent_block=block,
            stale_after_block=request.stale_after_block,
        )
        self._tracked[request.key] = tracked
        try:
            return await self._broadcast(tracked, tracked.payload, max_fee, tip, block)
        except ChainError:
            await self._abandon(tracked)
            raise

    async def cancel(self, key: str) -> TrackedTx | None:
        """Replace the tx of ``key`` by a 0-value self-transfer (the action went stale)."""
        tracked = self._tracked.get(key)
        if tracked is None or tracked.cancelling:
            return tracked
        fees = self.policy.bumped_fees(tracked.max_fee_per_gas, tracked.max_priority_fee_per_gas)
        if fees is None:
            self._tracked[key] = replace(tracked, cancelling=True, capped=True)
            return self._tracked[key]
        return await self._broadcast(
            replace(tracked, cancelling=True), self._cancel_payload(), *fees, self._block
        )

    async def _estimate(self, request: TxRequest) -> int:
        call = {
            "from": self.address,
            "to": request.to,
            "data": "0x" + request.data.hex(),
            "value": hex(request.value),
        }
        try:
            answer = await self.rpc.call("eth_estimateGas", (call,), timeout=self.timeout)
        except RpcError as error:
            raise SendRefused(f"{request.key}: the call would fail: {error.message}") from None
        estimate = hex_to_int(answer, "eth_estimateGas")
        return estimate + -(-estimate * self.policy.gas_margin_bps // BPS)

    def _cancel_payload(self) -> Payload:
        return Payload(self.address, b"", 0, TRANSFER_GAS)

    def _sign(self, nonce: int, payload: Payload, max_fee: int, tip: int) -> SignedTx:
        return self.signer.sign_eip1559(
            chain_id=self.chain_id,
            nonce=nonce,
            to=payload.to,
            data=payload.data,
            value=payload.value,
            gas=payload.gas,
            max_fee_per_gas=max_fee,
            max_priority_fee_per_gas=tip,
        )

    async def _broadcast(
        self, tracked: TrackedTx, payload: Payload, max_fee: int, tip: int, block: int
    ) -> TrackedTx:
        """Sign at ``tracked.nonce`` and broadcast, bumping again while the node asks for more
        fee; the ledger has each signed tx before the node does."""
        for _ in range(self.policy.max_resends_per_block):
            signed = self._sign(tracked.nonce, payload, max_fee, tip)
            self.ledger.record_public_tx(
                tx_hash=signed.hash,
                key=tracked.key,
                sender=self.address,
                nonce=tracked.nonce,
                max_fee_per_gas=max_fee,
                max_priority_fee_per_gas=tip,
                replaces=tracked.hash,
            )
            previous = tracked.hash
            tracked = replace(
                tracked,
                max_fee_per_gas=max_fee,
                max_priority_fee_per_gas=tip,
                hash=signed.hash,
                hashes=(*tracked.hashes, signed.hash),
                sent_block=block,
                capped=False,
            )
            self._tracked[tracked.key] = tracked
            try:
                await self.rpc.call(
                    "eth_sendRawTransaction", (signed.raw_hex,), timeout=self.timeout
                )
                return tracked
            except RpcError as error:
                message = error.message.lower()
                if any(text in message for text in _ALREADY_KNOWN):
                    return tracked
                # The node refused this one: it stays in the ledger as dropped, the previous
                # one (if any) is what is still out there.
                self.ledger.update_public_tx(signed.hash, PublicTxStatus.DROPPED)
                if previous is not None:
                    self.ledger.update_public_tx(previous, PublicTxStatus.PENDING)
                tracked = replace(tracked, hash=previous, hashes=tracked.hashes[:-1])
                self._tracked[tracked.key] = tracked
                if not any(text in message for text in _RETRY_WITH_MORE_FEE):
                    raise
                fees = self.policy.bumped_fees(max_fee, tip)
                if fees is None:
                    self._tracked[tracked.key] = replace(tracked, capped=True)
                    return self._tracked[tracked.key]
                max_fee, tip = fees
        return tracked

    async def _abandon(self, tracked: TrackedTx) -> None:
        """A first send that no node took: give its nonce back, or fill it with a cancellation
        when later nonces are already reserved (releasing would renumber txs already out)."""
        state = await self.nonces.state()
        if state.reserved and state.reserved[-1].nonce == tracked.nonce:
            del self._tracked[tracked.key]
            await self.nonces.release(tracked.nonce)
            return
        gap = replace(tracked, payload=None, key=f"gap:{tracked.nonce}", hash=None, hashes=())
        del self._tracked[tracked.key]
        self._tracked[gap.key] = gap
        max_fee, tip = self.policy.initial_fees(self._base_fee)
        await self._broadcast(
            replace(gap, cancelling=True), self._cancel_payload(), max_fee, tip, self._block
        )

    # -- every block -----------------------------------------------------------------------

    async def on_block(self, header: BlockHeader) -> list[TxEvent]:
        """Settle mined txs, bump the slow ones, cancel the stale ones."""
        self._block, self._base_fee = header.number, header.base_fee
        tracked = self.tracked
        hashes = [h for t in tracked for h in t.hashes]
        answers = await self.rpc.batch(
            [
                ("eth_getTransactionCount", (self.address, hex(header.number))),
                *(("eth_getTransactionReceipt", (h,)) for h in hashes),
            ],
            timeout=self.timeout,
        )
        for answer in answers:
            if isinstance(answer, Exception):
                raise answer
        chain_nonce = hex_to_int(answers[0], "eth_getTransactionCount")
        receipts = dict(zip(hashes, answers[1:], strict=True))
        await self.nonces.on_block(header.number, chain_nonce)
        events: list[TxEvent] = []
        for item in tracked:
            events.extend(await self._advance(item, receipts, chain_nonce, header.number))
        return events

    async def _advance(
        self, item: TrackedTx, receipts: dict[str, Any], chain_nonce: int, number: int
    ) -> list[TxEvent]:
        for tx_hash in item.hashes:
            receipt = receipts.get(tx_hash)
            if isinstance(receipt, dict):
                return [self._settle(item, tx_hash, receipt)]
        if chain_nonce > item.nonce:
            del self._tracked[item.key]
            if item.hash is not None:
                self.ledger.update_public_tx(item.hash, PublicTxStatus.DROPPED)
            detail = "the nonce was used by a transaction this sender did not record"
            return [TxEvent(TxEventKind.DROPPED, item.key, item.nonce, item.hash, number, detail)]
        stale = item.stale_after_block is not None and number > item.stale_after_block
        if (stale or item.payload is None) and not item.cancelling:
            updated = await self._replace(item, cancel=True, number=number)
            return [self._sent_event(updated, item, number)]
        if number - item.sent_block >= self.policy.bump_after_blocks and not item.capped:
            updated = await self._replace(item, cancel=item.cancelling, number=number)
            return [self._sent_event(updated, item, number)]
        return []

    async def _replace(self, item: TrackedTx, *, cancel: bool, number: int) -> TrackedTx:
        fees = self.policy.bumped_fees(item.max_fee_per_gas, item.max_priority_fee_per_gas)
        if item.hash is None:  # nothing of ours at this nonce reached a node yet
            fees = max(fees or (0, 0), self.policy.initial_fees(self._base_fee))
        if fees is None:
            self._tracked[item.key] = replace(
                item, capped=True, cancelling=item.cancelling or cancel
            )
            return self._tracked[item.key]
        payload = self._cancel_payload() if cancel or item.payload is None else item.payload
        return await self._broadcast(replace(item, cancelling=cancel), payload, *fees, number)

    @staticmethod
    def _sent_event(updated: TrackedTx, before: TrackedTx, number: int) -> TxEvent:
        if updated.capped:
            kind = TxEventKind.CAPPED
        elif updated.cancelling and not before.cancelling:
            kind = TxEventKind.CANCEL_SENT
        else:
            kind = TxEventKind.REPLACED
        detail = f"max fee {updated.max_fee_per_gas}, tip {updated.max_priority_fee_per_gas}"
        return TxEvent(kind, updated.key, updated.nonce, updated.hash, number, detail)

    def _settle(self, item: TrackedTx, tx_hash: str, receipt: dict[str, Any]) -> TxEvent:
        del self._tracked[item.key]
        block = hex_to_int(receipt.get("blockNumber", "0x0"), "blockNumber")
        success = receipt.get("status") == "0x1"
        cancelled = item.cancelling and tx_hash == item.hash
        self.ledger.update_public_tx(
            tx_hash, PublicTxStatus.MINED if success else PublicTxStatus.FAILED, block
        )
        if cancelled:
            kind = TxEventKind.CANCELLED
        else:
            kind = TxEventKind.MINED if success else TxEventKind.FAILED
        return TxEvent(kind, item.key, item.nonce, tx_hash, block)

    # -- restart ---------------------------------------------------------------------------

    async def recover(self) -> Recovery:
        """Reconcile the ledger's pending txs of this account with the chain (see the module
        docstring); call once at start, before any :meth:`send`."""
        sync = await self.nonces.sync(self.rpc)
        chain_nonce, block = sync.chain_nonce, sync.block
        header = await self.rpc.call(
            "eth_getBlockByNumber", ("latest", False), timeout=self.timeout
        )
        self._block = block
        self._base_fee = hex_to_int(header.get("baseFeePerGas", "0x0"), "baseFeePerGas")
        latest: dict[int, Any] = {}
        for row in self.ledger.pending_public_txs():
            if row.sender == self.address:
                if row.nonce in latest:  # an older send at the same nonce: superseded
                    self.ledger.update_public_tx(latest[row.nonce].hash, PublicTxStatus.REPLACED)
                latest[row.nonce] = row
        rows = sorted(latest.values(), key=lambda r: r.nonce)
        answers = await self.rpc.batch(
            [
                ("eth_getTransactionCount", (self.address, "pending")),
                *(("eth_getTransactionReceipt", (r.hash,)) for r in rows),
                *(("eth_getTransactionByHash", (r.hash,)) for r in rows),
            ],
            timeout=self.timeout,
        )
        for answer in answers:
            if isinstance(answer, Exception):
                raise answer
        pool_nonce = hex_to_int(answers[0], "eth_getTransactionCount")
        receipts, found = answers[1 : 1 + len(rows)], answers[1 + len(rows) :]
        adopted: list[TrackedTx] = []
        mined: list[str] = []
        dropped: list[str] = []
        for row, receipt, tx in zip(rows, receipts, found, strict=True):
            if isinstance(receipt, dict):
                success = receipt.get("status") == "0x1"
                status = PublicTxStatus.MINED if success else PublicTxStatus.FAILED
                number = hex_to_int(receipt.get("blockNumber", "0x0"), "blockNumber")
                self.ledger.update_public_tx(row.hash, status, number)
                mined.append(row.key)
            elif row.nonce < chain_nonce:
                # Another tx took the nonce (an earlier send of ours, or not ours): whether the
                # action happened is unknown, so it is not reported as safe to retry.
                self.ledger.update_public_tx(row.hash, PublicTxStatus.DROPPED)
            elif tx is None and row.nonce >= pool_nonce:
                self.ledger.update_public_tx(row.hash, PublicTxStatus.DROPPED)
                dropped.append(row.key)
            else:
                adopted.append(
                    TrackedTx(
                        key=row.key,
                        nonce=row.nonce,
                        payload=_payload_of(tx),
                        max_fee_per_gas=row.max_fee_per_gas,
                        max_priority_fee_per_gas=row.max_priority_fee_per_gas,
                        hash=row.hash,
                        hashes=(row.hash,),
                        sent_block=block,
                    )
                )
        gaps = await self._adopt(adopted, block)
        return Recovery(tuple(t.key for t in adopted), tuple(mined), tuple(dropped), gaps)

    async def _adopt(self, adopted: Sequence[TrackedTx], block: int) -> tuple[int, ...]:
        """Reserve the adopted nonces in order, filling any hole below them with a cancellation
        so that the adopted txs can land."""
        gaps: list[int] = []
        for item in adopted:
            state = await self.nonces.state()
            next_nonce = (state.chain_nonce or 0) + len(state.reserved)
            for nonce in range(next_nonce, item.nonce):
                gap_key = f"gap:{nonce}"
                await self.nonces.reserve(block, None, gap_key)
                gap = TrackedTx(gap_key, nonce, None, 0, 0, None, (), block, cancelling=True)
                self._tracked[gap_key] = gap
                max_fee, tip = self.policy.initial_fees(self._base_fee)
                await self._broadcast(gap, self._cancel_payload(), max_fee, tip, block)
                gaps.append(nonce)
            await self.nonces.reserve(block, None, item.key)
            self._tracked[item.key] = item
        return tuple(gaps)


def _payload_of(tx: Any) -> Payload | None:
    """The call a pending tx makes, from the node's answer; None if the answer does not parse."""
    if not isinstance(tx, dict) or tx.get("to") is None:
        return None
    try:
        return Payload(
            to=str(tx["to"]).lower(),
            data=hex_to_bytes(tx.get("input", "0x"), "input"),
            value=hex_to_int(tx.get("value", "0x0"), "value"),
            gas=hex_to_int(tx["gas"], "gas"),
        )
    except (KeyError, MalformedError):
        return None
