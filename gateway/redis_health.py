"""Deployment health shared by every instance through Redis (``routers.health.Health``).

The dispatcher reads health on every attempt, so ``RedisHealth`` answers every read from
this process's memory (it is a ``MemoryHealth``) and talks to Redis only when something goes
wrong:

- a failure is recorded here at once, then counted in Redis (``<prefix>health:fails:<key>``,
  one Lua script, fire-and-forget); when the count across all instances reaches
  ``routing.allowed_fails``, or at once for a rate limit, the script writes the bench's end
  (wall-clock epoch) to the hash ``<prefix>health:bench`` and publishes it on the channel
  ``<prefix>health``; every instance puts it in its local copy on receipt;
- the first success after failures seen here, or after a bench, clears the shared count
  (other successes don't touch Redis);
- on (re)subscription an instance loads the benches still running from the hash.

In-flight counts and latency stay per process (they describe this process's own traffic).
When Redis cannot be reached, health is local under either failure policy: refusing traffic
because a bench cannot be shared would do more harm than an instance finding out for itself.
Instances compare wall-clock times, so their clocks must agree (NTP) to within a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import msgspec
import structlog

from gateway.errors import ServiceUnavailable
from gateway.redis_client import RedisClient, RedisUnavailable
from routers.health import MemoryHealth

log = structlog.get_logger("gateway.health")

CHANNEL = "health"

# KEYS: fails counter, bench hash, channel. ARGV: health key, rate limited (0/1), pause (s),
# allowed fails, cooldown (s), max cooldown (s), now (epoch s).
FAIL_LUA = """
local fails = redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], math.ceil(tonumber(ARGV[5])) + 60)
if ARGV[2] ~= '1' and fails < tonumber(ARGV[4]) then return 0 end
local pause = math.min(tonumber(ARGV[3]), tonumber(ARGV[6]))
local untl = tonumber(ARGV[7]) + pause
local current = redis.call('HGET', KEYS[2], ARGV[1])
if current and tonumber(cjson.decode(current)[1]) >= untl then return 0 end
local value = cjson.encode({untl, tonumber(ARGV[2])})
redis.call('HSET', KEYS[2], ARGV[1], value)
redis.call('EXPIRE', KEYS[2], math.ceil(tonumber(ARGV[6])) + 60)
redis.call('PUBLISH', KEYS[3], cjson.encode({ARGV[1], untl, tonumber(ARGV[2])}))
return 1
"""

_bench = msgspec.json.Decoder(tuple[str, float, int])
_entry = msgspec.json.Decoder(tuple[float, int])


class RedisHealth(MemoryHealth):
    """``MemoryHealth`` whose benches are shared through Redis (see the module docstring)."""

    def __init__(self, redis: RedisClient, allowed_fails: int = 3, cooldown: float = 30.0,
                 max_cooldown: float = 300.0) -> None:
        super().__init__(allowed_fails, cooldown, max_cooldown)
        self.redis = redis
        self._fail = redis.script(FAIL_LUA)
        self._tasks: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        self.redis.subscribe(CHANNEL, self._on_bench, on_connected=self._on_connected)

    def record_failure(self, key: str, *, rate_limited: bool, retry_after: float | None) -> None:
        super().record_failure(key, rate_limited=rate_limited, retry_after=retry_after)
        pause = (retry_after if retry_after is not None else self.cooldown) if rate_limited \
            else max(self.cooldown, retry_after or 0.0)
        self._spawn(self._share_failure(key, rate_limited, pause))

    def record_success(self, key: str, latency: float) -> None:
        state = self._states.get(key)
        # Failures seen here, or a bench (from anywhere) now over: the shared count restarts.
        # Otherwise a success touches no Redis at all.
        over = state is not None and 0.0 < state.benched_until <= time.monotonic()
        clear = state is not None and (state.failures > 0 or over)
        super().record_success(key, latency)
        if state is not None and over:
            state.benched_until, state.limited = 0.0, False
        if clear:
            self._spawn(self._clear(key))

    def _spawn(self, work: object) -> None:
        task = asyncio.ensure_future(work)  # type: ignore[call-overload]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _share_failure(self, key: str, rate_limited: bool, pause: float) -> None:
        redis = self.redis
        keys = [redis.key("health:fails:" + key), redis.key("health:bench"),
                redis.key(CHANNEL)]
        args = [key, int(rate_limited), pause, self.allowed_fails, self.cooldown,
                self.max_cooldown, time.time()]
        # Failing: benched here already; the others find out for themselves.
        with contextlib.suppress(RedisUnavailable, ServiceUnavailable):
            await redis.call(lambda: self._fail(keys, args), "router health")

    async def _clear(self, key: str) -> None:
        with contextlib.suppress(RedisUnavailable, ServiceUnavailable):
            await self.redis.call(
                lambda: self.redis.client.delete(self.redis.key("health:fails:" + key)),
                "router health",
            )

    def bench(self, key: str, until_epoch: float, limited: bool) -> None:
        """Put a bench announced by another instance into the local copy."""
        until = time.monotonic() + (until_epoch - time.time())
        state = self._state(key)
        if until > state.benched_until + 0.5:  # ours, echoed back, is within a few ms
            state.benched_until = until
            state.limited = limited
            log.info("deployment_benched_elsewhere", deployment=key,
                     seconds=round(until_epoch - time.time(), 1), rate_limited=limited)

    def _on_bench(self, message: str) -> None:
        try:
            key, until, limited = _bench.decode(message)
        except msgspec.DecodeError:
            return
        self.bench(key, until, bool(limited))

    def _on_connected(self) -> None:
        self._spawn(self._load())

    async def _load(self) -> None:
        """Benches still running, from the hash (after a (re)subscription)."""
        try:
            entries = await self.redis.call(
                lambda: self.redis.client.hgetall(self.redis.key("health:bench")),
                "router health",
            )
        except (RedisUnavailable, ServiceUnavailable):
            return
        now = time.time()
        for field, value in entries.items():
            try:
                until, limited = _entry.decode(value)
            except msgspec.DecodeError:
                continue
            if until > now:
                name = field.decode() if isinstance(field, bytes) else str(field)
                self.bench(name, until, bool(limited))

    async def close(self) -> None:
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
