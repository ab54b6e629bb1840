"""The pipeline: pending tx or new head -> state -> strategies -> fork verify -> bid -> relays.

:class:`Engine` is wiring only: every collaborator (state, decoder, strategies, simulator, bid
policies, signer, relays, ledger, inclusion tracker, RPC client) is passed in. For each
candidate it checks the idempotency key in the ledger, prices a bid, signs the executor call,
simulates the *exact signed bundle* on the fork, drops it (counted, with the reason) when it
reverts or its simulated net profit is below the minimum, and otherwise sends it to every relay
for the next ``target_blocks`` blocks. Bundles use the executor key's chain nonce at the last
head: competing candidates for a block share it, so at most one of them can land. Every stage
is timed from the moment the triggering event came off the wire.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

from chain.envelope import signed_envelope
from chain.intents import Intent
from chain.types import BlockHeader, PendingTx
from execution.bids import BidPolicy, Rejected
from execution.bundler import BundleBuildError, BundlePlan, build_bundles
from execution.candidates import ArbitrageAction, Candidate
from execution.executor_calls import executor_call
from execution.inclusion import InclusionTracker
from execution.ledger import Ledger
from execution.relay import MultiRelay
from execution.signer import LocalSigner
from mevbot.latency import LatencyBook
from mevbot.status import OpportunityRow
from simulation.simulator import ETH, SimResult, SimulationError, Simulator, next_base_fee
from simulation.state import ChainState, StateChanges
from strategies.base import BlockContext, PendingContext, Strategy
from watcher.decode import Decoder
from watcher.events import NewHead, Reorg

log = logging.getLogger("mevbot.engine")

# Gas before the first simulation of an action's shape tells better: a base plus a swap's cost
# per hop (measured on the devnet: 2-hop arbitrage ~191k, liquidation + one swap ~183k).
GAS_BASE = {"arbitrage": 60_000, "liquidation": 120_000}
GAS_PER_SWAP = 75_000
# Until a shape's gas is measured, sign with room to spare: a limit costs nothing unless used,
# and running out of gas on the fork would lose the opportunity for nothing.
UNMEASURED_GAS_LIMIT_BASIS = 800_000


def action_shape(candidate: Candidate) -> tuple[str, int]:
    """(kind, swaps): candidates of one shape use about the same gas."""
    action = candidate.action
    if isinstance(action, ArbitrageAction):
        return "arbitrage", len(action.pairs)
    return "liquidation", len(action.swap_pairs)


def _ms_since(start_ns: int) -> float:
    return (time.monotonic_ns() - start_ns) / 1e6


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


class Engine:
    """Runs strategies on events and turns their candidates into bundles at the relays."""

    def __init__(
        self,
        *,
        state: ChainState,
        decoder: Decoder,
        strategies: Sequence[Strategy],
        policies: Mapping[str, BidPolicy],
        simulator: Simulator,
        signer: LocalSigner,
        relays: MultiRelay | None,
        ledger: Ledger,
        tracker: InclusionTracker,
        rpc: Any,
        executor: str,
        weth: str,
        chain_id: int,
        target_blocks: int = 3,
        dry_run: bool = False,
        latency: LatencyBook | None = None,
        on_block_hooks: Sequence[Callable[[NewHead, StateChanges], Any]] = (),
        claim: Callable[[str], Awaitable[bool]] | None = None,
        shared: SharedBook | None = None,
        history: int = 200,
    ) -> None:
        self.state = state
        self.decoder = decoder
        self.strategies = list(strategies)
        self.policies = dict(policies)
        self.simulator = simulator
        self.signer = signer
        self.relays = relays
        self.ledger = ledger
        self.tracker = tracker
        self.rpc = rpc
        self.executor = executor.lower()
        self.weth = weth.lower()
        self.chain_id = chain_id
        self.target_blocks = target_blocks
        self.dry_run = dry_run or relays is None
        self.latency = latency or LatencyBook()
        self.on_block_hooks = list(on_block_hooks)
        # With several instances, an effect's key is claimed in a shared store before sending.
        self.claim = claim
        self.shared = shared
        self.counters: Counter[str] = Counter()
        self.opportunities: deque[OpportunityRow] = deque(maxlen=history)
        self.verdicts: deque[tuple[Candidate, Verdict]] = deque(maxlen=history)
        self.head: BlockHeader | None = None
        self.bundle_nonce: int | None = None
        self.processed_block = 0  # the last head whose processing finished
        self._gas: dict[tuple[str, int], int] = {}

    # ------------------------------------------------------------------ events

    async def on_pending(self, tx: PendingTx, intent: Intent | None = None) -> list[Verdict]:
        """A pending tx (decoded already, or decoded here): state after it -> strategies ->
        each candidate verified and sent."""
        return [await self.execute(c) for c in self.candidates_for(tx, intent)]

    def candidates_for(self, tx: PendingTx, intent: Intent | None = None) -> list[Candidate]:
        """What the strategies make of a pending tx, from the state after it (no I/O: callers
        that execute candidates concurrently still consider txs in arrival order)."""
        self.counters["pending"] += 1
        start = time.monotonic_ns()
        if intent is None:
            intent = self.decoder.decode(tx.to, tx.input, tx.value)
            self.latency.record_ns("decode", start, time.monotonic_ns())
        state_start = time.monotonic_ns()
        effect = self.state.after(tx.to, intent, tx.input)
        self.latency.record_ns("state", state_start, time.monotonic_ns())
        if effect.empty:
            return []
        self.counters["pending_relevant"] += 1
        if tx.raw is None:
            raw = signed_envelope(tx)
            if raw is None:
                self.counters["no_envelope"] += 1
            else:
                tx = replace(tx, raw=raw)
        context = PendingContext(tx, effect, self.state.block_number + 1)
        strategy_start = time.monotonic_ns()
        candidates = [c for s in self.strategies for c in s.on_pending(context, self.state)]
        self.latency.record_ns("strategy", strategy_start, time.monotonic_ns())
        return candidates

    async def on_head(self, head: NewHead) -> list[Verdict]:
        """A new block: apply its logs, move the fork, settle bundles, block strategies."""
        if head.number > self.state.block_number:
            changes = self.state.apply_block(head.number, head.hash, head.logs)
        else:
            # The block the state was loaded at (a head stream announces the current head when it
            # connects): its logs are in already, and lending events are deltas.
            changes = StateChanges()
        self.counters["blocks"] += 1
        self.counters["malformed_logs"] += changes.malformed
        self.head = head.header
        await self.simulator.on_new_head(head.number)
        self.bundle_nonce = int(
            await self.rpc.call("eth_getTransactionCount", [self.signer.address, "latest"]), 16
        )
        report = await self.tracker.on_block(self.rpc, head.number)
        for settled in report.settled:
            outcome = settled.settlement
            self.counters[f"bundles_{outcome.status.value}"] += 1
            await self._share(
                "record_outcome", outcome.status.value, outcome.realized_profit_wei or 0
            )
        for hook in self.on_block_hooks:
            hook(head, changes)
        context = BlockContext(head.header, changes, head.number + 1)
        candidates = [c for s in self.strategies for c in s.on_block(context, self.state)]
        verdicts = [await self.execute(c) for c in candidates]
        self.processed_block = head.number
        return verdicts

    def on_reorg(self, reorg: Reorg) -> None:
        """Roll the state back to the common ancestor; the new branch's heads follow."""
        self.counters["reorgs"] += 1
        if reorg.common_ancestor is None or not self.state.can_roll_back_to(reorg.common_ancestor):
            raise RuntimeError(
                f"reorg of depth {reorg.depth} is deeper than the state's history: reload needed"
            )
        self.state.rollback_to(reorg.common_ancestor)

    # ------------------------------------------------------------------ candidates

    def _gas_estimate(self, candidate: Candidate) -> tuple[int, int]:
        """(gas to price the bid with, gas to derive the signed limit from)."""
        shape = action_shape(candidate)
        measured = self._gas.get(shape)
        if measured is not None:
            return measured, measured
        return GAS_BASE[shape[0]] + GAS_PER_SWAP * shape[1], UNMEASURED_GAS_LIMIT_BASIS

    def _note(self, candidate: Candidate, verdict: Verdict) -> Verdict:
        self.counters[f"candidates_{verdict.outcome}"] += 1
        if verdict.outcome == "dropped":
            self.counters[f"dropped_{verdict.reason.split(':')[0]}"] += 1
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
        if verdict.outcome == "dropped":
            self.ledger.mark_candidate(candidate.key, "dropped", verdict.reason)
        self.verdicts.append((candidate, verdict))
        return verdict

    def _policy(self, candidate: Candidate) -> BidPolicy:
        return self.policies.get(candidate.strategy) or self.policies["default"]

    async def execute(self, candidate: Candidate) -> Verdict:
        """Verify on the fork, bid, sign and send one candidate (at most once per key)."""
        if self.head is None or self.bundle_nonce is None:
            self.counters["dropped_no_head"] += 1
            return Verdict("dropped", "no_head: no block seen yet")
        if not self.ledger.record_candidate(candidate) or (
            self.claim is not None and not await self.claim(candidate.key)
        ):
            self.counters["candidates_duplicate"] += 1
            return Verdict("duplicate")
        gas, limit_basis = self._gas_estimate(candidate)
        base_fee = next_base_fee(self.head)
        bid = self._policy(candidate).price(
            candidate.expected_profit_wei, gas, base_fee, self.target_blocks
        )
        if isinstance(bid, Rejected):
            return self._note(candidate, Verdict("dropped", f"{bid.reason.value}: expected"))
        sign_start = time.monotonic_ns()
        try:
            call = executor_call(self.executor, candidate, bid, limit_basis, self.weth)
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
        problem, simulation = await self._verify(candidate, plan, base_fee)
        if problem is not None:
            return self._note(candidate, Verdict("dropped", problem, plan, simulation))
        self.ledger.record_bundles(plan)
        if self.dry_run:
            self.ledger.mark_candidate(candidate.key, "simulated")
            return self._note(candidate, Verdict("simulated", "dry run", plan, simulation))
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
        for block_number, outcomes_for_block in answers.items():
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
        await self._share("record_sent", len(plan.bundles))
        return self._note(candidate, Verdict("sent", "", plan, simulation))

    async def _share(self, method: str, *args: Any) -> None:
        """Tell the shared book; its outage is counted, never stops the pipeline."""
        if self.shared is None:
            return
        try:
            await getattr(self.shared, method)(*args)
        except Exception as error:  # a Redis outage must not take the engine down
            self.counters["shared_ledger_errors"] += 1
            log.warning("shared ledger: %s", error)

    async def _verify(
        self, candidate: Candidate, plan: BundlePlan, base_fee: int
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
            who = "ours" if failed == len(result.txs) - 1 else f"backrun tx {failed}"
            return f"reverts: {who}: {result.txs[failed].revert_reason}", result
        self._gas[action_shape(candidate)] = ours.gas_used
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
            self.counters["profit_mismatch"] += 1
        return None, result
