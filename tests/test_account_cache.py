"""The account cache off the request path: an expired entry is served while it is reread in
the background (one reread at a time), a revocation still takes effect at once, and with the
database down cached keys keep working while unknown ones get 503, never 401."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from gateway.accounts.keys import KeyCache, Principal, hash_key
from gateway.accounts.ttl import TTLCache
from gateway.errors import AuthenticationFailed, ServiceUnavailable
from gateway.storage import KeyRecord, StorageUnavailable
from tests.seam import pipeline

pytestmark = pytest.mark.unit

KEY = "gw-known-key"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class KeyStore:
    """``find_key`` answers from ``records``; once ``hold`` is set, reads wait for ``release``
    (or fail while ``down``)."""

    def __init__(self) -> None:
        self.records = {hash_key(KEY): KeyRecord(id="key_1", key_hash=hash_key(KEY),
                                                 prefix="gw-kno", user="a@example.com")}
        self.reads = 0
        self.hold = False
        self.down = False
        self.release = asyncio.Event()

    async def find_key(self, key_hash: str) -> KeyRecord | None:
        self.reads += 1
        answer = self.records.get(key_hash)  # as the database was when the read began
        if self.hold:
            await self.release.wait()
        if self.down:
            raise StorageUnavailable("database down")
        return answer


def key_cache(store: KeyStore, clock: Clock) -> KeyCache:
    keys = KeyCache(store, 30.0)  # type: ignore[arg-type]
    keys.known = TTLCache(30.0, clock=clock)
    return keys


async def test_an_expired_key_is_served_while_one_reread_is_pending() -> None:
    store, clock = KeyStore(), Clock()
    keys = key_cache(store, clock)
    assert (await keys.resolve(KEY)).user == "a@example.com"
    clock.now += 31  # expired, within the grace
    store.hold = True
    served = await asyncio.wait_for(
        asyncio.gather(*(keys.resolve(KEY) for _ in range(10))), timeout=1)
    assert {p.key_id for p in served} == {"key_1"}
    assert store.reads == 2  # the first read, then one reread for all ten
    store.records[hash_key(KEY)].tier = "pro"
    store.release.set()
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert (await keys.resolve(KEY)).tier == "pro"  # the reread replaced the entry
    assert store.reads == 2


async def test_past_the_grace_a_request_waits_for_the_store() -> None:
    store, clock = KeyStore(), Clock()
    keys = key_cache(store, clock)
    await keys.resolve(KEY)
    clock.now += 61  # unused for twice the TTL: too old to act on without asking
    store.hold = True
    waiting = asyncio.ensure_future(keys.resolve(KEY))
    await asyncio.sleep(0.01)
    assert not waiting.done()
    store.release.set()
    assert (await waiting).key_id == "key_1"


async def test_a_revocation_during_a_reread_takes_effect_at_once() -> None:
    store, clock = KeyStore(), Clock()
    keys = key_cache(store, clock)
    await keys.resolve(KEY)
    clock.now += 31
    store.hold = True
    await keys.resolve(KEY)  # served; the reread (of the key as still valid) is pending
    store.records[hash_key(KEY)].revoked_at = time.time()
    keys.forget(hash_key(KEY))  # the revocation, here or from the change broadcast
    store.hold = False
    with pytest.raises(AuthenticationFailed, match="revoked"):
        await keys.resolve(KEY)
    store.release.set()  # the stale reread ends: it must not bring the key back
    await asyncio.sleep(0.01)
    with pytest.raises(AuthenticationFailed, match="revoked"):
        await keys.resolve(KEY)


async def test_database_down_cached_key_works_unknown_key_is_503() -> None:
    store, clock = KeyStore(), Clock()
    keys = key_cache(store, clock)
    await keys.resolve(KEY)
    store.down = True
    clock.now += 31
    assert (await keys.resolve(KEY)).key_id == "key_1"  # within the grace: no wait at all
    await asyncio.sleep(0.01)  # its background reread failed; the entry stays
    clock.now += 3600  # far past the grace: the request asks, the store fails, the entry serves
    assert (await keys.resolve(KEY)).key_id == "key_1"
    with pytest.raises(ServiceUnavailable):
        await keys.resolve("gw-never-seen")


async def test_a_key_created_a_moment_ago_works_at_once() -> None:
    store, clock = KeyStore(), Clock()
    keys = key_cache(store, clock)
    new = "gw-brand-new"
    store.records[hash_key(new)] = KeyRecord(id="key_2", key_hash=hash_key(new), prefix="gw-bra")
    assert (await keys.resolve(new)).key_id == "key_2"


async def test_a_chat_with_expired_entries_does_not_wait_on_the_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with pipeline(tmp_path) as seam:
        assert (await seam.chat()).status_code == 200  # key, user and policy now cached
        accounts = seam.gateway.accounts
        caches: list[TTLCache[Any, Any]] = [
            seam.gateway.keys.known, accounts.cache._users, accounts.cache._policies]
        later = time.monotonic() + 6  # past the accounts' 5 s TTL, within its grace
        for cache in caches:
            cache._clock = lambda: later
        seam.gateway.keys.known._clock = lambda: later + 25  # keys: 30 s TTL
        release = asyncio.Event()
        reads: list[str] = []
        for store, name in ((seam.gateway.keys.store, "find_key"),
                            (accounts.cache.store, "find_user"),
                            (accounts.cache.store, "key_policies")):
            real = getattr(store, name)

            async def blocked(*args: Any, _real: Any = real, _name: str = name) -> Any:
                reads.append(_name)
                await release.wait()
                return await _real(*args)

            monkeypatch.setattr(store, name, blocked)
        answers = await asyncio.wait_for(
            asyncio.gather(*(seam.chat() for _ in range(3))), timeout=10)
        assert [a.status_code for a in answers] == [200] * 3
        assert sorted(reads) == ["find_key", "find_user", "key_policies"]  # one reread each
        release.set()
        await asyncio.sleep(0.05)
        assert isinstance(seam.gateway.keys.known.stale(hash_key(seam.key)), Principal)
