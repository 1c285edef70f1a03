"""Persistent state on SQLAlchemy Core (async; aiosqlite for SQLite, asyncpg for PostgreSQL).

- ``tables``: every table, declared once. Queries are built from it, so one statement serves
  both engines; the few constructs SQL spells differently (``ON CONFLICT``) come from
  SQLAlchemy's dialect modules.
- ``records``: the rows as dataclasses whose field names are the tables' column keys.
- ``database``: the engine, the write transaction (``BEGIN IMMEDIATE`` on SQLite, rolled back on
  any exception) and the mapping of every driver failure to ``StorageUnavailable``.
- ``migrations``: the schema's history and a small versioned runner, in one transaction. Not
  Alembic: it adds 0.13-0.16 s and 11.6 MB to every process's start (measured), for a
  history of plain statements; the module says more.
- ``store`` (keys, usage writes), ``accounts`` (the account tables), ``usage`` (GROUP BY views
  of one user's usage).

Nothing here is called on the request path: keys and accounts are cached, and usage rows are
written in batches by ``gateway.ledger``.
"""

from gateway.storage import usage
from gateway.storage.accounts import AccountsStore
from gateway.storage.database import Database, StorageUnavailable, open_database
from gateway.storage.records import KeyPolicy, KeyRecord, UsageRow, UserRecord
from gateway.storage.store import Store, open_store

__all__ = [
    "AccountsStore",
    "Database",
    "KeyPolicy",
    "KeyRecord",
    "StorageUnavailable",
    "Store",
    "UsageRow",
    "UserRecord",
    "open_database",
    "open_store",
    "usage",
]
