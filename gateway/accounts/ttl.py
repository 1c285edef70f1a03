"""One small TTL cache for everything accounts keep in memory: keys, sessions, users, policies.

``get`` answers only fresh entries, and nothing at all while ``strict`` is set (changes made
elsewhere may be missed, so every lookup asks the store); ``stale`` answers whatever is held,
fresh or not, for when the store cannot be reached. The size is bounded: when full, expired
entries go first, then the oldest written.

Stale-while-revalidate, so that a known key's request never waits on the database: for
``grace`` seconds after an entry expires, ``serve`` still answers it and starts ``load`` in
the background to replace it; past that bound (or while ``strict``) the caller waits for
``fetch``, and if the store is down then, ``lookup`` still answers the entry however old.
One load per key is in flight at a time: concurrent callers share it. Dropping an entry
(``pop``, ``clear``, ``drop_where``, ``expire_all``) also disowns its load in flight, so a read
that began before a change (a revocation) never writes its answer back.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable, Hashable
from functools import partial
from typing import Generic, TypeVar

from gateway.storage import StorageUnavailable

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class TTLCache(Generic[K, V]):
    """Values kept for ``ttl`` seconds (served ``grace`` more while reloaded), at most
    ``max_entries`` of them. ``grace`` defaults to ``ttl``: nothing older than twice the TTL
    is acted on while the store answers."""

    __slots__ = ("_clock", "_entries", "_loads", "grace", "max_entries", "strict", "ttl")

    def __init__(
        self,
        ttl: float,
        max_entries: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
        grace: float | None = None,
    ) -> None:
        self.ttl = ttl
        self.grace = ttl if grace is None else grace
        self.max_entries = max_entries
        self.strict = False
        self._clock = clock
        self._entries: dict[K, tuple[V, float]] = {}
        self._loads: dict[K, asyncio.Future[V | None]] = {}

    def get(self, key: K) -> V | None:
        """The value if it is fresh (and the cache is not strict), else None."""
        entry = self._entries.get(key)
        if entry is None or entry[1] <= self._clock() or self.strict:
            return None
        return entry[0]

    def serve(self, key: K, load: Callable[[], Awaitable[V | None]]) -> V | None:
        """The value to act on now without waiting: fresh, or expired less than ``grace``
        seconds ago (then ``load`` starts in the background, unless a load of ``key`` is in
        flight). None when there is none: the caller waits for ``fetch``."""
        entry = self._entries.get(key)
        if entry is None or self.strict:
            return None
        value, expires = entry
        now = self._clock()
        if expires > now:
            return value
        if now - expires >= self.grace:
            return None
        if key not in self._loads:
            self._start(key, load)
        return value

    async def fetch(self, key: K, load: Callable[[], Awaitable[V | None]]) -> V | None:
        """``key``'s value as ``load`` reads it now (joining the load in flight, if any),
        kept for ``ttl``; None (and the entry dropped) when ``load`` found nothing. Raises
        what ``load`` raises, leaving the entry as it was."""
        task = self._loads.get(key)
        if task is None:
            task = self._start(key, load)
        # Shielded: a caller that goes away does not cancel the others' read.
        return await asyncio.shield(task)

    async def lookup(self, key: K, load: Callable[[], Awaitable[V | None]]) -> V | None:
        """``serve``, else ``fetch``; while the store is unavailable, the value held however
        old (cached keys keep working), and ``StorageUnavailable`` only for a key not held."""
        value = self.serve(key, load)
        if value is not None:
            return value
        try:
            return await self.fetch(key, load)
        except StorageUnavailable:
            value = self.stale(key)
            if value is None:
                raise
            return value

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
        self._loads.pop(key, None)

    def drop_where(self, doomed: Callable[[V], bool]) -> None:
        """Drop every entry whose value ``doomed`` picks (e.g. all sessions of one user)."""
        for key, (value, _) in list(self._entries.items()):
            if doomed(value):
                del self._entries[key]
        self._loads.clear()  # a load in flight may bring back one of them

    def clear(self) -> None:
        self._entries.clear()
        self._loads.clear()

    def expire_all(self) -> None:
        """Make every entry stale past the grace: rechecked (waited for) on next use, still
        there for ``stale``."""
        self._entries = {key: (value, -math.inf) for key, (value, _) in self._entries.items()}
        self._loads.clear()

    def __len__(self) -> int:
        return len(self._entries)

    def _start(self, key: K, load: Callable[[], Awaitable[V | None]]) -> asyncio.Future[V | None]:
        task = asyncio.ensure_future(self._load(key, load))
        self._loads[key] = task
        task.add_done_callback(partial(self._loaded, key))
        return task

    async def _load(self, key: K, load: Callable[[], Awaitable[V | None]]) -> V | None:
        value = await load()
        if self._loads.get(key) is asyncio.current_task():  # not disowned meanwhile
            if value is None:
                self._entries.pop(key, None)
            else:
                self.put(key, value)
        return value

    def _loaded(self, key: K, task: asyncio.Future[V | None]) -> None:
        if self._loads.get(key) is task:
            del self._loads[key]
        if not task.cancelled():
            # Retrieved here so a background load's failure is not reported as lost: the
            # entry stays as it was, and its next use past the grace waits and sees the error.
            task.exception()

    def _evict(self) -> None:
        now = self._clock()
        for key in [k for k, (_, expires) in self._entries.items() if expires <= now]:
            del self._entries[key]
        while len(self._entries) >= self.max_entries:
            del self._entries[next(iter(self._entries))]
