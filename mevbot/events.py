"""The bot's structured events: one log record per verdict, bundle sent, and bundle settled.

Each record carries ``extra=event(kind, ...)`` (see :func:`mevbot.logfmt.event`), so that
``--no-tui`` shows it as one ``kind=...`` line (or JSON object) with its fields; amounts are exact
decimal ETH. Repeats of a key acted on already (``duplicate``) are logged at DEBUG only.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING

from execution.bundler import BundlePlan
from execution.inclusion import Settled
from mevbot.logfmt import eth, event
from simulation.candidates import Candidate

if TYPE_CHECKING:
    from mevbot.submitter import Verdict

log = logging.getLogger("mevbot.submitter")


def _eth(wei: int | None) -> str | None:
    return None if wei is None else eth(wei)


def verdict(candidate: Candidate, verdict: Verdict) -> None:
    """``kind=opportunity``: what became of a candidate, and why."""
    log.log(
        logging.DEBUG if verdict.outcome == "duplicate" else logging.INFO,
        "%s candidate %s %s",
        candidate.strategy,
        candidate.key,
        verdict.outcome,
        extra=event(
            "opportunity",
            strategy=candidate.strategy,
            verdict=verdict.outcome,
            reason=verdict.reason,
            target_block=candidate.target_block,
            expected_profit_eth=eth(candidate.expected_profit_wei),
            trigger=candidate.trigger_hash,
        ),
    )


def sent(candidate: Candidate, plan: BundlePlan, relays: Iterable[str]) -> None:
    """``kind=bundle_sent``: the relays that accepted a bundle, its tip and expected net."""
    first, last = plan.bundles[0].block_number, plan.bundles[-1].block_number
    log.info(
        "bundle %s sent for blocks %d-%d",
        plan.bundle_hash,
        first,
        last,
        extra=event(
            "bundle_sent",
            strategy=candidate.strategy,
            bundle=plan.bundle_hash,
            target_block=first,
            last_block=last,
            relays=",".join(sorted(relays)),
            coinbase_eth=eth(plan.bid.coinbase_wei),
            expected_net_eth=eth(plan.bid.net_profit_wei),
            trigger=candidate.trigger_hash,
        ),
    )


def settled(settled: Settled, strategy: str) -> None:
    """``kind=bundle_<status>``: how a bundle settled at its target block, with what it realized
    and paid."""
    outcome = settled.settlement
    status = outcome.status.value
    log.info(
        "bundle %s %s at block %d",
        settled.bundle_hash,
        status,
        settled.target_block,
        extra=event(
            f"bundle_{status}",
            strategy=strategy,
            bundle=settled.bundle_hash,
            target_block=settled.target_block,
            included_block=outcome.included_block,
            profit_eth=_eth(outcome.realized_profit_wei),
            gas_eth=_eth(outcome.gas_cost_wei),
            tip_eth=_eth(outcome.coinbase_paid_wei),
            detail=outcome.detail,
        ),
    )
