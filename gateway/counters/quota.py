"""``Quota``: the dated counters and moving minutes one request adds to, in order.

Built once per key and UTC day by admission (``gateway.admission``) and reused by every request
of that key that day, so a request builds no key strings: it hands ``Limiter.admit`` the quota
and its ``units`` (what each kind of counter adds: requests, credits, tokens).
"""

from __future__ import annotations

from typing import Any

REQUESTS, CREDITS, TOKENS = 0, 1, 2  # indexes into a request's ``units``
Units = tuple[int, int, int]  # (requests, credits, tokens) one request adds


class Quota:
    """Counters (key, kind of unit, limit, end) then windows (scope, limit), each in order."""

    __slots__ = ("keys", "kinds", "limits", "shared", "untils", "windows")

    def __init__(
        self, counters: list[tuple[str, int, int, float]], windows: list[tuple[str, int]]
    ) -> None:
        self.keys = tuple(key for key, _, _, _ in counters)
        self.kinds = tuple(kind for _, kind, _, _ in counters)
        self.limits = tuple(limit for _, _, limit, _ in counters)
        self.untils = tuple(until for _, _, _, until in counters)
        # (scope, limit): the in-process window's key too (gateway.counters.memory).
        self.windows = tuple(windows)
        # The storage's own form of the keys (Redis: prefixed), made on first use.
        self.shared: Any = None

    def steps(self, units: Units, expiry: Any) -> list[tuple[str, int, int, int]]:
        """(key, amount, limit, expiry in seconds) per counter, for a ``limits`` storage."""
        return [(key, units[kind], limit, expiry(until)) for key, kind, limit, until
                in zip(self.keys, self.kinds, self.limits, self.untils, strict=True)]
