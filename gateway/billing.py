"""Usage and billing views of one user, computed from the usage ledger and balance top-ups.

Rows are read for the period and summed here (not in SQL), so the same code serves SQLite and
PostgreSQL without date functions, which the two spell differently.
"""

from __future__ import annotations

import calendar
from datetime import UTC, datetime
from typing import Any

from gateway.accounts_store import AccountsStore


def _empty() -> dict[str, Any]:
    return {"requests": 0, "prompt_tokens": 0, "completion_tokens": 0, "cached_tokens": 0,
            "total_tokens": 0, "cost_usd": 0.0}


def _add(total: dict[str, Any], row: dict[str, Any]) -> None:
    total["requests"] += 1
    total["prompt_tokens"] += int(row["prompt_tokens"])
    total["completion_tokens"] += int(row["completion_tokens"])
    total["cached_tokens"] += int(row["cached_tokens"])
    total["total_tokens"] += int(row["prompt_tokens"]) + int(row["completion_tokens"])
    total["cost_usd"] += float(row["cost_usd"])


def _round(total: dict[str, Any]) -> dict[str, Any]:
    total["cost_usd"] = round(total["cost_usd"], 10)
    return total


async def usage_summary(
    store: AccountsStore, email: str, since: float, until: float
) -> dict[str, Any]:
    """Requests, tokens and cost over ``[since, until)``, in total, by provider and by model."""
    rows = await store.usage_since(email, since, until)
    total = _empty()
    by_provider: dict[str, dict[str, Any]] = {}
    by_model: dict[str, dict[str, Any]] = {}
    estimated = 0
    for row in rows:
        _add(total, row)
        if row["provider"]:
            _add(by_provider.setdefault(row["provider"], _empty()), row)
        if row["model_served"]:
            _add(by_model.setdefault(row["model_served"], _empty()), row)
        estimated += int(bool(row["estimated"]))
    return {
        "object": "usage",
        "start": _iso(since),
        "end": _iso(until),
        **_round(total),
        "estimated_requests": estimated,
        "by_provider": {k: _round(v) for k, v in sorted(by_provider.items())},
        "by_model": {k: _round(v) for k, v in sorted(by_model.items())},
    }


def _day_buckets(days: int, now: float) -> tuple[float, float, dict[str, dict[str, Any]]]:
    """``[since, until)`` covering the last ``days`` UTC days, and an empty total per day."""
    today = calendar.timegm(datetime.fromtimestamp(now, UTC).date().timetuple())
    since = today - (days - 1) * 86400
    buckets = {
        datetime.fromtimestamp(since + i * 86400, UTC).strftime("%Y-%m-%d"): _empty()
        for i in range(days)
    }
    return since, today + 86400, buckets


def _add_to_day(buckets: dict[str, dict[str, Any]], row: dict[str, Any]) -> None:
    day = datetime.fromtimestamp(float(row["created_at"]), UTC).strftime("%Y-%m-%d")
    if day in buckets:
        _add(buckets[day], row)


async def usage_daily(store: AccountsStore, email: str, days: int, now: float) -> dict[str, Any]:
    """One entry per UTC day for the last ``days`` days (today included), oldest first."""
    since, until, buckets = _day_buckets(days, now)
    for row in await store.usage_since(email, since, until):
        _add_to_day(buckets, row)
    return {"object": "list", "data": [{"date": d, **_round(t)} for d, t in buckets.items()]}


async def usage_of_everyone(store: AccountsStore, days: int, now: float) -> dict[str, Any]:
    """The operator's view of the last ``days`` UTC days: totals, by user, by model, per day."""
    since, until, daily = _day_buckets(days, now)
    total = _empty()
    by_user: dict[str, dict[str, Any]] = {}
    by_model: dict[str, dict[str, Any]] = {}
    for row in await store.usage_of_everyone(since, until):
        _add(total, row)
        _add(by_user.setdefault(row["user_email"] or "(no account)", _empty()), row)
        if row["model_served"]:
            _add(by_model.setdefault(row["model_served"], _empty()), row)
        _add_to_day(daily, row)
    return {
        "object": "usage", "start": _iso(since), "days": days, **_round(total),
        "by_user": {k: _round(v) for k, v in sorted(by_user.items())},
        "by_model": {k: _round(v) for k, v in sorted(by_model.items())},
        "daily": [{"date": d, **_round(t)} for d, t in daily.items()],
    }


async def invoices(store: AccountsStore, email: str) -> dict[str, Any]:
    """Monthly statements: usage charged and top-ups received, newest month first."""
    months: dict[str, dict[str, Any]] = {}

    def month(when: float) -> dict[str, Any]:
        key = datetime.fromtimestamp(when, UTC).strftime("%Y-%m")
        return months.setdefault(
            key, {"id": f"inv_{key.replace('-', '')}", "period": key, **_empty(),
                  "topups_usd": 0.0}
        )

    for row in await store.usage_since(email, 0.0, 1e12):
        _add(month(float(row["created_at"])), row)
    for created, amount, kind, _ in await store.ledger(email):
        if kind == "topup":
            month(created)["topups_usd"] += amount
    data = []
    for key in sorted(months, reverse=True):
        entry = _round(months[key])
        entry["amount_due_usd"] = entry["cost_usd"]
        entry["status"] = "open" if key == datetime.now(UTC).strftime("%Y-%m") else "closed"
        data.append(entry)
    return {"object": "list", "data": data}


def _iso(when: float) -> str:
    return datetime.fromtimestamp(when, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def month_start(now: float) -> float:
    moment = datetime.fromtimestamp(now, UTC)
    return float(calendar.timegm((moment.year, moment.month, 1, 0, 0, 0)))


def parse_when(value: str | None, default: float) -> float:
    """``YYYY-MM-DD``, an ISO time, or Unix seconds; ``default`` when absent."""
    if not value:
        return default
    try:
        return float(value)
    except ValueError:
        pass
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()
