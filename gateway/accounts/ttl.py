"""One small TTL cache for everything accounts keep in memory: keys, sessions, users, policies.

``get`` answers only fresh entries, and nothing at all while ``strict`` is set (changes made
elsewhere may be missed, so every lookup asks the store); ``stale`` answers whatever is held,
fresh or not, for when the store cannot be reached. The size is bounded: when full, expired
entries go first, then the oldest written.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class TTLCache(Generic[K, V]):
    """Values kept for ``ttl`` seconds, at most ``max_entries`` of them."""

    __slots__ = ("_clock", "_entries", "max_entries", "strict", "ttl")

    def __init__(
        self, ttl: float, max_entries: int = 100_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self.strict = False
        self._clock = clock
        self._entries: dict[K, tuple[V, float]] = {}

    def get(self, key: K) -> V | None:
        """The value if it is fresh (and the cache is not strict), else None."""
        entry = self._entries.get(key)
        if entry is None or entry[1] <= self._clock() or self.strict:
            return None
        return entry[0]

    def stale(self, key: K) -> V | None:
        """The value held for ``key``, however old: the fallback while the store is down."""
        entry = self._entries.get(key)
        return None if entry is None else entry[0]

    def put(self, key: K, value: V, ttl: float | None = None) -> None:
        entries = self._entries
        entries.pop(key, None)
        if len(entries) >= self.max_entries:
            self._evict()
        entries[key] = (value, self._clock() + (self.ttl if ttl is None else ttl))

    def pop(self, key: K) -> None:
        self._entries.pop(key, None)

    def drop_where(self, doomed: Callable[[V], bool]) -> None:
        """Drop every entry whose value ``doomed`` picks (e.g. all sessions of one user)."""
        for key, (value, _) in list(self._entries.items()):
            if doomed(value):
                del self._entries[key]

    def clear(self) -> None:
        self._entries.clear()

    def expire_all(self) -> None:
        """Make every entry stale: rechecked on next use, still there for ``stale``."""
        self._entries = {key: (value, 0.0) for key, (value, _) in self._entries.items()}

    def __len__(self) -> int:
        return len(self._entries)

    def _evict(self) -> None:
        now = self._clock()
        for key in [k for k, (_, expires) in self._entries.items() if expires <= now]:
            del self._entries[key]
        while len(self._entries) >= self.max_entries:
            del self._entries[next(iter(self._entries))]
