"""``Admission``: what ``admit`` checks before a call and ``settle`` corrects after it (the
package docstring has the rules)."""

from __future__ import annotations

import asyncio
import math
import operator
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import structlog

from adapters import canonical as c
from gateway.accounts.keys import Principal
from gateway.accounts.userstate import AccountCache, UserState
from gateway.config import TierConfig
from gateway.counters import Limiter
from gateway.counters.batch import Hit
from gateway.counters.quota import CREDITS, REQUESTS, TOKENS, Quota, Units
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
    byok: dict[str, str] = field(default_factory=dict)
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    estimate_usd: float = 0.0
    credits_remaining: str = "unlimited"
    quota: Quota | None = None  # the counters counted, with ``units`` (gateway.counters)
    units: Units = (0, 0, 0)

    @property
    def token_counters(self) -> list[Counter]:
        return self._counters(TOKENS)

    @property
    def credit_counters(self) -> list[Counter]:
        return self._counters(CREDITS)

    def _counters(self, kind: int) -> list[Counter]:
        quota = self.quota
        if quota is None:
            return []
        return [Counter(key, self.units[kind], until)
                for key, of, until in zip(quota.keys, quota.kinds, quota.untils, strict=True)
                if of == kind]


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
        self._plans: dict[str, _Plan] = {}  # by key id: its counters today (``_Plan``)
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
        if tier.models:
            _check_allowed(target, tier.models, "your tier")
        if policy.allowed_models:
            _check_allowed(target, policy.allowed_models, "this key")
        ticket = self._ticket(state, tier, tier_name, target, body_size, max_tokens, units)
        # The balance first: an atomic check-and-reserve (gateway.balances).
        if ticket.prepaid:
            await self._reserve_balance(state, ticket)
        limiter = self.limiter
        now = limiter.clock()
        key_rpm, key_rpd = policy.requests_per_minute, policy.requests_per_day
        plan = self._plans.get(principal.key_id)
        user = state.email or principal.key_id
        if plan is None or not plan.fits(user, tier, key_rpm, key_rpd, now):
            plan = self._plan(principal.key_id, user, tier, key_rpm, key_rpd, now)
        quota = ticket.quota = plan.quota
        counted = ticket.units = (1, target.credits, ticket.reserved_tokens)
        try:
            # memory://: no await (and so no other request) between check and update.
            if limiter.fast is not None:
                values, hits = limiter.fast.admit(quota, counted, now)
            else:  # one Redis round trip (gateway.counters.Limiter.admit)
                values, hits = await limiter.admit(quota, counted)
            self._answer(plan, values, hits, state, principal.key_id, ticket, now)
        except GatewayError:
            cache.balances.settle(state.email, ticket.reserved_usd, 0.0, ticket.reserved_in)
            raise
        return ticket

    def _ticket(
        self, state: UserState, tier: TierConfig, tier_name: str, target: Deployment,
        body_size: int, max_tokens: int | None, units: c.Usage | None,
    ) -> Ticket:
        prompt_tokens = body_size // 4 + 1
        # None: the caller set no cap; 0: the operation generates nothing (embeddings…).
        reserve = self.output_reserve if max_tokens is None else max_tokens
        output_tokens = min(reserve, target.max_output)
        estimate = target.cost(prompt_tokens, output_tokens)
        if units is not None:  # what image and video models make, at most (``units``)
            estimate += target.cost(0, 0, 0, units.images, units.videos, units.video_seconds)
        return Ticket(
            user=state.email,
            tier=tier,
            tier_name=tier_name,
            prepaid=tier.prepaid and target.provider not in state.byok,
            byok=state.byok,
            estimate_usd=estimate,
            reserved_tokens=prompt_tokens + output_tokens,
        )

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

    def _answer(
        self, plan: _Plan, values: list[int], hits: list[Hit], state: UserState, key_id: str,
        ticket: Ticket, now: float,
    ) -> None:
        """Refuse at the first counter or window over its limit; else the ticket's headers."""
        quota = plan.quota
        if (len(hits) != len(quota.windows) or (hits and not hits[-1][0])
                or any(map(operator.gt, values, quota.limits))):
            error = plan.refusal(values, hits, ticket.tier_name, now)
            error.headers.setdefault("X-Tier", ticket.tier_name)
            self._limit_reached(state.email, key_id, error)
            raise error
        if hits:  # the first window's figures: the user's when the tier limits the minute
            _, remaining, reset = hits[0]
            ticket.headers = [
                (b"X-RateLimit-Limit", plan.limit_header),
                (b"X-RateLimit-Remaining", b"%d" % max(remaining, 0)),
                (b"X-RateLimit-Reset", b"%d" % math.ceil(reset)),
            ]
        else:
            ticket.headers = list(_UNLIMITED)
        if plan.credits >= 0:
            ticket.credits_remaining = str(max(quota.limits[plan.credits] - values[plan.credits],
                                               0))
        if ticket.prepaid:
            ticket.credits_remaining = f"{max(self.cache.available(state), 0.0):.6f}"

    def _plan(
        self, key_id: str, user: str, tier: TierConfig, key_rpm: int, key_rpd: int, now: float
    ) -> _Plan:
        """A key's counters and windows for the UTC day of ``now``, kept for its next requests
        (the cache is dropped whole past ``_PLANS``: entries of past days go with it)."""
        if len(self._plans) >= _PLANS:
            self._plans.clear()
        plan = self._plans[key_id] = _Plan(self.limiter.periods(now), key_id, user, tier,
                                           key_rpm, key_rpd)
        return plan

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
        quota = ticket.quota
        if quota is None or not quota.keys:
            return
        actual = usage.input_tokens + usage.output_tokens if usage is not None else 0
        # What to add back per kind: tokens as really used; credits when nothing was served.
        units = (0, 0 if served is not None else -ticket.units[CREDITS],
                 actual - ticket.units[TOKENS])
        fast = self.limiter.fast
        if fast is not None:  # memory://: no I/O, no task needed
            fast.add_units(quota, units, self.limiter.clock())
        elif units[CREDITS] or units[TOKENS]:
            self._queue(quota, units)

    def _queue(self, quota: Quota, units: Units) -> None:
        """Corrections for Redis, coalesced: one call in flight at a time carries every
        correction queued since the last one (one round trip per request at most, fewer
        under load)."""
        pending = self._pending
        for key, kind, until in zip(quota.keys, quota.kinds, quota.untils, strict=True):
            delta = units[kind]
            if delta:
                where = (key, until)
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


# Dated counters, in the order they are counted: name, whose (user or key), kind of unit,
# refusal code, what the refusal calls it.
_SPECS = (
    ("rpd", "u", REQUESTS, "daily_limit_exceeded", "requests per day"),
    ("rpd", "k", REQUESTS, "daily_limit_exceeded", "requests per day for this key"),
    ("cpd", "u", CREDITS, "daily_credits_exhausted", "credits per day"),
    ("tpd", "u", TOKENS, "daily_token_limit_exceeded", "tokens per day"),
    ("tpm", "u", TOKENS, "monthly_token_limit_exceeded", "tokens per month"),
)
_UNLIMITED = (
    (b"x-ratelimit-limit", b"unlimited"),
    (b"x-ratelimit-remaining", b"unlimited"),
    (b"x-ratelimit-reset", b"0"),
)
_PLANS = 16384  # keys' plans kept at most (one per key in use today)


class _Plan:
    """One key's ``Quota`` for one UTC day (none of its counters when the tier and key set no
    such limit), and what admission's answers need of it."""

    __slots__ = ("credits", "end", "key_rpd", "key_rpm", "limit_header", "quota", "specs",
                 "start", "tier", "user")

    def __init__(
        self, periods: tuple[str, str, float, float], key_id: str, user: str, tier: TierConfig,
        key_rpm: int, key_rpd: int,
    ) -> None:
        day, month, midnight, month_end = periods
        self.user, self.tier, self.key_rpm, self.key_rpd = user, tier, key_rpm, key_rpd
        self.start, self.end = midnight - 86400.0, midnight
        limits = (tier.requests_per_day, key_rpd, tier.credits_per_day, tier.tokens_per_day,
                  tier.tokens_per_month)
        counters: list[tuple[str, int, int, float]] = []
        specs: list[int] = []
        for i, ((name, whose, kind, _, _), limit) in enumerate(zip(_SPECS, limits, strict=True)):
            if limit:
                period, until = (month, month_end) if name == "tpm" else (day, midnight)
                counters.append((f"{name}:{period}:{whose}:{user if whose == 'u' else key_id}",
                                 kind, limit, until))
                specs.append(i)
        windows = [(scope, limit) for scope, limit in (
            (f"u:{user}", tier.requests_per_minute), (f"k:{key_id}", key_rpm)) if limit]
        self.quota = Quota(counters, windows)
        self.specs = tuple(specs)
        # The credits counter's index (its remainder is the X-Credits-Remaining header).
        self.credits = next((j for j, kind in enumerate(self.quota.kinds) if kind == CREDITS), -1)
        self.limit_header = str(windows[0][1]).encode() if windows else b""

    def fits(self, user: str, tier: TierConfig, key_rpm: int, key_rpd: int, now: float) -> bool:
        return (self.start <= now < self.end and self.tier is tier and self.user == user
                and self.key_rpm == key_rpm and self.key_rpd == key_rpd)

    def refusal(
        self, values: list[int], hits: list[Hit], tier_name: str, now: float
    ) -> GatewayError:
        """The refusal for the first counter or window found over its limit."""
        quota = self.quota
        for i, value in enumerate(values):
            if value > quota.limits[i]:
                _, _, _, code, what = _SPECS[self.specs[i]]
                return _over_quota(quota.limits[i], what, tier_name, quota.untils[i], now, code)
        for (_, limit), (allowed, remaining, reset) in zip(quota.windows, hits, strict=False):
            if not allowed:
                return _over_rate(limit, reset, _rate_headers(limit, remaining, reset))
        raise AssertionError("refusal() called for an admitted request")


def _check_allowed(target: Deployment, allowed: Sequence[str], whose: str) -> None:
    if target.id not in allowed and not set(target.aliases) & set(allowed):
        raise PermissionDenied(
            f"Model '{target.id}' is not allowed for {whose}; allowed: {', '.join(allowed)}",
            param="model",
            code="model_not_allowed",
        )


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
