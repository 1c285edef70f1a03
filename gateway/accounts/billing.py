"""Usage and billing views of one user, from totals the database sums per group
(``gateway.storage.usage``): only the requested window is read.
"""

from __future__ import annotations

import calendar
from datetime import UTC, datetime
from typing import Any

from gateway.storage import AccountsStore, usage


def _public(total: usage.Totals) -> dict[str, Any]:
    """Totals as the API shows them: cost rounded, the estimated count left to the summary."""
    shown = {name: value for name, value in total.items() if name != "estimated"}
    shown["cost_usd"] = round(shown["cost_usd"], 10)
    return shown


async def usage_summary(
    store: AccountsStore, email: str, since: float, until: float, key_id: str = ""
) -> dict[str, Any]:
    """Requests, tokens and cost over ``[since, until)``, in total, by provider and by model
    (of one key only when ``key_id`` is given)."""
    total = usage.empty()
    by_provider: dict[str, usage.Totals] = {}
    by_model: dict[str, usage.Totals] = {}
    for provider, model, part in await usage.by_model(store.db, email, since, until, key_id):
        usage.add(total, part)
        if provider:
            usage.add(by_provider.setdefault(provider, usage.empty()), part)
        if model:
            usage.add(by_model.setdefault(model, usage.empty()), part)
    return {
        "object": "usage",
        "start": _iso(since),
        "end": _iso(until),
        **_public(total),
        "estimated_requests": total["estimated"],
        "by_provider": {k: _public(v) for k, v in sorted(by_provider.items())},
        "by_model": {k: _public(v) for k, v in sorted(by_model.items())},
    }


async def usage_daily(
    store: AccountsStore, email: str, days: int, now: float, key_id: str = ""
) -> dict[str, Any]:
    """One entry per UTC day for the last ``days`` days (today included), oldest first."""
    since = _days_since(days, now)
    found = await usage.by_bucket(store.db, email, usage.days_from(since), since,
                                  since + days * 86400, key_id)
    return {"object": "list", "data": _daily(since, days, found)}


def _days_since(days: int, now: float) -> float:
    """The start of the first of the last ``days`` UTC days (today included)."""
    today = calendar.timegm(datetime.fromtimestamp(now, UTC).date().timetuple())
    return float(today - (days - 1) * 86400)


def _daily(since: float, days: int, found: dict[int, usage.Totals]) -> list[dict[str, Any]]:
    """One entry per day from ``since``, oldest first, empty days included."""
    return [
        {"date": datetime.fromtimestamp(since + day * 86400, UTC).strftime("%Y-%m-%d"),
         **_public(found.get(day, usage.empty()))}
        for day in range(days)
    ]


async def usage_of_everyone(store: AccountsStore, days: int, now: float) -> dict[str, Any]:
    """The operator's view of the last ``days`` UTC days: totals, by user, by model, per day."""
    since = _days_since(days, now)
    total = usage.empty()
    by_user: dict[str, usage.Totals] = {}
    by_model: dict[str, usage.Totals] = {}
    daily: dict[int, usage.Totals] = {}
    rows = await usage.everyone_by_day(store.db, since, since + days * 86400)
    for user, model, day, part in rows:
        usage.add(total, part)
        usage.add(by_user.setdefault(user or "(no account)", usage.empty()), part)
        if model:
            usage.add(by_model.setdefault(model, usage.empty()), part)
        usage.add(daily.setdefault(day, usage.empty()), part)
    return {
        "object": "usage", "start": _iso(since), "days": days, **_public(total),
        "by_user": {k: _public(v) for k, v in sorted(by_user.items())},
        "by_model": {k: _public(v) for k, v in sorted(by_model.items())},
        "daily": _daily(since, days, daily),
    }


async def invoices(store: AccountsStore, email: str) -> dict[str, Any]:
    """Monthly statements: usage charged and top-ups received, newest month first (from the
    month of the first request or top-up to this one)."""
    first = await usage.first_activity(store.db, email)
    if first is None:
        return {"object": "list", "data": []}
    now = datetime.now(UTC)
    starts = _month_starts(first, now.timestamp())
    bucket = usage.periods(starts)
    charged = await usage.by_bucket(store.db, email, bucket, starts[0], starts[-1])
    topups = await usage.topups_by_bucket(store.db, email, bucket, starts[0], starts[-1])
    data = []
    for index in sorted(charged.keys() | topups.keys(), reverse=True):
        key = datetime.fromtimestamp(starts[index], UTC).strftime("%Y-%m")
        entry = {"id": f"inv_{key.replace('-', '')}", "period": key,
                 **_public(charged.get(index, usage.empty())),
                 "topups_usd": topups.get(index, 0.0)}
        entry["amount_due_usd"] = entry["cost_usd"]
        entry["status"] = "open" if key == now.strftime("%Y-%m") else "closed"
        data.append(entry)
    return {"object": "list", "data": data}


def _month_starts(first: float, now: float) -> list[float]:
    """The start of each month from ``first``'s to ``now``'s, and the start of the next."""
    starts = [month_start(first)]
    while starts[-1] <= now:
        moment = datetime.fromtimestamp(starts[-1], UTC)
        year, month = divmod(moment.year * 12 + moment.month, 12)  # the next month, 0-based
        starts.append(float(calendar.timegm((year, month + 1, 1, 0, 0, 0))))
    return starts


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
