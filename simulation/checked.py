"""A simulator whose passing verdicts a second one confirms: ``[simulation] final_check``.

The primary (the fast backend) judges every bundle. A bundle it passes is simulated again on the
final check (the anvil fork, say), whose result is the one returned: the bundle goes out only as
that simulator sees it. A difference (any tx's success, gas or logs, any balance change, the
coinbase payment, the block) is counted in ``mismatches`` and logged in one line, so a cache
that drifted from the chain is noticed instead of trusted.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from chain.types import BlockHeader
from simulation.simulator import SimBlock, SimCall, SimResult, Simulator

log = logging.getLogger(__name__)


def difference(primary: SimResult, final: SimResult) -> str:
    """The first way the two results differ, in a few words ("" when they agree)."""
    if (primary.block_number, primary.base_fee) != (final.block_number, final.base_fee):
        return f"block {primary.block_number} vs {final.block_number}"
    for index, (a, b) in enumerate(zip(primary.txs, final.txs, strict=True)):
        if a.success != b.success:
            return f"tx {index} success {a.success} vs {b.success}"
        if a.gas_used != b.gas_used:
            return f"tx {index} gas {a.gas_used} vs {b.gas_used}"
        if a.logs != b.logs:
            return f"tx {index} logs differ"
    if primary.balance_diffs != final.balance_diffs:
        return "balance changes differ"
    if primary.coinbase_payment != final.coinbase_payment:
        return f"coinbase payment {primary.coinbase_payment} vs {final.coinbase_payment}"
    return ""


class CheckedSimulator:
    """``primary`` judges, ``final`` confirms what it passes (both started, moved and closed
    together). ``confirmed`` counts the bundles the final check ran, ``mismatches`` those
    where it saw them differently."""

    def __init__(self, primary: Simulator, final: Simulator) -> None:
        self.primary = primary
        self.final = final
        self.confirmed = 0
        self.mismatches = 0

    @property
    def head(self) -> BlockHeader:
        return self.primary.head

    async def start(self) -> None:
        await self.primary.start()
        await self.final.start()

    async def on_new_head(self, block_number: int) -> None:
        await asyncio.gather(
            self.primary.on_new_head(block_number), self.final.on_new_head(block_number)
        )

    async def simulate(
        self,
        txs: Sequence[bytes | SimCall],
        *,
        block: SimBlock | None = None,
        watch: Sequence[str] = (),
        tokens: Sequence[str] = (),
    ) -> SimResult:
        first = await self.primary.simulate(txs, block=block, watch=watch, tokens=tokens)
        if not first.success:
            return first
        last = await self.final.simulate(txs, block=block, watch=watch, tokens=tokens)
        self.confirmed += 1
        if reason := difference(first, last):
            self.mismatches += 1
            log.warning("final check disagrees with the simulator (%s): its result is used", reason)
        return last

    async def close(self) -> None:
        await self.primary.close()
        await self.final.close()
