"""``RedisHealth`` of two processes on the real Redis: failures add up, benches travel."""

from __future__ import annotations

import asyncio
import time

import pytest

from gateway.redis_client import RedisClient
from gateway.redis_health import RedisHealth
from tests.services import REDIS_URL, ensure_redis, redis_prefix  # noqa: F401  (fixture)

pytestmark = pytest.mark.e2e


async def _until(predicate: object, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True


def test_failures_on_two_processes_add_up_to_a_bench_seen_by_both(redis_prefix: str) -> None:  # noqa: F811
    ensure_redis()

    async def scenario() -> None:
        shared = [RedisClient(REDIS_URL, redis_prefix + "health-unit:") for _ in range(2)]
        one, two = (RedisHealth(s, allowed_fails=2, cooldown=30.0) for s in shared)
        try:
            one.start()
            two.start()
            await asyncio.sleep(0.2)  # both subscribed
            # One failure each: neither process alone reached allowed_fails = 2.
            one.record_failure("fake/x", rate_limited=False, retry_after=None)
            assert one.benched_until("fake/x", time.monotonic()) == 0.0
            two.record_failure("fake/x", rate_limited=False, retry_after=None)
            assert await _until(lambda: one.benched_until("fake/x", time.monotonic()) > 0)
            assert await _until(lambda: two.benched_until("fake/x", time.monotonic()) > 0)
            left = one.benched_until("fake/x", time.monotonic()) - time.monotonic()
            assert 25 < left <= 30
            # A provider's 429 benches at once, everywhere, for its Retry-After.
            two.record_failure("fake/y", rate_limited=True, retry_after=7.0)
            assert await _until(lambda: one.benched_until("fake/y", time.monotonic()) > 0)
            assert one.rate_limited("fake/y")
            # A third process starting now loads the running benches.
            late_shared = RedisClient(REDIS_URL, redis_prefix + "health-unit:")
            late = RedisHealth(late_shared, allowed_fails=2)
            late.start()
            assert await _until(lambda: late.benched_until("fake/x", time.monotonic()) > 0)
            await late.close()
            await late_shared.close()
        finally:
            for health, s in zip((one, two), shared, strict=True):
                await health.close()
                await s.close()

    asyncio.run(scenario())


def test_a_success_after_failures_restarts_the_shared_count(redis_prefix: str) -> None:  # noqa: F811
    ensure_redis()

    async def scenario() -> None:
        shared = RedisClient(REDIS_URL, redis_prefix + "health-unit2:")
        health = RedisHealth(shared, allowed_fails=2, cooldown=30.0)
        other_shared = RedisClient(REDIS_URL, redis_prefix + "health-unit2:")
        other = RedisHealth(other_shared, allowed_fails=2, cooldown=30.0)
        try:
            health.start()
            other.start()
            await asyncio.sleep(0.2)
            health.record_failure("fake/z", rate_limited=False, retry_after=None)
            await health.close()  # the failure is counted in Redis
            health.record_success("fake/z", 0.1)
            await health.close()  # the count is cleared
            other.record_failure("fake/z", rate_limited=False, retry_after=None)
            await other.close()
            count = await shared.client.get(shared.key("health:fails:fake/z"))
            assert count == b"1"  # not 2: no bench
            assert not await shared.client.hexists(shared.key("health:bench"), "fake/z")
        finally:
            await shared.close()
            await other_shared.close()

    asyncio.run(scenario())
