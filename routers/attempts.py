"""The order of calls for one request: fallbacks first, then retries with backoff.

``Attempts`` walks a plan's targets, skipping deployments on the bench and, after a
context-length error, every model whose context is no larger. The dispatcher reports each
outcome; what moves on:

* whatever the adapter marks ``retryable``: connection errors, timeouts (first token
  included), malformed answers, rate limits, the provider's own failures;
* ``credentials_refused``: the provider refused the gateway's key for that deployment, not the
  caller;
* a context-length error, to a model with a larger context.

Any other 4xx is the request's own fault and stops the walk. When the targets run out and a
failure may pass, the walk starts over (``retries`` times) after an exponential backoff with
jitter, or after the soonest bench ends if that is later (a rate limit's ``Retry-After``
benches its deployment for that long); a wait over ``max_wait`` ends the walk instead. A round
lost to timeouts alone is not retried: the caller has already waited each one out.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass

from adapters.errors import ProviderError, ProviderTimeout
from routers.catalog import Deployment
from routers.health import Health
from routers.plan import Plan


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how patiently a plan is tried again once its targets have all failed."""

    retries: int = 1
    backoff_base: float = 0.25
    backoff_max: float = 4.0
    max_wait: float = 5.0

    def backoff(self, round_: int) -> float:
        """Exponential backoff with "equal jitter": half fixed, half random."""
        ceiling = min(self.backoff_max, self.backoff_base * float(2**round_))
        return ceiling / 2 + random.random() * ceiling / 2


def moves_on(error: ProviderError) -> bool:
    """Whether another target (or a later retry) may serve where this one failed."""
    if error.retryable or error.context_overflow:
        return True
    return error.credentials_refused


def counts_against(error: ProviderError) -> bool:
    """Whether a failure says something about the deployment's health."""
    if error.context_overflow:
        return False
    return error.retryable or error.credentials_refused


class Attempts:
    """One request's walk over its plan; ``failures`` lists every failed call."""

    def __init__(self, plan: Plan, health: Health, policy: RetryPolicy) -> None:
        self.plan = plan
        self.health = health
        self.policy = policy
        self.failures: list[tuple[Deployment, ProviderError]] = []
        self.benched: dict[str, float] = {}  # model id -> when its first deployment returns
        self.limited: set[str] = set()  # model ids resting for a provider's rate limit
        self.count = 0
        self._index = 0
        self._round = 0
        self._round_failures = 0
        self._round_start = 0
        self._min_context = 0
        self._started_at = 0.0

    def next_now(self) -> tuple[Deployment, int] | None:
        """The next target of this round and its fallback level, or None when the round is
        over (``next`` then waits for the next round, if there is one)."""
        targets = self.plan.targets
        now = time.monotonic()
        while self._index < len(targets):
            index = self._index
            self._index += 1
            target = targets[index]
            if self._min_context and target.listed and target.context <= self._min_context:
                continue
            until = self.health.benched_until(target.health_key, now)
            if until:
                known = self.benched.get(target.id)
                self.benched[target.id] = min(known, until) if known else until
                if self.health.rate_limited(target.health_key):
                    self.limited.add(target.id)
                continue
            return target, self.plan.level(index)
        return None

    async def next(self) -> tuple[Deployment, int] | None:
        """The next target and its fallback level, waiting out a backoff if one is due."""
        while (step := self.next_now()) is None:
            wait = self._retry_wait(time.monotonic())
            if wait is None:
                return None
            await asyncio.sleep(wait)
            self._round += 1
            self._round_failures = 0
            self._round_start = len(self.failures)
            self._index = 0
        return step

    def _retry_wait(self, now: float) -> float | None:
        if self._round >= self.policy.retries:
            return None
        if self._round_failures == 0 and not self.benched:
            return None
        this_round = [error for _, error in self.failures[self._round_start:]]
        if self.failures and not any(moves_on(e) and not e.context_overflow for e in this_round):
            return None
        if this_round and all(isinstance(e, ProviderTimeout) for e in this_round):
            return None  # the caller has already waited out every timeout once
        wait = self.policy.backoff(self._round)
        eligible = [
            self.health.benched_until(t.health_key, now)
            for t in self.plan.targets
            if not (self._min_context and t.listed and t.context <= self._min_context)
        ]
        if not eligible:
            return None
        if all(eligible):
            # A hair past the bench's end: the event loop may wake a timer slightly early.
            wait = max(wait, min(eligible) - now + 0.02)
        if wait > self.policy.max_wait:
            return None
        return wait

    def begin(self, target: Deployment) -> None:
        """A call to ``target`` starts now."""
        self.count += 1
        self._started_at = time.monotonic()
        self.health.started(target.health_key)

    def end(self, target: Deployment) -> None:
        """The call to ``target`` is over, however it ended (frees its in-flight slot)."""
        self.health.finished(target.health_key)

    def succeeded(self, target: Deployment) -> None:
        """``target`` answered (its first token, for a stream)."""
        self.health.record_success(target.health_key, time.monotonic() - self._started_at)

    def failed(self, target: Deployment, error: ProviderError) -> bool:
        """Record a failed call; True when the walk should go on to another target."""
        self.failures.append((target, error))
        self._round_failures += 1
        if counts_against(error):
            self.health.record_failure(
                target.health_key, rate_limited=error.rate_limited, retry_after=error.retry_after
            )
        if error.context_overflow and target.listed:
            self._min_context = max(self._min_context, target.context)
        return moves_on(error)

    def broke(self, target: Deployment, error: ProviderError) -> None:
        """A committed stream from ``target`` broke: no fallback, but its health hears of it."""
        self.failures.append((target, error))
        if counts_against(error):
            self.health.record_failure(target.health_key, rate_limited=False, retry_after=None)
