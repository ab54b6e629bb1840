"""What the bot counts, as one typed record: the live :class:`Counts` and its frozen :class:`Tally`.

One :class:`Counts` belongs to one pipeline. The engine counts the pending txs and blocks it
handled; the submitter counts every candidate's verdict by strategy (a drop also by its reason:
the part of ``Verdict.reason`` before the first ':'), every bundle a relay accepted (by relay),
and every bundle the inclusion tracker settled (by status and by the relays that had accepted
it) with the wei it realized, the gas it paid and the coinbase tip it gave.

:meth:`Counts.tally` freezes those together with the counts other parts keep themselves (keeper
actions per job, errors per component) into a :class:`Tally`, the record that the status, the
dashboard and ``/metrics`` read. Wei stay exact integers here; realized profit is two counts
(gains and losses) so that each only grows, as Prometheus counters must.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass, field

from execution.ledger import Settlement

# A strategy name for bundles settled that this process did not send (a ledger from before a
# restart): their strategy is not known here.
UNKNOWN_STRATEGY = "unknown"


def reason_kind(reason: str) -> str:
    """The counted kind of a verdict's reason: ``reverts`` of ``reverts: ours: ...``."""
    return reason.split(":", 1)[0].strip() or "unspecified"


@dataclass(frozen=True, slots=True)
class Count:
    """One labelled count; ``labels`` in the order its family names them."""

    labels: tuple[str, ...]
    value: int


def total(counts: Iterable[Count], *labels: str | None) -> int:
    """The sum of the counts whose leading labels equal ``labels`` (None matches any)."""
    return sum(
        count.value
        for count in counts
        if all(want in (None, have) for want, have in zip(labels, count.labels, strict=False))
    )


def _frozen(counter: Mapping[Hashable, int]) -> tuple[Count, ...]:
    def labels(key: Hashable) -> tuple[str, ...]:
        return tuple(key) if isinstance(key, tuple) else (str(key),)

    return tuple(Count(labels(key), value) for key, value in sorted(counter.items()) if value)


@dataclass(frozen=True, slots=True)
class Tally:
    """Every count of the bot at one instant (see the module docstring for who counts what)."""

    pending: int = 0  # pending txs the engine considered
    pending_relevant: int = 0  # ... that changed the tracked state
    pending_reverting: int = 0  # ... swaps through tracked pools that would revert on it
    no_envelope: int = 0  # ... whose signed envelope could not be rebuilt
    blocks: int = 0
    malformed_logs: int = 0
    reorgs: int = 0
    profit_mismatches: int = 0  # simulated gain differed from the strategy's expectation
    members_dropped: int = 0  # block-bundle members that no longer joined at a new head
    members_displaced: int = 0  # ... pushed out by a conflicting candidate worth more
    bundles_carried: int = 0  # block bundles sent again for the next block at a new head
    bundles_cancelled: int = 0  # (target block) bundles cancelled at the relays, left empty
    opportunities: tuple[Count, ...] = ()  # (strategy, verdict)
    dropped: tuple[Count, ...] = ()  # (strategy, reason)
    bundles: tuple[Count, ...] = ()  # (strategy, status): sent, then how each target block settled
    relay_bundles: tuple[Count, ...] = ()  # (relay, status)
    realized_profit_wei: tuple[Count, ...] = ()  # (strategy,): settled gains
    realized_loss_wei: tuple[Count, ...] = ()  # (strategy,): settled losses, as positive wei
    gas_paid_wei: tuple[Count, ...] = ()  # (strategy,)
    tips_paid_wei: tuple[Count, ...] = ()  # (strategy,): coinbase transfers
    landed_by_venue: tuple[Count, ...] = ()  # (venue,): landed bundles by the pools they traded
    keeper_actions: tuple[Count, ...] = ()  # (job,)
    errors: tuple[Count, ...] = ()  # (component,)

    def candidates(self, verdict: str | None = None) -> int:
        """Candidates of every strategy with ``verdict`` (any verdict when None)."""
        return total(self.opportunities, None, verdict)

    def bundles_settled(self) -> int:
        """Bundles the inclusion tracker settled, whatever their outcome."""
        return total(self.bundles) - total(self.bundles, None, "sent")

    @property
    def net_profit_wei(self) -> int:
        """Realized profit, losses subtracted."""
        return total(self.realized_profit_wei) - total(self.realized_loss_wei)


@dataclass
class Counts:
    """The live counts of one pipeline; :meth:`tally` freezes them."""

    pending: int = 0
    pending_relevant: int = 0
    pending_reverting: int = 0
    no_envelope: int = 0
    blocks: int = 0
    malformed_logs: int = 0
    reorgs: int = 0
    profit_mismatches: int = 0
    members_dropped: int = 0
    members_displaced: int = 0
    bundles_carried: int = 0
    bundles_cancelled: int = 0
    shared_ledger_errors: int = 0
    opportunities: Counter[tuple[str, str]] = field(default_factory=Counter)
    dropped: Counter[tuple[str, str]] = field(default_factory=Counter)
    bundles: Counter[tuple[str, str]] = field(default_factory=Counter)
    relay_bundles: Counter[tuple[str, str]] = field(default_factory=Counter)
    realized_profit_wei: Counter[str] = field(default_factory=Counter)
    realized_loss_wei: Counter[str] = field(default_factory=Counter)
    gas_paid_wei: Counter[str] = field(default_factory=Counter)
    tips_paid_wei: Counter[str] = field(default_factory=Counter)
    landed_by_venue: Counter[str] = field(default_factory=Counter)

    def verdict(self, strategy: str, outcome: str, reason: str = "") -> None:
        """A candidate's verdict: ``sent``, ``simulated``, ``duplicate`` or ``dropped``."""
        self.opportunities[strategy, outcome] += 1
        if outcome == "dropped":
            self.dropped[strategy, reason_kind(reason)] += 1

    def sent(self, strategy: str, relays: Iterable[str]) -> None:
        """One bundle (one target block) accepted by ``relays`` (at least one)."""
        self.bundles[strategy, "sent"] += 1
        for relay in relays:
            self.relay_bundles[relay, "sent"] += 1

    def settled(self, settlement: Settlement, strategy: str, relays: Iterable[str]) -> None:
        """One bundle's outcome at its target block, with what it realized and paid."""
        status = settlement.status.value
        self.bundles[strategy, status] += 1
        for relay in relays:
            self.relay_bundles[relay, status] += 1
        realized = settlement.realized_profit_wei or 0
        if realized > 0:
            self.realized_profit_wei[strategy] += realized
        elif realized < 0:
            self.realized_loss_wei[strategy] -= realized
        self.gas_paid_wei[strategy] += settlement.gas_cost_wei or 0
        self.tips_paid_wei[strategy] += settlement.coinbase_paid_wei or 0

    def tally(
        self,
        *,
        keeper_actions: Mapping[str, int] | None = None,
        errors: Mapping[str, int] | None = None,
    ) -> Tally:
        """A frozen copy, with the counts kept elsewhere: keeper actions per job and errors
        per component (this pipeline's shared-ledger errors are added as ``shared-ledger``)."""
        all_errors = Counter(errors or {})
        all_errors["shared-ledger"] += self.shared_ledger_errors
        return Tally(
            pending=self.pending,
            pending_relevant=self.pending_relevant,
            pending_reverting=self.pending_reverting,
            no_envelope=self.no_envelope,
            blocks=self.blocks,
            malformed_logs=self.malformed_logs,
            reorgs=self.reorgs,
            profit_mismatches=self.profit_mismatches,
            members_dropped=self.members_dropped,
            members_displaced=self.members_displaced,
            bundles_carried=self.bundles_carried,
            bundles_cancelled=self.bundles_cancelled,
            opportunities=_frozen(self.opportunities),
            dropped=_frozen(self.dropped),
            bundles=_frozen(self.bundles),
            relay_bundles=_frozen(self.relay_bundles),
            realized_profit_wei=_frozen(self.realized_profit_wei),
            realized_loss_wei=_frozen(self.realized_loss_wei),
            gas_paid_wei=_frozen(self.gas_paid_wei),
            tips_paid_wei=_frozen(self.tips_paid_wei),
            landed_by_venue=_frozen(self.landed_by_venue),
            keeper_actions=_frozen(keeper_actions or {}),
            errors=_frozen(all_errors),
        )
