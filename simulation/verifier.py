"""The state verifier: re-reads a sample of the tracked pools from the node, counts the ones whose
local state drifted from the chain's, says what differs, and reloads them.

Local pools are kept from logs; a missed log, a reorg handled late or a bug in a pool's log
rules would leave one quietly wrong, and every quote through it with it.
:meth:`StateVerifier.verify` takes the next ``sample`` pools in a fixed rotation (so every pool
is checked in turn), reads them again with their kind's ``reread`` (V2: the reserves; V3:
slot0's price and tick, the in-range liquidity, and the bitmap words the pool holds with their
ticks) at the state's block, and compares. A pool that differs is logged (one line: which pool,
which fields) and replaced by what the node has (undone with the block if a reorg drops it: see
:meth:`~simulation.state.ChainState.refresh_pool`). If the state moved to another block (or the
same height on another branch) while the reads were out, the round compares nothing (a log of
the new block may explain the difference) and is counted as skipped.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

from chain.errors import ChainError
from simulation.calls import LoadError
from simulation.pools import PoolKind, PoolState
from simulation.state import ChainState

log = logging.getLogger("mevbot.verifier")


@dataclass(frozen=True, slots=True)
class VerifyCounts:
    """Rounds run (and skipped or failed), pools compared, pools found drifted (each reloaded),
    and what the last drift was."""

    rounds: int = 0
    skipped: int = 0
    failed: int = 0
    checked: int = 0
    drifted: int = 0
    last_drift: str | None = None


def differences(local: PoolState, node: PoolState) -> list[str]:
    """The names of the fields in which two states of one pool differ."""
    names = [f.name for f in fields(local)]  # type: ignore[arg-type]  # pools are dataclasses
    return [name for name in names if getattr(local, name) != getattr(node, name)]


class StateVerifier:
    """Checks ``state``'s pools against the node behind ``rpc`` (see the module docstring)."""

    def __init__(self, rpc: Any, state: ChainState, sample: int) -> None:
        if sample < 1:
            raise ValueError(f"sample must be at least 1, got {sample}")
        self.rpc = rpc
        self.state = state
        self.sample = sample
        self._cursor = 0
        self._counts = VerifyCounts()

    @property
    def counts(self) -> VerifyCounts:
        return self._counts

    def _count(self, **changes: Any) -> None:
        values = {f.name: getattr(self._counts, f.name) for f in fields(VerifyCounts)}
        for name, value in changes.items():
            values[name] = value if name == "last_drift" else values[name] + value
        self._counts = VerifyCounts(**values)

    def _next_sample(self) -> list[str]:
        addresses = sorted(self.state.pools)
        if not addresses:
            return []
        start = self._cursor % len(addresses)
        picked = (addresses[start:] + addresses[:start])[: self.sample]
        self._cursor = start + len(picked)
        return picked

    def _by_kind(self, addresses: Sequence[str]) -> dict[PoolKind, list[PoolState]]:
        by_kind: dict[PoolKind, list[PoolState]] = {}
        for address in addresses:
            kind = self.state.factories.get(self.state.pool_factory.get(address, ""))
            if kind is not None and kind.reread is not None:
                by_kind.setdefault(kind, []).append(self.state.pools[address])
        return by_kind

    async def verify(self) -> list[str]:
        """One round over the next sample; returns the addresses found drifted (reloaded)."""
        block, block_hash = self.state.block_number, self.state.block_hash
        at = hex(block) if block else "latest"
        compared: list[tuple[PoolState, PoolState]] = []
        try:
            for kind, pools in self._by_kind(self._next_sample()).items():
                assert kind.reread is not None
                compared += zip(pools, await kind.reread(self.rpc, pools, at), strict=True)
        except (LoadError, ChainError) as error:
            self._count(rounds=1, failed=1)
            log.warning("state verifier: reading pools at block %d failed: %s", block, error)
            return []
        if (self.state.block_number, self.state.block_hash) != (block, block_hash):
            self._count(rounds=1, skipped=1)
            return []
        drifted = []
        for local, node in compared:
            if self.state.pools.get(local.address) is not local or local == node:
                continue
            what = ", ".join(differences(local, node))
            log.warning(
                "pool %s (%s) drifted from the node at block %d: %s differ; reloaded",
                local.address,
                local.kind,
                block,
                what,
            )
            self.state.refresh_pool(node)
            drifted.append(local.address)
            self._count(last_drift=f"{local.address} @{block}: {what}")
        self._count(rounds=1, checked=len(compared), drifted=len(drifted))
        return drifted
