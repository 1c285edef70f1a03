"""In-process windows and counters for ``limits.storage = memory://``.

The ``limits`` library's memory storage costs ~120 µs per admission here: its moving window
prepends each hit to a list (O(hits in the window)) and every call takes an asyncio lock and
schedules expiry work. This does the same in plain dicts with no ``await`` in between check and
update, which is also what makes N concurrent requests against a limit of K let exactly K in:

- the moving minute is a deque of hit times per (scope, limit), oldest first; a hit is refused
  when the deque holds ``limit`` hits younger than 60 s; ``reset`` is the oldest such hit plus
  60 s (the ``limits`` library's ``MovingWindowRateLimiter`` semantics);
- counters are ints with an expiry (their keys carry the UTC day or month, so the expiry only
  frees memory).

Times are ``time.time()`` for windows (as the ``limits`` library) and ``time.monotonic()`` for
expiries. Stale entries are swept at most once a minute, from the calls themselves.
"""

from __future__ import annotations

import time
from collections import deque

from gateway.counters.quota import Quota, Units

WINDOW = 60.0
_NEVER = float("inf")


class MemoryWindows:
    """Moving one-minute windows and expiring counters of one process."""

    __slots__ = ("_counters", "_expiry", "_next_sweep", "_windows")

    def __init__(self) -> None:
        self._windows: dict[tuple[str, int], deque[float]] = {}
        self._counters: dict[str, int] = {}
        self._expiry: dict[str, float] = {}
        self._next_sweep = time.monotonic() + WINDOW

    def hit_minute(self, scope: str, limit: int) -> tuple[bool, int, float]:
        """Count one request in the moving minute: (allowed, remaining, reset epoch)."""
        now = time.time()
        key = (scope, limit)
        hits = self._windows.get(key)
        if hits is None:
            hits = self._windows[key] = deque()
        start = now - WINDOW
        while hits and hits[0] < start:
            hits.popleft()
        if len(hits) >= limit:
            self._maybe_sweep()
            return False, 0, hits[0] + WINDOW
        hits.append(now)
        self._maybe_sweep()
        return True, limit - len(hits), hits[0] + WINDOW

    def add(self, key: str, amount: int, expiry: float) -> int:
        """Add ``amount`` to a counter kept at least ``expiry`` seconds more; the new value."""
        counters = self._counters
        now = time.monotonic()
        if self._expiry.get(key, now) < now:
            counters.pop(key, None)
        value = counters[key] = counters.get(key, 0) + amount
        self._expiry[key] = max(self._expiry.get(key, 0.0), now + expiry)
        self._maybe_sweep()
        return value

    def admit(
        self, quota: Quota, units: Units, now: float
    ) -> tuple[list[int], list[tuple[bool, int, float]]]:
        """``Limiter.admit`` for one process, with no ``await``: each counter of ``quota`` adds
        its kind of ``units`` (a new one ends ``now`` (the day clock) to its end + 60 s), then
        each window is hit; the first over its limit stops there, and every counter is taken
        back. Answers each counter's value (0 when not reached) and each window's hit."""
        counters, expiry = self._counters, self._expiry
        mono = time.monotonic()
        keys, kinds = quota.keys, quota.kinds
        values = [0] * len(keys)
        for i, key in enumerate(keys):
            amount = units[kinds[i]]
            deadline = expiry.get(key)
            if deadline is None or deadline < mono:  # new, or expired and not swept yet
                expiry[key] = mono + int(max(quota.untils[i] - now, 1.0)) + 60
                value = counters[key] = amount
            else:
                value = counters[key] = counters[key] + amount
            values[i] = value
            if value > quota.limits[i]:
                self._take_back(quota, units, i + 1)
                return values, []
        hits: list[tuple[bool, int, float]] = []
        if quota.windows:
            wall = time.time()
            start = wall - WINDOW
            for wkey in quota.windows:
                window = self._windows.get(wkey)
                if window is None:
                    window = self._windows[wkey] = deque()
                while window and window[0] < start:
                    window.popleft()
                if len(window) >= wkey[1]:
                    hits.append((False, 0, window[0] + WINDOW))
                    self._take_back(quota, units, len(keys))
                    break
                window.append(wall)
                hits.append((True, wkey[1] - len(window), window[0] + WINDOW))
        if mono >= self._next_sweep:
            self._sweep(mono)
        return values, hits

    def _take_back(self, quota: Quota, units: Units, upto: int) -> None:
        counters = self._counters
        for i in range(upto):
            key = quota.keys[i]
            counters[key] -= units[quota.kinds[i]]

    def add_units(self, quota: Quota, units: Units, now: float) -> None:
        """Add each counter's kind of ``units`` (settle's corrections; zeros skipped), as
        ``add`` does."""
        counters, expiry = self._counters, self._expiry
        mono = time.monotonic()
        kinds = quota.kinds
        for i, key in enumerate(quota.keys):
            amount = units[kinds[i]]
            if not amount:
                continue
            deadline = expiry.get(key)
            if deadline is None or deadline < mono:  # settled after its end: a new counter
                expiry[key] = mono + int(max(quota.untils[i] - now, 1.0)) + 60
                counters[key] = amount
            else:
                counters[key] += amount

    def get(self, key: str) -> int:
        if self._expiry.get(key, _NEVER) < time.monotonic():
            return 0
        return self._counters.get(key, 0)

    def _maybe_sweep(self) -> None:
        now = time.monotonic()
        if now >= self._next_sweep:
            self._sweep(now)

    def _sweep(self, now: float) -> None:
        self._next_sweep = now + WINDOW
        for key in [k for k, until in self._expiry.items() if until < now]:
            del self._expiry[key]
            self._counters.pop(key, None)
        start = time.time() - WINDOW
        for wkey in [k for k, hits in self._windows.items() if not hits or hits[-1] < start]:
            del self._windows[wkey]



def is_memory(uri: str) -> bool:
    """Whether a ``limits.storage`` URI names this process's memory."""
    return uri.removeprefix("async+").startswith("memory://")
