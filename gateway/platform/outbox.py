"""Delivery of the durable outbox: claim due rows, POST them signed, record each attempt, and
retry on a non-2xx or a timeout with the configured backoff.

- Durable: an event is a row before anything is sent, so a restart loses none; a row leased by
  an instance that died is taken again when its lease runs out.
- One instance at a time attempts a row: the claim is a conditional ``UPDATE`` of its lease (on
  PostgreSQL after ``SELECT … FOR UPDATE SKIP LOCKED``, so instances claim different rows
  without waiting on each other; on SQLite inside ``BEGIN IMMEDIATE``).
- A retry sends the same ``webhook-id`` and body, with a new timestamp and signature.
- At most ``max_in_flight`` rows of one endpoint are leased at once.
- ``disable_after`` failed attempts in a row disable the endpoint (its listing says so); a
  row that used up the schedule is ``failed``.
- Each attempt checks the URL again (SSRF) and connects to the checked address; redirects are
  not followed.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import aiohttp
import structlog
from sqlalchemy import and_, func, insert, select, update

from gateway.config import WebhooksConfig
from gateway.errors import GatewayError
from gateway.leases import LeaseWorker
from gateway.platform import signing
from gateway.platform.ssrf import PinnedResolver, check_url
from gateway.storage import Database
from gateway.storage.tables import webhook_attempts, webhook_endpoints, webhook_outbox

log = structlog.get_logger("gateway.webhooks")
_O = webhook_outbox.c
_E = webhook_endpoints.c
_BATCH = 20


@dataclass(frozen=True, slots=True)
class Attempt:
    """What one POST got: the status (0: no answer), how long it took, and why it failed."""

    status_code: int
    duration_ms: float
    error: str

    @property
    def success(self) -> bool:
        return 200 <= self.status_code < 300


async def post(url: str, secret: str, message_id: str, body: bytes, allow_private: bool,
               timeout: float) -> Attempt:
    """One signed POST to the checked address of ``url``; never raises."""
    started = time.monotonic()
    try:
        target = await check_url(url, allow_private)
        connector = aiohttp.TCPConnector(resolver=PinnedResolver(target), use_dns_cache=False)
        headers = signing.headers(secret, message_id, int(time.time()), body)
        async with aiohttp.ClientSession(connector=connector) as session, session.post(
            url, data=body, headers=headers, allow_redirects=False,
            timeout=aiohttp.ClientTimeout(total=timeout),
        ) as answer:
            await answer.content.read(65536)
            status, error = answer.status, "" if answer.status < 300 else f"HTTP {answer.status}"
    except GatewayError as exc:
        status, error = 0, exc.message
    except TimeoutError:
        status, error = 0, f"no answer within {timeout:g} s"
    except (aiohttp.ClientError, OSError) as exc:
        status, error = 0, f"{type(exc).__name__}: {exc}"[:500]
    return Attempt(status, (time.monotonic() - started) * 1000, error)


class Deliverer(LeaseWorker):
    """The background loop of one instance over the shared outbox."""

    unavailable_event = "webhook_outbox_unavailable"

    def __init__(self, config: WebhooksConfig, db: Database) -> None:
        super().__init__(config.poll_interval)
        self.config = config
        self.db = db

    async def release(self) -> None:
        """Rows this instance was attempting go back to the outbox now, not when leases
        expire."""
        await self.db.execute(update(webhook_outbox).where(
            _O.lease_owner == self.owner, _O.status == "pending").values(lease_until=0))

    async def work(self, row: Any) -> None:
        await self.deliver(row)

    async def claim(self) -> list[Any]:
        """Lease the due rows this instance may attempt now."""
        now = time.time()
        lease = now + self.config.timeout + 5  # a dead instance's rows are retried after
        due_now = and_(_O.status == "pending", _O.next_attempt_at <= now, _O.lease_until <= now)
        if not await self.db.fetch(select(_O.id).where(due_now).limit(1)):
            return []  # a read, not a write transaction, on every idle poll
        async with self.db.write() as conn:
            busy: Counter[str] = Counter(dict((await conn.execute(
                select(_O.endpoint_id, func.count()).where(
                    _O.status == "pending", _O.lease_until > now).group_by(_O.endpoint_id)
            )).all()))
            due = select(webhook_outbox).where(due_now).order_by(_O.next_attempt_at).limit(_BATCH)
            if self.db.dialect == "postgresql":
                due = due.with_for_update(skip_locked=True)
            claimed = []
            for row in (await conn.execute(due)).all():
                if busy[row.endpoint_id] >= self.config.max_in_flight:
                    continue
                won = await conn.execute(update(webhook_outbox).where(
                    _O.id == row.id, _O.status == "pending", _O.lease_until <= now,
                ).values(lease_owner=self.owner, lease_until=lease))
                if won.rowcount == 1:
                    busy[row.endpoint_id] += 1
                    claimed.append(row)
        return claimed

    async def deliver(self, row: Any) -> None:
        endpoint = (await self.db.fetch(select(webhook_endpoints).where(
            _E.id == row.endpoint_id)))
        if not endpoint or endpoint[0].status != "enabled":
            await self.db.execute(update(webhook_outbox).where(_O.id == row.id).values(
                status="failed", lease_until=0))
            return
        attempt = await post(endpoint[0].url, endpoint[0].secret, row.id, row.body.encode(),
                             self.config.allow_private, self.config.timeout)
        await self.record(row, attempt)

    async def record(self, row: Any, attempt: Attempt) -> None:
        """The attempt in the log, the row rescheduled or done, the endpoint's failure count."""
        now = time.time()
        attempts = row.attempts + 1
        schedule = self.config.retry_schedule
        if attempt.success:
            values: dict[str, Any] = {"status": "delivered"}
        elif attempts > len(schedule):
            values = {"status": "failed"}
        else:
            values = {"next_attempt_at": now + schedule[attempts - 1]}
        async with self.db.write() as conn:
            await conn.execute(insert(webhook_attempts).values(
                delivery_id=row.id, endpoint_id=row.endpoint_id, created_at=now,
                status_code=attempt.status_code, duration_ms=attempt.duration_ms,
                error=attempt.error, success=attempt.success))
            await conn.execute(update(webhook_outbox).where(
                _O.id == row.id, _O.lease_owner == self.owner).values(
                attempts=attempts, lease_until=0, **values))
            await self._count(conn, row.endpoint_id, attempt)
        log.info("webhook_attempt", delivery=row.id, endpoint=row.endpoint_id,
                 status_code=attempt.status_code, attempt=attempts, error=attempt.error)

    async def _count(self, conn: Any, endpoint_id: str, attempt: Attempt) -> None:
        where = _E.id == endpoint_id
        if attempt.success:
            await conn.execute(update(webhook_endpoints).where(where).values(failures=0))
            return
        await conn.execute(update(webhook_endpoints).where(where).values(
            failures=_E.failures + 1))
        await conn.execute(update(webhook_endpoints).where(and_(
            where, _E.status == "enabled", _E.failures >= self.config.disable_after,
        )).values(status="disabled", disabled_reason=(
            f"{self.config.disable_after} failed deliveries in a row; last: {attempt.error}"
        )[:500]))

    async def test(self, endpoint: Any, event_type: str, body: bytes,
                   message_id: str) -> Attempt:
        """A sample event delivered now, never retried. Its outbox row is marked ``test`` (the
        loop claims ``pending`` rows only), so the delivery log shows its event type."""
        attempt = await post(endpoint.url, endpoint.secret, message_id, body,
                             self.config.allow_private, self.config.timeout)
        now = time.time()
        async with self.db.write() as conn:
            await conn.execute(insert(webhook_outbox).values(
                id=message_id, endpoint_id=endpoint.id, event_type=event_type,
                body=body.decode(), created_at=now, next_attempt_at=now, attempts=1,
                status="test"))
            await conn.execute(insert(webhook_attempts).values(
                delivery_id=message_id, endpoint_id=endpoint.id, created_at=now,
                status_code=attempt.status_code, duration_ms=attempt.duration_ms,
                error=attempt.error, success=attempt.success))
        return attempt
