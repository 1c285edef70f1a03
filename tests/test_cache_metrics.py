"""Response-cache decisions and keys, and the scale-out config checks (metrics: test_metrics)."""

from __future__ import annotations

import msgspec
import pytest

from gateway.accounts.keys import Principal
from gateway.cache import MemoryBackend, ResponseCache
from gateway.config import CacheConfig, ConfigError, GatewayConfig, config_warnings, parse_config

pytestmark = pytest.mark.unit

ALICE = Principal(key_id="key_a", user="alice@example.com", tier="free", key_name="ci")
ALICE2 = Principal(key_id="key_a2", user="alice@example.com", tier="free")
BOB = Principal(key_id="key_b", user="bob@example.com", tier="free")


def body(**fields: object) -> bytes:
    return msgspec.json.encode(
        {"model": "m", "messages": [{"role": "user", "content": "hi"}], **fields}
    )


def test_opt_in_by_request_key_or_config() -> None:
    opt_in = ResponseCache(CacheConfig(mode="opt-in", keys=["ci"]), MemoryBackend(10))
    assert not opt_in.wanted(BOB, None)
    assert opt_in.wanted(BOB, b"use") and opt_in.wanted(BOB, b" Refresh ")
    assert opt_in.wanted(ALICE, None)  # listed by key name
    assert not opt_in.wanted(ALICE, b"bypass")
    always = ResponseCache(CacheConfig(mode="on"), MemoryBackend(10))
    assert always.wanted(BOB, None) and not always.wanted(BOB, b"bypass")


def test_key_ignores_fields_that_do_not_change_the_answer() -> None:
    cache = ResponseCache(CacheConfig(mode="on"), MemoryBackend(10))
    base = cache.key("openai", "m", ALICE, body(temperature=0))
    reordered = msgspec.json.encode(
        {"temperature": 0, "messages": [{"content": "hi", "role": "user"}], "model": "alias"}
    )
    assert cache.key("openai", "m", ALICE, reordered) == base
    assert cache.key("openai", "m", ALICE, body(temperature=0, stream=True, user="u")) == base
    assert cache.key("openai", "m", ALICE, body(temperature=1)) != base
    assert cache.key("anthropic", "m", ALICE, body(temperature=0)) != base
    assert cache.key("openai", "other", ALICE, body(temperature=0)) != base


@pytest.mark.parametrize(
    ("scope", "same_user", "other_user"),
    [("key", False, False), ("user", True, False), ("global", True, True)],
)
def test_scope_decides_who_shares_answers(scope: str, same_user: bool, other_user: bool) -> None:
    cache = ResponseCache(CacheConfig(mode="on", scope=scope), MemoryBackend(10))  # type: ignore[arg-type]
    mine = cache.key("openai", "m", ALICE, body())
    assert (cache.key("openai", "m", ALICE2, body()) == mine) is same_user
    assert (cache.key("openai", "m", BOB, body()) == mine) is other_user


async def test_memory_backend_expires_and_evicts() -> None:
    backend = MemoryBackend(max_entries=2)
    await backend.set("gone", b"x", ttl=0)
    assert await backend.get("gone") is None
    for name in ("a", "b", "c"):
        await backend.set(name, name.encode(), ttl=60)
    assert await backend.get("a") is None
    assert (await backend.get("b"), await backend.get("c")) == (b"b", b"c")


def test_config_checks_for_scale_out() -> None:
    with pytest.raises(ConfigError, match=r"cache\.backend"):
        parse_config('[cache]\nmode = "on"\nbackend = "redis"\n')
    with pytest.raises(ConfigError, match=r"storage\.url"):
        parse_config('[storage]\nurl = "mysql://x"\n')
    with pytest.raises(ConfigError, match=r"redis_failure"):
        parse_config('[limits]\nstorage = "redis://x"\nredis_failure = "maybe"\n')
    many = parse_config("[server]\nworkers = 4\n")
    assert any("limits.storage = memory://" in w for w in config_warnings(many))
    assert any("SQLite" in w for w in config_warnings(many))
    shared = parse_config(
        '[server]\nworkers = 4\n[storage]\nurl = "postgresql://db/gw"\n'
        '[limits]\nstorage = "redis://127.0.0.1:6379"\n[cache]\nmode = "on"\nbackend = "redis"\n'
    )
    assert config_warnings(shared) == []
    assert isinstance(shared, GatewayConfig)


def test_multi_node_example_is_a_valid_config_without_warnings() -> None:
    from tests.conftest import ROOT

    config = parse_config((ROOT / "config" / "multi-node.toml").read_text(), "multi-node.toml")
    assert config.storage.url.startswith("postgresql://")
    assert config.limits.storage.startswith("redis://") and config.cache.backend == "redis"
    assert [w for w in config_warnings(config) if "disabled" not in w] == []


async def test_shared_script_counts_atomically_under_the_prefix() -> None:
    """The building block for shared limits: a Lua script over prefixed keys, real Redis."""
    import asyncio
    import secrets

    from gateway.redis_client import RedisClient
    from tests.services import REDIS_URL, ensure_redis

    ensure_redis()
    shared = RedisClient(REDIS_URL, prefix=f"gwtest:{secrets.token_hex(4)}:")
    incr = shared.script(
        "local n = redis.call('INCR', KEYS[1]) redis.call('PEXPIRE', KEYS[1], ARGV[1]) return n"
    )
    name = shared.key("counter")
    try:
        results = await asyncio.gather(
            *(shared.call(lambda: incr([name], [5000]), "test") for _ in range(20))
        )
        assert sorted(results) == list(range(1, 21))
        assert await shared.ping() and shared.healthy
    finally:
        await shared.client.delete(name)
        await shared.close()
