"""Deployment health: in-flight counts, latency (EWMA), consecutive failures and cool-downs.

The dispatcher reads health on every attempt, so reads are synchronous and local. ``Health`` is
the interface; ``MemoryHealth`` keeps everything in this process. The shared backend
(``gateway.redis_health.RedisHealth``, Redis, injected by the gateway as ``Planner.health``)
extends ``MemoryHealth``: reads stay local, failures and benches are pushed out without
awaiting them and benches from other processes arrive by pub/sub, so the request path never
waits on it. In-flight counts stay per process by nature.

A deployment is *benched* (skipped by every request) when it fails ``allowed_fails`` times in a
row, for ``cooldown`` seconds; a rate-limit answer benches it at once for its ``Retry-After``
(or ``cooldown`` without one). A success clears the failure count.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol

# Weight of the newest sample in the latency average.
EWMA_ALPHA = 0.3


class Health(Protocol):
    """What the planner and dispatcher ask of deployment health."""

    def benched_until(self, key: str, now: float) -> float:
        """When the deployment ``key`` comes back (0 when it is not benched)."""
        ...

    def rate_limited(self, key: str) -> bool:
        """Whether the deployment's current bench is a provider's rate limit."""
        ...

    def in_flight(self, key: str) -> int: ...

    def latency(self, key: str) -> float | None:
        """The EWMA of time to first token in seconds, None before any success."""
        ...

    def started(self, key: str) -> None: ...

    def finished(self, key: str) -> None: ...

    def record_success(self, key: str, latency: float) -> None: ...

    def record_failure(self, key: str, *, rate_limited: bool, retry_after: float | None) -> None:
        ...


@dataclass(slots=True)
class _State:
    in_flight: int = 0
    latency: float | None = None
    failures: int = 0
    benched_until: float = 0.0
    limited: bool = False


class MemoryHealth:
    """Health kept in this process's memory."""

    def __init__(self, allowed_fails: int = 3, cooldown: float = 30.0,
                 max_cooldown: float = 300.0) -> None:
        self.allowed_fails = max(allowed_fails, 1)
        self.cooldown = cooldown
        self.max_cooldown = max_cooldown
        self._states: dict[str, _State] = {}

    def _state(self, key: str) -> _State:
        state = self._states.get(key)
        if state is None:
            state = self._states[key] = _State()
        return state

    def benched_until(self, key: str, now: float) -> float:
        state = self._states.get(key)
        if state is None or state.benched_until <= now:
            return 0.0
        return state.benched_until

    def rate_limited(self, key: str) -> bool:
        state = self._states.get(key)
        return state is not None and state.limited

    def in_flight(self, key: str) -> int:
        state = self._states.get(key)
        return state.in_flight if state else 0

    def latency(self, key: str) -> float | None:
        state = self._states.get(key)
        return state.latency if state else None

    def started(self, key: str) -> None:
        self._state(key).in_flight += 1

    def finished(self, key: str) -> None:
        state = self._state(key)
        state.in_flight = max(state.in_flight - 1, 0)

    def record_success(self, key: str, latency: float) -> None:
        state = self._state(key)
        state.failures = 0
        state.latency = (
            latency
            if state.latency is None
            else EWMA_ALPHA * latency + (1 - EWMA_ALPHA) * state.latency
        )

    def record_failure(self, key: str, *, rate_limited: bool, retry_after: float | None) -> None:
        state = self._state(key)
        state.failures += 1
        now = time.monotonic()
        if rate_limited:
            pause = retry_after if retry_after is not None else self.cooldown
        elif state.failures >= self.allowed_fails:
            pause = max(self.cooldown, retry_after or 0.0)
        else:
            return
        until = now + min(pause, self.max_cooldown)
        if until > state.benched_until:
            state.benched_until = until
            state.limited = rate_limited
