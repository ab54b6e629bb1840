"""The events the watcher yields, and the topics of the logs that state needs.

Pending transactions are :class:`chain.types.PendingTx` (with ``source`` and ``received_at``
set). Heads come as :class:`NewHead` (header + the block's logs that match the tracked filter);
a chain switch comes as :class:`Reorg` followed by the new chain's heads. MEV-Share hints are
:class:`MevShareHint`. Every event carries ``received_at`` (``time.monotonic_ns()``) and
``source``.
"""

from __future__ import annotations

from dataclasses import dataclass

from chain.types import BlockHeader, Log, PendingTx


@dataclass(frozen=True, slots=True)
class NewHead:
    """A block on the canonical chain as we know it, with its logs that match the tracked filter."""

    header: BlockHeader
    logs: tuple[Log, ...]
    received_at: int
    source: str

    @property
    def number(self) -> int:
        return self.header.number

    @property
    def hash(self) -> str:
        return self.header.hash


@dataclass(frozen=True, slots=True)
class Reorg:
    """The chain switched branches: blocks above ``common_ancestor`` were replaced.

    ``old_hashes`` are the hashes we held above the ancestor (lowest first), ``new_hashes`` those
    of the new branch up to the new head (lowest first); ``depth`` is ``len(old_hashes)``.
    ``common_ancestor`` is None when the switch is deeper than the window the source keeps, and
    then everything it held counts as replaced. The :class:`NewHead` events of the new branch
    follow this event.
    """

    depth: int
    common_ancestor: int | None
    old_hashes: tuple[str, ...]
    new_hashes: tuple[str, ...]
    received_at: int
    source: str


@dataclass(frozen=True, slots=True)
class HintLog:
    """A log shared in a MEV-Share hint (no block context: the tx is not mined yet)."""

    address: str
    topics: tuple[bytes, ...]
    data: bytes


@dataclass(frozen=True, slots=True)
class HintTx:
    """One transaction of a MEV-Share hint; every field is optional (the sender chose)."""

    hash: str | None
    to: str | None
    function_selector: bytes | None
    call_data: bytes | None


@dataclass(frozen=True, slots=True)
class MevShareHint:
    """A MEV-Share event: ``hash`` is the double hash (keccak of the tx or bundle hash).

    ``logs`` is None when the event said ``null`` or nothing; ``mev_gas_price`` and ``gas_used``
    are optional experimental fields.
    """

    hash: str
    logs: tuple[HintLog, ...] | None
    txs: tuple[HintTx, ...]
    mev_gas_price: int | None
    gas_used: int | None
    received_at: int
    source: str


Event = PendingTx | NewHead | Reorg | MevShareHint
