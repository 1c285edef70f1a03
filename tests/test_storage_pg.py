"""The PostgreSQL store: the same SQL layer and migrations as SQLite, on the real server."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest

from gateway import storage
from gateway.auth import create_key
from gateway.ledger import Ledger, UsageRow
from gateway.storage import KeyRecord, StorageUnavailable, Store, open_store
from gateway.storage_pg import PostgresDatabase, translate
from tests.services import pg_query, pg_url  # noqa: F401  (fixture)

pytestmark = pytest.mark.e2e


def test_placeholders_translated_outside_quotes() -> None:
    assert translate("SELECT a FROM t WHERE b = ? AND c = '?' AND d = ?") == (
        "SELECT a FROM t WHERE b = $1 AND c = '?' AND d = $2"
    )


@pytest.fixture
async def store(pg_url: str) -> AsyncIterator[Store]:  # noqa: F811
    store = await open_store(pg_url)
    yield store
    await store.close()


async def test_keys_and_usage_round_trip(store: Store) -> None:
    _key, record = await create_key(store, "gw-", name="pg", user="pg@example.com", tier="pro")
    found = await store.find_key(record.key_hash)
    assert found is not None and (found.user, found.tier, found.name) == (
        "pg@example.com", "pro", "pg"
    )
    assert await store.revoke_key(record.prefix) is not None
    found = await store.find_key(record.key_hash)
    assert found is not None and found.revoked_at is not None
    ledger = Ledger(store, flush_interval=0.05)
    request_id = f"req-{time.time_ns()}"
    ledger.record(
        UsageRow(
            request_id=request_id, created_at=time.time(), key_id=record.id, stream=True,
            prompt_tokens=2**40, cost_usd=0.125, ttft_ms=None, cache_hit=True,
        )
    )
    assert await ledger.flush()
    rows = [r for r in await store.usage_rows() if r["request_id"] == request_id]
    assert len(rows) == 1
    assert rows[0]["prompt_tokens"] == 2**40 and rows[0]["cost_usd"] == 0.125
    assert rows[0]["stream"] == 1 and rows[0]["cache_hit"] == 1 and rows[0]["ttft_ms"] is None
    used = await store.find_key(record.key_hash)
    assert used is not None and used.last_used_at is not None


async def test_migration_keeps_existing_data(
    pg_url: str, monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> None:
    """A v1 database with data, upgraded to every migration there is, plus one more."""
    schema = f"upgrade_{time.time_ns()}"
    pg_query(pg_url, f"CREATE SCHEMA {schema}")
    url = f"{pg_url}?options=-csearch_path%3D{schema}"
    full = list(storage.MIGRATIONS)
    monkeypatch.setattr(storage, "MIGRATIONS", full[:1])
    monkeypatch.setattr(storage, "USAGE_COLUMNS", storage.USAGE_COLUMNS[:23])
    old = await open_store(url)
    await old.insert_key(KeyRecord(id="key_old", key_hash="h-old", prefix="gw-old", created_at=1.0))
    await old.db.execute(
        "INSERT INTO usage (request_id, created_at, key_id, status, prompt_tokens)"
        " VALUES (?, ?, ?, ?, ?)",
        ("req-old", 2.0, "key_old", 200, 7),
    )
    await old.close()
    extra = ["ALTER TABLE api_keys ADD COLUMN note TEXT NOT NULL DEFAULT 'none'"]
    monkeypatch.undo()
    monkeypatch.setattr(storage, "MIGRATIONS", [*full, extra])
    new = await open_store(url)
    try:
        assert await new.migrate() == len(full) + 1
        old_key = await new.find_key("h-old")
        assert old_key is not None and old_key.prefix == "gw-old"
        rows = await new.usage_rows()
        assert [(r["request_id"], r["prompt_tokens"], r["cache_hit"]) for r in rows] == [
            ("req-old", 7, 0)
        ]
        assert await new.db.fetchall("SELECT note FROM api_keys") == [("none",)]
    finally:
        await new.close()


async def test_unreachable_server_is_storage_unavailable() -> None:
    db = PostgresDatabase("postgresql://127.0.0.1:1/none", timeout=2)
    with pytest.raises(StorageUnavailable):
        await db.connect()
    with pytest.raises(StorageUnavailable):
        await db.fetchall("SELECT 1")


async def test_instances_starting_together_migrate_once(pg_url: str) -> None:  # noqa: F811
    """Four stores with one-connection pools open the same fresh schema at the same moment."""
    import asyncio

    schema = f"race_{time.time_ns()}"
    pg_query(pg_url, f"CREATE SCHEMA {schema}")
    url = f"{pg_url}?options=-csearch_path%3D{schema}"
    stores = await asyncio.gather(*(open_store(url, pool_size=1) for _ in range(4)))
    try:
        versions = await stores[0].db.fetchall("SELECT version FROM schema_version ORDER BY 1")
        assert [v for (v,) in versions] == list(range(1, len(storage.MIGRATIONS) + 1))
    finally:
        for store in stores:
            await store.close()


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
async def test_a_batch_written_again_is_not_duplicated(
    engine: str, pg_url: str, tmp_path: object  # noqa: F811
) -> None:
    """A retry after a lost commit acknowledgement writes the same rows again: kept once."""
    url = pg_url if engine == "postgresql" else f"sqlite:///{tmp_path}/gw.db"
    store = await open_store(url)
    try:
        ledger = Ledger(store)
        request_id = f"dup-{time.time_ns()}"
        ledger.record(UsageRow(request_id=request_id, created_at=time.time()))
        ledger.record(UsageRow(request_id=request_id, created_at=time.time()))  # client reuse
        batch = list(ledger._rows)
        assert await ledger.flush()
        assert len({row.row_id for row in batch}) == 2
        from dataclasses import astuple

        await store.insert_usage([astuple(row) for row in batch])  # the retry
        rows = [r for r in await store.usage_rows() if r["request_id"] == request_id]
        assert len(rows) == 2
    finally:
        await store.close()
