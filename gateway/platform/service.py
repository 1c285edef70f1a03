"""The platform's services of one process: telemetry, webhooks and the outbox's deliverer,
started and stopped with the gateway."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from typing import Any

import structlog

from gateway.config import GatewayConfig
from gateway.platform.balance_watch import BalanceWatch
from gateway.platform.outbox import Deliverer
from gateway.platform.telemetry import Telemetry
from gateway.platform.webhooks import Webhooks
from gateway.storage import Database, StorageUnavailable

log = structlog.get_logger("gateway.webhooks")


class Platform:
    """Built before the store is open (``db`` is a callable); ``start`` opens the services."""

    def __init__(self, config: GatewayConfig, db: Callable[[], Database]) -> None:
        self.config = config
        self._db = db
        self._services: tuple[Telemetry, Webhooks, Deliverer] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._seen: set[str] = set()
        self._watch: BalanceWatch | None = None

    def _open(self) -> tuple[Telemetry, Webhooks, Deliverer]:
        if self._services is None:
            db = self._db()
            self._services = (Telemetry(self.config.telemetry, db),
                              Webhooks(self.config.webhooks, db),
                              Deliverer(self.config.webhooks, db))
        return self._services

    @property
    def telemetry(self) -> Telemetry:
        return self._open()[0]

    @property
    def webhooks(self) -> Webhooks:
        return self._open()[1]

    @property
    def deliverer(self) -> Deliverer:
        return self._open()[2]

    @property
    def balance_watch(self) -> BalanceWatch:
        if self._watch is None:
            self._watch = BalanceWatch(self.config, self._db(), self.emit)
        return self._watch

    def start(self) -> None:
        self.deliverer.start()
        self.balance_watch.start()

    async def stop(self) -> None:
        if self._watch is not None:
            await self._watch.stop()
        if self._services is not None:
            await self.deliverer.stop()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def emit(self, user: str, event_type: str, data: dict[str, Any], event_id: str = "") -> None:
        """Queue an event for ``user``'s endpoints in the background: the caller never waits
        on the database. An ``event_id`` already emitted by this process is dropped at once
        (the outbox drops it across processes)."""
        if not user:
            return
        if event_id:
            if event_id in self._seen:
                return
            if len(self._seen) > 100_000:
                self._seen.clear()
            self._seen.add(event_id)
        task = asyncio.create_task(self._emit(user, event_type, data,
                                              event_id or "evt_" + secrets.token_hex(12)))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _emit(self, user: str, event_type: str, data: dict[str, Any],
                    event_id: str) -> None:
        try:
            if await self.webhooks.emit(user, event_type, data, event_id):
                self.deliverer.wake()
        except StorageUnavailable as exc:
            log.warning("webhook_event_lost", event_type=event_type, error=str(exc))
