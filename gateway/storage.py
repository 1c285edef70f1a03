"""Persistent state behind one small SQL interface: API keys and the usage ledger.

SQL is written once, with ``?`` placeholders, in the subset SQLite and PostgreSQL share;
``Database`` implementations adapt it to their driver. ``MIGRATIONS`` is append-only: each
entry upgrades the schema by one version, and ``Store.migrate`` applies the missing ones, so an
upgrade keeps existing data.

Nothing here is called on the request path: keys are cached (``gateway.auth``) and usage rows
are written in batches (``gateway.ledger``).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import aiosqlite


class StorageUnavailable(Exception):
    """The database cannot be reached or refused the statement."""


class Database(Protocol):
    dialect: str

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int: ...

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None: ...

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...

    async def close(self) -> None: ...


class SQLiteDatabase:
    """aiosqlite, WAL journal: readers never wait for the batched writer."""

    dialect = "sqlite"

    def __init__(self, path: str) -> None:
        self.path = path
        self._conn: aiosqlite.Connection | None = None

    async def connect(self) -> None:
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._conn = await aiosqlite.connect(self.path, timeout=30)
        await self._conn.execute("PRAGMA journal_mode=WAL")
        await self._conn.execute("PRAGMA synchronous=NORMAL")
        await self._conn.execute("PRAGMA busy_timeout=30000")

    def _db(self) -> aiosqlite.Connection:
        if self._conn is None:
            raise StorageUnavailable("database is not connected")
        return self._conn

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        try:
            cursor = await self._db().execute(sql, params)
            await self._db().commit()
            return cursor.rowcount
        except aiosqlite.Error as exc:
            raise StorageUnavailable(str(exc)) from exc

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        try:
            await self._db().executemany(sql, rows)
            await self._db().commit()
        except aiosqlite.Error as exc:
            raise StorageUnavailable(str(exc)) from exc

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        try:
            async with self._db().execute(sql, params) as cursor:
                return [tuple(row) for row in await cursor.fetchall()]
        except aiosqlite.Error as exc:
            raise StorageUnavailable(str(exc)) from exc

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None


MIGRATIONS: list[list[str]] = [
    [
        """CREATE TABLE api_keys (
            id TEXT PRIMARY KEY,
            key_hash TEXT NOT NULL UNIQUE,
            prefix TEXT NOT NULL,
            name TEXT NOT NULL DEFAULT '',
            user_email TEXT NOT NULL DEFAULT '',
            tier TEXT NOT NULL DEFAULT 'free',
            created_at DOUBLE PRECISION NOT NULL,
            last_used_at DOUBLE PRECISION,
            revoked_at DOUBLE PRECISION
        )""",
        "CREATE INDEX api_keys_user ON api_keys (user_email)",
        """CREATE TABLE usage (
            request_id TEXT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL,
            key_id TEXT NOT NULL DEFAULT '',
            user_email TEXT NOT NULL DEFAULT '',
            dialect TEXT NOT NULL DEFAULT '',
            model_requested TEXT NOT NULL DEFAULT '',
            model_served TEXT NOT NULL DEFAULT '',
            provider TEXT NOT NULL DEFAULT '',
            router TEXT NOT NULL DEFAULT '',
            stream INTEGER NOT NULL DEFAULT 0,
            prompt_tokens BIGINT NOT NULL DEFAULT 0,
            completion_tokens BIGINT NOT NULL DEFAULT 0,
            cached_tokens BIGINT NOT NULL DEFAULT 0,
            cache_creation_tokens BIGINT NOT NULL DEFAULT 0,
            reasoning_tokens BIGINT NOT NULL DEFAULT 0,
            cost_usd DOUBLE PRECISION NOT NULL DEFAULT 0,
            latency_ms DOUBLE PRECISION NOT NULL DEFAULT 0,
            ttft_ms DOUBLE PRECISION,
            status INTEGER NOT NULL,
            error_type TEXT NOT NULL DEFAULT '',
            attempts INTEGER NOT NULL DEFAULT 1,
            fallback_level INTEGER NOT NULL DEFAULT 0,
            estimated INTEGER NOT NULL DEFAULT 0
        )""",
        "CREATE INDEX usage_key_time ON usage (key_id, created_at)",
        "CREATE INDEX usage_user_time ON usage (user_email, created_at)",
    ],
    # 2: accounts (gateway.accounts_store): users, sessions, reset tokens, balance top-ups,
    # per-key limits, BYOK provider keys, operator settings.
    [
        """CREATE TABLE users (
            email TEXT PRIMARY KEY,
            id TEXT NOT NULL UNIQUE,
            password_hash TEXT NOT NULL,
            name TEXT NOT NULL DEFAULT '',
            tier TEXT NOT NULL DEFAULT 'free',
            status TEXT NOT NULL DEFAULT 'active',
            balance_usd DOUBLE PRECISION NOT NULL DEFAULT 0,
            created_at DOUBLE PRECISION NOT NULL
        )""",
        """CREATE TABLE sessions (
            token_hash TEXT PRIMARY KEY,
            id TEXT NOT NULL UNIQUE,
            user_email TEXT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL,
            expires_at DOUBLE PRECISION NOT NULL,
            revoked_at DOUBLE PRECISION
        )""",
        "CREATE INDEX sessions_user ON sessions (user_email)",
        """CREATE TABLE password_resets (
            token_hash TEXT PRIMARY KEY,
            user_email TEXT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL,
            expires_at DOUBLE PRECISION NOT NULL,
            used_at DOUBLE PRECISION
        )""",
        """CREATE TABLE balance_ledger (
            id TEXT PRIMARY KEY,
            user_email TEXT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL,
            amount_usd DOUBLE PRECISION NOT NULL,
            kind TEXT NOT NULL,
            note TEXT NOT NULL DEFAULT ''
        )""",
        "CREATE INDEX balance_ledger_user_time ON balance_ledger (user_email, created_at)",
        """CREATE TABLE key_policies (
            key_id TEXT PRIMARY KEY,
            requests_per_minute INTEGER NOT NULL DEFAULT 0,
            requests_per_day INTEGER NOT NULL DEFAULT 0,
            allowed_models TEXT NOT NULL DEFAULT ''
        )""",
        """CREATE TABLE provider_keys (
            user_email TEXT NOT NULL,
            provider TEXT NOT NULL,
            secret TEXT NOT NULL,
            hint TEXT NOT NULL DEFAULT '',
            created_at DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (user_email, provider)
        )""",
        """CREATE TABLE settings (
            name TEXT PRIMARY KEY,
            value TEXT NOT NULL
        )""",
    ],
]


@dataclass(slots=True)
class KeyRecord:
    id: str
    key_hash: str
    prefix: str
    name: str = ""
    user: str = ""
    tier: str = "free"
    created_at: float = 0.0
    last_used_at: float | None = None
    revoked_at: float | None = None


_KEY_COLUMNS = "id, key_hash, prefix, name, user_email, tier, created_at, last_used_at, revoked_at"

USAGE_COLUMNS = (
    "request_id",
    "created_at",
    "key_id",
    "user_email",
    "dialect",
    "model_requested",
    "model_served",
    "provider",
    "router",
    "stream",
    "prompt_tokens",
    "completion_tokens",
    "cached_tokens",
    "cache_creation_tokens",
    "reasoning_tokens",
    "cost_usd",
    "latency_ms",
    "ttft_ms",
    "status",
    "error_type",
    "attempts",
    "fallback_level",
    "estimated",
)


class Store:
    """The gateway's tables, over any ``Database``."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def migrate(self) -> int:
        """Apply missing migrations; returns the schema version now in force."""
        await self.db.execute(
            "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)"
        )
        rows = await self.db.fetchall("SELECT MAX(version) FROM schema_version")
        current = (rows[0][0] or 0) if rows else 0
        for version, statements in enumerate(MIGRATIONS, start=1):
            if version <= current:
                continue
            for statement in statements:
                await self.db.execute(statement)
            await self.db.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))
            current = version
        return current

    async def close(self) -> None:
        await self.db.close()

    # --- keys ---

    async def insert_key(self, record: KeyRecord) -> None:
        await self.db.execute(
            f"INSERT INTO api_keys ({_KEY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                record.id,
                record.key_hash,
                record.prefix,
                record.name,
                record.user,
                record.tier,
                record.created_at,
                record.last_used_at,
                record.revoked_at,
            ),
        )

    async def find_key(self, key_hash: str) -> KeyRecord | None:
        rows = await self.db.fetchall(
            f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE key_hash = ?", (key_hash,)
        )
        return KeyRecord(*rows[0]) if rows else None

    async def list_keys(self, user: str | None = None) -> list[KeyRecord]:
        if user is None:
            rows = await self.db.fetchall(
                f"SELECT {_KEY_COLUMNS} FROM api_keys ORDER BY created_at"
            )
        else:
            rows = await self.db.fetchall(
                f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE user_email = ? ORDER BY created_at",
                (user,),
            )
        return [KeyRecord(*row) for row in rows]

    async def revoke_key(self, id_or_prefix: str, user: str | None = None) -> KeyRecord | None:
        """Revoke the key with this id (or unique prefix); None when there is no such key."""
        matches = [
            key
            for key in await self.list_keys(user)
            if key.revoked_at is None and (key.id == id_or_prefix or key.prefix == id_or_prefix)
        ]
        if len(matches) != 1:
            return None
        key = matches[0]
        key.revoked_at = time.time()
        await self.db.execute(
            "UPDATE api_keys SET revoked_at = ? WHERE id = ?", (key.revoked_at, key.id)
        )
        return key

    async def count_active_keys(self) -> int:
        rows = await self.db.fetchall("SELECT COUNT(*) FROM api_keys WHERE revoked_at IS NULL")
        return int(rows[0][0])

    async def touch_keys(self, last_used: dict[str, float]) -> None:
        await self.db.executemany(
            "UPDATE api_keys SET last_used_at = ? WHERE id = ?",
            [(when, key_id) for key_id, when in last_used.items()],
        )

    # --- usage ---

    async def insert_usage(self, rows: Sequence[Sequence[Any]]) -> None:
        placeholders = ", ".join("?" for _ in USAGE_COLUMNS)
        await self.db.executemany(
            f"INSERT INTO usage ({', '.join(USAGE_COLUMNS)}) VALUES ({placeholders})", rows
        )

    async def usage_rows(self, limit: int = 1000) -> list[dict[str, Any]]:
        rows = await self.db.fetchall(
            f"SELECT {', '.join(USAGE_COLUMNS)} FROM usage ORDER BY created_at DESC LIMIT ?",
            (limit,),
        )
        return [dict(zip(USAGE_COLUMNS, row, strict=True)) for row in rows]


def sqlite_path(url: str) -> str:
    """``sqlite:///data/x.db`` is relative to the working directory, ``sqlite:////abs`` not."""
    if not url.startswith("sqlite://"):
        raise ValueError(f"not a sqlite URL: {url}")
    path = url.removeprefix("sqlite://")
    if path in ("", "/", "/:memory:"):
        return ":memory:"
    return path[1:] if path.startswith("/") else path


async def open_store(url: str) -> Store:
    """Connect to the database named by ``storage.url`` and bring its schema up to date."""
    if url.startswith("sqlite:"):
        db = SQLiteDatabase(sqlite_path(url))
        await db.connect()
    else:
        raise ValueError(f"storage.url: unsupported database URL scheme in {url.split(':')[0]!r}")
    store = Store(db)
    await store.migrate()
    return store
