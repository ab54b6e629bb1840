"""The Strategy protocol: (event, state) -> candidates, pure wherever possible.

A strategy sees a pending transaction (already decoded, with the state it would leave) or a new
block (with what the block changed), reads :class:`~simulation.state.ChainState`, and returns
:class:`~simulation.candidates.Candidate` values. It sends nothing and signs nothing; it never
front-runs or sandwiches: every candidate lands *after* the transactions it reacts to.
Because it is a function of its inputs, replaying a journal gives the same candidates.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from chain.types import BlockHeader, PendingTx
from simulation.candidates import Candidate
from simulation.state import ChainState, PendingEffect, StateChanges


@dataclass(frozen=True, slots=True)
class PendingContext:
    """A pending tx as strategies see it: the tx (with its raw envelope), what it does to the
    local state, and the block a backrun would target."""

    tx: PendingTx
    effect: PendingEffect
    target_block: int


@dataclass(frozen=True, slots=True)
class BlockContext:
    """A new head as strategies see it: the header, what its logs changed, the next block."""

    header: BlockHeader
    changes: StateChanges
    target_block: int


class Strategy(Protocol):
    """What every strategy offers; both hooks must be fast (they run on the hot path)."""

    name: str

    def on_pending(self, context: PendingContext, state: ChainState) -> list[Candidate]: ...

    def on_block(self, context: BlockContext, state: ChainState) -> list[Candidate]: ...
