"""The submitter: candidate -> verdict (bid, sign, simulate the exact bundle, check, send, ledger).

It is the executor of the collectors -> strategies -> executors pattern. For each candidate it
checks the idempotency key in the ledger (and, with several instances, claims it in the shared
store), prices a bid and adds the candidate to the block's one bundle
(:class:`~mevbot.block_bundle.BlockBundle`): its victims and its executor call signed at the
next nonce, behind the members already there. The *exact signed bundle* is simulated as a whole;
the candidate is dropped (counted, with the reason) when it conflicts with a member, reverts,
runs out of gas, makes a member revert or adds less than the minimum net profit. Otherwise the
bundle goes to every relay for the next ``target_blocks`` blocks, replacing the one sent before
(one replacement id per target block). At each new head the members whose blocks are still
ahead are signed and simulated again on the new state: those whose victims are gone drop out,
the rest are sent as the next replacement, and a bundle left with no member is cancelled.

Gas: a bid is priced with the gas learned for the action's shape *in its context* (behind a
victim, the victim has already written the pools' price accumulators of the block; as the first
to touch them the same action costs ~25% more), and the tx is signed with a generous limit (the
learned figure times a margin, or a wide bound before anything was learned): a limit costs
nothing unless used, and running out of gas on the fork would lose a real opportunity. A
simulation that did run out is reported as ``out_of_gas``, never as a revert, and teaches the
book to sign the next one of that shape with more.

Every stage is timed from the moment the triggering event came off the wire.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Protocol

from chain.types import BlockHeader, Bundle
from execution.bids import Bid, BidPolicy, Rejected
from execution.bundler import BundleBuildError, BundlePlan, build_bundles
from execution.dialects import Submission
from execution.executor_calls import executor_call
from execution.inclusion import InclusionTracker
from execution.ledger import Ledger, OutcomeStatus, Settlement
from execution.relay import MultiRelay
from execution.signer import LocalSigner
from mevbot import events
from mevbot.block_bundle import BlockBundle, Member
from mevbot.counters import UNKNOWN_STRATEGY, Counts
from mevbot.latency import LatencyBook
from mevbot.status import OpportunityRow
from simulation.actions import GasShape
from simulation.candidates import Candidate
from simulation.simulator import ETH, SimResult, SimulationError, Simulator, next_base_fee

log = logging.getLogger("mevbot.submitter")

# Before anything is learned for a shape and context, sign with room to spare.
UNMEASURED_GAS_LIMIT = 800_000
# Signed limit over the learned gas: state moves between simulation and inclusion, the same
# shape costs more as the first toucher of its pools than behind a victim, and a V3 hop costs
# ~20k more per initialized tick it crosses (seen on the devnet: 302k learned, 339k used).
LIMIT_MARGIN_BPS = 10_000
LIMIT_MARGIN_MIN = 60_000
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
    simulation: SimResult | None = None  # of the block's whole bundle, this member last


class Submitter:
    """Turns candidates into the block's bundle at the relays, at most once per idempotency key."""

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
        self.bundle: BlockBundle | None = None
        # (bundle hash, target block) -> (strategy, venue, relays that accepted it), until settled.
        self._accepted: dict[tuple[str, int], tuple[str, str, tuple[str, ...]]] = {}
        # Members join the bundle one at a time: each is signed at the next nonce and simulated
        # behind the others.
        self._lock = asyncio.Lock()

    # ------------------------------------------------------------------ heads

    async def on_head(self, header: BlockHeader) -> None:
        """A new block: the executor key's nonce, the bundles it settled (landed, missed,
        superseded) into the ledger, and the block's bundle carried to the next block."""
        self.head = header
        self.bundle_nonce = int(
            await self.rpc.call("eth_getTransactionCount", [self.signer.address, "latest"]), 16
        )
        report = await self.tracker.on_block(self.rpc, header.number)
        for settled in report.settled:
            outcome = settled.settlement
            strategy, venue, relays = self._accepted.pop(
                (settled.bundle_hash, settled.target_block), (UNKNOWN_STRATEGY, "none", ())
            )
            self.counts.settled(outcome, strategy, relays)
            if outcome.status is OutcomeStatus.LANDED:
                self.counts.landed_by_venue[venue] += 1
            events.settled(settled, strategy)
            await self._share(
                "record_outcome", outcome.status.value, outcome.realized_profit_wei or 0
            )
        async with self._lock:
            await self._carry(header)

    async def _carry(self, header: BlockHeader) -> None:
        """Start the bundle for the next block with the members still worth sending."""
        old = self.bundle
        self.bundle = BlockBundle(header.number + 1, header.number + self.target_blocks)
        if old is None:
            return
        ahead = {b: r for b, r in old.replacements.items() if b > header.number}
        self.bundle.replacements.update(ahead)
        assert self.bundle_nonce is not None
        # A member whose nonce is spent landed with its bundle (the tracker settles it).
        live = [m for m in old.members if m.plan.our_tx.nonce >= self.bundle_nonce]
        await self._rejoin(self.bundle, live, next_base_fee(header))
        self._adopt(self.bundle, old, after=header.number)
        if self.bundle.members:
            self.counts.bundles_carried += 1
            if not self.dry_run:
                await self._send(self.bundle, self.bundle.members[-1])
        elif ahead and not self.dry_run:
            assert self.relays is not None
            for block, replacement in ahead.items():
                await self.relays.cancel(replacement.next())
                self.bundle.replacements[block] = replacement.next()
            self.counts.bundles_cancelled += len(ahead)

    async def _rejoin(self, bundle: BlockBundle, members: list[Member], base_fee: int) -> None:
        """Sign and simulate ``members`` again, in order, into ``bundle``; those that no longer
        join (their victim is gone, the state moved) drop out, counted and logged."""
        for member in members:
            _, problem, _ = await self._join(bundle, member.candidate, member.bid, base_fee)
            if problem is not None:
                self.counts.members_dropped += 1
                log.info(
                    "bundle member %s dropped for block %d: %s",
                    member.candidate.key,
                    bundle.first_block,
                    problem,
                )

    def _adopt(self, new: BlockBundle, old: BlockBundle, after: int) -> None:
        """The ledger follows ``new`` instead of ``old``: plans new to it are recorded, and the
        rows past block ``after`` of plans it no longer carries are settled as superseded."""
        kept = {m.plan.bundle_hash for m in old.members}
        carried = {m.plan.bundle_hash for m in new.members}
        for member in new.members:
            if member.plan.bundle_hash not in kept:
                self.ledger.record_bundles(member.plan)
        for member in old.members:
            if member.plan.bundle_hash not in carried:
                self._supersede(member.plan, after)

    def _supersede(self, plan: BundlePlan, after: int) -> None:
        """The ledger rows of a plan the block's bundle no longer carries, past block ``after``."""
        for bundle in plan.bundles:
            if bundle.block_number > after:
                self.ledger.settle(
                    bundle.bundle_hash,
                    bundle.block_number,
                    Settlement(OutcomeStatus.SUPERSEDED, detail="left the block's bundle"),
                )

    # ------------------------------------------------------------------ candidates

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
        """Add one candidate to the block's bundle and send it (at most once per key)."""
        if self.head is None or self.bundle_nonce is None or self.bundle is None:
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
        async with self._lock:
            bundle = self.bundle
            if candidate.target_block != bundle.first_block:
                verdict = Verdict("dropped", f"stale: block {candidate.target_block} has passed")
                return self._note(candidate, verdict)
            conflicting = bundle.conflicting(candidate)
            if conflicting:
                # It displaces the members it conflicts with only when it is worth more: the
                # rest are signed again behind each other, then it is tried last.
                held = sum(m.candidate.expected_profit_wei for m in conflicting)
                if candidate.expected_profit_wei <= held:
                    return self._note(candidate, Verdict("dropped", bundle.conflict(candidate)))
                trial = BlockBundle(
                    bundle.first_block, bundle.last_block, replacements=bundle.replacements
                )
                others = [m for m in bundle.members if m not in conflicting]
                await self._rejoin(trial, others, base_fee)
            else:
                trial = bundle
            member, problem, result = await self._join(trial, candidate, bid, base_fee)
            if member is None:
                return self._note(candidate, Verdict("dropped", problem or "", None, result))
            if trial is bundle:
                self.ledger.record_bundles(member.plan)
            else:
                self.counts.members_displaced += len(conflicting)
                self._adopt(trial, bundle, after=self.head.number)
                self.bundle = bundle = trial
            if self.dry_run:
                self.ledger.mark_candidate(candidate.key, "simulated")
                verdict = Verdict("simulated", "dry run", member.plan, result)
                return self._note(candidate, verdict)
            relays = await self._send(bundle, member)
        if not relays:
            verdict = Verdict("dropped", "relays: no relay accepted it", member.plan, result)
            return self._note(candidate, verdict)
        self.ledger.mark_candidate(candidate.key, "sent")
        events.sent(candidate, member.plan, relays)
        await self._share("record_sent", len(member.plan.bundles))
        return self._note(candidate, Verdict("sent", "", member.plan, result))

    async def _join(
        self, bundle: BlockBundle, candidate: Candidate, bid: Bid, base_fee: int
    ) -> tuple[Member | None, str | None, SimResult | None]:
        """Sign ``candidate`` at ``bundle``'s next nonce, behind its members, and simulate the
        whole bundle: (the member, added to the bundle, or None; why not; the simulation)."""
        assert self.bundle_nonce is not None
        included = bundle.included_victims()
        placed = replace(
            candidate,
            target_block=bundle.first_block,
            backrun=tuple(tx for tx in candidate.backrun if tx.hash not in included),
        )
        limit = self.gas.limit(candidate)
        sign_start = time.monotonic_ns()
        try:
            call = executor_call(self.executor, placed, bid, limit, self.weth)
            plan = build_bundles(
                placed,
                call,
                bid,
                self.signer,
                self.bundle_nonce + len(bundle.members),
                self.chain_id,
                last_block=bundle.last_block,
            )
        except (BundleBuildError, ValueError) as error:
            return None, f"unbundleable: {error}", None
        self.latency.record_ns("sign", sign_start, time.monotonic_ns())
        member = Member(candidate, bid, limit, plan)
        problem, result = await self._verify(bundle, member, base_fee)
        if problem is not None or result is None:
            return None, problem, result
        bundle.members.append(member)
        bundle.diffs = dict(result.balance_diffs.get(self.executor, {}))
        return member, None, result

    async def _verify(
        self, bundle: BlockBundle, member: Member, base_fee: int
    ) -> tuple[str | None, SimResult | None]:
        """Simulate the bundle with ``member`` last: (why it must not join, or None; the
        simulation of the whole bundle)."""
        candidate = member.candidate
        tokens = sorted({self.weth, candidate.profit_token.lower()})
        txs = bundle.txs([member])
        start = time.monotonic_ns()
        try:
            result = await self.simulator.simulate(
                [tx.raw for tx in txs], watch=[self.executor], tokens=tokens
            )
        except SimulationError as error:
            return f"simulation_failed: {error.reason}", None
        finally:
            self.latency.record_ns("simulate", start, time.monotonic_ns())
        if not result.success:
            failed = next(i for i, tx in enumerate(result.txs) if not tx.success)
            owner, ours = bundle.owner_of(failed, [member])
            outcome = result.txs[failed]
            if owner < len(bundle.members):
                return (
                    f"conflict: member {owner} fails behind it ({outcome.revert_reason})",
                    result,
                )
            if not ours:  # which of the member's own victims, counted from 0
                victim = failed - len(bundle.txs())
                return f"reverts: backrun tx {victim}: {outcome.revert_reason}", result
            if outcome.gas_used >= member.gas_limit * OUT_OF_GAS_SHARE:
                self.gas.ran_out(candidate, member.gas_limit)
                return f"out_of_gas: used {outcome.gas_used} of {member.gas_limit}", result
            return f"reverts: ours: {outcome.revert_reason}", result
        ours = result.txs[-1]
        self.gas.learn(candidate, ours.gas_used)
        diffs = result.balance_diffs.get(self.executor, {})
        token = candidate.profit_token.lower()
        # What this member adds: the bundle's balance changes with it, less those without it.
        added = {k: diffs.get(k, 0) - bundle.diffs.get(k, 0) for k in (token, ETH)}
        gain = added[token] + (added[ETH] if token == self.weth else 0)
        if token != self.weth:
            # Value the token gain at the candidate's own rate; the coinbase tip is paid in ETH.
            gain = gain * candidate.expected_profit_wei // max(candidate.expected_profit, 1)
            gain += added[ETH]
        net = gain - ours.gas_used * base_fee
        if net < self._policy(candidate).min_net_profit_wei:
            return f"below_minimum: simulated net {net} wei", result
        if gain + member.bid.coinbase_wei != candidate.expected_profit_wei:
            self.counts.profit_mismatches += 1
        return None, result

    async def _send(self, bundle: BlockBundle, member: Member) -> set[str]:
        """Send the bundle for each of its blocks, replacing what was sent for that block before;
        the relays' answers go to the ledger under ``member``'s plan. Returns the relays that
        accepted it for some block."""
        assert self.relays is not None
        txs = tuple(bundle.txs())
        submissions = []
        for block in range(bundle.first_block, bundle.last_block + 1):
            replacement = bundle.next_replacement(block)
            bundle.replacements[block] = replacement
            submissions.append(Submission(Bundle(txs, block), replacement=replacement))
        submit_start = time.monotonic_ns()
        first, *later = submissions
        answers = {first.bundle.block_number: await self.relays.send_bundle(first)}
        now = time.monotonic_ns()
        self.latency.record_ns("submit", submit_start, now)
        if member.candidate.detected_at:
            self.latency.record_ns("wire_to_relay", member.candidate.detected_at, now)
        if later:  # the next blocks are less urgent: all at once, after the first is answered
            outcomes = await asyncio.gather(*(self.relays.send_bundle(s) for s in later))
            answers |= {s.bundle.block_number: o for s, o in zip(later, outcomes, strict=True)}
        relays: set[str] = set()
        strategy, plan = member.candidate.strategy, member.plan
        for block_number, outcomes_for_block in answers.items():
            accepted = tuple(o.relay for o in outcomes_for_block if o.error is None)
            if accepted:
                self.counts.sent(strategy, accepted)
                venue = member.candidate.action.venue
                self._accepted[plan.bundle_hash, block_number] = (strategy, venue, accepted)
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
        return relays

    async def _share(self, method: str, *args: Any) -> None:
        """Tell the shared book; its outage is counted, never stops the pipeline."""
        if self.shared is None:
            return
        try:
            await getattr(self.shared, method)(*args)
        except Exception as error:  # a Redis outage must not take the submitter down
            self.counts.shared_ledger_errors += 1
            log.warning("shared ledger: %s", error)
