"""Anonymous telemetry from CLI installs: ``ping``, ``event`` and ``batch``, bounded, and the
operator's ``stats`` over a window.

The bounds: a body size limit (read in chunks, refused with 413 before it is all in memory), at
most ``max_batch`` events a batch (413 past it), a per-client-address rate limit (429), capped
field and property sizes (400), and rows older than ``retention_days`` deleted (at most once an
hour, by whichever write comes next). Nothing here is on the chat path.
"""

from __future__ import annotations

import datetime
import time
from typing import Any

import msgspec
from sqlalchemy import delete, distinct, func, insert, select
from starlette.requests import Request

from gateway.config import TelemetryConfig
from gateway.errors import BadRequest, BodyTooLarge, RateLimited
from gateway.storage import Database
from gateway.storage.tables import telemetry_events
from gateway.storage.usage import days_from

_T = telemetry_events.c
_FIELD_MAX = 128  # instance_id, name, version, os
_PRUNE_EVERY = 3600.0
_MAX_CLIENTS = 100_000  # addresses remembered by the rate limiter before it starts afresh
clock = time.time  # the rate limiter's (tests fix it inside one minute)


async def read_limited(request: Request, limit: int) -> Any:
    """The JSON body, refused with 413 past ``limit`` bytes and 400 if it is not JSON."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(f"The body is over {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(f"The body is over {limit} bytes")
        chunks.append(chunk)
    try:
        return msgspec.json.decode(b"".join(chunks))
    except (msgspec.DecodeError, RecursionError) as exc:
        raise BadRequest("The body is not valid JSON") from exc


def _field(body: dict[str, Any], name: str, required: bool = False) -> str:
    value = body.get(name, "")
    if value is None:
        value = ""
    if not isinstance(value, str) or len(value) > _FIELD_MAX or (required and not value):
        need = "a non-empty string" if required else "a string"
        raise BadRequest(f"'{name}' must be {need} of at most {_FIELD_MAX} characters",
                         param=name)
    return value


class Telemetry:
    """Validates, rate-limits and stores telemetry; answers the stats."""

    def __init__(self, config: TelemetryConfig, db: Database) -> None:
        self.config = config
        self.db = db
        self._window = 0
        self._counts: dict[str, int] = {}
        self._pruned = 0.0

    def admit(self, address: str) -> None:
        """Count one request of ``address`` in this minute; 429 past the limit."""
        limit = self.config.requests_per_minute
        if not limit:
            return
        now = clock()
        window = int(now // 60)
        if window != self._window or len(self._counts) > _MAX_CLIENTS:
            self._window, self._counts = window, {}
        count = self._counts.get(address, 0) + 1
        self._counts[address] = count
        if count > limit:
            retry = str(60 - int(now) % 60)
            raise RateLimited(f"At most {limit} telemetry requests a minute per address",
                              headers={"Retry-After": retry})

    def ping_row(self, body: object, now: float) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise BadRequest("The body must be a JSON object")
        return {"created_at": now, "kind": "ping", "instance_id": _field(body, "instance_id", True),
                "name": "", "version": _field(body, "version"), "os": _field(body, "os"),
                "properties": ""}

    def event_row(self, body: object, now: float) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise BadRequest("Each event must be a JSON object")
        properties = body.get("properties") or {}
        if not isinstance(properties, dict):
            raise BadRequest("'properties' must be an object", param="properties")
        encoded = msgspec.json.encode(properties).decode()
        if len(encoded) > self.config.max_property_bytes:
            raise BadRequest(
                f"'properties' must be at most {self.config.max_property_bytes} bytes as JSON",
                param="properties")
        return {"created_at": now, "kind": "event",
                "instance_id": _field(body, "instance_id", True),
                "name": _field(body, "name", True), "version": _field(body, "version"),
                "os": _field(body, "os"), "properties": encoded}

    def batch_rows(self, body: object, now: float) -> list[dict[str, Any]]:
        events = body.get("events") if isinstance(body, dict) else None
        if not isinstance(events, list) or not events:
            raise BadRequest("'events' must be a non-empty list", param="events")
        if len(events) > self.config.max_batch:
            raise BodyTooLarge(f"At most {self.config.max_batch} events a batch")
        return [self.event_row(event, now) for event in events]

    async def store(self, rows: list[dict[str, Any]]) -> None:
        now = time.time()
        async with self.db.write() as conn:
            await conn.execute(insert(telemetry_events), rows)
            if now - self._pruned > _PRUNE_EVERY:
                self._pruned = now
                cutoff = now - self.config.retention_days * 86400
                await conn.execute(delete(telemetry_events).where(_T.created_at < cutoff))

    async def stats(self, days: int, now: float) -> dict[str, Any]:
        """Counts over the last ``days`` days, today included."""
        today = now - now % 86400
        since = today - (days - 1) * 86400
        recent = _T.created_at >= since
        instances, events, pings = (await self.db.fetch(select(
            func.count(distinct(_T.instance_id)),
            func.count().filter(_T.kind == "event"),
            func.count().filter(_T.kind == "ping"),
        ).where(recent)))[0]
        by_name = await self.db.fetch(
            select(_T.name, func.count()).where(recent, _T.kind == "event").group_by(_T.name))
        by_version = await self.db.fetch(
            select(_T.version, func.count(distinct(_T.instance_id)))
            .where(recent, _T.version != "").group_by(_T.version))
        day = days_from(since)(_T.created_at).label("day")
        by_day = await self.db.fetch(
            select(day, func.count()).where(recent, _T.kind == "event").group_by("day"))
        return {
            "object": "telemetry.stats", "days": days, "since": since,
            "instances": int(instances), "events": int(events or 0), "pings": int(pings or 0),
            "by_name": {str(n): int(c) for n, c in by_name},
            "by_version": {str(v): int(c) for v, c in by_version},
            "by_day": {_date(since + int(d) * 86400): int(c) for d, c in by_day},
        }


def _date(when: float) -> str:
    return datetime.datetime.fromtimestamp(when, datetime.UTC).strftime("%Y-%m-%d")
