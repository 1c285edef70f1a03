"""PostgreSQL behind the ``Database`` protocol of ``gateway.storage``, through asyncpg.

The SQL layer (``Store`` and ``MIGRATIONS``) is shared with SQLite; this module only adapts it:
``?`` placeholders become ``$1, $2, …`` (translated once per distinct statement and cached),
statements run on a connection pool, and every driver or network failure becomes
``StorageUnavailable`` so callers treat an outage the same way on both engines. When the server
restarts, the pool drops its dead connections and opens new ones on the next statement: the
ledger's retry is all it takes to recover.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Any

import asyncpg

from gateway.storage import StorageUnavailable

# Errors that mean "the database cannot serve this now" (network, restart, refused statement).
_DRIVER_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.InternalClientError,
    OSError,
    ConnectionError,
    TimeoutError,
)
_MIGRATION_LOCK = 7_407_774_611  # pg_advisory_lock id: one migrator at a time across instances


@functools.lru_cache(maxsize=2048)
def translate(sql: str) -> str:
    """``?`` placeholders to PostgreSQL's ``$n``, leaving quoted text and identifiers alone."""
    out: list[str] = []
    index = 0
    quote: str | None = None
    for char in sql:
        if quote is not None:
            if char == quote:
                quote = None
        elif char in ("'", '"'):
            quote = char
        elif char == "?":
            index += 1
            out.append(f"${index}")
            continue
        out.append(char)
    return "".join(out)


def _rowcount(status: str) -> int:
    """asyncpg returns the command tag (``UPDATE 3``); the count is its last word."""
    last = status.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else 0


def _params(params: Sequence[Any]) -> list[Any]:
    # bool columns are INTEGER 0/1 (portable); asyncpg refuses a bool for an int4 parameter.
    return [int(p) if isinstance(p, bool) else p for p in params]


class PostgresDatabase:
    """A pool of asyncpg connections to the database named by a ``postgresql://`` URL."""

    dialect = "postgresql"

    def __init__(self, url: str, min_size: int = 1, max_size: int = 10, timeout: float = 10.0):
        # asyncpg understands postgresql:// and postgres://; "postgresql+asyncpg://" is SQLAlchemy.
        self.url = url.replace("postgresql+asyncpg://", "postgresql://", 1)
        self.min_size = min(min_size, max_size)
        self.max_size = max_size
        self.timeout = timeout
        self._pool: asyncpg.Pool | None = None

    async def connect(self) -> None:
        try:
            self._pool = await asyncpg.create_pool(
                self.url,
                min_size=self.min_size,
                max_size=self.max_size,
                command_timeout=self.timeout,
                timeout=self.timeout,
            )
        except _DRIVER_ERRORS as exc:
            raise StorageUnavailable(f"cannot connect to PostgreSQL: {exc}") from exc

    def _get_pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise StorageUnavailable("database is not connected")
        return self._pool

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        try:
            async with self._get_pool().acquire(timeout=self.timeout) as conn:
                status = await conn.execute(translate(sql), *_params(params))
        except _DRIVER_ERRORS as exc:
            raise StorageUnavailable(str(exc) or type(exc).__name__) from exc
        return _rowcount(status)

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        args = [_params(row) for row in rows]
        if not args:
            return
        try:
            # One transaction: a batch is written whole or not at all, so a retry never
            # duplicates half of it.
            async with self._get_pool().acquire(timeout=self.timeout) as conn, conn.transaction():
                await conn.executemany(translate(sql), args)
        except _DRIVER_ERRORS as exc:
            raise StorageUnavailable(str(exc) or type(exc).__name__) from exc

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        try:
            async with self._get_pool().acquire(timeout=self.timeout) as conn:
                records = await conn.fetch(translate(sql), *_params(params))
        except _DRIVER_ERRORS as exc:
            raise StorageUnavailable(str(exc) or type(exc).__name__) from exc
        return [tuple(record) for record in records]

    @contextlib.asynccontextmanager
    async def migration_lock(self) -> AsyncIterator[None]:
        """Held while migrating, so instances starting together do not race on the schema.

        The lock lives on a connection of its own (outside the pool, which may have a single
        connection) and goes away with it, even if this process dies mid-migration.
        """
        try:
            conn = await asyncpg.connect(self.url, timeout=self.timeout)
            await conn.execute("SELECT pg_advisory_lock($1)", _MIGRATION_LOCK)
        except _DRIVER_ERRORS as exc:
            raise StorageUnavailable(str(exc) or type(exc).__name__) from exc
        try:
            yield
        finally:
            with contextlib.suppress(*_DRIVER_ERRORS):
                await conn.close()

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            try:
                await pool.close()
            except _DRIVER_ERRORS:
                pool.terminate()
