"""The submitter: candidate -> verdict (bid, sign, simulate the exact bundle, check, send, ledger).

It is the executor of the collectors -> strategies -> executors pattern. For each candidate it
checks the idempotency key in the ledger (and, with several instances, claims it in the shared
store), prices a bid, signs the executor call, simulates the *exact signed bundle*, drops it
(counted, with the reason) when it reverts, runs out of gas or its simulated net profit is below
the minimum, and otherwise sends it to every relay for the next ``target_blocks`` blocks.

Gas: a bid is priced with the gas learned for the action's shape *in its context* (behind a
victim, the victim has already written the pools' price accumulators of the block; as the first
to touch them the same action costs ~25% more), and the tx is signed with a generous limit (the
learned figure times a margin, or a wide bound before anything was learned): a limit costs
nothing unless used, and running out of gas on the fork would lose a real opportunity. A
simulation that did run out is reported as ``out_of_gas``, never as a revert, and teaches the
book to sign the next one of that shape with more.

Bundles use the executor key's chain nonce at the last head: competing candidates for a block
share it, so at most one of them can land. Every stage is timed from the moment the triggering
event came off the wire.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from chain.types import BlockHeader
from execution.bids import BidPolicy, Rejected
from execution.bundler import BundleBuildError, BundlePlan, build_bundles
from execution.executor_calls import executor_call
from execution.inclusion import InclusionTracker
from execution.ledger import Ledger
from execution.relay import MultiRelay
from execution.signer import LocalSigner
from mevbot import events
from mevbot.counters import UNKNOWN_STRATEGY, Counts
from mevbot.latency import LatencyBook
from mevbot.status import OpportunityRow
from simulation.actions import GasShape
from simulation.candidates import Candidate
from simulation.simulator import ETH, SimResult, SimulationError, Simulator, next_base_fee

log = logging.getLogger("mevbot.submitter")

# Before anything is learned for a shape and context, sign with room to spare.
UNMEASURED_GAS_LIMIT = 800_000
# Signed limit over the learned gas: state moves between simulation and inclusion, and the
# same shape costs more as the first toucher of its pools than behind a victim.
LIMIT_MARGIN_BPS = 5_000
LIMIT_MARGIN_MIN = 40_000
# A failed tx that burnt at least this share of its limit ran out of gas (the 63/64 rule
# leaves the outer frame a sliver to revert with after an inner call ran dry).
OUT_OF_GAS_SHARE = 0.95


@dataclass(frozen=True, slots=True)
class GasContext:
    """What makes gas differ between actions of one shape: the shape, and whether txs before
    ours in the bundle (a victim) touch pools first."""

    shape: GasShape
    behind_victim: bool

    @classmethod
    def of(cls, candidate: Candidate) -> GasContext:
        return cls(candidate.action.gas_shape, bool(candidate.backrun))


class GasBook:
    """Gas used, learned per :class:`GasContext` from simulations."""

    def __init__(self) -> None:
        self._used: dict[GasContext, int] = {}

    def price_gas(self, candidate: Candidate) -> int:
        """Gas to price the bid with: the learned figure, else the action's own guess."""
        return self._used.get(GasContext.of(candidate), candidate.action.gas_guess)

    def limit(self, candidate: Candidate) -> int:
        """The gas limit to sign with."""
        used = self._used.get(GasContext.of(candidate))
        if used is None:
            return UNMEASURED_GAS_LIMIT
        return used + max(-(-used * LIMIT_MARGIN_BPS // 10_000), LIMIT_MARGIN_MIN)

    def learn(self, candidate: Candidate, gas_used: int) -> None:
        self._used[GasContext.of(candidate)] = gas_used

    def ran_out(self, candidate: Candidate, limit: int) -> None:
        """A simulation ran out at ``limit``: the next one of this context signs with twice it."""
        self._used[GasContext.of(candidate)] = max(
            self._used.get(GasContext.of(candidate), 0), limit
        )


class SharedBook(Protocol):
    """Where several instances add up what they sent and what landed (Redis, for scale-out)."""

    async def record_sent(self, bundles: int = 1) -> None: ...

    async def record_outcome(self, status: str, realized_profit_wei: int = 0) -> None: ...


@dataclass(frozen=True, slots=True)
class Verdict:
    """What became of a candidate: ``sent`` (to at least one relay) or why it was dropped."""

    outcome: str  # sent | simulated (dry run) | duplicate | dropped
    reason: str = ""
    plan: BundlePlan | None = None
    simulation: SimResult | None = None


class Submitter:
    """Turns candidates into bundles at the relays, at most once per idempotency key."""

    def __init__(
        self,
        *,
        simulator: Simulator,
        signer: LocalSigner,
        relays: MultiRelay | None,
        ledger: Ledger,
        tracker: InclusionTracker,
        policies: Mapping[str, BidPolicy],
        rpc: Any,
        executor: str,
        weth: str,
        chain_id: int,
        counts: Counts,
        latency: LatencyBook,
        target_blocks: int = 3,
        dry_run: bool = False,
        claim: Callable[[str], Awaitable[bool]] | None = None,
        shared: SharedBook | None = None,
        history: int = 200,
    ) -> None:
        self.simulator = simulator
        self.signer = signer
        self.relays = relays
        self.ledger = ledger
        self.tracker = tracker
        self.policies = dict(policies)
        self.rpc = rpc
        self.executor = executor.lower()
        self.weth = weth.lower()
        self.chain_id = chain_id
        self.counts = counts
        self.latency = latency
        self.target_blocks = target_blocks
        self.dry_run = dry_run or relays is None
        # With several instances, an effect's key is claimed in a shared store before sending.
        self.claim = claim
        self.shared = shared
        self.gas = GasBook()
        self.opportunities: deque[OpportunityRow] = deque(maxlen=history)
        self.verdicts: deque[tuple[Candidate, Verdict]] = deque(maxlen=history)
        self.head: BlockHeader | None = None
        self.bundle_nonce: int | None = None
        # (bundle hash, target block) -> (strategy, relays that accepted it), until settled.
        self._accepted: dict[tuple[str, int], tuple[str, tuple[str, ...]]] = {}

    async def on_head(self, header: BlockHeader) -> None:
        """A new block: the executor key's nonce for the next bundles, and the bundles it
        settled (landed, missed, superseded) into the ledger."""
        self.head = header
        self.bundle_nonce = int(
            await self.rpc.call("eth_getTransactionCount", [self.signer.address, "latest"]), 16
        )
        report = await self.tracker.on_block(self.rpc, header.number)
        for settled in report.settled:
            outcome = settled.settlement
            strategy, relays = self._accepted.pop(
                (settled.bundle_hash, settled.target_block), (UNKNOWN_STRATEGY, ())
            )
            self.counts.settled(outcome, strategy, relays)
            events.settled(settled, strategy)
            await self._share(
                "record_outcome", outcome.status.value, outcome.realized_profit_wei or 0
            )

    def _policy(self, candidate: Candidate) -> BidPolicy:
        return self.policies.get(candidate.strategy) or self.policies["default"]

    def _tell(self, candidate: Candidate, verdict: Verdict) -> Verdict:
        """Count and log a verdict."""
        self.counts.verdict(candidate.strategy, verdict.outcome, verdict.reason)
        events.verdict(candidate, verdict)
        return verdict

    def _note(self, candidate: Candidate, verdict: Verdict) -> Verdict:
        self._tell(candidate, verdict)
        if verdict.outcome == "dropped":
            self.ledger.mark_candidate(candidate.key, "dropped", verdict.reason)
        self.opportunities.append(
            OpportunityRow(
                at=time.time(),
                strategy=candidate.strategy,
                trigger=candidate.trigger_hash,
                target_block=candidate.target_block,
                expected_profit_wei=candidate.expected_profit_wei,
                verdict=verdict.outcome,
                detail=verdict.reason,
            )
        )
        self.verdicts.append((candidate, verdict))
        return verdict

    async def submit(self, candidate: Candidate) -> Verdict:
        """Verify, bid, sign and send one candidate (at most once per key)."""
        if self.head is None or self.bundle_nonce is None:
            return self._tell(candidate, Verdict("dropped", "no_head: no block seen yet"))
        if not self.ledger.record_candidate(candidate) or (
            self.claim is not None and not await self.claim(candidate.key)
        ):
            return self._tell(candidate, Verdict("duplicate"))
        base_fee = next_base_fee(self.head)
        bid = self._policy(candidate).price(
            candidate.expected_profit_wei,
            self.gas.price_gas(candidate),
            base_fee,
            self.target_blocks,
        )
        if isinstance(bid, Rejected):
            return self._note(candidate, Verdict("dropped", f"{bid.reason.value}: expected"))
        sign_start = time.monotonic_ns()
        limit = self.gas.limit(candidate)
        try:
            call = executor_call(self.executor, candidate, bid, limit, self.weth)
            plan = build_bundles(
                candidate,
                call,
                bid,
                self.signer,
                self.bundle_nonce,
                self.chain_id,
                last_block=candidate.target_block + self.target_blocks - 1,
            )
        except (BundleBuildError, ValueError) as error:
            return self._note(candidate, Verdict("dropped", f"unbundleable: {error}"))
        self.latency.record_ns("sign", sign_start, time.monotonic_ns())
        problem, simulation = await self._verify(candidate, plan, base_fee, limit)
        if problem is not None:
            return self._note(candidate, Verdict("dropped", problem, plan, simulation))
        self.ledger.record_bundles(plan)
        if self.dry_run:
            self.ledger.mark_candidate(candidate.key, "simulated")
            return self._note(candidate, Verdict("simulated", "dry run", plan, simulation))
        return await self._send(candidate, plan, simulation)

    async def _send(
        self, candidate: Candidate, plan: BundlePlan, simulation: SimResult | None
    ) -> Verdict:
        assert self.relays is not None
        submit_start = time.monotonic_ns()
        first, *later = plan.bundles
        answers = {first.block_number: await self.relays.send_bundle(first)}
        now = time.monotonic_ns()
        self.latency.record_ns("submit", submit_start, now)
        if candidate.detected_at:
            self.latency.record_ns("wire_to_relay", candidate.detected_at, now)
        if later:  # the next blocks are less urgent: all at once, after the first is answered
            outcomes = await asyncio.gather(*(self.relays.send_bundle(b) for b in later))
            answers |= {b.block_number: o for b, o in zip(later, outcomes, strict=True)}
        delivered = 0
        relays: set[str] = set()
        for block_number, outcomes_for_block in answers.items():
            accepted = tuple(o.relay for o in outcomes_for_block if o.error is None)
            if accepted:
                self.counts.sent(candidate.strategy, accepted)
                self._accepted[plan.bundle_hash, block_number] = (candidate.strategy, accepted)
                relays.update(accepted)
            for outcome in outcomes_for_block:
                error = outcome.error
                self.ledger.record_relay_answer(
                    plan.bundle_hash,
                    block_number,
                    outcome.relay,
                    ok=error is None,
                    error_kind=None if error is None else error.kind,
                    message=None if error is None else str(error),
                )
                delivered += error is None
        if not delivered:
            verdict = Verdict("dropped", "relays: no relay accepted it", plan, simulation)
            return self._note(candidate, verdict)
        self.ledger.mark_candidate(candidate.key, "sent")
        events.sent(candidate, plan, relays)
        await self._share("record_sent", len(plan.bundles))
        return self._note(candidate, Verdict("sent", "", plan, simulation))

    async def _share(self, method: str, *args: Any) -> None:
        """Tell the shared book; its outage is counted, never stops the pipeline."""
        if self.shared is None:
            return
        try:
            await getattr(self.shared, method)(*args)
        except Exception as error:  # a Redis outage must not take the submitter down
            self.counts.shared_ledger_errors += 1
            log.warning("shared ledger: %s", error)

    async def _verify(
        self, candidate: Candidate, plan: BundlePlan, base_fee: int, limit: int
    ) -> tuple[str | None, SimResult | None]:
        """Simulate the exact signed bundle: (why it must not be sent, or None; the result)."""
        tokens = sorted({self.weth, candidate.profit_token.lower()})
        start = time.monotonic_ns()
        try:
            result = await self.simulator.simulate(
                [tx.raw for tx in plan.bundles[0].txs], watch=[self.executor], tokens=tokens
            )
        except SimulationError as error:
            return f"simulation_failed: {error.reason}", None
        finally:
            self.latency.record_ns("simulate", start, time.monotonic_ns())
        ours = result.txs[-1]
        if not result.success:
            failed = next(i for i, tx in enumerate(result.txs) if not tx.success)
            if failed == len(result.txs) - 1 and ours.gas_used >= limit * OUT_OF_GAS_SHARE:
                self.gas.ran_out(candidate, limit)
                return f"out_of_gas: used {ours.gas_used} of {limit}", result
            who = "ours" if failed == len(result.txs) - 1 else f"backrun tx {failed}"
            return f"reverts: {who}: {result.txs[failed].revert_reason}", result
        self.gas.learn(candidate, ours.gas_used)
        diffs = result.balance_diffs.get(self.executor, {})
        token = candidate.profit_token.lower()
        gain = diffs.get(token, 0) + (diffs.get(ETH, 0) if token == self.weth else 0)
        if token != self.weth:
            # Value the token gain at the candidate's own rate; the coinbase tip is paid in ETH.
            gain = gain * candidate.expected_profit_wei // max(candidate.expected_profit, 1)
            gain += diffs.get(ETH, 0)
        net = gain - ours.gas_used * base_fee
        if net < self._policy(candidate).min_net_profit_wei:
            return f"below_minimum: simulated net {net} wei", result
        if gain + plan.bid.coinbase_wei != candidate.expected_profit_wei:
            self.counts.profit_mismatches += 1
        return None, result
