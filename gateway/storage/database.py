"""One SQLAlchemy async engine over aiosqlite or asyncpg, and the transaction rules both share.

- ``write()`` is one transaction: committed when its block ends, rolled back on ANY exception
  (a driver error, a value the driver cannot bind, a cancellation), so a failed write never
  leaves a transaction open for the next one to trip over.
- On SQLite a write starts with ``BEGIN IMMEDIATE`` and, inside the process, waits its turn on
  a lock: a deferred transaction that meets another process's writer fails at once on its stale
  snapshot instead of waiting out ``busy_timeout``, which with two workers on one file lost one
  worker's ledger. Reads run outside any transaction (WAL: they never wait for the writer).
- Every driver or network failure becomes ``StorageUnavailable``, the same on both engines, with
  the driver's message and never the statement's parameters (hashes and sealed keys).
- On PostgreSQL, connections are asyncpg's own (``asyncpg.connect`` with the configured URL, so
  every URL option asyncpg understands keeps working) in SQLAlchemy's pool; a connection that
  died with a server restart is replaced at its next checkout.
- SQLite files are private: the folder is created 0700, the database and its ``-wal``/``-shm``
  files are 0600 (SQLite gives the side files the database file's mode).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import sqlite3
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import asyncpg
from sqlalchemy import URL, Executable, Row, Select, event
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry, StaticPool
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ClauseElement

from gateway.config import ConfigError
from gateway.storage.inline import InlineWriter


class StorageUnavailable(Exception):
    """The database cannot be reached or refused the statement."""


# Errors that mean "the database cannot serve this now" (network, restart, refused statement).
DRIVER_ERRORS: tuple[type[BaseException], ...] = (
    SQLAlchemyError,
    sqlite3.Error,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.InternalClientError,
    OSError,
    ConnectionError,
    TimeoutError,
)
AnyRow = Row[*tuple[Any, ...]]
_SQLITE_PRAGMAS = ("journal_mode=WAL", "synchronous=NORMAL", "busy_timeout=30000")


def unavailable(exc: BaseException) -> StorageUnavailable:
    """The driver's own message (SQLAlchemy's would quote the statement)."""
    cause = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    return StorageUnavailable(str(cause) or type(cause).__name__)


@dataclass(frozen=True, slots=True)
class Query:
    """A ``SELECT`` compiled once (``Database.prepare``): its SQL for the engine, the names of
    its bind parameters in order, and the keys of its columns."""

    statement: Select[Any]
    sql: str
    names: tuple[str, ...]
    keys: tuple[str, ...]


class Database:
    """An async engine, its dialect name (``sqlite`` or ``postgresql``) and its write lock."""

    def __init__(self, engine: AsyncEngine, inline: InlineWriter | None = None) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        self.inline = inline  # a SQLite file's, for single rows an answer waits for
        # SQLite has one writer per file: queue this process's writers here, not in busy_timeout.
        self._write_lock = asyncio.Lock() if self.dialect == "sqlite" else None
        self._batch_conn: AsyncConnection | None = None  # the ledger's, on SQLite
        self._batch_driver: Any = None  # its aiosqlite connection (asking costs ~9 µs)
        self._reader: AsyncConnection | None = None  # for ``rows``
        self._reader_driver: Any = None  # its asyncpg connection, on PostgreSQL
        self._reader_lock = asyncio.Lock()

    async def connect(self) -> None:
        """Open one connection now, so a database that cannot be reached fails at start-up."""
        try:
            async with self.engine.connect():
                pass
        except DRIVER_ERRORS as exc:
            raise unavailable(exc) from exc

    @contextlib.asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """One transaction, committed at the end of the block and rolled back on any exception."""
        async with self._write_lock or contextlib.nullcontext():
            try:
                async with self.engine.connect() as conn:
                    if self._write_lock is None:
                        async with conn.begin():
                            yield conn
                    else:
                        async with _sqlite_transaction(conn), conn.begin():
                            yield conn
            except DRIVER_ERRORS as exc:
                raise unavailable(exc) from exc

    async def write_batches(self, batches: Sequence[tuple[str, list[Sequence[Any]]]]) -> None:
        """Statements made by ``compile``, each run once per row of values, in one transaction.

        The ledger's path, so it costs no more CPU than the hand-written SQL it replaced: on
        SQLite it keeps one connection checked out, talks to aiosqlite directly (one trip to its
        thread per statement where SQLAlchemy's adapter takes three) and makes no SQLAlchemy
        transaction object. A connection that failed is dropped; the next batch opens another.
        """
        if self._write_lock is None:
            async with self.write() as conn:
                for sql, rows in batches:
                    if rows:
                        await conn.exec_driver_sql(sql, rows)
            return
        async with self._write_lock:
            try:
                if self._batch_conn is None:  # kept checked out: no pool trip per batch
                    self._batch_conn = await self.engine.connect()
                    raw = await self._batch_conn.get_raw_connection()
                    self._batch_driver = raw.driver_connection
                if len(batches) == 1 and len(batches[0][1]) == 1:
                    # One row of one statement is its own transaction (the driver opens none):
                    # one trip to aiosqlite's thread instead of three (BEGIN, it, COMMIT).
                    await self._batch_driver.execute(batches[0][0], batches[0][1][0])
                    return
                async with _sqlite_transaction(self._batch_conn) as driver:
                    for sql, rows in batches:
                        if rows:
                            await driver.executemany(sql, rows)
                    await driver.commit()
            except DRIVER_ERRORS as exc:
                broken, self._batch_conn, self._batch_driver = self._batch_conn, None, None
                if broken is not None:
                    with contextlib.suppress(*DRIVER_ERRORS):
                        await broken.invalidate()
                raise unavailable(exc) from exc

    def compile(self, statement: ClauseElement) -> tuple[str, tuple[str, ...]]:
        """A statement's SQL for this engine, and the names of its parameters in order."""
        compiled = cast(SQLCompiler, statement.compile(dialect=self.engine.dialect))
        return str(compiled), tuple(compiled.positiontup or ())

    async def execute(self, statement: Executable) -> int:
        """One statement in its own transaction; the number of rows it changed."""
        async with self.write() as conn:
            return int((await conn.execute(statement)).rowcount)

    async def fetch(
        self, statement: Executable, params: Mapping[str, Any] | None = None
    ) -> Sequence[AnyRow]:
        """Every row of one query."""
        try:
            async with self.engine.connect() as conn:
                return (await conn.execute(statement, params)).all()
        except DRIVER_ERRORS as exc:
            raise unavailable(exc) from exc

    async def rows(self, query: Query, **params: Any) -> list[dict[str, Any]]:
        """Every row of a prepared query, by column key.

        For the reads behind the request path's caches (a key, a user, a key's policy): on
        SQLite one trip to aiosqlite's thread on a connection kept for reads, where a pooled
        SQLAlchemy read takes five (docs/storage.md has the figures); on PostgreSQL one round
        trip on a connection kept for reads (``_pg_rows``), or a pooled one while that is busy
        (reads never queue behind a slow one).
        """
        if self._write_lock is None:
            if self._reader_lock.locked():  # the kept connection is busy: a pooled one
                return [dict(row._mapping) for row in await self.fetch(query.statement, params)]
            return await self._pg_rows(query, [params[n] for n in query.names])
        try:
            async with self._reader_lock:
                if self._reader is None:
                    self._reader = await self.engine.connect()
                reader = self._reader
            driver: Any = (await reader.get_raw_connection()).driver_connection
            found = await driver.execute_fetchall(query.sql, [params[n] for n in query.names])
        except DRIVER_ERRORS as exc:
            broken, self._reader = self._reader, None
            if broken is not None:
                with contextlib.suppress(*DRIVER_ERRORS):
                    await broken.invalidate()
            raise unavailable(exc) from exc
        return [dict(zip(query.keys, row, strict=True)) for row in found]

    async def _pg_rows(self, query: Query, args: list[Any]) -> list[dict[str, Any]]:
        """A prepared query on asyncpg's own connection, kept for reads: asyncpg prepares it
        once (its statement cache) and runs it outside any transaction. A pooled SQLAlchemy
        read took a pre-ping transaction, a BEGIN, the query and a ROLLBACK: ~250 µs of CPU
        against ~15 µs. A read that fails is tried once more on a new connection (a connection
        that died with a server restart), as the pool's pre-ping did."""
        for attempt in (1, 2):
            try:
                async with self._reader_lock:
                    if self._reader_driver is None:
                        self._reader = await self.engine.connect()
                        raw = await self._reader.get_raw_connection()
                        self._reader_driver = raw.driver_connection
                    found = await self._reader_driver.fetch(query.sql, *args)
                return [dict(zip(query.keys, row, strict=True)) for row in found]
            except DRIVER_ERRORS as exc:
                broken, self._reader, self._reader_driver = self._reader, None, None
                if broken is not None:
                    with contextlib.suppress(*DRIVER_ERRORS):
                        await broken.invalidate()
                if attempt == 2:
                    raise unavailable(exc) from exc
        raise AssertionError("unreachable")

    def prepare(self, statement: Select[Any]) -> Query:
        """A query compiled once for this engine, for ``rows``."""
        sql, names = self.compile(statement)
        return Query(statement, sql, names, tuple(statement.selected_columns.keys()))

    async def close(self) -> None:
        with contextlib.suppress(*DRIVER_ERRORS):
            for kept in (self._batch_conn, self._reader):
                if kept is not None:
                    await kept.close()
            self._batch_conn = self._reader = self._reader_driver = self._batch_driver = None
            if self.inline is not None:
                self.inline.close()
            await self.engine.dispose()


def sqlite_path(url: str) -> str:
    """``sqlite:///data/x.db`` is relative to the working directory, ``sqlite:////abs`` not."""
    if not url.startswith("sqlite://"):
        raise ValueError(f"not a sqlite URL: {url}")
    path = url.removeprefix("sqlite://")
    if path in ("", "/", "/:memory:"):
        return ":memory:"
    return path[1:] if path.startswith("/") else path


def _private_files(path: str) -> None:
    """Create the folder 0700 and the database file 0600 before SQLite opens them."""
    folder = Path(path).parent
    if not folder.exists():
        folder.mkdir(mode=0o700, parents=True)
        folder.chmod(0o700)  # whatever the umask
    os.close(os.open(path, os.O_CREAT | os.O_RDWR, 0o600))
    for suffix in ("", "-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.chmod(path + suffix, 0o600)


def _on_sqlite_connect(dbapi: DBAPIConnection, _entry: ConnectionPoolEntry) -> None:
    # The driver must not open transactions by itself: ``Database.write`` begins them.
    dbapi.isolation_level = None
    cursor = dbapi.cursor()
    for pragma in _SQLITE_PRAGMAS:
        cursor.execute(f"PRAGMA {pragma}")
    try:
        cursor.execute("SELECT floor(0.5)")
    except DRIVER_ERRORS:  # an SQLite built without its math functions (before 3.35)
        dbapi.create_function("floor", 1, math.floor, deterministic=True)
    cursor.close()


@contextlib.asynccontextmanager
async def _sqlite_transaction(conn: AsyncConnection) -> AsyncIterator[Any]:
    """``BEGIN IMMEDIATE`` on this connection, rolled back on any exception; answers the
    aiosqlite connection under SQLAlchemy's.

    The rollback covers the BEGIN itself: a caller cancelled while aiosqlite's thread runs it
    still queues the rollback behind it (the thread takes its queue in order), so no
    transaction is left open for the next write on this connection to trip over.
    """
    driver: Any = (await conn.get_raw_connection()).driver_connection
    try:
        await driver.execute("BEGIN IMMEDIATE")
        yield driver
    except BaseException:
        # ValueError: aiosqlite's connection is already closed (SQLAlchemy closes it when a
        # commit is cancelled midway); nothing to roll back, and the cancel must go on.
        with contextlib.suppress(*DRIVER_ERRORS, ValueError):
            await driver.rollback()
        raise


def sqlite_engine(path: str) -> AsyncEngine:
    """aiosqlite, WAL journal: readers never wait for the batched writer."""
    if path == ":memory:":  # one connection, or every checkout would see a new empty database
        engine = create_async_engine("sqlite+aiosqlite://", poolclass=StaticPool,
                                     hide_parameters=True)
    else:
        _private_files(path)
        # No rollback when a connection goes back to the pool (a trip to aiosqlite's thread
        # each time): reads run outside transactions, and a write rolls back itself on any
        # exception, its BEGIN included (``_sqlite_transaction``).
        engine = create_async_engine(URL.create("sqlite+aiosqlite", database=path),
                                     connect_args={"timeout": 30}, hide_parameters=True,
                                     pool_reset_on_return=None)
    event.listen(engine.sync_engine, "connect", _on_sqlite_connect)
    return engine


def postgres_engine(url: str, pool_size: int = 10, timeout: float = 10.0) -> AsyncEngine:
    """asyncpg connections to the database named by a ``postgresql://`` URL, pooled."""
    # asyncpg understands postgresql:// and postgres://; "postgresql+asyncpg://" is SQLAlchemy's.
    dsn = url.replace("postgresql+asyncpg://", "postgresql://", 1)

    async def connect() -> asyncpg.Connection:
        return await asyncpg.connect(dsn, timeout=timeout, command_timeout=timeout)

    return create_async_engine(
        "postgresql+asyncpg://", async_creator=connect, pool_size=pool_size, max_overflow=0,
        pool_timeout=timeout, pool_pre_ping=True, hide_parameters=True,
    )


def open_database(url: str, pool_size: int = 10, timeout: float = 10.0) -> Database:
    """The engine for ``storage.url`` (not connected yet: ``Database.connect``)."""
    scheme = url.split(":", 1)[0]
    if scheme == "sqlite":
        path = sqlite_path(url)
        return Database(sqlite_engine(path), InlineWriter(path) if path != ":memory:" else None)
    if scheme in ("postgresql", "postgres", "postgresql+asyncpg"):
        return Database(postgres_engine(url, pool_size, timeout))
    raise ConfigError(f"storage.url: unsupported database URL scheme in {scheme!r}")
