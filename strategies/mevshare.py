"""Hint-driven backruns: MEV-Share hints (not signed txs) in, ``mev_sendBundle`` candidates out.

A hint names a private tx the node holds; a backrun goes right behind it as ``[{hash}, our tx]``.
What the hint shares decides how the backrun is sized:

- **exact**: the hint carries the tx's logs and one of them moves a tracked pool (a V2 ``Sync``,
  a V3 ``Swap``): the pool kinds' ``apply_log`` gives the state after the user's tx on a copy of
  the pools, and the arbitrage behind it is sized exactly (:meth:`BackrunArbitrage.best_after`);
- **bounded**: the hint only names pools (``default_logs`` keeps a swap log's pool address, or the
  tx's ``to`` is a pool): the direction and size are unknown, so the strategy tries the user's
  trade as each direction at a few sizes within what the pool holds (0.5 %, 1.5 % and 3 % of its
  input reserve, the range traders move devnet pools by) and proposes the best few backruns; the
  MEV-Share node simulates each behind the real tx and the ones that would revert never land;
- **oracle update (SVR)**: the tx calls ``forward(address,bytes)`` (Chainlink SVR's forwarder,
  reference builders-oracles-2026.md §4.2) on a known SVR aggregator with ``transmitSecondary``:
  the decoded median is handed to the liquidation strategy as the pending update it backruns
  (its usual input: an oracle update in, liquidation candidates out).

Every candidate carries no backrun txs of its own: the node has the user's; :class:`HintCandidate`
keeps the hint's hash for the bundle. Pure: no I/O, no signing.
"""

from __future__ import annotations

from collections import ChainMap
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace

from chain.intents import Intent, OracleUpdateIntent
from chain.types import Log, PendingTx
from simulation.actions import HopArbitrageAction
from simulation.candidates import Candidate
from simulation.pools import PoolState, StateMissing
from simulation.state import ChainState
from strategies.backrun import BackrunArbitrage
from strategies.base import PendingContext
from strategies.liquidation import LiquidationBackrun
from watcher.decode_feeds import svr_forward
from watcher.events import HintLog, MevShareHint

BOUNDED_SIZES_BPS = (50, 150, 300)
EXACT = "exact"
BOUNDED = "bounded"
ORACLE = "oracle"


@dataclass(frozen=True, slots=True)
class HintCandidate:
    """A backrun of a hint: the candidate (no backrun txs: the node holds the user's), the hint's
    hash that goes first in the bundle, and how it was sized (``exact``, ``bounded``,
    ``oracle``)."""

    candidate: Candidate
    hint_hash: str
    sizing: str


@dataclass(slots=True)
class HintStats:
    """Counters: hints seen, by how they could be sized, candidates proposed, bad logs."""

    hints: int = 0
    exact: int = 0
    bounded: int = 0
    oracle: int = 0
    candidates: int = 0
    malformed_logs: int = 0


def _log(hint_log: HintLog, tx_hash: str) -> Log:
    # A hint's log has no block yet: the fields only a mined log has stay zero.
    return Log(hint_log.address, hint_log.topics, hint_log.data, 0, "", tx_hash, 0, 0)


class HintBackrun:
    """Backruns MEV-Share hints with arbitrage (``arbitrage``'s cycles) and, for SVR oracle
    updates on ``svr_aggregators``, liquidations (``liquidation``). ``decode`` turns a call
    (target, calldata) into an intent: the bot's decoder, which knows the feeds."""

    def __init__(
        self,
        name: str,
        arbitrage: BackrunArbitrage,
        *,
        liquidation: LiquidationBackrun | None = None,
        svr_aggregators: Iterable[str] = (),
        decode: Callable[[str | None, bytes], Intent | None] | None = None,
        sizes_bps: tuple[int, ...] = BOUNDED_SIZES_BPS,
        max_bounded: int = 3,
    ) -> None:
        self.name = name
        self.arbitrage = arbitrage
        self.liquidation = liquidation
        self.svr_aggregators = frozenset(a.lower() for a in svr_aggregators)
        self.decode = decode
        self.sizes_bps = sizes_bps
        self.max_bounded = max_bounded
        self.stats = HintStats()

    def on_hint(
        self, hint: MevShareHint, state: ChainState, target_block: int
    ) -> list[HintCandidate]:
        self.stats.hints += 1
        found = self._oracle(hint, state, target_block)
        if not found:
            moved, named = self._pools_after(hint, state)
            if moved:
                self.stats.exact += 1
                found = self._exact(hint, state, moved, target_block)
            elif named:
                self.stats.bounded += 1
                found = self._bounded(hint, state, named, target_block)
        self.stats.candidates += len(found)
        return found

    # -- sizing --

    def _pools_after(
        self, hint: MevShareHint, state: ChainState
    ) -> tuple[dict[str, PoolState], set[str]]:
        """The pools the hint's logs move (their state after the tx) and the tracked pools it
        only names (a log that does not say the new state, or the tx's target)."""
        moved: dict[str, PoolState] = {}
        named: set[str] = set()
        for hint_log in hint.logs or ():
            pool = moved.get(hint_log.address) or state.pools.get(hint_log.address)
            if pool is None:
                continue
            try:
                after = pool.apply_log(_log(hint_log, hint.hash))
            except (ValueError, IndexError):
                after = None  # default_logs zero a swap's fields: it only names the pool
            if after is None:
                named.add(hint_log.address)
            else:
                moved[hint_log.address] = after
        named |= {tx.to for tx in hint.txs if tx.to is not None and tx.to in state.pools}
        return moved, named - set(moved)

    def _exact(
        self,
        hint: MevShareHint,
        state: ChainState,
        moved: Mapping[str, PoolState],
        target_block: int,
    ) -> list[HintCandidate]:
        found = self.arbitrage.best_after(state, moved, ChainMap(dict(moved), state.pools))
        if found is None:
            return []
        action, profit = found
        return [self._candidate(hint, action, profit, target_block, EXACT, 0)]

    def _bounded(
        self, hint: MevShareHint, state: ChainState, named: set[str], target_block: int
    ) -> list[HintCandidate]:
        """The best backruns of a guessed trade: each direction through each named pool with a
        closed form, at each size; one per distinct action, the most profitable first."""
        best: dict[HopArbitrageAction, int] = {}
        for address in sorted(named):
            pool = state.pools[address]
            for token_in, zero_for_one in ((pool.token0, True), (pool.token1, False)):
                hop = pool.constant_product(zero_for_one)
                if hop is None:
                    continue
                for bps in self.sizes_bps:
                    try:
                        _, after = pool.swap(token_in, hop[0] * bps // 10_000)
                    except (StateMissing, ArithmeticError):
                        continue
                    found = self.arbitrage.best_after(
                        state, (address,), ChainMap({address: after}, state.pools)
                    )
                    if found is not None:
                        action, profit = found
                        best[action] = max(profit, best.get(action, 0))
        ranked = sorted(best.items(), key=lambda item: -item[1])[: self.max_bounded]
        return [
            self._candidate(hint, action, profit, target_block, BOUNDED, index)
            for index, (action, profit) in enumerate(ranked)
        ]

    def _oracle(
        self, hint: MevShareHint, state: ChainState, target_block: int
    ) -> list[HintCandidate]:
        """An SVR update: forward(aggregator, transmitSecondary(...)) to a known aggregator."""
        if self.liquidation is None or self.decode is None or len(hint.txs) != 1:
            return []
        tx = hint.txs[0]
        inner = svr_forward(tx.call_data) if tx.call_data is not None else None
        if inner is None or inner[0] not in self.svr_aggregators:
            return []
        intent = self.decode(*inner)
        if not isinstance(intent, OracleUpdateIntent):
            return []
        self.stats.oracle += 1
        # The hint stands in for the tx the liquidation backruns: the node holds its envelope.
        trigger = PendingTx(
            hash=hint.hash,
            sender="",
            to=tx.to,
            value=0,
            input=tx.call_data or b"",
            nonce=0,
            gas=0,
            raw=b"",
            received_at=hint.received_at,
            source=hint.source,
        )
        context = PendingContext(trigger, state.after(intent), target_block)
        return [
            HintCandidate(replace(c, backrun=()), hint.hash, ORACLE)
            for c in self.liquidation.on_pending(context, state)
        ]

    def _candidate(
        self,
        hint: MevShareHint,
        action: HopArbitrageAction,
        profit: int,
        target_block: int,
        sizing: str,
        index: int,
    ) -> HintCandidate:
        candidate = Candidate(
            strategy=self.name,
            key=f"mevshare:{target_block}:{hint.hash}:{index}",
            action=action,
            backrun=(),
            target_block=target_block,
            profit_token=self.arbitrage.start_token,
            expected_profit=profit,
            expected_profit_wei=profit,
            detected_at=hint.received_at,
        )
        return HintCandidate(candidate, hint.hash, sizing)
