"""Spending reaches the database in batches: ``DebitWriter`` writes what requests queued.

The request path only reserves and records spending in memory (``gateway.balances``); every
``interval`` seconds the writer takes the pending debits, writes them in one statement, and
moves them into the cached balances. It also refreshes the maintenance switch once per cache TTL.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import structlog

from gateway.accounts.maintenance import refresh_maintenance
from gateway.accounts.userstate import AccountCache
from gateway.storage import StorageUnavailable

log = structlog.get_logger("gateway.accounts")


class DebitWriter:
    """Writes queued spending to the users' balances in batches, and refreshes maintenance."""

    def __init__(self, cache: AccountCache, interval: float = 0.5) -> None:
        self.cache = cache
        self.interval = interval
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="debit-writer")

    async def _run(self) -> None:
        last_settings = 0.0
        while not self._closing:
            await asyncio.sleep(self.interval)
            await self.flush()
            if time.monotonic() - last_settings >= self.cache.ttl:
                last_settings = time.monotonic()
                with contextlib.suppress(StorageUnavailable):
                    await refresh_maintenance(self.cache)

    async def flush(self) -> None:
        balances = self.cache.balances
        debits = balances.take_pending()
        if not debits:
            balances.write_ended()  # nothing to write: no write under way any more
            return
        try:
            await self.cache.store.debit_many(debits)
        except BaseException as exc:
            balances.write_ended()
            if isinstance(exc, StorageUnavailable):
                log.warning("debit_write_ended", error=str(exc), users=len(debits))
                return
            raise
        self.cache.written(debits)

    async def close(self) -> None:
        self._closing = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.flush()
