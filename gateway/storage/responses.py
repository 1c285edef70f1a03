"""Stored Responses API answers (``stored_responses``): written in batches by
``gateway.responses.keeper``, read by ``previous_response_id`` and ``GET /v1/responses/{id}``.

Rows belong to an owner (a user's email, or ``key:<id>`` for a key of nobody's account) and
are found by (owner, id) only: another owner's id is not there. A response written again under
the same id (a caller's repeated ``X-Request-Id``, a cache hit) replaces the earlier one.
"""

from __future__ import annotations

from collections.abc import Sequence
from operator import attrgetter

from sqlalchemy import bindparam, delete, select
from sqlalchemy.dialects import postgresql, sqlite

from gateway.storage.database import Database
from gateway.storage.records import StoredResponse
from gateway.storage.tables import stored_responses

_T = stored_responses.c
_REPLACED = ("created_at", "key_id", "model", "status", "response", "input_items")


class ResponseRows:
    """The ``stored_responses`` table over one ``Database``."""

    def __init__(self, db: Database) -> None:
        self.db = db
        construct = postgresql.insert if db.dialect == "postgresql" else sqlite.insert
        statement = construct(stored_responses)
        self._upsert = statement.on_conflict_do_update(
            index_elements=[_T.owner, _T.id],
            set_={name: statement.excluded[name] for name in _REPLACED},
        )
        # Written like the ledger (``Database.write_batches``): compiled once, rows as tuples
        # in the statement's parameter order, no SQLAlchemy per-row work; on SQLite three
        # trips to aiosqlite's thread a batch where ``Database.write`` takes six or more.
        self._save_sql, names = db.compile(self._upsert)
        self._save_values = attrgetter(*names)
        self._find = db.prepare(
            select(stored_responses).where(_T.owner == bindparam("owner"),
                                           _T.id == bindparam("id"))
        )

    async def save(self, rows: Sequence[StoredResponse]) -> None:
        """Write (or replace) many responses in one transaction."""
        if not rows:
            return
        await self.db.write_batches([(self._save_sql, [self._save_values(r) for r in rows])])

    def save_now(self, row: StoredResponse) -> bool:
        """Write one response on this thread if SQLite's write lock is free this instant
        (``gateway.storage.inline``); False if not, or not on a SQLite file: ``save`` then."""
        inline = self.db.inline
        return inline is not None and inline.try_execute(self._save_sql, self._save_values(row))

    async def find(self, owner: str, response_id: str) -> StoredResponse | None:
        rows = await self.db.rows(self._find, owner=owner, id=response_id)
        return StoredResponse(**rows[0]) if rows else None

    async def delete(self, owner: str, response_id: str) -> bool:
        changed = await self.db.execute(
            delete(stored_responses).where(_T.owner == owner, _T.id == response_id)
        )
        return changed > 0

    async def purge(self, created_before: float) -> int:
        """Delete every response stored before ``created_before``; how many went."""
        return await self.db.execute(
            delete(stored_responses).where(_T.created_at < created_before)
        )
