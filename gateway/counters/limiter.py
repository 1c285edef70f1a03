"""Windows and counters for admission: in a ``limits`` storage (``memory://``, or ``redis://``
shared by every instance), or in plain dicts for ``memory://`` (``gateway.counters.memory``).

With Redis, every operation runs under ``limits.redis_failure``: 503 when ``"closed"``, an
in-process limiter when ``"open"``, until Redis is back.
"""

from __future__ import annotations

import calendar
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TypeVar

from limits import RateLimitItemPerMinute
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import StorageError
from limits.storage import storage_from_string
from redis.exceptions import RedisError

from gateway.counters import batch
from gateway.counters.batch import Hit, Step
from gateway.counters.memory import MemoryWindows, is_memory
from gateway.counters.quota import Quota, Units
from gateway.redis_client import RedisClient, RedisUnavailable

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

    With ``redis`` every operation runs under its failure policy: 503 when closed,
    the in-process ``fallback`` limiter when open.
    """

    def __init__(
        self, uri: str, clock: Clock = time.time, redis: RedisClient | None = None
    ) -> None:
        options: dict[str, str] = {}
        if uri.split("://", 1)[0].removeprefix("async+").startswith("redis"):
            options["implementation"] = "redispy"  # redis-py is the client this project ships
            options["key_prefix"] = (redis.prefix if redis else "gw:") + "limits"
        self.storage = storage_from_string(async_storage_uri(uri), **options)
        self.moving = MovingWindowRateLimiter(self.storage)
        self.clock = clock
        self.redis = redis
        # With the process's Redis: admission's counters in one script (gateway.counters.batch).
        self._prefix = options.get("key_prefix", "") + ":"
        self._admit = redis.script(batch.ADMIT_LUA) if redis is not None else None
        self._add = redis.script(batch.ADD_LUA) if redis is not None else None
        self.fallback = Limiter("memory://", clock) if redis is not None else None
        self._items: dict[int, RateLimitItemPerMinute] = {}
        self._periods: tuple[str, str, float, float, float] | None = None
        # memory://: the same windows and counters in plain dicts (gateway/counters/memory.py).
        self.fast = MemoryWindows() if is_memory(uri) else None

    def _minute(self, limit: int) -> RateLimitItemPerMinute:
        item = self._items.get(limit)
        if item is None:
            item = self._items[limit] = RateLimitItemPerMinute(limit)
        return item

    async def hit_minute(self, scope: str, limit: int) -> tuple[bool, int, float]:
        """Count one request in the moving minute: (allowed, remaining, reset epoch)."""
        if self.redis is not None and self.fallback is not None:
            try:
                return await self.redis.call(
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

    async def admit(self, quota: Quota, units: Units) -> tuple[list[int], list[Hit]]:
        """Add ``units`` to the dated counters of ``quota``, then hit its moving minutes, in
        order, stopping at the first one over its limit (after which every counter added to is
        taken back): (each counter's new value, 0 when not reached; each window's (allowed,
        remaining, reset) when reached).

        ``memory://``: ``self.fast.admit``, with no ``await`` (admission calls it directly).
        With Redis: one round trip (``batch.ADMIT_LUA``), under the failure policy; none when
        there is nothing to count.
        """
        if not (quota.keys or quota.windows):
            return [], []
        if self.fast is not None:
            return self.fast.admit(quota, units, self.clock())
        if self.redis is not None and self.fallback is not None and self._admit is not None:
            run, now, today = self._admit, time.time(), self.clock()  # windows: time of day
            keys = self._keys(quota)
            counters = [(units[kind], limit, int(max(until - today, 1.0)) + 60)
                        for kind, limit, until in zip(quota.kinds, quota.limits, quota.untils,
                                                      strict=True)]
            limits = [limit for _, limit in quota.windows]
            try:
                return await self.redis.call(
                    lambda: batch.admit(run, keys, now, counters, limits),
                    "quotas" if counters else "rate limits",
                )
            except RedisUnavailable:
                return await self.fallback.admit(quota, units)
        return await self._admit_each(quota.steps(units, self.expiry), list(quota.windows))

    def _keys(self, quota: Quota) -> list[str]:
        """The Redis keys of ``quota``'s counters then windows (the ``limits`` library's),
        made once per quota."""
        shared = quota.shared
        if shared is None or shared[0] is not self:
            keys = [self._prefix + key for key in quota.keys] + [
                self._prefix + self._minute(limit).key_for(scope)
                for scope, limit in quota.windows
            ]
            shared = quota.shared = (self, keys)
        return shared[1]  # type: ignore[no-any-return]

    async def _admit_each(
        self, counters: list[Step], windows: list[tuple[str, int]]
    ) -> tuple[list[int], list[Hit]]:
        values = [0] * len(counters)
        hits: list[Hit] = []
        for i, (key, amount, limit, expiry) in enumerate(counters):
            values[i] = await self._incr(key, expiry, amount)
            if values[i] > limit:
                await self._take_back(counters[: i + 1])
                return values, hits
        for scope, limit in windows:
            hits.append(await self._hit_minute(scope, limit))
            if not hits[-1][0]:
                await self._take_back(counters)
                break
        return values, hits

    async def _take_back(self, counters: list[Step]) -> None:
        for key, amount, _, expiry in counters:
            await self._incr(key, expiry, -amount)

    async def add_many(self, changes: list[tuple[str, int, float]]) -> None:
        """Add to several counters (key, amount, until): with Redis in one round trip."""
        if self.redis is not None and self.fallback is not None and self._add is not None:
            run = self._add
            steps = [(key, amount, self.expiry(until)) for key, amount, until in changes]
            try:
                return await self.redis.call(
                    lambda: batch.add(run, self._prefix, steps), "quotas"
                )
            except RedisUnavailable:
                return await self.fallback.add_many(changes)
        for key, amount, until in changes:
            await self._incr(key, self.expiry(until), amount)

    async def add(self, key: str, amount: int, until: float) -> int:
        """Add to a counter that expires at ``until``; answers the new value."""
        expiry = self.expiry(until)
        if self.redis is not None and self.fallback is not None:
            try:
                return await self.redis.call(
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
        if self.redis is not None and self.fallback is not None:
            try:
                return await self.redis.call(lambda: _wrapped(self._get(key)), "quotas")
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
