"""``Admission``: what ``admit`` checks before a call and ``settle`` corrects after it (the
package docstring has the rules)."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import structlog

from adapters import canonical as c
from gateway.accounts.keys import Principal
from gateway.accounts.userstate import AccountCache, UserState
from gateway.config import TierConfig
from gateway.counters import Limiter
from gateway.errors import (
    AccountBlocked,
    GatewayError,
    InsufficientBalance,
    Maintenance,
    PermissionDenied,
    QuotaExceeded,
    RateLimited,
)
from routers.catalog import Deployment

log = structlog.get_logger("gateway.admission")


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
        # Settle's corrections waiting for Redis, by (counter, its end), and their one task.
        self._pending: dict[tuple[str, float], int] = {}
        self._flushing: asyncio.Task[None] | None = None
        # (user, event type, data, event id) of a refusal, for webhooks' ``limit.reached``.
        self.on_event: Callable[..., None] = lambda *event, **more: None

    async def admit(
        self, principal: Principal, target: Deployment, body_size: int, max_tokens: int | None,
        units: c.Usage | None = None,
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
        # None: the caller set no cap; 0: the operation generates nothing (embeddings…).
        reserve = self.output_reserve if max_tokens is None else max_tokens
        output_tokens = min(reserve, target.max_output)
        ticket.estimate_usd = target.cost(prompt_tokens, output_tokens)
        if units is not None:  # what image and video models make, at most (``units``)
            ticket.estimate_usd += target.cost(0, 0, 0, units.images, units.videos,
                                               units.video_seconds)
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
        target: Deployment,
        ticket: Ticket,
    ) -> None:
        limiter = self.limiter
        now = limiter.clock()
        user = state.email or principal.key_id
        daily = [d for d in _daily_counters(limiter.periods(now), user, principal.key_id, tier,
                                            key_rpd, target.credits, ticket.reserved_tokens)
                 if d[2]]
        windows = [(scope, limit) for scope, limit in (
            (f"u:{user}", tier.requests_per_minute), (f"k:{principal.key_id}", key_rpm)) if limit]
        try:
            # One call (one Redis round trip): it stops at the first limit reached, and then
            # takes back what it added (gateway.counters.Limiter.admit).
            values, hits = await limiter.admit(
                [(key, amount, limit, limiter.expiry(until))
                 for key, amount, limit, until, _, _ in daily], windows)
            for (key, _, limit, until, code, what), value in zip(daily, values, strict=True):
                if value > limit:
                    raise _over_quota(limit, what, ticket.tier_name, until, now, code)
                if key.startswith("cpd:"):
                    ticket.credits_remaining = str(max(limit - value, 0))
            for (scope, limit), (allowed, remaining, reset) in zip(windows, hits, strict=False):
                headers = _rate_headers(limit, remaining, reset)
                if not allowed:
                    raise _over_rate(limit, reset, headers)
                if scope.startswith("u:") or not ticket.headers:
                    ticket.headers = [(k.encode(), v.encode()) for k, v in headers.items()]
        except GatewayError as error:
            error.headers.setdefault("X-Tier", ticket.tier_name)
            self._limit_reached(state.email, principal.key_id, error)
            raise
        if not ticket.headers:
            ticket.headers = [
                (b"x-ratelimit-limit", b"unlimited"),
                (b"x-ratelimit-remaining", b"unlimited"),
                (b"x-ratelimit-reset", b"0"),
            ]
        taken = [Counter(key, amount, until) for key, amount, _, until, _, _ in daily]
        ticket.token_counters = [t for t in taken if t.key.startswith(("tpd:", "tpm:"))]
        ticket.credit_counters = [t for t in taken if t.key.startswith("cpd:")]
        if ticket.prepaid:
            ticket.credits_remaining = f"{max(self.cache.available(state), 0.0):.6f}"

    def _limit_reached(self, user: str, key_id: str, error: GatewayError) -> None:
        """``limit.reached`` once per key, limit and window: the event id names all three, so
        the outbox (and the platform's memory) drops the window's later refusals."""
        limit = error.code or "rate_limit_exceeded"
        now = time.time()
        resets = now + float(error.headers.get("Retry-After", "60"))
        # Daily and monthly windows end on a minute boundary (their Retry-After rounds up
        # less than a second); the moving minute's window is the minute of the refusal.
        window = int((now if "X-RateLimit-Reset" in error.headers else resets) // 60)
        self.on_event(user, "limit.reached", {
            "key_id": key_id, "limit": limit, "tier": error.headers.get("X-Tier", ""),
            "message": error.message, "resets_at": int(resets),
        }, event_id=f"evt_limit_{key_id}_{limit}_{window}")

    def settle(
        self, ticket: Ticket, served: Deployment | None, usage: c.Usage | None, cost: float
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
            self._queue(adjust)

    def _queue(self, adjust: list[tuple[Counter, int]]) -> None:
        """Corrections for Redis, coalesced: one call in flight at a time carries every
        correction queued since the last one (one round trip per request at most, fewer
        under load)."""
        pending = self._pending
        for counter, delta in adjust:
            where = (counter.key, counter.until)
            pending[where] = pending.get(where, 0) + delta
        if self._flushing is None:
            task = self._flushing = asyncio.ensure_future(self._adjust())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _adjust(self) -> None:
        try:
            while self._pending:
                pending, self._pending = self._pending, {}
                changes = [(key, delta, until) for (key, until), delta in pending.items()
                           if delta]
                try:
                    if changes:
                        await self.limiter.add_many(changes)
                except GatewayError as error:  # Redis down, fail closed: these are lost
                    log.warning("counter_correction_lost", error=error.message)
        finally:
            self._flushing = None


Daily = tuple[str, int, int, float, str, str]  # key, amount, limit, until, refusal code, what


def _daily_counters(
    periods: tuple[str, str, float, float], user: str, key_id: str, tier: TierConfig,
    key_rpd: int, credits: int, tokens: int,
) -> list[Daily]:
    """The dated counters a request adds to (none when the tier and key set no such limit)."""
    if not (key_rpd or tier.requests_per_day or tier.credits_per_day or tier.tokens_per_day
            or tier.tokens_per_month):
        return []
    day, month, midnight, month_end = periods
    return [
        (f"rpd:{day}:u:{user}", 1, tier.requests_per_day, midnight, "daily_limit_exceeded",
         "requests per day"),
        (f"rpd:{day}:k:{key_id}", 1, key_rpd, midnight, "daily_limit_exceeded",
         "requests per day for this key"),
        (f"cpd:{day}:u:{user}", credits, tier.credits_per_day, midnight,
         "daily_credits_exhausted", "credits per day"),
        (f"tpd:{day}:u:{user}", tokens, tier.tokens_per_day, midnight,
         "daily_token_limit_exceeded", "tokens per day"),
        (f"tpm:{month}:u:{user}", tokens, tier.tokens_per_month, month_end,
         "monthly_token_limit_exceeded", "tokens per month"),
    ]


def _over_quota(
    limit: int, what: str, tier_name: str, until: float, now: float, code: str
) -> QuotaExceeded:
    return QuotaExceeded(
        f"You have used your {limit} {what} ({tier_name} tier); it resets at {_stamp(until)}",
        code=code,
        headers=_retry_after(until, now),
    )


def _over_rate(limit: int, reset: float, headers: dict[str, str]) -> RateLimited:
    return RateLimited(
        f"Rate limit of {limit} requests per minute reached; retry after "
        f"{max(1, math.ceil(reset - time.time()))} s",
        headers={**_retry_after(reset, time.time()), **headers},
    )


def _rate_headers(limit: int, remaining: int, reset: float) -> dict[str, str]:
    return {
        "X-RateLimit-Limit": str(limit),
        "X-RateLimit-Remaining": str(max(remaining, 0)),
        "X-RateLimit-Reset": str(math.ceil(reset)),
    }


def _stamp(when: float) -> str:
    return datetime.fromtimestamp(when, UTC).strftime("%Y-%m-%d %H:%M UTC")
