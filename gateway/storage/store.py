"""API keys and the usage ledger's writes, over one ``Database``.

Nothing here is called on the request path: keys are cached (``gateway.accounts.keys``) and
usage rows are written in batches (``gateway.ledger``).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from operator import attrgetter
from typing import Any

from sqlalchemy import Insert, bindparam, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from gateway.storage.database import Database, open_database
from gateway.storage.migrations import migrate
from gateway.storage.records import KeyRecord, UsageRow
from gateway.storage.tables import api_keys, by_key, usage

_KEY_COLUMNS = by_key(api_keys)


def _insert_usage(dialect: str) -> Insert:
    """``INSERT … ON CONFLICT (row_id) DO NOTHING``: a batch written again (its commit was
    acknowledged too late) keeps each row once."""
    construct = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return construct(usage).on_conflict_do_nothing(index_elements=[usage.c.row_id])


class Store:
    """The key and usage tables over one ``Database``."""

    def __init__(self, db: Database) -> None:
        self.db = db
        # The ledger's batches skip SQLAlchemy's per-row parameter processing: each statement
        # is compiled once from the table, and each row goes to the driver as a tuple in the
        # compiled statement's parameter order.
        self._usage_sql, names = db.compile(_insert_usage(db.dialect))
        self._usage_values = attrgetter(*names)
        self._touch_sql, touch_names = db.compile(
            update(api_keys)
            .where(api_keys.c.id == bindparam("b_id"))
            .values(last_used_at=bindparam("b_when"))
        )
        self._touch_id_first = touch_names == ("b_id", "b_when")
        self._find_key = db.prepare(
            select(*_KEY_COLUMNS).where(api_keys.c.key_hash == bindparam("key_hash"))
        )
        # asyncpg refuses a bool for an integer parameter (sqlite3 takes it as 0/1).
        self._ints_for_bools = db.dialect == "postgresql"

    async def migrate(self) -> int:
        """Apply missing migrations; the schema version now in force."""
        return await migrate(self.db)

    async def ping(self) -> None:
        """Raises StorageUnavailable unless the database answers."""
        await self.db.fetch(select(1))

    async def close(self) -> None:
        await self.db.close()

    # --- keys ---

    async def insert_key(self, record: KeyRecord) -> None:
        values = {column.key: getattr(record, column.key) for column in api_keys.c}
        await self.db.execute(insert(api_keys).values(values))

    async def find_key(self, key_hash: str) -> KeyRecord | None:
        rows = await self.db.rows(self._find_key, key_hash=key_hash)
        return KeyRecord(**rows[0]) if rows else None

    async def list_keys(self, user: str | None = None) -> list[KeyRecord]:
        query = select(*_KEY_COLUMNS).order_by(api_keys.c.created_at)
        if user is not None:
            query = query.where(api_keys.c.user == user)
        return [KeyRecord(**row._mapping) for row in await self.db.fetch(query)]

    async def revoke_key(self, id_or_prefix: str, user: str | None = None) -> KeyRecord | None:
        """Revoke the key with this id (or unique prefix); None when there is no such key."""
        query = select(*_KEY_COLUMNS).where(
            api_keys.c.revoked_at.is_(None),
            (api_keys.c.id == id_or_prefix) | (api_keys.c.prefix == id_or_prefix),
        )
        if user is not None:
            query = query.where(api_keys.c.user == user)
        async with self.db.write() as conn:
            matches = (await conn.execute(query)).all()
            if len(matches) != 1:
                return None
            key = KeyRecord(**matches[0]._mapping)
            key.revoked_at = time.time()
            await conn.execute(
                update(api_keys).where(api_keys.c.id == key.id).values(revoked_at=key.revoked_at)
            )
        return key

    async def count_active_keys(self) -> int:
        rows = await self.db.fetch(
            select(func.count()).select_from(api_keys).where(api_keys.c.revoked_at.is_(None))
        )
        return int(rows[0][0])

    # --- usage ---

    async def insert_usage(
        self, rows: Sequence[UsageRow], last_used: Mapping[str, float] | None = None
    ) -> None:
        """One batch of ledger rows, and when their keys were last used, in one transaction:
        written whole or not at all."""
        if not rows:
            return
        params: list[Sequence[Any]] = list(map(self._usage_values, rows))
        if self._ints_for_bools:
            params = [tuple(int(v) if v.__class__ is bool else v for v in p) for p in params]
        touched: list[Sequence[Any]] = [
            (key_id, when) if self._touch_id_first else (when, key_id)
            for key_id, when in (last_used or {}).items()
        ]
        await self.db.write_batches([(self._usage_sql, params), (self._touch_sql, touched)])


async def open_store(url: str, pool_size: int = 10) -> Store:
    """Connect to the database named by ``storage.url`` and bring its schema up to date."""
    store = Store(open_database(url, pool_size))
    try:
        await store.db.connect()
        await store.migrate()
    except BaseException:
        await store.close()
        raise
    return store
