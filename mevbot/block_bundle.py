"""The one bundle the bot sends for a block: every non-conflicting candidate, in arrival order.

Candidates for one block share the executor key's nonce, so sent as separate bundles at most
one of them could land. A :class:`BlockBundle` holds them together instead: each member's
victims (those not already in the bundle) and then its executor call, signed at the next nonce,
so the whole set lands or none of it. A candidate conflicts with the bundle when it touches a
pool or position a member touches (its expected state would be wrong behind that member). Pure
values and bookkeeping: signing, simulating and sending are the submitter's.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from chain.types import SignedTx
from execution.bids import Bid
from execution.bundler import BundlePlan
from execution.dialects import Replacement
from simulation.candidates import Candidate


def overlapping(a: Candidate, b: Candidate) -> bool:
    """Whether ``a`` and ``b`` touch a pool or position in common (one's expected state would
    be wrong behind the other)."""
    return not (
        set(a.action.pools).isdisjoint(b.action.pools)
        and set(a.action.positions).isdisjoint(b.action.positions)
    )


@dataclass(frozen=True, slots=True)
class Member:
    """One candidate in the block's bundle: its bid, the gas limit it is signed with, and its
    plan (its own victims and executor tx, as the ledger follows it)."""

    candidate: Candidate
    bid: Bid
    gas_limit: int
    plan: BundlePlan

    @property
    def txs(self) -> tuple[SignedTx, ...]:
        return self.plan.bundles[0].txs


@dataclass
class BlockBundle:
    """The members for blocks ``first_block`` .. ``last_block``, the executor's simulated balance
    changes of the whole set, and per target block the replacement id last sent."""

    first_block: int
    last_block: int
    members: list[Member] = field(default_factory=list)
    diffs: Mapping[str, int] = field(default_factory=dict)
    replacements: dict[int, Replacement] = field(default_factory=dict)

    def included_victims(self) -> set[str]:
        return {tx.hash for m in self.members for tx in m.candidate.backrun}

    def txs(self, extra: Iterable[Member] = ()) -> list[SignedTx]:
        """Every tx of the bundle in order (with ``extra`` members after the others)."""
        return [tx for member in (*self.members, *extra) for tx in member.txs]

    def owner_of(self, tx_index: int, extra: Iterable[Member] = ()) -> tuple[int, bool]:
        """(member index, whether the tx is the member's own executor call) of a tx index."""
        start = 0
        for index, member in enumerate((*self.members, *extra)):
            end = start + len(member.txs)
            if tx_index < end:
                return index, tx_index == end - 1
            start = end
        raise IndexError(f"no member holds tx {tx_index}")

    def next_replacement(self, block: int) -> Replacement:
        """The replacement id for ``block``'s next send: a new uuid, or the next sequence."""
        known = self.replacements.get(block)
        return Replacement.new() if known is None else known.next()
