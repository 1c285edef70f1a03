"""The PostgreSQL store: the same tables, statements and migrations as SQLite, on the real
server (tests/test_storage.py runs the engine-neutral checks on both)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import func, select

from gateway.accounts.keys import create_key
from gateway.ledger import Ledger, UsageRow
from gateway.storage import StorageUnavailable, Store, migrations, open_database, open_store
from gateway.storage.tables import schema_version
from tests.services import pg_url  # noqa: F401  (fixture)
from tests.test_storage import usage_rows

pytestmark = pytest.mark.e2e


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
    rows = [r for r in await usage_rows(store) if r["request_id"] == request_id]
    assert len(rows) == 1
    assert rows[0]["prompt_tokens"] == 2**40 and rows[0]["cost_usd"] == 0.125
    assert rows[0]["stream"] == 1 and rows[0]["cache_hit"] == 1 and rows[0]["ttft_ms"] is None
    used = await store.find_key(record.key_hash)
    assert used is not None and used.last_used_at is not None


async def test_unreachable_server_is_storage_unavailable() -> None:
    db = open_database("postgresql://127.0.0.1:1/none", timeout=2)
    with pytest.raises(StorageUnavailable):
        await db.connect()
    with pytest.raises(StorageUnavailable):
        await db.fetch(select(1))
    await db.close()


async def test_instances_starting_together_migrate_once(pg_url: str) -> None:  # noqa: F811
    """Four stores with one-connection pools open the same fresh schema at the same moment."""
    from tests.services import pg_query

    schema = f"race_{time.time_ns()}"
    pg_query(pg_url, f"CREATE SCHEMA {schema}")
    url = f"{pg_url}?options=-csearch_path%3D{schema}"
    stores = await asyncio.gather(*(open_store(url, pool_size=1) for _ in range(4)))
    try:
        versions = await stores[0].db.fetch(
            select(schema_version.c.version).order_by(schema_version.c.version)
        )
        assert [v for (v,) in versions] == list(range(1, len(migrations.MIGRATIONS) + 1))
    finally:
        for store in stores:
            await store.close()


async def test_the_cache_reads_connection_is_replaced_when_it_dies(store: Store) -> None:
    """The request path's reads run on one kept connection; one that the server dropped (a
    restart, an idle timeout) is replaced by the next read, which still answers."""
    _key, record = await create_key(store, "gw-", name="reader", user="r@example.com")
    assert await store.find_key(record.key_hash) is not None
    pid = (await store.db._reader_driver.fetchval("SELECT pg_backend_pid()"))
    await store.db.fetch(select(func.pg_terminate_backend(pid)))
    found = await store.find_key(record.key_hash)
    assert found is not None and found.id == record.id
    assert await store.db._reader_driver.fetchval("SELECT pg_backend_pid()") != pid


async def test_reads_at_once_do_not_queue_behind_each_other(store: Store) -> None:
    """Concurrent cache reads: one on the kept connection, the others on pooled ones."""
    keys = [await create_key(store, "gw-", name=f"c{i}", user="c@example.com") for i in range(8)]
    found = await asyncio.gather(*(store.find_key(record.key_hash) for _, record in keys))
    assert [k.id for k in found if k is not None] == [record.id for _, record in keys]
