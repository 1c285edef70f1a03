"""A user's webhook endpoints and the events they receive, over the ``webhook_*`` tables.

An endpoint belongs to the user who made it: every query is filtered by that user, so another
user's endpoint is a 404. The signing secret is answered only at creation and rotation; a
listing shows its hint. ``emit`` writes one outbox row per subscribed, enabled endpoint in one
transaction; ``gateway.platform.outbox`` delivers them. A row's id is derived from the event's
id and the endpoint's, so an event emitted twice (by two instances, or again in the same limit
window) is delivered once.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from typing import Any

import msgspec
from sqlalchemy import and_, delete, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from gateway.config import WebhooksConfig
from gateway.errors import BadRequest, NotFound
from gateway.platform.signing import new_secret, secret_hint
from gateway.platform.ssrf import check_url
from gateway.storage import Database
from gateway.storage.tables import webhook_attempts, webhook_endpoints, webhook_outbox

GATEWAY_EVENTS = ("key.created", "key.revoked", "limit.reached", "balance.low",
                  "account.blocked")
# Reserved for the video and background-response issues: subscribable, not yet sent.
RESERVED_EVENTS = ("video.completed", "video.failed", "response.completed", "response.failed")
EVENT_TYPES = GATEWAY_EVENTS + RESERVED_EVENTS
EVENT_DESCRIPTIONS = {
    "key.created": "An API key of the account was created",
    "key.revoked": "An API key of the account was revoked",
    "limit.reached": "A tier or key limit refused a call (once per key, limit and window)",
    "balance.low": "The prepaid balance is under the endpoint's balance_low_usd (once a day)",
    "account.blocked": "The operator blocked the account",
    "video.completed": "A video job finished",
    "video.failed": "A video job failed",
    "response.completed": "A background response finished",
    "response.failed": "A background response failed",
}
MAX_ENDPOINTS = 20  # per user
_E = webhook_endpoints.c


def endpoint_entry(row: Any, secret: str | None = None) -> dict[str, Any]:
    entry = {
        "id": row.id, "object": "webhook_endpoint", "name": row.name, "url": row.url,
        "event_types": [t for t in row.event_types.split(",") if t],
        "created_at": int(row.created_at), "status": row.status,
        "disabled_reason": row.disabled_reason or None,
        "signing_secret_hint": secret_hint(row.secret),
        "balance_low_usd": row.balance_low_usd or None,
    }
    if secret is not None:
        entry["signing_secret"] = secret
    return entry


def event_catalog() -> dict[str, Any]:
    """Every event type an endpoint may subscribe to, what it means, and whether it is only
    reserved (accepted, not sent yet)."""
    return {"object": "list", "data": [
        {"type": t, "description": EVENT_DESCRIPTIONS[t], "reserved": t in RESERVED_EVENTS}
        for t in EVENT_TYPES]}


def event_body(event_id: str, event_type: str, data: dict[str, Any], when: float) -> bytes:
    return msgspec.json.encode({"id": event_id, "object": "event", "type": event_type,
                                "created_at": int(when), "data": data})


def delivery_id(event_id: str, endpoint_id: str) -> str:
    return "msg_" + hashlib.sha256(f"{event_id}/{endpoint_id}".encode()).hexdigest()[:24]


def _event_types(value: object) -> str:
    if value is None:
        return ",".join(GATEWAY_EVENTS)
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise BadRequest("'event_types' must be a non-empty list of event types",
                         param="event_types")
    unknown = [v for v in value if v not in EVENT_TYPES]
    if unknown:
        raise BadRequest(f"Unknown event types {unknown}: use {', '.join(EVENT_TYPES)}",
                         param="event_types")
    return ",".join(dict.fromkeys(value))


def _threshold(value: object) -> float:
    if value is None:
        return 0.0
    if not isinstance(value, int | float) or isinstance(value, bool) or not 0 <= value <= 1e9:
        raise BadRequest("'balance_low_usd' must be a number of USD from 0 to 1e9",
                         param="balance_low_usd")
    return float(value)


def _name(value: object) -> str:
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > 200:
        raise BadRequest("'name' must be a string of at most 200 characters", param="name")
    return value


class Webhooks:
    """Endpoints, events and the delivery log of every user."""

    def __init__(self, config: WebhooksConfig, db: Database) -> None:
        self.config = config
        self.db = db

    async def row(self, user: str, endpoint_id: str) -> Any:
        """The endpoint's row (with its secret); 404 unless ``user`` owns it."""
        rows = await self.db.fetch(select(webhook_endpoints).where(
            _E.id == endpoint_id, _E.user_email == user))
        if not rows:
            raise NotFound(f"No webhook endpoint '{endpoint_id[:64]}'")
        return rows[0]

    async def create(self, user: str, body: dict[str, Any]) -> dict[str, Any]:
        target = await check_url(body.get("url"), self.config.allow_private)  # type: ignore[arg-type]
        values: dict[str, Any] = {"id": "we_" + secrets.token_hex(12), "user_email": user,
                  "name": _name(body.get("name")), "url": target.url,
                  "event_types": _event_types(body.get("event_types")), "secret": new_secret(),
                  "created_at": time.time(),
                  "balance_low_usd": _threshold(body.get("balance_low_usd"))}
        if len(await self.list(user)) >= MAX_ENDPOINTS:
            raise BadRequest(f"At most {MAX_ENDPOINTS} webhook endpoints per account")
        await self.db.execute(insert(webhook_endpoints).values(values))
        row = await self.row(user, values["id"])
        return endpoint_entry(row, row.secret)

    async def list(self, user: str) -> list[dict[str, Any]]:
        rows = await self.db.fetch(select(webhook_endpoints).where(_E.user_email == user)
                                   .order_by(_E.created_at))
        return [endpoint_entry(row) for row in rows]

    async def get(self, user: str, endpoint_id: str) -> dict[str, Any]:
        return endpoint_entry(await self.row(user, endpoint_id))

    async def update(self, user: str, endpoint_id: str, body: dict[str, Any]) -> dict[str, Any]:
        await self.row(user, endpoint_id)
        values: dict[str, Any] = {}
        if "name" in body:
            values["name"] = _name(body["name"])
        if "url" in body:
            values["url"] = (await check_url(body["url"], self.config.allow_private)).url
        if "event_types" in body:
            values["event_types"] = _event_types(body["event_types"])
        if "balance_low_usd" in body:
            values["balance_low_usd"] = _threshold(body["balance_low_usd"])
        if "disabled" in body:
            if not isinstance(body["disabled"], bool):
                raise BadRequest("'disabled' must be true or false", param="disabled")
            values.update(status="disabled" if body["disabled"] else "enabled", failures=0,
                          disabled_reason="disabled by its owner" if body["disabled"] else "")
        if values:
            await self.db.execute(update(webhook_endpoints).where(_E.id == endpoint_id)
                                  .values(values))
        return await self.get(user, endpoint_id)

    async def delete(self, user: str, endpoint_id: str) -> dict[str, Any]:
        await self.row(user, endpoint_id)
        async with self.db.write() as conn:
            await conn.execute(delete(webhook_endpoints).where(_E.id == endpoint_id))
            await conn.execute(delete(webhook_outbox).where(
                webhook_outbox.c.endpoint_id == endpoint_id))
        return {"id": endpoint_id, "object": "webhook_endpoint.deleted", "deleted": True}

    async def rotate(self, user: str, endpoint_id: str) -> dict[str, Any]:
        await self.row(user, endpoint_id)
        secret = new_secret()
        await self.db.execute(update(webhook_endpoints).where(_E.id == endpoint_id)
                              .values(secret=secret))
        return endpoint_entry(await self.row(user, endpoint_id), secret)

    async def deliveries(self, user: str, endpoint_id: str, limit: int) -> dict[str, Any]:
        """The endpoint's attempts, newest first, each with its delivery's event type, status,
        attempts so far and, while it is pending, when the next one is due."""
        await self.row(user, endpoint_id)
        a, o = webhook_attempts.c, webhook_outbox.c
        rows = await self.db.fetch(
            select(webhook_attempts, o.event_type, o.status, o.attempts, o.next_attempt_at)
            .join(webhook_outbox, o.id == a.delivery_id, isouter=True)
            .where(a.endpoint_id == endpoint_id).order_by(a.created_at.desc()).limit(limit))
        return {"object": "list", "data": [
            {"object": "webhook_delivery.attempt", "delivery_id": r.delivery_id,
             "event_type": r.event_type or "", "created_at": r.created_at,
             "status_code": r.status_code or None, "success": bool(r.success),
             "duration_ms": round(r.duration_ms, 1), "error": r.error or None,
             "delivery_status": r.status or "test", "attempts": r.attempts or 1,
             "next_attempt_at": r.next_attempt_at if r.status == "pending" else None}
            for r in rows]}

    async def emit(self, user: str, event_type: str, data: dict[str, Any],
                   event_id: str = "") -> int:
        """Queue ``event_type`` for each of ``user``'s enabled endpoints that subscribe to it;
        how many were queued. An ``event_id`` already queued is not queued again."""
        now = time.time()
        event_id = event_id or "evt_" + secrets.token_hex(12)
        rows = await self.db.fetch(select(_E.id, _E.event_types).where(
            and_(_E.user_email == user, _E.status == "enabled")))
        body = event_body(event_id, event_type, data, now).decode()
        values = [{"id": delivery_id(event_id, row.id), "endpoint_id": row.id,
                   "event_type": event_type, "body": body, "created_at": now,
                   "next_attempt_at": now}
                  for row in rows if event_type in row.event_types.split(",")]
        if values:
            construct = postgresql.insert if self.db.dialect == "postgresql" else sqlite.insert
            await self.db.execute(construct(webhook_outbox).values(values)
                                  .on_conflict_do_nothing(index_elements=["id"]))
        return len(values)
