"""``balance.low``: a prepaid user whose balance is under the threshold they set on one of their
endpoints (``balance_low_usd``) gets the event, at most once per UTC day while it stays low.

A background look every ``[webhooks] balance_check_interval`` seconds at the stored balances
(the batched debit writer keeps them current), so the chat path never waits on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections.abc import Callable
from typing import Any

import structlog
from sqlalchemy import and_, func, select

from gateway.config import GatewayConfig
from gateway.storage import Database, StorageUnavailable
from gateway.storage.tables import users, webhook_endpoints

log = structlog.get_logger("gateway.webhooks")
_E = webhook_endpoints.c
_U = users.c


class BalanceWatch:
    """The loop; ``emit(user, event_type, data, event_id=…)`` queues the event."""

    def __init__(self, config: GatewayConfig, db: Database,
                 emit: Callable[..., None]) -> None:
        self.config = config
        self.db = db
        self.emit = emit
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.webhooks.balance_check_interval)
            try:
                await self.check()
            except StorageUnavailable as exc:
                log.warning("balance_watch_unavailable", error=str(exc))

    async def check(self) -> int:
        """Emit ``balance.low`` for every prepaid user under their threshold; how many."""
        threshold = func.max(_E.balance_low_usd).label("threshold")
        rows = await self.db.fetch(
            select(_U.email, _U.tier, _U.balance_usd, threshold)
            .join(webhook_endpoints, _E.user_email == _U.email)
            .where(and_(_E.status == "enabled", _E.balance_low_usd > 0,
                        _E.event_types.contains("balance.low")))
            .group_by(_U.email, _U.tier, _U.balance_usd))
        day = time.strftime("%Y-%m-%d", time.gmtime())
        sent = 0
        for row in rows:
            tier: Any = self.config.tiers.get(row.tier)
            if tier is None or not tier.prepaid or row.balance_usd >= row.threshold:
                continue
            digest = hashlib.sha256(row.email.encode()).hexdigest()[:16]
            self.emit(row.email, "balance.low",
                      {"balance_usd": round(row.balance_usd, 6),
                       "threshold_usd": row.threshold},
                      event_id=f"evt_balance_low_{digest}_{day}")
            sent += 1
        return sent
