"""The response store's writer, reader and purger (``ResponseKeeper``).

Writes are group commits: ``keep`` queues a response and waits until the batch holding it is
committed. The pipeline calls it before it releases the answer's end (a whole body, or a
stream's final event), so a ``previous_response_id`` sent as soon as the caller has the answer
finds it on any instance or worker; under load one transaction carries every response that
finished while the previous one was being written, so the database sees batches as it does for
the ledger. On a SQLite file a response with none queued before it is written at once on the
event loop's thread when the file's write lock is free (``gateway.storage.inline``: no trip to
aiosqlite's thread), and queued as above when it is not. The wait is bounded (``WAIT``): a slow
or failed write never withholds an answer; that response is then not kept (logged), and a later
``previous_response_id`` naming it gets a 404.

Rows older than ``[responses] retention_days`` are deleted every ``purge_interval`` seconds
by a background task, never on the request path.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

import structlog

from gateway.accounts.keys import Principal
from gateway.config import ResponsesConfig
from gateway.storage import Database, StorageUnavailable
from gateway.storage.records import StoredResponse
from gateway.storage.responses import ResponseRows

log = structlog.get_logger("gateway.responses")

WAIT = 5.0  # seconds an answer's end waits for its response to be written
MAX_ID = 512  # the gateway's ids are ~40 characters; an upstream's are as short
_Pending = tuple[StoredResponse, "asyncio.Future[bool]"]


def owner_of(principal: Principal) -> str:
    """Whose responses a caller sees: its account's, or its own key's if it has no account."""
    return principal.user or f"key:{principal.key_id}"


class ResponseKeeper:
    """Built before the store is open (``db`` is a callable); ``start`` starts the writer and
    the purge loop, ``stop`` writes what is queued and ends them."""

    def __init__(self, config: ResponsesConfig, db: Callable[[], Database]) -> None:
        self.config = config
        self._db = db
        self._rows: ResponseRows | None = None
        self._pending: list[_Pending] = []
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._closing = False
        self._writing = False  # a batch is on its way to the database

    @property
    def rows(self) -> ResponseRows:
        if self._rows is None:
            self._rows = ResponseRows(self._db())
        return self._rows

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._write_loop(), name="responses-writer"),
                       asyncio.create_task(self._purge_loop(), name="responses-purge")]

    async def stop(self) -> None:
        self._closing = True
        self._wake.set()
        for task in self._tasks:
            if task.get_name() == "responses-purge":
                task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._write(self._take())

    async def keep(self, row: StoredResponse) -> bool:
        """Queue ``row`` and wait (at most ``WAIT``) for it to be written; False if it was not
        (the database refused, or was too slow: the write may still land).

        On a SQLite file with nothing queued before it, the row is written at once on this
        thread when the write lock is free (``ResponseRows.save_now``): no trip to aiosqlite's
        thread. Never ahead of a queued row: a later answer under the same id must win."""
        if not self._pending and not self._writing and self.rows.save_now(row):
            return True
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._pending.append((row, future))
        self._wake.set()
        try:
            async with asyncio.timeout(WAIT):  # a cancelled wait leaves the row queued
                return await future
        except TimeoutError:
            log.warning("response_store_slow", response_id=row.id, waited=WAIT)
            return False

    async def find(self, owner: str, response_id: str) -> StoredResponse | None:
        """The owner's stored response, or None (unknown, another's, or purged). An id no
        response can have (control characters, which PostgreSQL refuses in text, or over
        ``MAX_ID`` characters) is not looked for."""
        if len(response_id) > MAX_ID or not response_id.isprintable():
            return None
        row = await self.rows.find(owner, response_id)
        cutoff = time.time() - self.config.retention_days * 86400
        return row if row is not None and row.created_at >= cutoff else None

    async def delete(self, owner: str, response_id: str) -> bool:
        return await self.rows.delete(owner, response_id)

    async def purge(self, now: float | None = None) -> int:
        """Delete the responses older than the retention; how many went."""
        cutoff = (now or time.time()) - self.config.retention_days * 86400
        return await self.rows.purge(cutoff)

    def _take(self) -> list[_Pending]:
        batch, self._pending = self._pending, []
        return batch

    async def _write_loop(self) -> None:
        while not self._closing:
            await self._wake.wait()
            self._wake.clear()
            await self._write(self._take())

    async def _write(self, batch: list[_Pending]) -> None:
        if not batch:
            return
        written = True
        self._writing = True
        try:
            await self.rows.save([row for row, _ in batch])
        except Exception as exc:  # the writer must outlive any failure, or answers would wait
            written = False
            log.warning("responses_not_stored", count=len(batch), error=str(exc),
                        storage=isinstance(exc, StorageUnavailable))
        finally:
            self._writing = False
        for _, future in batch:
            if not future.done():
                future.set_result(written)

    async def _purge_loop(self) -> None:
        while True:
            with contextlib.suppress(StorageUnavailable):
                purged = await self.purge()
                if purged:
                    log.info("responses_purged", count=purged)
            await asyncio.sleep(self.config.purge_interval)
