"""The devnet's block builder: each block holds the best non-conflicting bundles, then public txs.

The devnet anvil runs with ``--order fifo`` and no automine, so a block holds the pool's txs in
the order they were sent. Per block the builder

1. simulates the bundles the relay holds for the next block (``eth_simulateV1`` on the head, the
   block's coinbase, number, timestamp and base fee; a balance reader between txs gives each
   tx's exact coinbase payment), best standalone payment first, each on top of the ones already
   chosen; a bundle is rejected when one of its txs reverts (unless listed in
   ``revertingTxHashes``), shares a tx hash or a sender+nonce with a chosen bundle, pays the
   coinbase nothing, is refused by the node (nonce, fee, balance), misses its timestamp window
   or does not fit in the block;
2. when a bundle was chosen, reads the pool (``txpool_content``, put in the order the node
   announced the txs; envelopes are rebuilt from the tx objects and checked against their
   hashes), then in one batch drops exactly those txs and re-sends the chosen bundles' txs in
   order followed by the public txs, then checks that the pool's next block starts with the
   bundles (a tx sent meanwhile would be ahead: then it does it again);
3. mines with ``evm_mine`` at a chosen timestamp and checks the block: every chosen bundle whole,
   contiguous, in order, and not reverting where it may not. Anything else is an anomaly, counted.

The pool is never emptied blindly: anvil runs a batch's calls concurrently and other clients'
txs arrive all the time, so a drop-all loses whatever came in after the read. Dropping a tx still
drops the same sender's later txs, so a tx sent between the read and the drop can go with it;
every public tx the builder has read or the node has announced is remembered until mined, and
one the node no longer knows is sent again right after each re-send and before each block
(counted in ``restored``).

A bundle with ``refundPercent`` (and no ``delayedRefund``) is paid back in its own block: the fee
recipient signs a transfer of ``percent`` of what the refund tx paid the coinbase, less the
payout's worst-case gas (:data:`PAYOUT_GAS` at the base fee), to ``refundRecipient`` and puts it
right after the bundle, where the block check holds it like a bundle tx. A refund that would not
cover that gas leaves the bundle out (``negative_payout``). This is how MEV-Share refunds are paid
(mev-share ``specs/bundles/refund-recipient.md``: "passed back to the user ... at the end of the
bundle"; flashbots/builder ``miner/env_changes.go`` ``commitSBundle``: ``commitPayoutTx`` from the
coinbase key, less ``core.SbundlePayoutMaxCost`` (30,000 gas) times the base fee).

Results per block go to a bounded history; counters cover blocks, bundles received, included and
rejected by reason, and anomalies. Each report also says, per landed eth_sendBundle bundle, what
each of its txs paid the coinbase and the best payment of a bundle it displaced; the
``after_block`` hook (the devnet's refund desk, :mod:`anvil.refunds`) gets every report.

The builder also answers the relay's ``eth_callBundle`` with the documented fields, simulated
with its own coinbase so ``coinbaseDiff`` is what the block would pay. Bundle simulation reuses
:mod:`simulation.prepared` (decoding signed envelopes) and the call/reader helpers of
:mod:`simulation.fork_v1` and :mod:`simulation.balances`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter, OrderedDict, deque
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

from eth_account import Account
from eth_utils import keccak

from anvil.relay import (
    CUSTOM_ERROR,
    METHOD_NOT_FOUND,
    BookEntry,
    BundleBook,
    CallBundleRequest,
    ReceivedBundle,
    ReceivedMevBundle,
    SimMevBundleRequest,
)
from anvil.relay import RpcError as RelayRpcError
from chain.envelope import signed_envelope
from chain.errors import ChainError, RpcError
from chain.rpc import Rpc, connect, eth_get_block
from chain.types import (
    BlockHeader,
    MalformedError,
    PendingTx,
    hex_to_bytes,
    hex_to_int,
    norm_address,
)
from execution.dialects import RefundTerms
from execution.signer import LocalSigner
from simulation.balances import BalanceQuery, balance_query
from simulation.fork_v1 import call_object, parse_call, reader_call, reader_overrides
from simulation.prepared import PreparedTx, decode_signed
from simulation.simulator import BlockEnv, SimulationError, TxOutcome, next_base_fee

log = logging.getLogger(__name__)

# The devnet blocks' fee recipient: an account nobody else uses, so its balance change in a
# block is exactly what the block paid (priority fees plus direct transfers) less the refunds it
# paid in the block. Its key signs those refunds, as a real builder's fee recipient does.
DEVNET_COINBASE_KEY = "0x" + keccak(b"mevbot devnet builder fee recipient").hex()
DEVNET_COINBASE = Account.from_key(DEVNET_COINBASE_KEY).address.lower()
# flashbots/builder core.SbundlePayoutMaxCost: the payout's gas limit, and what comes off a refund.
PAYOUT_GAS = 30_000
# The fee recipient's float: a payout enters the pool before the block pays the coinbase.
COINBASE_FLOAT = 1_000 * 10**18

# Rejection reasons (the keys of ``BuilderStats.bundles_rejected``).
REVERTED = "reverted"
CONFLICT = "conflict"
NO_PAYMENT = "no_payment"
INVALID = "invalid"
TIMESTAMP = "timestamp"
TARGET_MISSING = "backrun_target_missing"
BLOCK_FULL = "block_full"
NEGATIVE_PAYOUT = "negative_payout"
REORDER_FAILED = "reorder_failed"

# Anomaly kinds (the keys of ``BuilderStats.anomalies``).
NOT_CONTIGUOUS = "not_contiguous"
MISSING = "missing"
REVERTED_IN_BLOCK = "reverted_in_block"
REFUSED_BY_POOL = "refused_by_pool"
LOST_FROM_POOL = "lost_from_pool"
ORPHAN_DROPPED = "orphan_dropped"
_REMEMBERED_MAX = 50_000

_ALREADY_KNOWN = ("already imported", "already known", "known transaction")
_REORDER_ATTEMPTS = 3
_EXPECTED_FAILURES = (ChainError, SimulationError, MalformedError, OSError)


# --- values -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TxRun:
    """One simulated tx: the decoded tx, what happened, and what it paid the coinbase."""

    tx: PreparedTx
    outcome: TxOutcome
    coinbase_diff: int
    gas_fees: int

    @property
    def tx_hash(self) -> str:
        return self.tx.hash or ""


@dataclass(frozen=True, slots=True)
class Rejection:
    """A bundle left out of a block: ``reason`` is one of the reason constants, ``detail`` says
    which tx and why."""

    bundle_hash: str
    reason: str
    detail: str


@dataclass(frozen=True, slots=True)
class RefundPayout:
    """A refund the fee recipient paid inside the block, right after its bundle (wei)."""

    tx_hash: str
    recipient: str
    amount: int


@dataclass(frozen=True, slots=True)
class LandedBundle:
    """An eth_sendBundle bundle that landed, and what it paid. ``tx_payments`` are each tx's
    priority fees plus coinbase transfers (wei); ``displaced`` is the best payment of a bundle
    left out because it conflicted with this one (the next-best bid for the same state);
    ``private`` says whether it held a tx the public pool never saw; ``payout`` is the refund
    paid in the block behind it (its ``refund`` terms without ``delayed``)."""

    bundle_hash: str
    block_number: int
    searcher: str
    tx_hashes: tuple[str, ...]
    tx_payments: tuple[int, ...]
    displaced: int
    private: bool
    refund: RefundTerms | None
    payout: RefundPayout | None = None

    @property
    def payment(self) -> int:
        return sum(self.tx_payments)


@dataclass(frozen=True, slots=True)
class BlockReport:
    """What one build produced. ``included`` are bundle hashes in block order; ``coinbase_payment``
    is the coinbase's balance gain over the block (wei), net of the refunds it paid in it."""

    number: int
    block_hash: str
    timestamp: int
    included: tuple[str, ...]
    rejected: tuple[Rejection, ...]
    public_txs: int
    tx_count: int
    coinbase_payment: int
    anomalies: tuple[str, ...]
    build_seconds: float
    landed: tuple[LandedBundle, ...] = ()


@dataclass(frozen=True, slots=True)
class BuilderStats:
    """A point-in-time copy of the builder's counters."""

    blocks_built: int
    build_errors: int
    bundles_received: int
    bundles_included: int
    bundles_rejected: Mapping[str, int]
    anomalies: Mapping[str, int]
    public_txs_mined: int
    restored: int
    last_block: int | None

    @property
    def interleaving_anomalies(self) -> int:
        """Bundles that did not land whole, contiguous and in order."""
        return self.anomalies.get(NOT_CONTIGUOUS, 0) + self.anomalies.get(MISSING, 0)


@dataclass(frozen=True, slots=True)
class _PoolTx:
    hash: str
    sender: str
    nonce: int
    raw: bytes


@dataclass(frozen=True, slots=True)
class _Candidate:
    """A bundle as the builder sees it: its raw txs in order and the rules they must keep."""

    bundle_hash: str
    raws: tuple[bytes, ...]
    hashes: tuple[str, ...]
    keys: tuple[tuple[str, int], ...]
    may_revert: frozenset[str]
    min_timestamp: int | None
    max_timestamp: int | None
    searcher: str | None = None  # the eth_sendBundle signer (gas-fee refunds go there)
    refund: RefundTerms | None = None


@dataclass(slots=True)
class _Choice:
    candidate: _Candidate
    payment: int
    gas_used: int
    tx_payments: tuple[int, ...]
    refund_wei: int = 0  # owed in the block (refundPercent without delayedRefund)
    payout: RefundPayout | None = None
    payout_raw: bytes = b""

    def placed(self, payer: str, nonce: int) -> _Candidate:
        """The candidate as it goes into the block: its payout right behind it."""
        if self.payout is None:
            return self.candidate
        c = self.candidate
        return replace(
            c,
            raws=(*c.raws, self.payout_raw),
            hashes=(*c.hashes, self.payout.tx_hash),
            keys=(*c.keys, (payer, nonce)),
        )


@dataclass(slots=True)
class _Counters:
    blocks_built: int = 0
    build_errors: int = 0
    bundles_received: int = 0
    bundles_included: int = 0
    public_txs_mined: int = 0
    restored: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    anomalies: Counter[str] = field(default_factory=Counter)


def refund_share(terms: RefundTerms, tx_hashes: Sequence[str], tx_payments: Sequence[int]) -> int:
    """``terms.percent`` of what the refund tx (the last one unless named) paid the coinbase."""
    index = tx_hashes.index(terms.tx_hash) if terms.tx_hash in tx_hashes else -1
    return tx_payments[index] * terms.percent // 100


# --- bundle simulation over eth_simulateV1 --------------------------------------------------------


def _tip(tx: PreparedTx, base_fee: int) -> int:
    return max(tx.effective_gas_price(base_fee) - base_fee, 0)


def _check_admissible(txs: Sequence[PreparedTx], next_nonce: dict[str, int], base_fee: int) -> None:
    """What a block would refuse before running a tx: a nonce out of sequence, a low fee cap."""
    for tx in txs:
        expected = next_nonce[tx.sender]
        if tx.nonce is not None and tx.nonce != expected:
            problem = "too high" if tx.nonce > expected else "too low"
            raise SimulationError(
                f"nonce {problem}: address {tx.sender}, tx: {tx.nonce} state: {expected}; "
                f"txhash {tx.hash}"
            )
        next_nonce[tx.sender] = expected + 1
        if tx.max_fee < base_fee:
            raise SimulationError(
                f"max fee per gas less than block base fee: address {tx.sender}, "
                f"maxFeePerGas: {tx.max_fee} baseFee: {base_fee}; txhash {tx.hash}"
            )


def _simulate_request(
    txs: Sequence[PreparedTx], env: BlockEnv, query: BalanceQuery, state: str
) -> list[Any]:
    """One block: the coinbase reader before the first tx and after every tx."""
    reader = reader_call(query, env)
    calls: list[dict[str, Any]] = [reader]
    for tx in txs:
        calls += [call_object(tx), reader]
    block = {
        "blockOverrides": {
            "number": hex(env.number),
            "time": hex(env.timestamp),
            "baseFeePerGas": hex(env.base_fee),
            "feeRecipient": env.coinbase,
            "gasLimit": hex(env.gas_limit),
        },
        "stateOverrides": reader_overrides(),
        "calls": calls,
    }
    return [{"blockStateCalls": [block], "validation": True}, state]


async def simulate_raw_txs(
    rpc: Rpc,
    raws: Sequence[bytes],
    env: BlockEnv,
    *,
    state_block: int | str = "latest",
    timeout: float | None = None,
) -> list[TxRun]:
    """Run signed txs in order as block ``env`` on ``state_block``; each one's outcome, gas and
    exact coinbase payment. A tx that cannot be decoded, whose nonce is not its sender's next one
    at that point, or whose fee cap is below the base fee raises :class:`SimulationError` (anvil's
    ``eth_simulateV1`` checks none of these, even with ``validation: true``)."""
    try:
        txs = [decode_signed(bytes(raw)) for raw in raws]
    except MalformedError as error:
        raise SimulationError(error.reason) from None
    query = balance_query((), (), env.coinbase)
    state = hex(state_block) if isinstance(state_block, int) else state_block
    senders = list(dict.fromkeys(tx.sender for tx in txs))
    *nonces, blocks = await rpc.batch(
        [
            *(("eth_getTransactionCount", [sender, state]) for sender in senders),
            ("eth_simulateV1", _simulate_request(txs, env, query, state)),
        ],
        timeout=timeout,
    )
    for answer in (*nonces, blocks):
        if isinstance(answer, RpcError):
            raise SimulationError(answer.message)
    try:
        next_nonce = {
            sender: hex_to_int(answer, "nonce")
            for sender, answer in zip(senders, nonces, strict=True)
        }
    except MalformedError as error:
        raise SimulationError(error.reason) from None
    _check_admissible(txs, next_nonce, env.base_fee)
    try:
        if not isinstance(blocks, list) or len(blocks) != 1 or not isinstance(blocks[0], dict):
            raise MalformedError("expected one simulated block")
        calls = blocks[0].get("calls")
        if not isinstance(calls, list) or len(calls) != 2 * len(txs) + 1:
            raise MalformedError(f"expected {2 * len(txs) + 1} call results")
        outcomes = [parse_call(call) for call in calls]
    except MalformedError as error:
        raise SimulationError(f"eth_simulateV1: malformed answer: {error.reason}") from None
    readings = outcomes[0::2]
    if not all(reading.success for reading in readings):
        raise SimulationError("coinbase balance reader failed")
    balances = [query.decode(reading.return_data)[-1] for reading in readings]
    return [
        TxRun(
            tx=tx,
            outcome=outcome,
            coinbase_diff=balances[index + 1] - balances[index],
            gas_fees=outcome.gas_used * _tip(tx, env.base_fee),
        )
        for index, (tx, outcome) in enumerate(zip(txs, outcomes[1::2], strict=True))
    ]


def call_bundle_result(runs: Sequence[TxRun], bundle_hash: str, state_block: int) -> dict[str, Any]:
    """The documented eth_callBundle result: wei amounts as decimal strings, gas and block
    numbers as JSON numbers."""
    results = []
    for run in runs:
        gas_used = run.outcome.gas_used
        entry: dict[str, Any] = {
            "txHash": run.tx_hash,
            "gasUsed": gas_used,
            "gasPrice": str(run.coinbase_diff // gas_used if gas_used else 0),
            "gasFees": str(run.gas_fees),
            "coinbaseDiff": str(run.coinbase_diff),
            "ethSentToCoinbase": str(run.coinbase_diff - run.gas_fees),
            "fromAddress": run.tx.sender,
            "toAddress": run.tx.to or "0x",
        }
        if run.outcome.success:
            entry["value"] = "0x" + run.outcome.return_data.hex()
        else:
            entry["error"] = "execution reverted"
            entry["revert"] = run.outcome.revert_reason
        results.append(entry)
    total_gas = sum(run.outcome.gas_used for run in runs)
    coinbase_diff = sum(run.coinbase_diff for run in runs)
    gas_fees = sum(run.gas_fees for run in runs)
    return {
        "bundleGasPrice": str(coinbase_diff // total_gas if total_gas else 0),
        "bundleHash": bundle_hash,
        "coinbaseDiff": str(coinbase_diff),
        "ethSentToCoinbase": str(coinbase_diff - gas_fees),
        "gasFees": str(gas_fees),
        "results": results,
        "stateBlockNumber": state_block,
        "totalGasUsed": total_gas,
    }


# --- book entries -> candidates -----------------------------------------------------------------


def _tx_hash(raw: bytes) -> str:
    return "0x" + keccak(raw).hex()


def _mev_can_revert(params: Mapping[str, Any]) -> set[str]:
    """Hashes of the txs a (validated) mev_sendBundle body marks ``canRevert``."""
    hashes: set[str] = set()
    for element in params.get("body", ()):
        if "tx" in element and element.get("canRevert"):
            hashes.add(_tx_hash(hex_to_bytes(element["tx"], "tx")))
        elif "bundle" in element:
            hashes |= _mev_can_revert(element["bundle"])
    return hashes


def _candidate(entry: BookEntry, backrun_raw: bytes | None) -> _Candidate:
    if isinstance(entry, ReceivedBundle):
        txs = entry.bundle.txs
        return _Candidate(
            bundle_hash=entry.bundle_hash,
            raws=tuple(tx.raw for tx in txs),
            hashes=tuple(tx.hash for tx in txs),
            keys=tuple((tx.sender, tx.nonce) for tx in txs),
            may_revert=frozenset(entry.bundle.reverting_tx_hashes),
            min_timestamp=entry.bundle.min_timestamp or None,
            max_timestamp=entry.bundle.max_timestamp or None,
            searcher=entry.searcher,
            refund=entry.submission.refund,
        )
    raws = tuple(tx.raw for tx in entry.txs)
    hashes = tuple(tx.hash for tx in entry.txs)
    keys = tuple((tx.sender, tx.nonce) for tx in entry.txs)
    if backrun_raw is not None:
        victim = decode_signed(backrun_raw)
        raws = (backrun_raw, *raws)
        hashes = (_tx_hash(backrun_raw), *hashes)
        keys = ((victim.sender, int(victim.nonce or 0)), *keys)
    return _Candidate(
        bundle_hash=entry.bundle_hash,
        raws=raws,
        hashes=hashes,
        keys=keys,
        may_revert=frozenset(_mev_can_revert(entry.params)),
        min_timestamp=None,
        max_timestamp=None,
    )


# --- the builder --------------------------------------------------------------------------------


class Builder:
    """Builds the devnet's blocks from ``book`` (the relay's bundles) and the node's public pool.

    ``rpc`` talks to the devnet anvil (``--order fifo``, automine off). Call :meth:`start` once
    (it sets the coinbase), then either :meth:`build_block` per block or :meth:`run` /
    :meth:`start_loop` to build one every ``block_time`` seconds; :meth:`stop` ends the loop after
    the block in progress.
    """

    def __init__(
        self,
        rpc: Rpc,
        book: BundleBook,
        *,
        coinbase_key: str = DEVNET_COINBASE_KEY,
        block_time: float = 1.0,
        history: int = 256,
        sim_timeout: float = 5.0,
        pool_feed: str | None = None,
        after_block: Callable[[BlockReport], Awaitable[None]] | None = None,
    ) -> None:
        self.rpc = rpc
        self.after_block = after_block
        self.pool_feed = pool_feed
        self.book = book
        self._payer = LocalSigner(coinbase_key)
        self.coinbase = norm_address(self._payer.address, "coinbase")
        self._chain_id = 0
        self.block_time = block_time
        self.sim_timeout = sim_timeout
        self.history: deque[BlockReport] = deque(maxlen=history)
        self._counters = _Counters()
        self._lock = asyncio.Lock()
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        # Every public tx read from the pool or announced on ``pool_feed`` (hash -> envelope),
        # until mined: what the node forgets (dropped along with a tx we moved, or a re-send
        # that never arrived) is sent again before each block.
        self._public: OrderedDict[str, _PoolTx] = OrderedDict()
        # Bundle txs that were never public, put in the pool by us: they land with their bundle
        # or not at all, so they are never remembered as public nor sent again.
        self._bundle_only: OrderedDict[str, None] = OrderedDict()
        self._feed_task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        chain_id, balance, _ = await self.rpc.batch(
            [
                ("eth_chainId", []),
                ("eth_getBalance", [self.coinbase, "latest"]),
                ("anvil_setCoinbase", [self.coinbase]),
            ]
        )
        self._chain_id = hex_to_int(_ok(chain_id))
        if hex_to_int(_ok(balance)) < COINBASE_FLOAT:
            await self.rpc.call("anvil_setBalance", [self.coinbase, hex(COINBASE_FLOAT)])
        if self.pool_feed is not None:
            self._feed_task = asyncio.create_task(self._follow_pool(self.pool_feed))

    async def _follow_pool(self, url: str) -> None:
        """Remember every public tx the node announces, reconnecting as needed."""
        while True:
            try:
                async with connect(url) as feed:
                    async for obj in await feed.subscribe("newPendingTransactions", True):
                        with contextlib.suppress(MalformedError):
                            self._remember(_pool_tx(obj))
            except ChainError:
                await asyncio.sleep(0.2)

    def _remember(self, tx: _PoolTx) -> None:
        if tx.hash not in self._bundle_only and tx.hash not in self._public:
            _put_bounded(self._public, tx.hash, tx)

    def remembers(self, tx_hash: str) -> bool:
        """Whether ``tx_hash`` is a public tx this builder would send again if the node lost it."""
        return tx_hash in self._public

    async def _restore_lost(self) -> None:
        """Re-send remembered public txs the node no longer knows; forget the ones it mined."""
        hashes = list(self._public)
        if not hashes:
            return
        answers = await self.rpc.batch([("eth_getTransactionByHash", [h]) for h in hashes])
        lost: list[str] = []
        for tx_hash, answer in zip(hashes, answers, strict=True):
            if isinstance(answer, dict) and answer.get("blockNumber"):
                self._public.pop(tx_hash, None)
            elif answer is None:
                lost.append(tx_hash)
        if not lost:
            return
        # Still remembered once taken back: it may be dropped along with an earlier tx of its
        # sender again before it is mined. Refused, it was superseded (mined or replaced at its
        # nonce) and is not retried.
        outcomes = await self._resend([], [self._public[h].raw for h in lost])
        restored = 0
        for tx_hash, outcome in zip(lost, outcomes, strict=True):
            if _refused(outcome):
                self._public.pop(tx_hash, None)
            restored += not isinstance(outcome, RpcError)
        self._counters.restored += restored
        log.debug("devnet builder: %d public txs the node forgot were sent again", restored)

    def stats(self) -> BuilderStats:
        counters = self._counters
        return BuilderStats(
            blocks_built=counters.blocks_built,
            build_errors=counters.build_errors,
            bundles_received=counters.bundles_received,
            bundles_included=counters.bundles_included,
            bundles_rejected=MappingProxyType(dict(counters.rejected)),
            anomalies=MappingProxyType(dict(counters.anomalies)),
            public_txs_mined=counters.public_txs_mined,
            restored=counters.restored,
            last_block=self.history[-1].number if self.history else None,
        )

    # -- relay hooks --

    async def on_bundle(self, entry: BookEntry) -> None:
        """The relay's ``on_bundle`` hook: the bundle is in the book; count it."""
        self._counters.bundles_received += 1

    async def call_bundle(self, request: CallBundleRequest | SimMevBundleRequest) -> Any:
        """The relay's ``simulator``: eth_callBundle with this builder's coinbase."""
        if isinstance(request, SimMevBundleRequest):
            raise RelayRpcError(METHOD_NOT_FOUND, "mev_simBundle is not offered by the devnet")
        header = await eth_get_block(self.rpc, request.state_block)
        if header is None:
            raise RelayRpcError(CUSTOM_ERROR, f"unknown state block {request.state_block}")
        env = BlockEnv(
            number=request.block_number,
            timestamp=(
                request.timestamp
                if request.timestamp is not None
                else header.timestamp + max(1, round(self.block_time))
            ),
            base_fee=next_base_fee(header),
            coinbase=self.coinbase,
            gas_limit=header.gas_limit,
        )
        try:
            runs = await simulate_raw_txs(
                self.rpc,
                [tx.raw for tx in request.txs],
                env,
                state_block=header.number,
                timeout=self.sim_timeout,
            )
        except SimulationError as error:
            raise RelayRpcError(CUSTOM_ERROR, f"err: {error.reason}") from None
        return call_bundle_result(runs, request.bundle_hash, header.number)

    # -- the loop --

    def start_loop(self) -> asyncio.Task[None]:
        """Run :meth:`run` in a task (stopped by :meth:`stop`)."""
        if self._task is None or self._task.done():
            self._stopping.clear()
            self._task = asyncio.create_task(self.run(), name="devnet-builder")
        return self._task

    async def run(self) -> None:
        """Build a block every ``block_time`` seconds until :meth:`stop`; a failed block is
        logged and counted and the next one is built as usual."""
        next_at = time.monotonic()
        while not self._stopping.is_set():
            try:
                await self.build_block()
            except Exception as error:
                self._counters.build_errors += 1
                unexpected = not isinstance(error, _EXPECTED_FAILURES)
                log.warning("devnet builder: block failed: %s", error, exc_info=unexpected)
            next_at = max(next_at + self.block_time, time.monotonic())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), next_at - time.monotonic())

    async def stop(self) -> None:
        """Let the block in progress finish (never leave the pool half re-sent), then end."""
        self._stopping.set()
        if self._task is not None:
            await self._task
            self._task = None
        if self._feed_task is not None:
            self._feed_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._feed_task
            self._feed_task = None

    # -- one block --

    async def build_block(self) -> BlockReport:
        async with self._lock:
            return await self._build()

    async def _build(self) -> BlockReport:
        started = time.monotonic()
        await self._restore_lost()
        head_raw, coinbase_before = await self.rpc.batch(
            [
                ("eth_getBlockByNumber", ["latest", False]),
                ("eth_getBalance", [self.coinbase, "latest"]),
            ]
        )
        head = BlockHeader.from_rpc(_ok(head_raw))
        env = BlockEnv(
            number=head.number + 1,
            timestamp=max(head.timestamp + 1, int(time.time())),
            base_fee=next_base_fee(head),
            coinbase=self.coinbase,
            gas_limit=head.gas_limit,
        )
        chosen, rejected, displaced = await self._choose(env)
        bundle_order = await self._placed_with_payouts(chosen, env)
        anomalies, ordered, bundle_only = await self._reorder_pool(bundle_order)
        if not ordered:
            rejected += [
                Rejection(c.bundle_hash, REORDER_FAILED, "could not put the bundle first in time")
                for c in bundle_order
            ]
            bundle_order = []
        await self.rpc.call("evm_mine", [env.timestamp])
        anomalies += await self._drop_orphans(bundle_only)
        report = await self._check_block(
            env, bundle_order, rejected, anomalies, hex_to_int(_ok(coinbase_before)), started
        )
        report = replace(report, landed=_landed(chosen, report, displaced, bundle_only))
        self.book.prune_below(env.number + 1)
        self._record(report)
        if self.after_block is not None:
            try:
                await self.after_block(report)
            except Exception as error:
                self._counters.build_errors += 1
                log.warning("devnet builder: after block %d: %s", report.number, error)
        return report

    async def _choose(self, env: BlockEnv) -> tuple[list[_Choice], list[Rejection], dict[str, int]]:
        """Greedy: best standalone payment first, each re-simulated on top of those chosen.
        Also, per chosen bundle, the best payment of a bundle it displaced (a conflict)."""
        rejected: list[Rejection] = []
        standalone: list[tuple[_Choice, int]] = []
        for order, entry in enumerate(self.book.for_block(env.number)):
            candidate_or_rejection = await self._candidate_of(entry)
            if isinstance(candidate_or_rejection, Rejection):
                rejected.append(candidate_or_rejection)
                continue
            verdict = await self._try(candidate_or_rejection, [], env)
            if isinstance(verdict, Rejection):
                rejected.append(verdict)
            else:
                standalone.append((verdict, order))
        standalone.sort(key=lambda item: (-item[0].payment, item[1]))
        chosen: list[_Choice] = []
        displaced: dict[str, int] = {}
        for first_try, _ in standalone:
            candidate = first_try.candidate
            conflict = _conflict(candidate, chosen)
            if conflict is not None:
                winner, why = conflict
                rejected.append(Rejection(candidate.bundle_hash, CONFLICT, why))
                best = displaced.get(winner.candidate.bundle_hash, 0)
                displaced[winner.candidate.bundle_hash] = max(best, first_try.payment)
                continue
            verdict = await self._try(candidate, chosen, env) if chosen else first_try
            if isinstance(verdict, Rejection):
                rejected.append(verdict)
            else:
                chosen.append(verdict)
        return chosen, rejected, displaced

    async def _candidate_of(self, entry: BookEntry) -> _Candidate | Rejection:
        backrun_raw = None
        if isinstance(entry, ReceivedMevBundle) and entry.backrun_of is not None:
            found = await self.rpc.call("eth_getRawTransactionByHash", [entry.backrun_of])
            if not isinstance(found, str):
                return Rejection(
                    entry.bundle_hash, TARGET_MISSING, f"{entry.backrun_of} is not pending"
                )
            backrun_raw = hex_to_bytes(found, "raw tx")
        try:
            return _candidate(entry, backrun_raw)
        except MalformedError as error:
            return Rejection(entry.bundle_hash, INVALID, error.reason)

    async def _try(
        self, candidate: _Candidate, chosen: Sequence[_Choice], env: BlockEnv
    ) -> _Choice | Rejection:
        """Simulate ``candidate`` after the chosen bundles; its payment or why it is out."""
        bundle_hash = candidate.bundle_hash
        if (candidate.min_timestamp and env.timestamp < candidate.min_timestamp) or (
            candidate.max_timestamp and env.timestamp > candidate.max_timestamp
        ):
            return Rejection(bundle_hash, TIMESTAMP, f"block timestamp {env.timestamp}")
        prefix = [raw for choice in chosen for raw in choice.candidate.raws]
        try:
            runs = await simulate_raw_txs(
                self.rpc, [*prefix, *candidate.raws], env, timeout=self.sim_timeout
            )
        except SimulationError as error:
            return Rejection(bundle_hash, INVALID, error.reason)
        own = runs[len(prefix) :]
        for run in own:
            if not run.outcome.success and run.tx_hash not in candidate.may_revert:
                detail = f"{run.tx_hash}: {run.outcome.revert_reason}"
                return Rejection(bundle_hash, REVERTED, detail)
        payment = sum(run.coinbase_diff for run in own)
        if payment <= 0:
            return Rejection(bundle_hash, NO_PAYMENT, f"pays the coinbase {payment} wei")
        tx_payments = tuple(run.coinbase_diff for run in own)
        terms = candidate.refund
        refund_wei = 0
        if terms is not None and terms.percent > 0 and not terms.delayed:
            refund_wei = refund_share(terms, candidate.hashes, tx_payments)
            refund_wei -= PAYOUT_GAS * env.base_fee
            if refund_wei <= 0:
                return Rejection(bundle_hash, NEGATIVE_PAYOUT, f"refund {refund_wei} wei")
        gas_used = sum(run.outcome.gas_used for run in own)
        payout_gas = PAYOUT_GAS if refund_wei else 0
        if sum(c.gas_used for c in chosen) + gas_used + payout_gas > env.gas_limit:
            return Rejection(bundle_hash, BLOCK_FULL, f"needs {gas_used} gas")
        return _Choice(candidate, payment, gas_used + payout_gas, tx_payments, refund_wei)

    async def _placed_with_payouts(
        self, chosen: Sequence[_Choice], env: BlockEnv
    ) -> list[_Candidate]:
        """Sign each owed refund from the fee recipient; the bundles as they go into the block."""
        if not any(choice.refund_wei for choice in chosen):
            return [choice.candidate for choice in chosen]
        nonce = hex_to_int(
            _ok(await self.rpc.call("eth_getTransactionCount", [self.coinbase, "latest"]))
        )
        placed: list[_Candidate] = []
        for choice in chosen:
            terms = choice.candidate.refund
            if choice.refund_wei and terms is not None:
                signed = self._payer.sign_eip1559(
                    chain_id=self._chain_id,
                    nonce=nonce,
                    to=terms.recipient,
                    data=b"",
                    value=choice.refund_wei,
                    gas=PAYOUT_GAS,
                    max_fee_per_gas=env.base_fee,
                    max_priority_fee_per_gas=0,
                )
                choice.payout = RefundPayout(signed.hash, terms.recipient, choice.refund_wei)
                choice.payout_raw = signed.raw
            placed.append(choice.placed(self.coinbase, nonce))
            nonce += choice.payout is not None
        return placed

    async def _read_pool(self) -> list[_PoolTx]:
        """The pool's txs, remembered as public unless ours, in the order the node announced
        them (its fifo order; each sender's by nonce)."""
        content = _ok(await self.rpc.call("txpool_content", []))
        txs: dict[str, _PoolTx] = {}
        for obj in _txpool_objects(content):
            try:
                tx = _pool_tx(obj)
            except MalformedError as error:
                self._counters.anomalies[LOST_FROM_POOL] += 1
                log.warning("devnet builder: cannot re-send a pool tx: %s", error.reason)
                continue
            txs[tx.hash] = tx
            self._remember(tx)
        # The pending block would give the fifo order too, but building it runs every tx.
        rank = {tx_hash: i for i, tx_hash in enumerate(self._public)}
        return sorted(txs.values(), key=lambda tx: (rank.get(tx.hash, len(rank)), tx.nonce))

    async def _resend(self, drop: Sequence[str], send: Sequence[bytes]) -> list[Any]:
        """Drop exactly ``drop`` and send ``send`` in order, in one batch; the send outcomes.
        Anvil starts a batch's calls in order but runs them concurrently: the drops normally
        come first, and a tx re-sent before its drop ran is gone after it, so the caller
        restores what the node forgot right after."""
        answers = await self.rpc.batch(
            [("anvil_dropTransaction", [tx_hash]) for tx_hash in drop]
            + [("eth_sendRawTransaction", ["0x" + raw.hex()]) for raw in send]
        )
        return answers[len(drop) :]

    async def _reorder_pool(
        self, bundles: Sequence[_Candidate]
    ) -> tuple[list[str], bool, set[str]]:
        """Put the bundles' txs first in the pool, the public txs behind them; redo if a tx sent
        meanwhile got ahead of a bundle tx. Returns the pool's refusals, whether the bundles
        stand first, and the bundle txs that were never public. When the bundles never stand
        first, those are taken out again: a bundle lands whole or not at all.
        Without bundles the fifo pool already holds the public txs in arrival order."""
        if not bundles:
            return [], True, set()
        order = [(h, raw) for c in bundles for h, raw in zip(c.hashes, c.raws, strict=True)]
        expected = [h for h, _ in order]
        bundle_hashes = set(expected)
        bundle_keys = {k for c in bundles for k in c.keys}
        bundle_only: set[str] = set()
        anomalies: list[str] = []
        for attempt in range(_REORDER_ATTEMPTS):
            pool = await self._read_pool()
            if attempt == 0:
                bundle_only = {h for h in bundle_hashes if h not in self._public}
                for tx_hash in bundle_only:
                    _put_bounded(self._bundle_only, tx_hash, None)
            # Behind the bundles: the pool as read, then public txs announced since (dropping an
            # earlier tx of their sender would take them along, so they are moved too). A public
            # tx with a bundle tx's sender and nonce is replaced by it (and remembered: if the
            # bundle misses, it is sent again).
            moved = {tx.hash: tx for tx in pool}
            moved.update((h, tx) for h, tx in self._public.items() if h not in moved)
            behind = [
                (tx.hash, tx.raw)
                for tx in moved.values()
                if tx.hash not in bundle_hashes and (tx.sender, tx.nonce) not in bundle_keys
            ]
            outcomes = await self._resend(list(moved), [raw for _, raw in order + behind])
            answers = dict(zip([h for h, _ in order + behind], outcomes, strict=True))
            # A remembered tx the pool refuses that was not in it was superseded (replaced at
            # its nonce, say): forgotten, not an anomaly. "Already known" is no refusal: its
            # drop may have run after its re-send, so it stays remembered and is restored.
            read = {tx.hash for tx in pool}
            for tx_hash, answer in answers.items():
                if tx_hash not in read and _refused(answer):
                    self._public.pop(tx_hash, None)
            anomalies = _refusals(
                (h, a) for h, a in answers.items() if h in read or h in bundle_hashes
            )
            # A tx sent just before the drops, after an earlier one of its sender, went with it:
            # sent again at once, so its sender is not held up for a block.
            await self._restore_lost()
            if await self._bundles_first(expected):
                return anomalies, True, bundle_only
        if bundle_only:
            await self.rpc.batch([("anvil_dropTransaction", [h]) for h in sorted(bundle_only)])
        return anomalies, False, bundle_only

    async def _drop_orphans(self, bundle_only: set[str]) -> list[str]:
        """A bundle's own tx still pending after the block would land later, alone: drop it."""
        if not bundle_only:
            return []
        pending = await self.rpc.batch(
            [("eth_getTransactionReceipt", [tx_hash]) for tx_hash in sorted(bundle_only)]
        )
        orphans = [h for h, r in zip(sorted(bundle_only), pending, strict=True) if r is None]
        if orphans:
            await self.rpc.batch([("anvil_dropTransaction", [tx_hash]) for tx_hash in orphans])
        return [f"{ORPHAN_DROPPED}: {tx_hash}" for tx_hash in orphans]

    async def _bundles_first(self, expected: Sequence[str]) -> bool:
        """Whether the pool's next block starts with exactly the bundles' txs, in order."""
        pending = _ok(await self.rpc.call("eth_getBlockByNumber", ["pending", False]))
        order = [str(h).lower() for h in (pending or {}).get("transactions", [])]
        return order[: len(expected)] == list(expected)

    async def _check_block(
        self,
        env: BlockEnv,
        bundles: Sequence[_Candidate],
        rejected: Sequence[Rejection],
        anomalies: list[str],
        coinbase_before: int,
        started: float,
    ) -> BlockReport:
        """Read the mined block and check every chosen bundle landed whole and in order."""
        block_raw, coinbase_after = await self.rpc.batch(
            [
                ("eth_getBlockByNumber", [hex(env.number), False]),
                ("eth_getBalance", [self.coinbase, hex(env.number)]),
            ]
        )
        block = _ok(block_raw)
        if not isinstance(block, dict) or hex_to_int(block.get("number")) != env.number:
            raise MalformedError(f"block {env.number} was not mined")
        tx_hashes = [str(h).lower() for h in block.get("transactions", [])]
        position = {tx_hash: index for index, tx_hash in enumerate(tx_hashes)}
        included: list[str] = []
        for candidate in bundles:
            places = [position.get(h) for h in candidate.hashes]
            if any(place is None for place in places):
                anomalies.append(f"{MISSING}: bundle {candidate.bundle_hash}")
                continue
            first = places[0] or 0
            if places != list(range(first, first + len(places))):
                anomalies.append(f"{NOT_CONTIGUOUS}: bundle {candidate.bundle_hash} at {places}")
            included.append(candidate.bundle_hash)
        anomalies += await self._reverted_in_block(bundles, position)
        bundle_hashes = {h for c in bundles for h in c.hashes}
        return BlockReport(
            number=env.number,
            block_hash=str(block.get("hash", "")),
            timestamp=hex_to_int(block.get("timestamp"), "timestamp"),
            included=tuple(included),
            rejected=tuple(rejected),
            public_txs=sum(1 for tx_hash in tx_hashes if tx_hash not in bundle_hashes),
            tx_count=len(tx_hashes),
            coinbase_payment=hex_to_int(_ok(coinbase_after)) - coinbase_before,
            anomalies=tuple(anomalies),
            build_seconds=time.monotonic() - started,
        )

    async def _reverted_in_block(
        self, bundles: Sequence[_Candidate], position: Mapping[str, int]
    ) -> list[str]:
        checked = [(c, h) for c in bundles for h in c.hashes if h in position]
        if not checked:
            return []
        receipts = await self.rpc.batch(
            [("eth_getTransactionReceipt", [tx_hash]) for _, tx_hash in checked]
        )
        return [
            f"{REVERTED_IN_BLOCK}: {tx_hash} of bundle {candidate.bundle_hash}"
            for (candidate, tx_hash), receipt in zip(checked, receipts, strict=True)
            if isinstance(receipt, dict)
            and hex_to_int(receipt.get("status", "0x1")) == 0
            and tx_hash not in candidate.may_revert
        ]

    def _record(self, report: BlockReport) -> None:
        counters = self._counters
        counters.blocks_built += 1
        counters.bundles_included += len(report.included)
        counters.public_txs_mined += report.public_txs
        counters.rejected.update(rejection.reason for rejection in report.rejected)
        counters.anomalies.update(anomaly.split(":", 1)[0] for anomaly in report.anomalies)
        self.history.append(report)
        for anomaly in report.anomalies:
            log.warning("devnet builder: block %d: %s", report.number, anomaly)
        log.debug(
            "devnet builder: block %d: %d bundles, %d rejected, %d public txs, %d wei",
            report.number,
            len(report.included),
            len(report.rejected),
            report.public_txs,
            report.coinbase_payment,
        )


def _landed(
    chosen: Sequence[_Choice],
    report: BlockReport,
    displaced: Mapping[str, int],
    bundle_only: set[str],
) -> tuple[LandedBundle, ...]:
    """The chosen eth_sendBundle bundles that are in the block."""
    return tuple(
        LandedBundle(
            bundle_hash=c.candidate.bundle_hash,
            block_number=report.number,
            searcher=c.candidate.searcher,
            tx_hashes=c.candidate.hashes,
            tx_payments=c.tx_payments,
            displaced=displaced.get(c.candidate.bundle_hash, 0),
            private=any(h in bundle_only for h in c.candidate.hashes),
            refund=c.candidate.refund,
            payout=c.payout,
        )
        for c in chosen
        if c.candidate.searcher is not None and c.candidate.bundle_hash in report.included
    )


def _put_bounded(remembered: OrderedDict[str, Any], key: str, value: Any) -> None:
    """Remember ``key``; past _REMEMBERED_MAX entries the oldest is forgotten."""
    remembered[key] = value
    if len(remembered) > _REMEMBERED_MAX:
        remembered.popitem(last=False)


def _refused(answer: Any) -> bool:
    """Whether an ``eth_sendRawTransaction`` answer is a refusal (not "already known")."""
    return isinstance(answer, RpcError) and not any(
        known in answer.message.lower() for known in _ALREADY_KNOWN
    )


def _refusals(outcomes: Iterable[tuple[str, Any]]) -> list[str]:
    """The pool's refusals among (tx hash, eth_sendRawTransaction answer) pairs, as anomalies."""
    return [
        f"{REFUSED_BY_POOL}: {tx_hash}: {outcome.message}"
        for tx_hash, outcome in outcomes
        if _refused(outcome)
    ]


def _txpool_objects(content: Any) -> list[dict[str, Any]]:
    """The tx objects of a ``txpool_content`` answer, each sender's by nonce (what is not an
    object is left out; a bad nonce fails when the tx is parsed)."""
    objects: list[dict[str, Any]] = []
    sections = content if isinstance(content, dict) else {}
    for section in ("pending", "queued"):
        senders = sections.get(section)
        for by_nonce in senders.values() if isinstance(senders, dict) else ():
            if isinstance(by_nonce, dict):
                txs = [o for o in by_nonce.values() if isinstance(o, dict)]
                objects += sorted(txs, key=_nonce_or_zero)
    return objects


def _nonce_or_zero(obj: dict[str, Any]) -> int:
    try:
        return hex_to_int(obj.get("nonce"))
    except MalformedError:
        return 0


def _ok(answer: Any) -> Any:
    """A batch item's result, or its error raised."""
    if isinstance(answer, RpcError):
        raise answer
    return answer


def _pool_tx(obj: Any) -> _PoolTx:
    """A pool tx and its signed envelope, rebuilt from the node's JSON (types 0, 1 and 2) and
    checked against its hash."""
    tx = PendingTx.from_rpc(obj)
    raw = signed_envelope(tx)
    if raw is None:
        raise MalformedError(f"pool tx {tx.hash} (type {tx.type}): its envelope cannot be rebuilt")
    return _PoolTx(hash=tx.hash, sender=tx.sender, nonce=tx.nonce, raw=raw)


def _conflict(candidate: _Candidate, chosen: Iterable[_Choice]) -> tuple[_Choice, str] | None:
    """The chosen bundle ``candidate`` collides with and why (None if it can join them)."""
    for choice in chosen:
        other = choice.candidate
        shared = set(candidate.hashes) & set(other.hashes)
        if shared:
            return choice, f"tx {min(shared)} already in bundle {other.bundle_hash}"
        reused = set(candidate.keys) & set(other.keys)
        if reused:
            sender, nonce = min(reused)
            return choice, f"{sender} nonce {nonce} already used by bundle {other.bundle_hash}"
    return None
