"""A bounded memory of recently seen hashes (insertion order, oldest forgotten first).

Dedupe must not grow without bound on a node that streams for days: a hash older than
``capacity`` newer ones is forgotten, which is safe because a tx that old was mined or dropped
long ago. Each entry keeps a value (the merge layer stores the first receive time).
"""

from __future__ import annotations

from collections import OrderedDict


class RecentHashes:
    """``add`` returns True for a hash not held yet; lookups are O(1)."""

    def __init__(self, capacity: int = 200_000) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self._entries: OrderedDict[str, int] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def get(self, key: str) -> int | None:
        return self._entries.get(key)

    def add(self, key: str, value: int = 0) -> bool:
        entries = self._entries
        if key in entries:
            return False
        entries[key] = value
        if len(entries) > self.capacity:
            entries.popitem(last=False)
        return True

    def discard(self, key: str) -> None:
        self._entries.pop(key, None)
