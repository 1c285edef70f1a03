"""One user's usage, summed by the database: GROUP BY over the requested window only.

Buckets are portable expressions on ``created_at`` (Unix seconds): a day is
``floor((created_at - since) / 86400)``; months, being irregular, are a ``CASE`` over their
start times, computed in Python. Grouping is by the bucket's label, so PostgreSQL sees the
same expression in ``SELECT`` and ``GROUP BY`` even though each carries its own parameters.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    and_,
    case,
    cast,
    func,
    literal_column,
    select,
)

from gateway.storage.database import AnyRow, Database
from gateway.storage.tables import balance_ledger, usage

Totals = dict[str, Any]
Bucket = Callable[[ColumnElement[float]], ColumnElement[int]]

_c = usage.c
_SUMS = (
    func.count().label("requests"),
    *(cast(func.coalesce(func.sum(_c[name]), 0), BigInteger).label(name)
      for name in ("prompt_tokens", "completion_tokens", "cached_tokens")),
    func.coalesce(func.sum(_c.cost_usd), 0.0).label("cost_usd"),
    cast(func.coalesce(func.sum(cast(_c.estimated, BigInteger)), 0), BigInteger).label("estimated"),
)


def empty() -> Totals:
    """Totals of no request."""
    return {"requests": 0, "prompt_tokens": 0, "completion_tokens": 0, "cached_tokens": 0,
            "total_tokens": 0, "cost_usd": 0.0, "estimated": 0}


def add(total: Totals, part: Totals) -> Totals:
    """Add ``part`` into ``total`` (and return it)."""
    for name, value in part.items():
        total[name] += value
    return total


def _totals(row: AnyRow) -> Totals:
    values = row._mapping
    prompt, completion = int(values["prompt_tokens"]), int(values["completion_tokens"])
    return {"requests": int(values["requests"]), "prompt_tokens": prompt,
            "completion_tokens": completion, "cached_tokens": int(values["cached_tokens"]),
            "total_tokens": prompt + completion, "cost_usd": float(values["cost_usd"]),
            "estimated": int(values["estimated"])}


def _window(email: str, since: float, until: float, key_id: str = "") -> ColumnElement[bool]:
    """One user's rows (one key's only, when ``key_id`` is given) in ``[since, until)``."""
    window = and_(_c.user == email, _c.created_at >= since, _c.created_at < until)
    return and_(window, _c.key_id == key_id) if key_id else window


async def by_model(db: Database, email: str, since: float, until: float, key_id: str = ""
                   ) -> list[tuple[str, str, Totals]]:
    """(provider, model served, totals) of each pair used in ``[since, until)``."""
    rows = await db.fetch(
        select(_c.provider, _c.model_served, *_SUMS)
        .where(_window(email, since, until, key_id))
        .group_by(_c.provider, _c.model_served)
    )
    return [(str(row.provider), str(row.model_served), _totals(row)) for row in rows]


def days_from(since: float) -> Bucket:
    """Bucket ``n`` is the ``n``-th day (86,400 s) from ``since``."""
    return lambda when: cast(func.floor((when - since) / 86400), BigInteger)


def periods(starts: Sequence[float]) -> Bucket:
    """Bucket ``n`` is ``[starts[n], starts[n + 1])``; ``starts`` ascending, the last one an end."""
    return lambda when: case(
        *((when < end, index) for index, end in enumerate(starts[1:])), else_=-1
    )


async def by_bucket(db: Database, email: str, bucket: Bucket, since: float, until: float,
                    key_id: str = "") -> dict[int, Totals]:
    """Totals per bucket of ``[since, until)``; empty buckets are absent."""
    label = bucket(_c.created_at).label("bucket")
    rows = await db.fetch(
        select(label, *_SUMS).where(_window(email, since, until, key_id))
        .group_by(literal_column("bucket"))
    )
    return {int(row.bucket): _totals(row) for row in rows}


async def topups_by_bucket(db: Database, email: str, bucket: Bucket, since: float, until: float
                           ) -> dict[int, float]:
    """Top-ups received per bucket of ``[since, until)``."""
    t = balance_ledger.c
    label = bucket(t.created_at).label("bucket")
    rows = await db.fetch(
        select(label, func.sum(t.amount_usd).label("amount"))
        .where(t.user_email == email, t.kind == "topup", t.created_at >= since,
               t.created_at < until)
        .group_by(literal_column("bucket"))
    )
    return {int(row.bucket): float(row.amount) for row in rows}


async def first_activity(db: Database, email: str) -> float | None:
    """When this user's first request or top-up happened, if ever."""
    t = balance_ledger.c
    rows = await db.fetch(select(
        select(func.min(_c.created_at)).where(_c.user == email).scalar_subquery(),
        select(func.min(t.created_at)).where(t.user_email == email, t.kind == "topup")
        .scalar_subquery(),
    ))
    found = [float(value) for value in rows[0] if value is not None]
    return min(found) if found else None


async def everyone_by_day(db: Database, since: float, until: float
                          ) -> list[tuple[str, str, int, Totals]]:
    """(user, model served, day from ``since``, totals) over every user, for the operator."""
    day = days_from(since)(_c.created_at).label("bucket")
    rows = await db.fetch(
        select(_c.user, _c.model_served, day, *_SUMS)
        .where(_c.created_at >= since, _c.created_at < until)
        .group_by(_c.user, _c.model_served, literal_column("bucket"))
    )
    return [(str(row.user), str(row.model_served), int(row.bucket), _totals(row))
            for row in rows]
