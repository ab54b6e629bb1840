"""What strategies hand to the app: an action for the Executor contract and the txs it backruns.

A :class:`Candidate` is a value: the executor action (what to call, sized by the strategy's exact
math), the other people's transactions that must land right before it (the pending swap or the
oracle update it backruns, with their signed envelopes), the expected profit and the block it is
for. Verifying it on the fork, pricing the bid, signing and sending belong to the app's
submitter. The idempotency ``key`` names the effect, so a restart never sends it twice.
"""

from __future__ import annotations

from dataclasses import dataclass

from chain.types import PendingTx
from simulation.actions import Action


@dataclass(frozen=True, slots=True)
class Candidate:
    """One opportunity, ready to verify.

    ``expected_profit`` is in units of ``profit_token`` (the arbitrage's start token, or the
    liquidation's debt asset) before gas and bid; ``expected_profit_wei`` is the same in ETH wei
    at the current feed prices (what the bid policy and the minimum-profit check compare).
    ``backrun`` holds the txs that must land immediately before ours, in order (empty for a
    block-state arbitrage or a liquidation of an already unhealthy position).
    """

    strategy: str
    key: str
    action: Action
    backrun: tuple[PendingTx, ...]
    target_block: int
    profit_token: str
    expected_profit: int
    expected_profit_wei: int
    detected_at: int = 0  # time.monotonic_ns() when the trigger was received

    @property
    def trigger_hash(self) -> str | None:
        return self.backrun[0].hash if self.backrun else None
