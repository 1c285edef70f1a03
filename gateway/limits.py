"""Admission: maintenance, blocked accounts, allowed models, balances and rate limits.

``Admission.admit`` runs once per chat request, right after planning, and answers a ``Ticket``
(or raises the refusal); ``Admission.settle`` runs when the request ends. Counters live in a
``limits`` storage named by ``limits.storage`` (``memory://`` here, ``redis://`` shared):

- requests per minute, per user (the tier's) and per key (the key's own limit): a moving window
  (``MovingWindowRateLimiter``); a refusal is 429 ``rate_limit_exceeded``;
- requests per day, credits per day, tokens per day and per month, per user: counters whose key
  holds the UTC date (or month), so they reset at 00:00 UTC; a refusal is 429 with its own
  ``code`` (``daily_limit_exceeded``, ``daily_credits_exhausted``, ``daily_token_limit_exceeded``,
  ``monthly_token_limit_exceeded``) and ``Retry-After`` until the reset.

Counters are incremented first and rolled back on refusal, so N concurrent requests against a
limit of K let exactly K through. Tokens are reserved from an estimate (prompt bytes / 4 plus
``max_tokens`` or ``accounts.output_reserve_tokens``) and corrected from real usage at settle.

The balance of a prepaid tier is reserved through ``gateway.balances.BalanceBook``: in this
process with no ``await`` between check and reservation, or in Redis by one Lua script.

With Redis every counter lives there under ``<limits.redis_prefix>limits/…`` (the ``limits``
library's redis storage, whose increments are atomic), so all instances count together. When
Redis cannot be reached, ``limits.redis_failure`` decides: ``"open"`` counts in this process
(a ``memory://`` storage) until it is back, ``"closed"`` refuses with 503.
"""

from __future__ import annotations

import asyncio
import calendar
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TypeVar

import structlog
from limits import RateLimitItemPerMinute
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import StorageError
from limits.storage import storage_from_string
from redis.exceptions import RedisError

from adapters import canonical as c
from gateway.accounts.keys import Principal
from gateway.accounts.userstate import AccountCache, UserState
from gateway.config import TierConfig
from gateway.errors import (
    AccountBlocked,
    GatewayError,
    InsufficientBalance,
    Maintenance,
    PermissionDenied,
    QuotaExceeded,
    RateLimited,
)
from gateway.memory_limits import MemoryWindows, is_memory
from gateway.shared import RedisUnavailable, Shared
from routers.catalog import ModelInfo

log = structlog.get_logger("gateway.limits")

Clock = Callable[[], float]
T = TypeVar("T")


def async_storage_uri(uri: str) -> str:
    """``memory://`` -> ``async+memory://``: the gateway uses the asyncio storages."""
    return uri if uri.startswith("async+") else "async+" + uri


def next_midnight(now: float) -> float:
    day = datetime.fromtimestamp(now, UTC).date()
    return calendar.timegm(day.timetuple()) + 86400.0


def next_month(now: float) -> float:
    moment = datetime.fromtimestamp(now, UTC)
    year, month = (moment.year + 1, 1) if moment.month == 12 else (moment.year, moment.month + 1)
    return float(calendar.timegm((year, month, 1, 0, 0, 0)))


class Limiter:
    """Windows and counters in one ``limits`` storage; ``clock`` is the time of day.

    With ``shared`` (Redis) every operation runs under its failure policy: 503 when closed,
    the in-process ``fallback`` limiter when open.
    """

    def __init__(
        self, uri: str, clock: Clock = time.time, shared: Shared | None = None
    ) -> None:
        options: dict[str, str] = {}
        if uri.split("://", 1)[0].removeprefix("async+").startswith("redis"):
            options["implementation"] = "redispy"  # redis-py is the client this project ships
            options["key_prefix"] = (shared.prefix if shared else "gw:") + "limits"
        self.storage = storage_from_string(async_storage_uri(uri), **options)
        self.moving = MovingWindowRateLimiter(self.storage)
        self.clock = clock
        self.shared = shared
        self.fallback = Limiter("memory://", clock) if shared is not None else None
        self._items: dict[int, RateLimitItemPerMinute] = {}
        self._periods: tuple[str, str, float, float, float] | None = None
        # memory://: the same windows and counters in plain dicts (gateway/memory_limits.py).
        self.fast = MemoryWindows() if is_memory(uri) else None

    def _minute(self, limit: int) -> RateLimitItemPerMinute:
        item = self._items.get(limit)
        if item is None:
            item = self._items[limit] = RateLimitItemPerMinute(limit)
        return item

    async def hit_minute(self, scope: str, limit: int) -> tuple[bool, int, float]:
        """Count one request in the moving minute: (allowed, remaining, reset epoch)."""
        if self.shared is not None and self.fallback is not None:
            try:
                return await self.shared.call(
                    lambda: _wrapped(self._hit_minute(scope, limit)), "rate limits"
                )
            except RedisUnavailable:
                return await self.fallback.hit_minute(scope, limit)
        return await self._hit_minute(scope, limit)

    async def _hit_minute(self, scope: str, limit: int) -> tuple[bool, int, float]:
        if self.fast is not None:
            return self.fast.hit_minute(scope, limit)
        item = self._minute(limit)
        allowed = await self.moving.hit(item, scope)
        stats = await self.moving.get_window_stats(item, scope)
        return allowed, stats.remaining, stats.reset_time

    async def add(self, key: str, amount: int, until: float) -> int:
        """Add to a counter that expires at ``until``; answers the new value."""
        expiry = self.expiry(until)
        if self.shared is not None and self.fallback is not None:
            try:
                return await self.shared.call(
                    lambda: _wrapped(self._incr(key, expiry, amount)), "quotas"
                )
            except RedisUnavailable:
                return await self.fallback.add(key, amount, until)
        return await self._incr(key, expiry, amount)

    async def _incr(self, key: str, expiry: int, amount: int) -> int:
        if self.fast is not None:
            return self.fast.add(key, amount, expiry)
        return int(await self.storage.incr(key, expiry, amount))  # type: ignore[misc]

    def expiry(self, until: float) -> int:
        """Seconds a counter that ends at ``until`` is kept."""
        return int(max(until - self.clock(), 1.0)) + 60

    async def get(self, key: str) -> int:
        if self.shared is not None and self.fallback is not None:
            try:
                return await self.shared.call(lambda: _wrapped(self._get(key)), "quotas")
            except RedisUnavailable:
                return await self.fallback.get(key)
        return await self._get(key)

    async def _get(self, key: str) -> int:
        if self.fast is not None:
            return self.fast.get(key)
        return int(await self.storage.get(key))  # type: ignore[misc]

    def periods(self, now: float) -> tuple[str, str, float, float]:
        """(UTC day, UTC month, next midnight, next month start), recomputed once a day."""
        cached = self._periods
        if cached is None or not cached[4] <= now < cached[2]:
            midnight = next_midnight(now)
            moment = datetime.fromtimestamp(now, UTC)
            cached = self._periods = (
                moment.strftime("%Y-%m-%d"), moment.strftime("%Y-%m"), midnight,
                next_month(now), midnight - 86400.0,
            )
        return cached[0], cached[1], cached[2], cached[3]

    def day(self) -> str:
        return self.periods(self.clock())[0]

    def month(self) -> str:
        return self.periods(self.clock())[1]


async def _wrapped(operation: Awaitable[T]) -> T:
    """A ``limits`` storage call, its wrapped storage errors as the Redis errors they are."""
    try:
        return await operation
    except StorageError as exc:
        raise RedisError(str(exc.storage_error)) from exc


@dataclass(slots=True)
class Counter:
    key: str
    amount: int
    until: float


@dataclass(slots=True)
class Ticket:
    """What admission reserved for one request, and the headers it answers with."""

    user: str
    tier: TierConfig
    tier_name: str
    prepaid: bool
    reserved_usd: float = 0.0
    reserved_in: str = ""  # where the balance reservation lives: "local" or "shared"
    reserved_tokens: int = 0
    token_counters: list[Counter] = field(default_factory=list)
    credit_counters: list[Counter] = field(default_factory=list)
    byok: dict[str, str] = field(default_factory=dict)
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    estimate_usd: float = 0.0
    credits_remaining: str = "unlimited"


def _retry_after(until: float, now: float) -> dict[str, str]:
    return {"Retry-After": str(max(1, math.ceil(until - now)))}


class Admission:
    """The one admission step of the chat endpoints (see the module docstring)."""

    def __init__(self, cache: AccountCache, limiter: Limiter, output_reserve: int) -> None:
        self.cache = cache
        self.limiter = limiter
        self.output_reserve = output_reserve
        self._tasks: set[asyncio.Task[None]] = set()

    async def admit(
        self, principal: Principal, target: ModelInfo, body_size: int, max_tokens: int | None
    ) -> Ticket:
        cache = self.cache
        if cache.maintenance is not None:
            raise Maintenance(cache.maintenance, headers={"Retry-After": "60"})
        state = await cache.user(principal)
        if state.blocked:
            raise AccountBlocked(
                "This account is blocked: contact the operator of this gateway"
            )
        # A key of a user without an account carries its own tier (``gateway keys create``).
        tier_name = state.tier if state.registered else principal.tier
        tier = cache.tier(tier_name)
        policy = await cache.policy(principal.key_id)
        for allowed, whose in ((tier.models, "your tier"), (policy.allowed_models, "this key")):
            if allowed and target.id not in allowed and not set(target.aliases) & set(allowed):
                raise PermissionDenied(
                    f"Model '{target.id}' is not allowed for {whose}; allowed: "
                    f"{', '.join(allowed)}",
                    param="model",
                    code="model_not_allowed",
                )
        ticket = Ticket(
            user=state.email,
            tier=tier,
            tier_name=tier_name,
            prepaid=tier.prepaid and target.provider not in state.byok,
            byok=state.byok,
        )
        prompt_tokens = body_size // 4 + 1
        output_tokens = min(max_tokens or self.output_reserve, target.max_output)
        ticket.estimate_usd = target.cost(prompt_tokens, output_tokens)
        ticket.reserved_tokens = prompt_tokens + output_tokens
        # The balance first: an atomic check-and-reserve (gateway.balances).
        if ticket.prepaid:
            await self._reserve_balance(state, ticket)
        try:
            await self._count(principal, state, tier, policy.requests_per_minute,
                              policy.requests_per_day, target, ticket)
        except GatewayError:
            cache.balances.settle(state.email, ticket.reserved_usd, 0.0, ticket.reserved_in)
            raise
        return ticket

    async def _reserve_balance(self, state: UserState, ticket: Ticket) -> None:
        where = await self.cache.reserve(state, ticket.estimate_usd)
        if where is None:
            available = max(self.cache.available(state), 0.0)
            raise InsufficientBalance(
                f"Insufficient balance: ${available:.6f} left, this request may cost up to "
                f"${ticket.estimate_usd:.6f}; top up, lower max_tokens, or add your own "
                "provider key",
                headers={"X-Tier": ticket.tier_name, "X-Credits-Remaining": f"{available:.6f}"},
            )
        ticket.reserved_usd, ticket.reserved_in = ticket.estimate_usd, where

    async def _count(
        self,
        principal: Principal,
        state: UserState,
        tier: TierConfig,
        key_rpm: int,
        key_rpd: int,
        target: ModelInfo,
        ticket: Ticket,
    ) -> None:
        limiter = self.limiter
        now = limiter.clock()
        day, month, midnight, month_end = limiter.periods(now)
        user = state.email or principal.key_id
        daily = [] if not (
            key_rpd or tier.requests_per_day or tier.credits_per_day or tier.tokens_per_day
            or tier.tokens_per_month
        ) else [
            (f"rpd:{day}:u:{user}", 1, tier.requests_per_day, midnight, "daily_limit_exceeded",
             "requests per day"),
            (f"rpd:{day}:k:{principal.key_id}", 1, key_rpd, midnight, "daily_limit_exceeded",
             "requests per day for this key"),
            (f"cpd:{day}:u:{user}", target.credits, tier.credits_per_day, midnight,
             "daily_credits_exhausted", "credits per day"),
            (f"tpd:{day}:u:{user}", ticket.reserved_tokens, tier.tokens_per_day, midnight,
             "daily_token_limit_exceeded", "tokens per day"),
            (f"tpm:{month}:u:{user}", ticket.reserved_tokens, tier.tokens_per_month, month_end,
             "monthly_token_limit_exceeded", "tokens per month"),
        ]
        taken: list[Counter] = []
        try:
            for key, amount, limit, until, code, what in daily:
                if not limit:
                    continue
                value = await limiter.add(key, amount, until)
                taken.append(Counter(key, amount, until))
                if value > limit:
                    raise QuotaExceeded(
                        f"You have used your {limit} {what} ({ticket.tier_name} tier); "
                        f"it resets at {_stamp(until)}",
                        code=code,
                        headers=_retry_after(until, now),
                    )
                if key.startswith("cpd:"):
                    ticket.credits_remaining = str(max(limit - value, 0))
            minute_limit = tier.requests_per_minute
            for scope, limit in ((f"u:{user}", minute_limit), (f"k:{principal.key_id}", key_rpm)):
                if not limit:
                    continue
                allowed, remaining, reset = await limiter.hit_minute(scope, limit)
                headers = _rate_headers(limit, remaining, reset)
                if not allowed:
                    raise RateLimited(
                        f"Rate limit of {limit} requests per minute reached; retry after "
                        f"{max(1, math.ceil(reset - time.time()))} s",
                        headers={**_retry_after(reset, time.time()), **headers},
                    )
                if scope.startswith("u:") or not ticket.headers:
                    ticket.headers = [(k.encode(), v.encode()) for k, v in headers.items()]
        except GatewayError as error:
            for counter in taken:
                await limiter.add(counter.key, -counter.amount, counter.until)
            error.headers.setdefault("X-Tier", ticket.tier_name)
            raise
        if not ticket.headers:
            ticket.headers = [
                (b"x-ratelimit-limit", b"unlimited"),
                (b"x-ratelimit-remaining", b"unlimited"),
                (b"x-ratelimit-reset", b"0"),
            ]
        ticket.token_counters = [t for t in taken if t.key.startswith(("tpd:", "tpm:"))]
        ticket.credit_counters = [t for t in taken if t.key.startswith("cpd:")]
        if ticket.prepaid:
            ticket.credits_remaining = f"{max(self.cache.available(state), 0.0):.6f}"

    def settle(
        self, ticket: Ticket, served: ModelInfo | None, usage: c.Usage | None, cost: float
    ) -> None:
        """Release reservations, debit the cost, and correct the token counters (no I/O here)."""
        byok = served is not None and served.provider in ticket.byok
        spent = cost if served is not None and ticket.tier.prepaid and not byok else 0.0
        if ticket.reserved_usd or spent:
            self.cache.balances.settle(ticket.user, ticket.reserved_usd, spent,
                                       ticket.reserved_in)
        actual = usage.input_tokens + usage.output_tokens if usage is not None else 0
        adjust = [(t, actual - t.amount) for t in ticket.token_counters]
        if served is None:  # nothing was served: give the credits back
            adjust += [(t, -t.amount) for t in ticket.credit_counters]
        adjust = [(t, delta) for t, delta in adjust if delta]
        if adjust and self.limiter.fast is not None:  # memory://: no I/O, no task needed
            for counter, delta in adjust:
                self.limiter.fast.add(counter.key, delta, self.limiter.expiry(counter.until))
        elif adjust:
            task = asyncio.ensure_future(self._adjust(adjust))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _adjust(self, adjust: list[tuple[Counter, int]]) -> None:
        try:
            for counter, delta in adjust:
                await self.limiter.add(counter.key, delta, counter.until)
        except GatewayError as error:  # Redis down, fail closed: the correction is lost
            log.warning("counter_correction_lost", error=error.message)


def _rate_headers(limit: int, remaining: int, reset: float) -> dict[str, str]:
    return {
        "X-RateLimit-Limit": str(limit),
        "X-RateLimit-Remaining": str(max(remaining, 0)),
        "X-RateLimit-Reset": str(math.ceil(reset)),
    }


def _stamp(when: float) -> str:
    return datetime.fromtimestamp(when, UTC).strftime("%Y-%m-%d %H:%M UTC")


class AccountHeaders(list[tuple[bytes, bytes]]):
    """``Exchange.extra_headers`` for an admitted request: rate, tier and credit headers, and
    ``X-Cost-USD`` rendered when the headers are sent.

    A non-streamed answer is sent after its usage is known, so its ``X-Cost-USD`` is exact.
    A stream's headers go out at the commit point, before any usage: there ``X-Cost-USD`` is
    the upper bound reserved at admission and ``X-Cost-Estimated: true`` says so; the exact
    cost is in ``GET /v1/usage/requests/{request_id}`` once the stream ends.
    """

    def __init__(self, ticket: Ticket, key_source: str, exchange: object) -> None:
        super().__init__(ticket.headers)
        self.append((b"x-tier", ticket.tier_name.encode()))
        self.append((b"x-credits-remaining", ticket.credits_remaining.encode()))
        self.append((b"x-key-source", key_source.encode()))
        self.ticket = ticket
        self.exchange = exchange

    def __iter__(self):  # type: ignore[no-untyped-def]
        yield from super().__iter__()
        served: ModelInfo | None = getattr(self.exchange, "served", None)
        usage: c.Usage | None = getattr(self.exchange, "usage", None)
        if getattr(self.exchange, "status", 200) >= 400:
            yield (b"x-cost-usd", b"0.00000000")
        elif served is not None and usage is not None:
            cost = served.cost(usage.input_tokens, usage.output_tokens, usage.cache_read_tokens)
            yield (b"x-cost-usd", f"{cost:.8f}".encode())
        else:
            yield (b"x-cost-usd", f"{self.ticket.estimate_usd:.8f}".encode())
            yield (b"x-cost-estimated", b"true")
