"""The ``video_jobs`` table: jobs created, claimed for a poll under a lease, and finished once.

- Claim: a job is due when it is unfinished, its ``next_poll_at`` has passed and no lease holds
  it. ``claim`` leases due jobs to one instance with a conditional ``UPDATE`` (after
  ``SELECT … FOR UPDATE SKIP LOCKED`` on PostgreSQL; inside ``BEGIN IMMEDIATE`` on SQLite), so
  exactly one instance polls a job at a time; a lease left by a dead instance runs out.
- Finish: the move to ``completed`` or ``failed`` is a conditional ``UPDATE`` (still unfinished,
  still leased to this instance) in the same transaction as the job's usage row (its
  ``row_id`` is the job's id, unique): a job is billed once, whatever crashes or races.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from sqlalchemy import and_, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from gateway.storage import Database, UsageRow
from gateway.storage.tables import usage, video_jobs

_J = video_jobs.c
UNFINISHED = ("queued", "in_progress")
_BATCH = 20


class VideoJobs:
    """Queries of the video jobs of every instance over one ``Database``."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def insert(self, **values: Any) -> None:
        await self.db.execute(insert(video_jobs).values(**values))

    async def get(self, job_id: str, user: str, key_id: str) -> Any | None:
        """The job ``job_id`` if it is ``user``'s (another user's is not found); a key of
        nobody's account sees only its own jobs."""
        mine = _J.user_email == user if user else and_(_J.user_email == "", _J.key_id == key_id)
        rows = await self.db.fetch(select(video_jobs).where(_J.id == job_id, mine))
        return rows[0] if rows else None

    async def statuses(self, job_ids: list[str]) -> dict[str, str]:
        """The status of each of ``job_ids`` that exists."""
        rows = await self.db.fetch(select(_J.id, _J.status).where(_J.id.in_(job_ids)))
        return {row.id: row.status for row in rows}

    async def claim(self, owner: str, now: float, lease_until: float) -> list[Any]:
        """Lease the jobs due a poll to ``owner``; the rows as they were before the lease."""
        due_now = and_(_J.status.in_(UNFINISHED), _J.next_poll_at <= now, _J.lease_until <= now)
        if not await self.db.fetch(select(_J.id).where(due_now).limit(1)):
            return []  # a read, not a write transaction, on every idle tick
        async with self.db.write() as conn:
            due = select(video_jobs).where(due_now).order_by(_J.next_poll_at).limit(_BATCH)
            if self.db.dialect == "postgresql":
                due = due.with_for_update(skip_locked=True)
            claimed = []
            for row in (await conn.execute(due)).all():
                won = await conn.execute(update(video_jobs).where(
                    _J.id == row.id, _J.status.in_(UNFINISHED), _J.lease_until <= now,
                ).values(lease_owner=owner, lease_until=lease_until))
                if won.rowcount == 1:
                    claimed.append(row)
        return claimed

    async def progress(self, job_id: str, owner: str, **values: Any) -> None:
        """Record a poll of an unfinished job and hand its lease back."""
        await self.db.execute(update(video_jobs).where(
            _J.id == job_id, _J.lease_owner == owner, _J.status.in_(UNFINISHED),
        ).values(lease_until=0, polls=_J.polls + 1, **values))

    async def finish(self, job_id: str, owner: str, row: UsageRow, **values: Any) -> bool:
        """End a job and write its usage row, in one transaction; False if it had ended
        already or another instance holds it now (nothing is written then)."""
        construct = postgresql.insert if self.db.dialect == "postgresql" else sqlite.insert
        async with self.db.write() as conn:
            won = await conn.execute(update(video_jobs).where(
                _J.id == job_id, _J.lease_owner == owner, _J.status.in_(UNFINISHED),
            ).values(lease_until=0, polls=_J.polls + 1, **values))
            if won.rowcount != 1:
                return False
            fields = asdict(row)
            await conn.execute(construct(usage).values(**fields)
                               .on_conflict_do_nothing(index_elements=[usage.c.row_id]))
        return True

    async def release(self, owner: str) -> None:
        """Hand back every lease of ``owner`` (an instance stopping)."""
        await self.db.execute(update(video_jobs).where(
            _J.lease_owner == owner, _J.status.in_(UNFINISHED)).values(lease_until=0))
