"""Admission in-process: exact limits under concurrency, daily reset with a controlled clock,
balances that cannot be overspent, and the refusals' bodies in both dialects."""

from __future__ import annotations

import asyncio
import calendar
import secrets
from collections.abc import AsyncIterator

import msgspec
import pytest

from gateway.accounts.keys import Principal
from gateway.accounts.secretbox import SecretBox
from gateway.accounts.userstate import AccountCache
from gateway.admission import Admission, Limiter
from gateway.balances import LocalBalances
from gateway.config import parse_config
from gateway.errors import (
    AccountBlocked,
    GatewayError,
    InsufficientBalance,
    Maintenance,
    QuotaExceeded,
    RateLimited,
)
from gateway.redis_client import RedisClient
from gateway.storage import AccountsStore, UserRecord, open_store
from routers.catalog import Model
from tests.services import REDIS_URL, redis_prefix  # noqa: F401

pytestmark = pytest.mark.unit

CONFIG = """
[tiers.free]
requests_per_day = 7
[tiers.tight]
requests_per_minute = 4
[tiers.both]
requests_per_minute = 3
requests_per_day = 100
[tiers.tokens]
tokens_per_day = 1000
[tiers.credits]
credits_per_day = 10
[tiers.pro]
prepaid = true
"""
MODEL = Model(id="m", provider="p", upstream="m", output_price=250_000.0, credits=3)


@pytest.fixture(params=["memory", "redis"])
async def world(
    request: pytest.FixtureRequest,
) -> AsyncIterator[tuple[Admission, AccountCache, list[float]]]:
    """Admission on ``memory://``, and on Redis (the tests' own, ``tests/services.py``)."""
    store = await open_store("sqlite:///:memory:")
    accounts = AccountsStore(store.db)
    cache = AccountCache(accounts, parse_config(CONFIG), SecretBox(""), LocalBalances())
    clock = [calendar.timegm((2026, 3, 1, 23, 59, 0))]
    shared = None
    if request.param == "redis":
        prefix = request.getfixturevalue("redis_prefix") + secrets.token_hex(4) + ":"
        shared = RedisClient(REDIS_URL, prefix, failure="closed")
    limiter = Limiter(REDIS_URL if shared else "memory://", lambda: clock[0], shared)
    yield Admission(cache, limiter, 4), cache, clock
    await store.close()
    if shared is not None:
        await shared.close()


def who(tier: str, user: str = "a@example.com") -> Principal:
    return Principal(key_id="key_" + user, user=user, tier=tier)


async def outcomes(admission: Admission, principal: Principal, n: int) -> list[object]:
    return await asyncio.gather(
        *(admission.admit(principal, MODEL, 40, 4) for _ in range(n)), return_exceptions=True
    )


async def test_daily_limit_exact_under_concurrency_and_resets_at_midnight(world) -> None:
    admission, _, clock = world
    results = await outcomes(admission, who("free"), 30)
    refused = [r for r in results if isinstance(r, GatewayError)]
    assert len(results) - len(refused) == 7
    assert all(isinstance(r, QuotaExceeded) for r in refused)
    assert refused[0].code == "daily_limit_exceeded"
    assert refused[0].headers["Retry-After"] == "60"  # 23:59:00 -> midnight
    clock[0] += 61  # 00:00:01 UTC the next day
    results = await outcomes(admission, who("free"), 10)
    assert sum(not isinstance(r, Exception) for r in results) == 7


async def test_minute_limit_is_a_distinct_429(world) -> None:
    admission, _, _ = world
    results = await outcomes(admission, who("tight"), 10)
    refused = [r for r in results if isinstance(r, Exception)]
    assert len(refused) == 6
    assert all(type(r) is RateLimited and r.code == "rate_limit_exceeded" for r in refused)
    assert int(refused[0].headers["Retry-After"]) >= 1
    assert refused[0].headers["X-RateLimit-Remaining"] == "0"


async def test_minute_refusal_takes_back_the_day_and_survives_a_script_flush(world) -> None:
    admission, _, _ = world
    results = await outcomes(admission, who("both"), 5)
    assert [type(r) for r in results].count(RateLimited) == 2
    day = admission.limiter.day()
    # Only the admitted requests count towards the day: a refused one was taken back.
    assert await admission.limiter.get(f"rpd:{day}:u:a@example.com") == 3
    if admission.limiter.redis is not None:  # Redis restarted: scripts are loaded again
        await admission.limiter.redis.client.script_flush()
    ticket = await admission.admit(who("both", "b@example.com"), MODEL, 40, 4)
    assert dict(ticket.headers)[b"X-RateLimit-Remaining"] == b"2"


async def test_credits_and_tokens_are_counted_and_settled(world) -> None:
    admission, _, _ = world
    results = await outcomes(admission, who("credits"), 5)  # 3 credits each, 10 a day
    assert sum(not isinstance(r, Exception) for r in results) == 3
    assert [r.code for r in results if isinstance(r, QuotaExceeded)] == [
        "daily_credits_exhausted"
    ] * 2
    # tokens: each admit reserves 40 // 4 + 1 + 4 = 15; settling real usage corrects it
    ticket = await admission.admit(who("tokens"), MODEL, 40, 4)
    from adapters.canonical import Usage

    admission.settle(ticket, MODEL, Usage(input_tokens=600, output_tokens=300), 0.0)
    await asyncio.sleep(0)
    await asyncio.gather(*admission._tasks)
    assert await admission.limiter.get(f"tpd:{admission.limiter.day()}:u:a@example.com") == 900
    with pytest.raises(QuotaExceeded) as refused:
        for _ in range(10):
            await admission.admit(who("tokens"), MODEL, 40, 4)
    assert refused.value.code == "daily_token_limit_exceeded"


async def _script_calls(admission: Admission) -> int:
    """EVALSHA calls Redis has answered so far (0 on ``memory://``)."""
    redis = admission.limiter.redis
    if redis is None:
        return 0
    stats = await redis.client.info("commandstats")
    return int(stats.get("cmdstat_evalsha", {}).get("calls", 0))


async def test_corrections_ride_on_the_next_admission(world) -> None:
    """Settle's correction reaches Redis inside the next admission's script, counted before
    it (no round trip of its own); with no admission coming, it goes alone soon after."""
    from adapters.canonical import Usage

    admission, _, _ = world
    counter = f"tpd:{admission.limiter.day()}:u:a@example.com"
    ticket = await admission.admit(who("tokens"), MODEL, 40, 4)  # reserves 15 tokens
    before = await _script_calls(admission)
    admission.settle(ticket, MODEL, Usage(input_tokens=600, output_tokens=300), 0.0)
    await admission.admit(who("tokens"), MODEL, 40, 4)
    if admission.limiter.redis is not None:
        assert await _script_calls(admission) == before + 1
    assert await admission.limiter.get(counter) == 900 + 15
    ticket = await admission.admit(who("tokens"), MODEL, 40, 4)
    admission.settle(ticket, MODEL, Usage(input_tokens=5, output_tokens=5), 0.0)
    await asyncio.sleep(0.2)
    assert await admission.limiter.get(counter) == 900 + 15 + 10


async def test_balance_for_ten_serves_ten_of_a_hundred(world) -> None:
    admission, cache, _ = world
    await cache.store.insert_user(
        UserRecord(email="rich@example.com", id="u1", password_hash="x", tier="pro",
                   balance_usd=10.0, created_at=0.0)
    )
    results = await outcomes(admission, who("pro", "rich@example.com"), 100)
    tickets = [r for r in results if not isinstance(r, Exception)]
    assert len(tickets) == 10  # each may cost 4 tokens x $0.25 = $1
    assert all(isinstance(r, InsufficientBalance) for r in results if isinstance(r, Exception))
    for ticket in tickets:  # each really cost $1
        admission.settle(ticket, MODEL, None, 1.0)
    assert cache.balances.pending["rich@example.com"] == pytest.approx(10.0)
    with pytest.raises(InsufficientBalance):
        await admission.admit(who("pro", "rich@example.com"), MODEL, 40, 4)


async def test_blocked_and_maintenance(world) -> None:
    admission, cache, _ = world
    await cache.store.insert_user(
        UserRecord(email="bad@example.com", id="u2", password_hash="x", status="blocked",
                   created_at=0.0)
    )
    with pytest.raises(AccountBlocked):
        await admission.admit(who("free", "bad@example.com"), MODEL, 40, 4)
    cache.maintenance = "Back at 10:00 UTC"
    with pytest.raises(Maintenance) as refused:
        await admission.admit(who("free"), MODEL, 40, 4)
    assert refused.value.message == "Back at 10:00 UTC"


@pytest.mark.parametrize(
    ("error", "status", "anthropic_type", "openai_type"),
    [
        (InsufficientBalance("top up"), 402, "billing_error", "insufficient_balance"),
        (AccountBlocked("blocked"), 403, "permission_error", "blocked"),
        (Maintenance("later"), 503, "overloaded_error", "maintenance"),
        (QuotaExceeded("tomorrow", code="daily_limit_exceeded"), 429, "rate_limit_error", "limit"),
    ],
)
def test_refusal_bodies_in_both_dialects(
    error: GatewayError, status: int, anthropic_type: str, openai_type: str
) -> None:
    assert error.status == status
    anthropic = msgspec.json.decode(error.body("anthropic"))
    assert anthropic == {"type": "error", "error": {"type": anthropic_type,
                                                    "message": error.message}}
    assert msgspec.json.decode(error.body("openai"))["error"]["type"] == openai_type


def test_tier_config_errors_name_the_key() -> None:
    from gateway.config import ConfigError

    with pytest.raises(ConfigError, match=r"accounts.default_tier: 'gold' is not a configured"):
        parse_config('[accounts]\ndefault_tier = "gold"\n[tiers.free]\n')
    with pytest.raises(ConfigError, match=r"tiers.free.requests_per_minute: must not be neg"):
        parse_config("[tiers.free]\nrequests_per_minute = -1\n")
    with pytest.raises(ConfigError, match=r"accounts.self_service_tiers: unknown tier 'x'"):
        parse_config('[accounts]\nself_service_tiers = ["x"]\n[tiers.free]\n')
