"""The store on both engines (SQLite in a temporary folder, PostgreSQL in a schema of its own):
upgrades in place, the tables module matching the migrated schema, transactions that commit
whole or not at all, GROUP BY views of usage, and private SQLite files."""

from __future__ import annotations

import asyncio
import calendar
import contextlib
import os
import stat
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import inspect, select, text

from gateway.accounts import billing
from gateway.ledger import Ledger
from gateway.storage import (
    AccountsStore,
    KeyPolicy,
    KeyRecord,
    StorageUnavailable,
    Store,
    UsageRow,
    UserRecord,
    migrations,
    open_store,
)
from gateway.storage.tables import balance_ledger, by_key, metadata, usage
from tests.services import pg_query, pg_url  # noqa: F401  (fixture)

pytestmark = pytest.mark.e2e

ENGINES = ["sqlite", "postgresql"]


async def usage_rows(store: Store) -> list[dict[str, Any]]:
    """Every usage row, by column key."""
    return [dict(row._mapping) for row in await store.db.fetch(select(*by_key(usage)))]


@pytest.fixture
def fresh_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database of the engine in ``request.param``."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/data/gw.db"
    base = request.getfixturevalue("pg_url")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    pg_query(base, f"CREATE SCHEMA {schema}")
    return f"{base}?options=-csearch_path%3D{schema}"


@pytest.fixture
async def store(fresh_url: str) -> AsyncIterator[Store]:
    store = await open_store(fresh_url)
    yield store
    await store.close()


@pytest.mark.parametrize("fresh_url", ENGINES, indirect=True)
async def test_a_version_1_database_upgrades_in_place(
    fresh_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A database made by the first release, with data, upgraded to every migration there is
    plus one more: the data is kept, and the schema is exactly the tables module's."""
    full = list(migrations.MIGRATIONS)
    monkeypatch.setattr(migrations, "MIGRATIONS", full[:1])
    old = await open_store(fresh_url)
    async with old.db.write() as conn:
        await conn.execute(text(
            "INSERT INTO api_keys (id, key_hash, prefix, created_at)"
            " VALUES ('key_old', 'h-old', 'gw-old', 1.0)"
        ))
        await conn.execute(text(
            "INSERT INTO usage (request_id, created_at, key_id, status, prompt_tokens)"
            " VALUES ('req-old', 2.0, 'key_old', 200, 7)"
        ))
    await old.close()
    monkeypatch.setattr(migrations, "MIGRATIONS", full)
    new = await open_store(fresh_url)
    try:
        assert await new.migrate() == len(full)
        old_key = await new.find_key("h-old")
        assert old_key is not None and old_key.prefix == "gw-old"
        rows = await usage_rows(new)
        assert [(r["request_id"], r["prompt_tokens"], r["cache_hit"]) for r in rows] == [
            ("req-old", 7, False)
        ]
        async with new.db.engine.connect() as conn:
            found = await conn.run_sync(lambda sync: {
                name: sorted(c["name"] for c in inspect(sync).get_columns(name))
                for name in metadata.tables
            })
        assert found == {
            name: sorted(c.name for c in table.columns) for name, table in metadata.tables.items()
        }
    finally:
        await new.close()
    extra = ["ALTER TABLE api_keys ADD COLUMN note TEXT NOT NULL DEFAULT 'none'"]
    monkeypatch.setattr(migrations, "MIGRATIONS", [*full, extra])
    newer = await open_store(fresh_url)
    try:
        assert await newer.db.fetch(text("SELECT note FROM api_keys")) == [("none",)]
    finally:
        await newer.close()


@pytest.mark.parametrize("fresh_url", ENGINES, indirect=True)
async def test_a_failed_migration_changes_nothing(
    fresh_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Migrations run in one transaction: a failing entry leaves neither its first statement nor
    a version row behind, and the next start tries again."""
    store = await open_store(fresh_url)
    await store.close()
    full = list(migrations.MIGRATIONS)
    broken = ["CREATE TABLE half_done (id TEXT)", "ALTER TABLE no_such_table ADD COLUMN x TEXT"]
    monkeypatch.setattr(migrations, "MIGRATIONS", [*full, broken])
    with pytest.raises(StorageUnavailable):
        await open_store(fresh_url)
    monkeypatch.setattr(migrations, "MIGRATIONS", full)
    store = await open_store(fresh_url)
    try:
        async with store.db.engine.connect() as conn:
            names = await conn.run_sync(lambda sync: inspect(sync).get_table_names())
        assert "half_done" not in names
        assert await store.migrate() == len(full)
    finally:
        await store.close()


@pytest.mark.parametrize("fresh_url", ENGINES, indirect=True)
async def test_a_batch_written_again_is_not_duplicated(store: Store) -> None:
    """A retry after a lost commit acknowledgement writes the same rows again: kept once."""
    ledger = Ledger(store)
    request_id = f"dup-{time.time_ns()}"
    ledger.record(UsageRow(request_id=request_id, created_at=time.time()))
    ledger.record(UsageRow(request_id=request_id, created_at=time.time()))  # client reuse
    batch = list(ledger._rows)
    assert await ledger.flush()
    assert len({row.row_id for row in batch}) == 2
    await store.insert_usage(batch)  # the retry
    rows = [r for r in await usage_rows(store) if r["request_id"] == request_id]
    assert len(rows) == 2


@pytest.mark.parametrize("fresh_url", ["sqlite"], indirect=True)
async def test_a_write_that_fails_in_python_is_rolled_back(store: Store) -> None:
    """Issue 11: a value the driver cannot bind (``requests_per_minute: 1e20``) used to leave
    the ``BEGIN IMMEDIATE`` open, and every later write failed with 503."""
    accounts = AccountsStore(store.db)
    with pytest.raises(OverflowError):
        await accounts.set_key_policy("key_a", KeyPolicy(requests_per_minute=10**20))
    await store.insert_key(KeyRecord(id="key_b", key_hash="h-b", prefix="gw-b", created_at=1.0))
    assert [k.id for k in await store.list_keys()] == ["key_b"]
    assert await accounts.key_policies(["key_a"]) == {}


@pytest.mark.parametrize("fresh_url", ["sqlite"], indirect=True)
async def test_a_write_cancelled_anywhere_leaves_no_transaction_open(store: Store) -> None:
    """However far a cancelled write got (waiting for the lock, in BEGIN, mid-batch), the next
    write on the same pooled connections goes through."""
    rows = [UsageRow(request_id="c", created_at=1.0, row_id=f"c{i}") for i in range(2000)]
    for delay in (0.0, 0.0005, 0.001, 0.002, 0.005, 0.01):
        task = asyncio.ensure_future(store.insert_usage(rows))
        await asyncio.sleep(delay)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await store.insert_key(KeyRecord(id=f"k{delay}", key_hash=f"h{delay}", prefix="p"))
    assert len(await store.list_keys()) == 6


@pytest.mark.parametrize("fresh_url", ["sqlite"], indirect=True)
async def test_a_write_cancelled_after_its_connection_closed_stays_cancelled(
        store: Store) -> None:
    """A commit cancelled midway has SQLAlchemy close the connection; the rollback that follows
    found no connection and raised ValueError instead of the cancel, which broke the stop of
    whatever was cancelled (a video poller at a gateway's shutdown)."""
    with pytest.raises(asyncio.CancelledError):
        async with store.db.write() as conn:
            await conn.invalidate()  # as SQLAlchemy does to a connection whose commit was cut
            raise asyncio.CancelledError
    await store.insert_key(KeyRecord(id="k", key_hash="h", prefix="p"))
    assert [k.id for k in await store.list_keys()] == ["k"]


@pytest.mark.parametrize("fresh_url", ENGINES, indirect=True)
async def test_the_ledger_writes_again_after_a_failed_batch(store: Store) -> None:
    """A batch the database refuses is StorageUnavailable (the ledger keeps and retries it), and
    the next batch is written: on SQLite, on a new connection."""
    with pytest.raises(StorageUnavailable):
        await store.db.write_batches([("INSERT INTO no_such_table VALUES (1)", [()])])
    await store.insert_usage([UsageRow(request_id="after", created_at=1.0, row_id="a1")])
    assert [r["request_id"] for r in await usage_rows(store)] == ["after"]


@pytest.mark.parametrize("fresh_url", ENGINES, indirect=True)
async def test_a_failed_read_does_not_break_the_next(store: Store) -> None:
    broken = store.db.prepare(select(text("x")).select_from(text("no_such_table")))
    with pytest.raises(StorageUnavailable):
        await store.db.rows(broken)
    await store.insert_key(KeyRecord(id="k", key_hash="h", prefix="p"))
    found = await store.find_key("h")
    assert found is not None and found.id == "k"


@pytest.mark.parametrize("fresh_url", ENGINES, indirect=True)
async def test_a_credit_and_its_ledger_row_commit_together(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the ledger row cannot be written, the balance is not changed either."""
    accounts = AccountsStore(store.db)
    await accounts.insert_user(UserRecord(email="c@example.com", id="u_c", password_hash="x"))
    assert await accounts.credit("c@example.com", 5.0, "topup")
    fixed = uuid.UUID(int=7)
    monkeypatch.setattr(uuid, "uuid4", lambda: fixed)
    assert await accounts.credit("c@example.com", 1.0, "topup")
    with pytest.raises(StorageUnavailable):  # the same transaction id again
        await accounts.credit("c@example.com", 2.0, "topup")
    user = await accounts.find_user("c@example.com")
    assert user is not None and user.balance_usd == 6.0
    ledger = await store.db.fetch(
        select(balance_ledger.c.amount_usd).order_by(balance_ledger.c.created_at)
    )
    assert [amount for (amount,) in ledger] == [5.0, 1.0]


def _at(year: int, month: int, day: int, hour: int = 12) -> float:
    return float(calendar.timegm((year, month, day, hour, 0, 0)))


@pytest.mark.parametrize("fresh_url", ENGINES, indirect=True)
async def test_usage_views_sum_only_the_window(store: Store) -> None:
    accounts = AccountsStore(store.db)
    me, other = "me@example.com", "other@example.com"
    await accounts.insert_user(UserRecord(email=me, id="u_me", password_hash="x"))
    rows = [
        UsageRow(request_id="r1", created_at=_at(2025, 12, 31, 23), user=me, provider="p",
                 model_served="p/a", prompt_tokens=1, completion_tokens=2, cost_usd=0.5),
        UsageRow(request_id="r2", created_at=_at(2026, 1, 1, 0), user=me, provider="p",
                 model_served="p/a", prompt_tokens=10, completion_tokens=20, cost_usd=0.25,
                 estimated=True),
        UsageRow(request_id="r3", created_at=_at(2026, 1, 2), user=me, provider="q",
                 model_served="q/b", prompt_tokens=100, cached_tokens=50, cost_usd=0.125),
        UsageRow(request_id="r4", created_at=_at(2026, 1, 2), user=other, provider="q",
                 model_served="q/b", prompt_tokens=9999, cost_usd=9.0),
    ]
    for index, row in enumerate(rows):
        row.row_id = f"row-{index}"
    await store.insert_usage(rows)
    async with store.db.write() as conn:  # a top-up in November, in a month without usage
        await conn.execute(text(
            "INSERT INTO balance_ledger (id, user_email, created_at, amount_usd, kind)"
            f" VALUES ('txn_1', '{me}', {_at(2025, 11, 5)}, 20.0, 'topup')"
        ))

    summary = await billing.usage_summary(accounts, me, _at(2026, 1, 1, 0), _at(2026, 2, 1, 0))
    assert (summary["requests"], summary["prompt_tokens"], summary["total_tokens"]) == (
        2, 110, 130
    )
    assert summary["cost_usd"] == 0.375 and summary["estimated_requests"] == 1
    assert summary["by_provider"]["q"]["cached_tokens"] == 50
    assert sorted(summary["by_model"]) == ["p/a", "q/b"]

    daily = await billing.usage_daily(accounts, me, 3, _at(2026, 1, 2))
    assert [(d["date"], d["requests"], d["total_tokens"]) for d in daily["data"]] == [
        ("2025-12-31", 1, 3), ("2026-01-01", 1, 30), ("2026-01-02", 1, 100)
    ]

    everyone = await billing.usage_of_everyone(accounts, 3, _at(2026, 1, 2))
    assert {user: t["requests"] for user, t in everyone["by_user"].items()} == {me: 3, other: 1}
    assert [(d["date"], d["requests"]) for d in everyone["daily"]] == [
        ("2025-12-31", 1), ("2026-01-01", 1), ("2026-01-02", 2)
    ]
    assert everyone["by_model"]["q/b"]["prompt_tokens"] == 10099
    recent = await accounts.recent_usage(me, 2)
    assert [r["request_id"] for r in recent] == ["r3", "r2"]

    invoices = (await billing.invoices(accounts, me))["data"]
    assert [(i["period"], i["requests"], i["amount_due_usd"], i["topups_usd"])
            for i in invoices] == [
        ("2026-01", 2, 0.375, 0.0), ("2025-12", 1, 0.5, 0.0), ("2025-11", 0, 0.0, 20.0)
    ]
    assert (await billing.invoices(accounts, "nobody@example.com"))["data"] == []


async def test_sqlite_files_are_private(tmp_path: Path) -> None:
    """Issue 11: the folder is created 0700 and the database, ``-wal`` and ``-shm`` are 0600,
    whatever the umask."""
    old_umask = os.umask(0o022)
    try:
        store = await open_store(f"sqlite:///{tmp_path}/data/gateway.db")
        try:
            await store.insert_key(KeyRecord(id="k", key_hash="h", prefix="p", created_at=1.0))
            folder = tmp_path / "data"
            modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in folder.iterdir()}
            assert stat.S_IMODE(folder.stat().st_mode) == 0o700
            assert modes == {"gateway.db": 0o600, "gateway.db-wal": 0o600,
                             "gateway.db-shm": 0o600}
        finally:
            await store.close()
    finally:
        os.umask(old_umask)


@pytest.mark.parametrize("fresh_url", ENGINES, indirect=True)
async def test_keys_without_an_account_see_only_their_own_usage(store: Store) -> None:
    accounts = AccountsStore(store.db)
    rows = [UsageRow(request_id=f"r{i}", created_at=_at(2026, 1, 2), key_id=key, row_id=f"x{i}",
                     prompt_tokens=tokens)
            for i, (key, tokens) in enumerate([("k1", 1), ("k2", 10), ("k1", 100)])]
    await store.insert_usage(rows)
    mine = await billing.usage_summary(accounts, "", _at(2026, 1, 1), _at(2026, 2, 1), "k1")
    assert (mine["requests"], mine["prompt_tokens"]) == (2, 101)
    daily = await billing.usage_daily(accounts, "", 2, _at(2026, 1, 2), "k2")
    assert [d["prompt_tokens"] for d in daily["data"]] == [0, 10]
    assert [r["request_id"] for r in await accounts.recent_usage("", 5, "k2")] == ["r1"]
    assert await accounts.usage_row("", "r1", "k1") is None
    assert (await accounts.usage_row("", "r1", "k2") or {}).get("prompt_tokens") == 10


@pytest.mark.parametrize("fresh_url", ENGINES, indirect=True)
async def test_settings_once_and_pending_signups(store: Store) -> None:
    accounts = AccountsStore(store.db)
    assert await accounts.setting_once("salt", "first") == "first"
    assert await accounts.setting_once("salt", "second") == "first"
    await accounts.insert_user(UserRecord(email="p@example.com", id="u_p", password_hash="x",
                                          status="pending", created_at=10.0))
    await accounts.delete_pending_user("p@example.com", created_before=5.0)
    assert await accounts.find_user("p@example.com") is not None
    await accounts.delete_pending_user("p@example.com", created_before=20.0)
    assert await accounts.find_user("p@example.com") is None
