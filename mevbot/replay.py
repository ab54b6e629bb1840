"""Replay a recorded journal through the bot's strategies on a fork, and list the candidates.

The journal (:mod:`watcher.journal`) is the source of truth for what the watcher received. The
*start block* is the journal's first head. The replay loads the local state from the upstream
node as of that block (so that head's own logs are not applied again), starts the fork
simulator there, and feeds the events in
recorded order through the same :class:`~mevbot.engine.Engine` the live bot runs, in dry run:

- a head applies the journal's own logs to the state (logs are never fetched again), moves the
  fork to that block number on the upstream (``anvil_reset``), and runs the block strategies;
- a pending tx goes through the engine's pending path (decode, state after it, strategies, the
  exact signed bundle simulated on the fork), never sent anywhere;
- a reorg rolls the state back as live; MEV-Share hints are counted and skipped (the strategies
  take none).

Reads the engine makes at "the latest block" (the executor's nonce, the inclusion tracker) go
to the upstream *as of the head being replayed* (:class:`BlockView`), and the ledger is a fresh
in-memory one, so the same journal gives the same candidates on every run: nothing depends on
the wall clock (block timestamps and base fees come from the recorded headers, signatures are
RFC 6979 deterministic). The upstream must still serve the journal's blocks and their state (an
archive node, or the devnet that was recorded). Heads that a reorg later replaced are no longer
on the upstream's chain: the fork then holds the canonical block of that number, and the
summary counts them as ``off_chain_heads``. Simulation always runs on the anvil fork (whatever
``simulation.backend`` says): the fork at the start block is what makes the replay exact.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chain.errors import ChainError
from chain.rpc import Rpc, connect, eth_get_block
from chain.rpc_codec import BatchCall, Params
from chain.types import PendingTx
from execution.ledger import Ledger
from execution.signer import LocalSigner
from mevbot.config import Config
from mevbot.deployment import Deployment, chain_state
from mevbot.latency import LatencyBook
from mevbot.pipeline import build_engine, build_strategies
from mevbot.submitter import Verdict
from simulation.actions import Action
from simulation.candidates import Candidate
from simulation.fork import AnvilForkSimulator
from simulation.loader import LoadError, load_feeds, load_lending, load_pools
from simulation.simulator import SimulationError
from simulation.state import ChainState
from strategies.base import BlockContext, PendingContext, Strategy
from watcher.decode import Decoder
from watcher.events import Event, NewHead, Reorg
from watcher.journal import JournalTruncated, journal_lines

_LATEST_TAGS = frozenset({"latest", "pending"})


class ReplayError(RuntimeError):
    """The replay cannot go on: which journal line (0 for the setup) and why."""

    def __init__(self, line_number: int, reason: str) -> None:
        where = f"line {line_number}: " if line_number else ""
        super().__init__(f"{where}{reason}")
        self.line_number = line_number
        self.reason = reason


@dataclass(frozen=True, slots=True)
class ReplayCandidate:
    """One candidate a strategy proposed during the replay, and what the dry run made of it.

    ``line`` is the journal line of the event that produced it (a pending tx or a head);
    ``verdict`` is ``simulated`` (would have been sent), ``dropped`` (``reason`` says why) or
    ``duplicate`` (its key already acted earlier in the journal); ``gas_used`` is our tx's gas
    on the fork when it was simulated.
    """

    line: int
    strategy: str
    key: str
    trigger: str | None
    target_block: int
    action: Action
    profit_token: str
    expected_profit: int
    expected_profit_wei: int
    verdict: str
    reason: str
    gas_used: int | None

    def to_json(self) -> dict[str, Any]:
        """JSON-ready: integers that may exceed 2**53 are decimal strings."""
        return {
            "line": self.line,
            "strategy": self.strategy,
            "key": self.key,
            "trigger": self.trigger,
            "target_block": self.target_block,
            "action": self.action.to_json(),
            "profit_token": self.profit_token,
            "expected_profit": str(self.expected_profit),
            "expected_profit_wei": str(self.expected_profit_wei),
            "verdict": self.verdict,
            "reason": self.reason,
            "gas_used": self.gas_used,
        }


@dataclass(frozen=True, slots=True)
class ReplayReport:
    """The candidates in the order they were proposed, and what was replayed."""

    journal: str
    start_block: int
    last_block: int
    events: Mapping[str, int]  # kind -> count (tx, head, reorg, hint)
    candidates: tuple[ReplayCandidate, ...]
    off_chain_heads: int
    truncated_line: int | None = None  # the journal's last line, cut short: not replayed

    def by_strategy_and_verdict(self) -> dict[tuple[str, str], int]:
        counts = Counter((c.strategy, c.verdict) for c in self.candidates)
        return dict(sorted(counts.items()))


# ---------------------------------------------------------------------- journal


def journal_events(path: str | Path) -> Iterator[tuple[int, Event]]:
    """(line number, event) of every complete line; a last line cut short ends the events
    (:func:`scan_journal` has reported it)."""
    try:
        yield from journal_lines(path)
    except JournalTruncated:
        return


@dataclass(frozen=True, slots=True)
class JournalScan:
    """What a full read of the journal found: counts by kind, the first head, and the line cut
    short at the end, if any (the recorder stopped mid-write)."""

    events: Mapping[str, int]
    first_head: NewHead
    truncated_line: int | None = None


def _kind(event: Event) -> str:
    if isinstance(event, PendingTx):
        return "tx"
    if isinstance(event, NewHead):
        return "head"
    if isinstance(event, Reorg):
        return "reorg"
    return "hint"


def scan_journal(path: str | Path) -> JournalScan:
    """Read every line once before anything starts, so a bad line fails fast with its number."""
    counts: Counter[str] = Counter()
    first_head: NewHead | None = None
    truncated: int | None = None
    try:
        for _, event in journal_lines(path):
            counts[_kind(event)] += 1
            if first_head is None and isinstance(event, NewHead):
                first_head = event
    except JournalTruncated as cut:
        truncated = cut.line_number
    except OSError as error:
        raise ReplayError(0, f"cannot read the journal {path}: {error.strerror}") from None
    if first_head is None:
        raise ReplayError(0, f"{path} holds no head: a replay starts at the first head")
    return JournalScan(dict(counts), first_head, truncated)


# ---------------------------------------------------------------------- wiring


class BlockView:
    """The upstream node as of one block: ``latest``/``pending`` block tags read at ``block``.

    The engine reads the executor's nonce "at the latest block" on every head; replayed, that
    must be the head being replayed, not whatever the upstream's tip is today.
    """

    def __init__(self, rpc: Rpc, block: int) -> None:
        self.rpc = rpc
        self.block = block

    @property
    def default_timeout(self) -> float:
        return self.rpc.default_timeout

    def _pin(self, params: Params) -> list[Any]:
        tag = hex(self.block)
        return [tag if isinstance(p, str) and p in _LATEST_TAGS else p for p in params]

    async def call(self, method: str, params: Params = (), *, timeout: float | None = None) -> Any:
        return await self.rpc.call(method, self._pin(params), timeout=timeout)

    async def batch(self, calls: Sequence[BatchCall], *, timeout: float | None = None) -> list[Any]:
        pinned = [(method, self._pin(params)) for method, params in calls]
        return await self.rpc.batch(pinned, timeout=timeout)


class _Noting:
    """A strategy whose candidates are also appended to ``sink``, in the order it proposed them:
    the engine returns one verdict per candidate in that order, which pairs them up."""

    def __init__(self, strategy: Strategy, sink: list[Candidate]) -> None:
        self.strategy = strategy
        self.name = strategy.name
        self.sink = sink

    def on_pending(self, context: PendingContext, state: ChainState) -> list[Candidate]:
        found = self.strategy.on_pending(context, state)
        self.sink.extend(found)
        return found

    def on_block(self, context: BlockContext, state: ChainState) -> list[Candidate]:
        found = self.strategy.on_block(context, state)
        self.sink.extend(found)
        return found


def _replayed(line: int, candidate: Candidate, verdict: Verdict) -> ReplayCandidate:
    simulation = verdict.simulation
    return ReplayCandidate(
        line=line,
        strategy=candidate.strategy,
        key=candidate.key,
        trigger=candidate.trigger_hash,
        target_block=candidate.target_block,
        action=candidate.action,
        profit_token=candidate.profit_token,
        expected_profit=candidate.expected_profit,
        expected_profit_wei=candidate.expected_profit_wei,
        verdict=verdict.outcome,
        reason=verdict.reason,
        gas_used=None if simulation is None or not simulation.txs else simulation.txs[-1].gas_used,
    )


async def _load_state(view: BlockView, deployment: Deployment, start: int) -> ChainState:
    state = chain_state(deployment)
    await load_pools(view, state)
    if deployment.lending_pool is not None:
        await load_lending(view, state, from_block=deployment.lending_from_block, to_block=start)
    await load_feeds(view, state, state.feed_assets)
    return state


async def _check_start(view: BlockView, deployment: Deployment, scan: JournalScan) -> str:
    """The start block's hash, after checking the upstream is the journal's chain."""
    start = scan.first_head.number
    chain_id = int(await view.call("eth_chainId"), 16)
    if chain_id != deployment.chain_id:
        raise ReplayError(
            0, f"the upstream is chain {chain_id}, the deployment {deployment.chain_id}"
        )
    block = await eth_get_block(view, hex(start))
    if block is None:
        raise ReplayError(0, f"the upstream does not have block {start} (the start block)")
    if block.hash != scan.first_head.hash:
        raise ReplayError(
            0,
            f"the upstream's block {start} is {block.hash}, but the journal's first head is "
            f"{scan.first_head.hash}: not the chain that was recorded",
        )
    return block.hash


async def replay_journal(
    path: str | Path,
    *,
    upstream_url: str,
    deployment: Deployment,
    config: Config,
    signer: LocalSigner,
    call_timeout: float = 10.0,
) -> ReplayReport:
    """Replay ``path`` against ``upstream_url`` (which must still serve its blocks).

    ``signer`` is the executor owner's key (the Executor obeys only it, so the simulated bundles
    must be signed by it); nothing is sent. Raises :class:`~watcher.journal.JournalError` for an
    unreadable line (before anything starts) and :class:`ReplayError` when the upstream or the
    fork cannot serve the replay.
    """
    scan = scan_journal(path)
    # State as of the first head (the bot's own starting point when its head stream announced
    # the head it loaded at); the engine does not apply that head's logs a second time.
    start = scan.first_head.number
    try:
        upstream = await connect(upstream_url, timeout=call_timeout)
    except ChainError as error:
        raise ReplayError(0, f"upstream {upstream_url} unreachable: {error}") from None
    simulator = AnvilForkSimulator(upstream_url, call_timeout=call_timeout)
    ledger = Ledger.open(":memory:")
    try:
        view = BlockView(upstream, start)
        try:
            start_hash = await _check_start(view, deployment, scan)
            state = await _load_state(view, deployment, start)
            await simulator.on_new_head(start)  # launches the fork at the start block
        except (ChainError, LoadError, SimulationError) as error:
            raise ReplayError(0, f"setting up at block {start}: {error}") from None
        state.block_number, state.block_hash = start, start_hash
        proposed: list[Candidate] = []
        strategies = [_Noting(s, proposed) for s in build_strategies(config, deployment, state)]
        engine = build_engine(
            config.model_copy(update={"dry_run": True}),
            deployment,
            state=state,
            decoder=Decoder(
                deployment.routers,
                pairs=state.pools.__contains__,
                feeds=state.aggregators.__contains__,
            ),
            strategies=strategies,
            simulator=simulator,
            signer=signer,
            relays=None,
            ledger=ledger,
            rpc=view,
            latency=LatencyBook(),
        )
        results: list[ReplayCandidate] = []
        off_chain = 0
        for line, event in journal_events(path):
            proposed.clear()
            try:
                if isinstance(event, NewHead):
                    view.block = event.number
                    verdicts = await engine.on_head(event)
                    off_chain += simulator.head.hash != event.hash
                elif isinstance(event, PendingTx):
                    verdicts = await engine.on_pending(event)
                else:
                    if isinstance(event, Reorg):
                        engine.on_reorg(event)
                    continue  # hints: no strategy takes them
            except (ChainError, SimulationError) as error:
                raise ReplayError(line, f"{type(error).__name__}: {error}") from None
            except RuntimeError as error:  # a reorg deeper than the state's history
                raise ReplayError(line, str(error)) from None
            results.extend(_replayed(line, c, v) for c, v in zip(proposed, verdicts, strict=True))
        return ReplayReport(
            journal=str(path),
            start_block=start,
            last_block=state.block_number,
            events=scan.events,
            candidates=tuple(results),
            off_chain_heads=off_chain,
            truncated_line=scan.truncated_line,
        )
    finally:
        ledger.close()
        await simulator.close()
        await upstream.close()
