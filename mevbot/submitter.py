"""The submitter: candidate -> verdict (bid, sign, simulate the exact bundle, check, send, ledger).

It is the executor of the collectors -> strategies -> executors pattern. For each candidate it
checks the idempotency key against the keys already acted on (and, with several instances,
claims it in the shared store), prices a bid and adds the candidate to the block's one bundle
(:class:`~mevbot.block_bundle.BlockBundle`): its victims and its executor call signed at the
next nonce, behind the members already there. The *exact signed bundle* is simulated as a whole;
the candidate is dropped (counted, with the reason) when it conflicts with a member, reverts,
runs out of gas, makes a member revert or adds less than the minimum net profit. Otherwise the
bundle goes to every relay for the next ``target_blocks`` blocks, replacing the one sent before
(one replacement id per target block). Candidates that arrive while the bundle is being
simulated or sent wait and then join together: one simulation and one send for all of them
(a group commit), each judged on its own only when the simulation says one of them fails or
their profit together is not what they expected. At each new head the members whose blocks are
still ahead are signed and simulated again on the new state (together, likewise): those whose
victims are gone drop out, the rest are sent as the next replacement, and a bundle left with no
member is cancelled.

Gas: a bid is priced with the gas learned for the action's shape *in its context* (behind a
victim, the victim has already written the pools' price accumulators of the block; as the first
to touch them the same action costs ~25% more), and the tx is signed with a generous limit (the
learned figure times a margin, or a wide bound before anything was learned): a limit costs
nothing unless used, and running out of gas on the fork would lose a real opportunity. A
simulation that did run out is reported as ``out_of_gas``, never as a revert, and teaches the
book to sign the next one of that shape with more.

Every stage is timed from the moment the triggering event came off the wire. Nothing before the
first POST waits on the ledger: the idempotency keys of the blocks ahead are checked in memory
(loaded from the ledger at the first head, so a restart still refuses what it sent), and the
candidate's row and its bundle's rows are written once the first relay answered (nothing reads
them sooner: the inclusion tracker settles a block's bundles at a later head); a candidate
dropped is written with its verdict. A candidate that displaces members is simulated once,
behind the members left, not after a simulation of those members alone.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from itertools import accumulate
from typing import Any, Protocol

from chain.types import BlockHeader, Bundle
from execution.bids import Bid, BidPolicy, Rejected
from execution.bundler import BundleBuildError, BundlePlan, build_bundles
from execution.dialects import Submission
from execution.executor_calls import executor_call
from execution.inclusion import InclusionTracker
from execution.ledger import Ledger, OutcomeStatus, Settlement
from execution.relay import MultiRelay, RelayOutcome
from execution.signer import LocalSigner
from mevbot import events
from mevbot.block_bundle import BlockBundle, Member, overlapping
from mevbot.counters import UNKNOWN_STRATEGY, Counts
from mevbot.latency import LatencyBook
from mevbot.status import OpportunityRow
from simulation.actions import GasShape
from simulation.candidates import Candidate
from simulation.prepared import signed_here
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


@dataclass(slots=True)
class _Waiting:
    """A priced candidate waiting for the next commit, and where its verdict goes."""

    candidate: Candidate
    bid: Bid
    verdict: asyncio.Future[Verdict]
    since: int  # monotonic ns it started waiting


@dataclass(frozen=True, slots=True)
class _Check:
    """What one simulation of the bundle with its joiners says: all join (no ``problem``);
    the joiner at index ``culprit`` must not (``problem`` says why), or none of them
    (``culprit`` None); or, with ``split``, several joiners' profit together differs from what
    they expected, or the simulator refused the bundle as a whole, so each is to be tried on
    its own."""

    result: SimResult | None
    problem: str | None = None
    culprit: int | None = None
    split: bool = False


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
        # The bundle changes under this lock: candidates that arrive meanwhile wait in
        # ``_waiting`` and join together (signed at the next nonces, simulated behind the others).
        self._lock = asyncio.Lock()
        self._waiting: list[_Waiting] = []
        # The idempotency keys of the blocks ahead, by target block (None until the first head).
        self._keys: dict[int, set[str]] | None = None

    # ------------------------------------------------------------------ heads

    async def on_head(self, header: BlockHeader) -> None:
        """A new block: the executor key's nonce, the bundles it settled (landed, missed,
        superseded) into the ledger, and the block's bundle carried to the next block."""
        if self._keys is None:
            self._keys = self.ledger.candidate_keys(after_block=header.number)
        for block in [b for b in self._keys if b <= header.number]:
            del self._keys[block]  # a candidate for a block gone is stale, whatever its key
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
            if self._waiting:  # candidates considered on this head already
                await self._commit_waiting()

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
                await self._send(self.bundle, self.bundle.members[-1:], fresh=False)
        elif ahead and not self.dry_run:
            assert self.relays is not None
            for block, replacement in ahead.items():
                await self.relays.cancel(replacement.next())
                self.bundle.replacements[block] = replacement.next()
            self.counts.bundles_cancelled += len(ahead)

    async def _rejoin(
        self,
        bundle: BlockBundle,
        members: list[Member],
        base_fee: int,
        joining: Sequence[tuple[Candidate, Bid]] = (),
    ) -> list[tuple[Member | None, str | None, SimResult | None]]:
        """Sign and simulate ``members`` again, in order, into ``bundle``, with ``joining``
        behind them (one simulation for all, when they all pass); members that no longer join
        (their victim is gone, the state moved) drop out, counted and logged. Returns the
        outcomes of ``joining`` (see :meth:`_join`)."""
        outcomes = await self._join(
            bundle, [*((m.candidate, m.bid) for m in members), *joining], base_fee
        )
        for member, (_, problem, _) in zip(members, outcomes, strict=False):
            if problem is not None:
                self.counts.members_dropped += 1
                log.info(
                    "bundle member %s dropped for block %d: %s",
                    member.candidate.key,
                    bundle.first_block,
                    problem,
                )
        return outcomes[len(members) :]

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
            self.ledger.record_verdict(candidate, "dropped", verdict.reason)
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
        """Add one candidate to the block's bundle and send it (at most once per key).

        Candidates that arrive while the bundle is being simulated or sent wait together and
        join it at once, with one simulation and one send (a group commit)."""
        if (
            self.head is None
            or self.bundle_nonce is None
            or self.bundle is None
            or self._keys is None
        ):
            return self._tell(candidate, Verdict("dropped", "no_head: no block seen yet"))
        keys = self._keys.setdefault(candidate.target_block, set())
        if candidate.key in keys:
            return self._tell(candidate, Verdict("duplicate"))
        keys.add(candidate.key)
        if self.claim is not None and not await self.claim(candidate.key):
            return self._tell(candidate, Verdict("duplicate"))
        bid = self._policy(candidate).price(
            candidate.expected_profit_wei,
            self.gas.price_gas(candidate),
            next_base_fee(self.head),
            self.target_blocks,
        )
        if isinstance(bid, Rejected):
            return self._note(candidate, Verdict("dropped", f"{bid.reason.value}: expected"))
        future = asyncio.get_running_loop().create_future()
        waiting = _Waiting(candidate, bid, future, time.monotonic_ns())
        self._waiting.append(waiting)
        async with self._lock:
            if self._waiting:
                await self._commit_waiting()
        verdict = await waiting.verdict
        if verdict.outcome == "sent" and verdict.plan is not None:
            await self._share("record_sent", len(verdict.plan.bundles))
        return verdict

    async def _commit_waiting(self) -> None:
        """Commit every waiting candidate (under the lock). When that fails, their submitters
        are cancelled rather than left waiting."""
        batch, self._waiting = self._waiting, []
        try:
            await self._commit(batch)
        except BaseException:
            for waiting in batch:
                if not waiting.verdict.done():
                    waiting.verdict.cancel()
            self._waiting = [w for w in self._waiting if not w.verdict.done()]
            raise

    async def _commit(self, batch: list[_Waiting]) -> None:
        """:meth:`_decide_batch`, with the verdicts noted in the batch's arrival order whatever
        order they were reached in (a replay, batched otherwise, notes the same history)."""
        decided: dict[int, Verdict] = {}
        try:
            await self._decide_batch(batch, decided)
        finally:
            for waiting in batch:
                verdict = decided.get(id(waiting))
                if verdict is not None:
                    waiting.verdict.set_result(self._note(waiting.candidate, verdict))

    async def _decide_batch(self, batch: list[_Waiting], decided: dict[int, Verdict]) -> None:
        """Join ``batch`` to the block's bundle and send it once. Each candidate is judged in
        arrival order against the members and the candidates before it: a stale one or one
        worth no more than those it conflicts with is dropped, a worthier one displaces them;
        one for the block after (considered on a head the submitter has not moved to yet) waits.
        Displaced members leave the bundle; the rest of it is signed again behind each other."""
        assert self.head is not None and self.bundle is not None
        now = time.monotonic_ns()
        for waiting in batch:
            self.latency.record_ns("queue", waiting.since, now)

        def decide(waiting: _Waiting, verdict: Verdict) -> None:
            decided[id(waiting)] = verdict

        bundle, base_fee = self.bundle, next_base_fee(self.head)
        kept, joining = list(bundle.members), list[_Waiting]()
        for waiting in batch:
            candidate = waiting.candidate
            if candidate.target_block > bundle.first_block:
                # Considered on a head whose bundle is not started yet: it joins that one.
                self._waiting.append(waiting)
                continue
            if candidate.target_block != bundle.first_block:
                reason = f"stale: block {candidate.target_block} has passed"
                decide(waiting, Verdict("dropped", reason))
                continue
            rivals = [m for m in kept if overlapping(m.candidate, candidate)]
            rivals_joining = [w for w in joining if overlapping(w.candidate, candidate)]
            held = [r.candidate for r in (*rivals, *rivals_joining)]
            if held and candidate.expected_profit_wei <= sum(c.expected_profit_wei for c in held):
                keys = ", ".join(c.key for c in held)
                reason = f"conflict: worth no more than {keys}, which touch its pools or positions"
                decide(waiting, Verdict("dropped", reason))
                continue
            for rival in rivals_joining:
                joining.remove(rival)
                reason = f"conflict: displaced by {candidate.key} before it was sent"
                decide(rival, Verdict("dropped", reason))
            kept = [m for m in kept if m not in rivals]
            joining.append(waiting)
        if not joining:
            return
        if len(kept) == len(bundle.members):
            trial, rejoining = bundle, []
        else:
            # The members left are signed again behind each other, the joiners behind them.
            trial = BlockBundle(
                bundle.first_block, bundle.last_block, replacements=bundle.replacements
            )
            rejoining = kept
        joiners = [(w.candidate, w.bid) for w in joining]
        outcomes = await self._rejoin(trial, rejoining, base_fee, joiners)
        joined = []
        for waiting, (member, problem, result) in zip(joining, outcomes, strict=True):
            if member is None:
                decide(waiting, Verdict("dropped", problem or "", None, result))
            else:
                joined.append((waiting, member, result))
        if not joined:
            return
        after = self.head.number
        if trial is not bundle:
            self.counts.members_displaced += len(bundle.members) - len(kept)
            self.bundle = trial

        def record() -> None:
            """The ledger follows the bundle: after the first POST, which must not wait on it."""
            for waiting, _, _ in joined:
                self.ledger.record_candidate(waiting.candidate)
            if trial is bundle:
                for _, member, _ in joined:
                    self.ledger.record_bundles(member.plan)
            else:
                self._adopt(trial, bundle, after=after)

        if self.dry_run:
            record()
            for waiting, member, result in joined:
                self.ledger.mark_candidate(waiting.candidate.key, "simulated")
                decide(waiting, Verdict("simulated", "dry run", member.plan, result))
            return
        members = [member for _, member, _ in joined]
        relays = await self._send(trial, members, fresh=True, record=record)
        for waiting, member, result in joined:
            if not relays:
                reason = "relays: no relay accepted it"
                decide(waiting, Verdict("dropped", reason, member.plan, result))
                continue
            self.ledger.mark_candidate(waiting.candidate.key, "sent")
            events.sent(waiting.candidate, member.plan, relays)
            decide(waiting, Verdict("sent", "", member.plan, result))

    async def _join(
        self, bundle: BlockBundle, joiners: list[tuple[Candidate, Bid]], base_fee: int
    ) -> list[tuple[Member | None, str | None, SimResult | None]]:
        """Sign ``joiners`` at ``bundle``'s next nonces, behind its members, and simulate the
        whole bundle once; those that join are added to it. One that fails is dropped with its
        reason and the rest are signed and simulated again; when the profit of several together
        differs from what they expected, or the simulator refuses them as a whole, each is tried
        on its own, so every member's verdict is its own. Per joiner: (the member, or None; why
        not; the simulation)."""
        outcomes: list[tuple[Member | None, str | None, SimResult | None]] = [
            (None, None, None) for _ in joiners
        ]
        trying = list(range(len(joiners)))
        while trying:
            members: dict[int, Member] = {}
            for index in trying:
                candidate, bid = joiners[index]
                signed = self._sign(bundle, candidate, bid, list(members.values()))
                if isinstance(signed, str):
                    outcomes[index] = (None, signed, None)
                else:
                    members[index] = signed
            trying = list(members)
            if not trying:
                break
            check = await self._verify(bundle, list(members.values()), base_fee)
            if check.split:
                for index in trying:
                    outcomes[index] = (await self._join(bundle, [joiners[index]], base_fee))[0]
                break
            if check.problem is None and check.result is not None:
                for index, member in members.items():
                    bundle.members.append(member)
                    outcomes[index] = (member, None, check.result)
                bundle.diffs = dict(check.result.balance_diffs.get(self.executor, {}))
                break
            culprits = trying if check.culprit is None else [trying.pop(check.culprit)]
            for index in culprits:
                outcomes[index] = (None, check.problem, check.result)
            if check.culprit is None:
                break
        return outcomes

    def _sign(
        self, bundle: BlockBundle, candidate: Candidate, bid: Bid, ahead: list[Member]
    ) -> Member | str:
        """``candidate`` signed behind ``bundle``'s members and the joiners ``ahead`` of it
        (victims already there are not repeated), or why it cannot be bundled."""
        assert self.bundle_nonce is not None
        included = bundle.included_victims() | {
            tx.hash for m in ahead for tx in m.candidate.backrun
        }
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
                self.bundle_nonce + len(bundle.members) + len(ahead),
                self.chain_id,
                last_block=bundle.last_block,
            )
        except (BundleBuildError, ValueError) as error:
            return f"unbundleable: {error}"
        signed_here(plan.our_tx.raw, plan.our_tx.sender)
        self.latency.record_ns("sign", sign_start, time.monotonic_ns())
        return Member(candidate, bid, limit, plan)

    async def _verify(self, bundle: BlockBundle, joiners: list[Member], base_fee: int) -> _Check:
        """Simulate the bundle with ``joiners`` last and judge them (see :class:`_Check`)."""
        tokens = sorted({self.weth, *(m.candidate.profit_token.lower() for m in joiners)})
        start = time.monotonic_ns()
        try:
            result = await self.simulator.simulate(
                [tx.raw for tx in bundle.txs(joiners)], watch=[self.executor], tokens=tokens
            )
        except SimulationError as error:
            # Refused as a whole (a victim's nonce gap, say): which joiner caused it, only
            # trying each on its own tells.
            return _Check(None, f"simulation_failed: {error.reason}", split=len(joiners) > 1)
        finally:
            self.latency.record_ns("simulate", start, time.monotonic_ns())
        ahead = len(bundle.txs())
        ends = list(accumulate((len(m.txs) for m in joiners), initial=ahead))  # each one's txs
        if not result.success:
            failed = next(i for i, tx in enumerate(result.txs) if not tx.success)
            outcome = result.txs[failed]
            if failed < ahead:
                owner, _ = bundle.owner_of(failed)
                return _Check(
                    result, f"conflict: member {owner} fails behind it ({outcome.revert_reason})"
                )
            culprit = next(i for i, end in enumerate(ends[1:]) if failed < end)
            member = joiners[culprit]
            if failed < ends[culprit + 1] - 1:  # which of its own victims, counted from 0
                victim = failed - ends[culprit]
                return _Check(
                    result, f"reverts: backrun tx {victim}: {outcome.revert_reason}", culprit
                )
            if outcome.gas_used >= member.gas_limit * OUT_OF_GAS_SHARE:
                self.gas.ran_out(member.candidate, member.gas_limit)
                return _Check(
                    result, f"out_of_gas: used {outcome.gas_used} of {member.gas_limit}", culprit
                )
            return _Check(result, f"reverts: ours: {outcome.revert_reason}", culprit)
        gas = [result.txs[end - 1].gas_used for end in ends[1:]]
        for member, used in zip(joiners, gas, strict=True):
            self.gas.learn(member.candidate, used)
        diffs = result.balance_diffs.get(self.executor, {})
        if len(joiners) == 1:
            (member,) = joiners
            gains = [self._gain(member.candidate, bundle.diffs, diffs)]
            if gains[0] + member.bid.coinbase_wei != member.candidate.expected_profit_wei:
                self.counts.profit_mismatches += 1
        else:
            # Together, their gains are known only as a sum: when it is what they expected,
            # each gained what it expected (exact integer math); otherwise each goes alone.
            if any(m.candidate.profit_token.lower() != self.weth for m in joiners):
                return _Check(result, split=True)
            together = sum(diffs.get(k, 0) - bundle.diffs.get(k, 0) for k in (self.weth, ETH))
            gains = [m.candidate.expected_profit_wei - m.bid.coinbase_wei for m in joiners]
            if together != sum(gains):
                return _Check(result, split=True)
        for index, (member, gain, used) in enumerate(zip(joiners, gains, gas, strict=True)):
            net = gain - used * base_fee
            if net < self._policy(member.candidate).min_net_profit_wei:
                return _Check(result, f"below_minimum: simulated net {net} wei", index)
        return _Check(result)

    def _gain(
        self, candidate: Candidate, before: Mapping[str, int], after: Mapping[str, int]
    ) -> int:
        """What ``candidate`` added to the executor, in wei, from the balance changes of the
        bundle without it and with it."""
        token = candidate.profit_token.lower()
        added = {k: after.get(k, 0) - before.get(k, 0) for k in (token, ETH)}
        gain = added[token] + (added[ETH] if token == self.weth else 0)
        if token != self.weth:
            # Value the token gain at the candidate's own rate; the coinbase tip is paid in ETH.
            gain = gain * candidate.expected_profit_wei // max(candidate.expected_profit, 1)
            gain += added[ETH]
        return gain

    async def _send(
        self,
        bundle: BlockBundle,
        members: Sequence[Member],
        *,
        fresh: bool,
        record: Callable[[], None] | None = None,
    ) -> set[str]:
        """Send the bundle for each of its blocks, replacing what was sent for that block before;
        the relays' answers go to the ledger under each of ``members``' plans (and their time
        from the wire, when they are ``fresh`` at the relays), after ``record`` wrote the plans
        once the first block's answer is in. Returns the relays that accepted it for some
        block."""
        assert self.relays is not None
        txs = tuple(bundle.txs())
        submissions = []
        for block in range(bundle.first_block, bundle.last_block + 1):
            replacement = bundle.next_replacement(block)
            bundle.replacements[block] = replacement
            submissions.append(Submission(Bundle(txs, block), replacement=replacement))
        submit_start = time.monotonic_ns()
        first, *later = submissions
        try:
            answers = {first.bundle.block_number: await self.relays.send_bundle(first)}
            now = time.monotonic_ns()
            self.latency.record_ns("submit", submit_start, now)
            for member in members if fresh else ():
                if member.candidate.detected_at:
                    self.latency.record_ns("wire_to_relay", member.candidate.detected_at, now)
        finally:
            if record is not None:
                record()
        if later:  # the next blocks are less urgent: all at once, after the first is answered
            outcomes = await asyncio.gather(*(self.relays.send_bundle(s) for s in later))
            answers |= {s.bundle.block_number: o for s, o in zip(later, outcomes, strict=True)}
        relays: set[str] = set()
        for block_number, outcomes_for_block in answers.items():
            accepted = tuple(o.relay for o in outcomes_for_block if o.error is None)
            relays.update(accepted)
            for member in members:
                self._answered(member, block_number, accepted, outcomes_for_block)
        return relays

    def _answered(
        self,
        member: Member,
        block_number: int,
        accepted: tuple[str, ...],
        outcomes: Sequence[RelayOutcome],
    ) -> None:
        """The relays' answers for one target block, counted and in the ledger for ``member``."""
        strategy, plan = member.candidate.strategy, member.plan
        if accepted:
            self.counts.sent(strategy, accepted)
            venue = member.candidate.action.venue
            self._accepted[plan.bundle_hash, block_number] = (strategy, venue, accepted)
        for outcome in outcomes:
            error = outcome.error
            self.ledger.record_relay_answer(
                plan.bundle_hash,
                block_number,
                outcome.relay,
                ok=error is None,
                error_kind=None if error is None else error.kind,
                message=None if error is None else str(error),
            )

    async def _share(self, method: str, *args: Any) -> None:
        """Tell the shared book; its outage is counted, never stops the pipeline."""
        if self.shared is None:
            return
        try:
            await getattr(self.shared, method)(*args)
        except Exception as error:  # a Redis outage must not take the submitter down
            self.counts.shared_ledger_errors += 1
            log.warning("shared ledger: %s", error)
