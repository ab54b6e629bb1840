"""One factory for the pipeline: strategies, bid policies, submitter and engine, as the live bot
and replay both build them (replay differs only in its collaborators: a pinned RPC view, no
relays, an in-memory ledger)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from execution.bids import BidPolicy
from execution.inclusion import InclusionTracker
from execution.ledger import Ledger
from execution.relay import MultiRelay
from execution.signer import LocalSigner
from mevbot.config import Config
from mevbot.counters import Counts
from mevbot.deployment import Deployment
from mevbot.engine import Engine
from mevbot.latency import LatencyBook
from mevbot.submitter import SharedBook, Submitter
from simulation.simulator import Simulator
from simulation.state import ChainState
from strategies.backrun import BackrunArbitrage
from strategies.base import Strategy
from strategies.liquidation import LiquidationBackrun
from watcher.decode import Decoder


def build_strategies(config: Config, deployment: Deployment, state: ChainState) -> list[Strategy]:
    """The strategies the config enables."""
    cfg = config.strategies
    found: list[Strategy] = []
    if cfg.backrun.enabled:
        found.append(
            BackrunArbitrage.for_state(
                "backrun",
                state,
                start_token=deployment.weth,
                min_expected_profit_wei=max(1, cfg.backrun.min_profit_wei),
            )
        )
    if cfg.liquidation.enabled and deployment.lending_pool is not None:
        found.append(
            LiquidationBackrun(
                "liquidation",
                weth=deployment.weth,
                min_expected_profit_wei=max(1, cfg.liquidation.min_profit_wei),
            )
        )
    return found


def bid_policies(config: Config) -> dict[str, BidPolicy]:
    """Bid policy per strategy name (``default`` for any other)."""
    cfg = config.strategies
    backrun = BidPolicy(cfg.backrun.coinbase_share_bps, cfg.backrun.min_profit_wei)
    liquidation = BidPolicy(cfg.liquidation.coinbase_share_bps, cfg.liquidation.min_profit_wei)
    return {"default": backrun, "backrun": backrun, "liquidation": liquidation}


def build_engine(
    config: Config,
    deployment: Deployment,
    *,
    state: ChainState,
    decoder: Decoder,
    strategies: Sequence[Strategy],
    simulator: Simulator,
    signer: LocalSigner,
    relays: MultiRelay | None,
    ledger: Ledger,
    rpc: Any,
    latency: LatencyBook,
    claim: Callable[[str], Awaitable[bool]] | None = None,
    shared: SharedBook | None = None,
) -> Engine:
    """The engine and its submitter over the given collaborators."""
    counts = Counts()
    submitter = Submitter(
        simulator=simulator,
        signer=signer,
        relays=relays,
        ledger=ledger,
        tracker=InclusionTracker(ledger, deployment.executor, deployment.weth),
        policies=bid_policies(config),
        rpc=rpc,
        executor=deployment.executor,
        weth=deployment.weth,
        chain_id=deployment.chain_id,
        counts=counts,
        latency=latency,
        target_blocks=config.strategies.target_blocks,
        dry_run=config.dry_run,
        claim=claim,
        shared=shared,
    )
    return Engine(
        state=state,
        decoder=decoder,
        strategies=strategies,
        simulator=simulator,
        submitter=submitter,
        counts=counts,
        latency=latency,
    )
