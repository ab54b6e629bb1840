"""The pool kinds the bot knows, by name: a new kind is one line here (or one call to
:func:`register_pool_kind`)."""

from __future__ import annotations

from simulation.pools import PoolKind
from simulation.uniswap_v2 import UNISWAP_V2
from simulation.uniswap_v3 import UNISWAP_V3

POOL_KINDS: dict[str, PoolKind] = {kind.name: kind for kind in (UNISWAP_V2, UNISWAP_V3)}


def register_pool_kind(kind: PoolKind) -> PoolKind:
    """Make ``kind`` known by its name (to configs, deployments and the runtime)."""
    POOL_KINDS[kind.name] = kind
    return kind


def executor_hop(kind_name: str) -> int | None:
    """The Executor's hop kind for pools of ``kind_name`` (None: it cannot trade them)."""
    kind = POOL_KINDS.get(kind_name)
    return None if kind is None else kind.executor_hop


def pool_kind(name: str) -> PoolKind:
    """The kind registered as ``name``; :class:`ValueError` naming the known ones otherwise."""
    try:
        return POOL_KINDS[name]
    except KeyError:
        known = ", ".join(sorted(POOL_KINDS))
        raise ValueError(f"unknown pool kind {name!r} (known: {known})") from None
