"""The usage ledger: one row per request, queued on the request path and written in batches.

``record`` only appends to a list. A background task writes the rows every
``flush_interval`` seconds, or as soon as ``batch_size`` are waiting. If the database refuses,
the rows stay queued (up to ``max_buffered``; the oldest are dropped past that, and counted) and
the writer retries with backoff. ``close`` writes everything still queued: nothing is lost on a
graceful shutdown. A batch and its keys' ``last_used_at`` are one transaction
(``Store.insert_usage``); each row keeps the id it got at its first attempt, so a batch written
again after a lost commit acknowledgement is kept once.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
import uuid
from collections.abc import Coroutine
from typing import Any

import structlog

from gateway.storage import StorageUnavailable, Store, UsageRow

log = structlog.get_logger("gateway.ledger")

__all__ = ["Ledger", "UsageRow"]


class Ledger:
    """Batches usage rows to the store off the request path."""

    def __init__(
        self,
        store: Store,
        batch_size: int = 1000,
        flush_interval: float = 0.5,
        max_buffered: int = 200_000,
    ) -> None:
        self.store = store
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.max_buffered = max_buffered
        self.written = 0
        self.dropped = 0
        self._rows: list[UsageRow] = []
        self._deferred: set[asyncio.Task[None]] = set()
        self._id_prefix = uuid.uuid4().hex[:16] + "-"
        self._next_id = itertools.count(1)
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="ledger-writer")

    def record(self, row: UsageRow) -> None:
        self._rows.append(row)
        if len(self._rows) >= self.batch_size:
            self._wake.set()

    @property
    def pending(self) -> int:
        return len(self._rows)

    async def _run(self) -> None:
        backoff = self.flush_interval
        while not self._closing:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=backoff)
            self._wake.clear()
            try:
                written = await self.flush()
            except Exception:  # the writer must outlive any surprise, or rows pile up unseen
                log.exception("ledger_flush_crashed", queued=len(self._rows))
                written = False
            backoff = self.flush_interval if written else min(backoff * 2, 10.0)

    async def flush(self) -> bool:
        """Write what is queued; False if the store refused (the rows stay queued)."""
        while self._rows:
            batch = self._rows[: self.batch_size * 5]
            for row in batch:
                if row.row_id is None:
                    row.row_id = f"{self._id_prefix}{next(self._next_id)}"
            last_used: dict[str, float] = {}
            for row in batch:
                if row.key_id:
                    last_used[row.key_id] = max(row.created_at, last_used.get(row.key_id, 0.0))
            try:
                await self.store.insert_usage(batch, last_used)
            except StorageUnavailable as exc:
                self._trim()
                log.warning("ledger_write_failed", error=str(exc), queued=len(self._rows))
                return False
            # Written: dequeue before anything else can fail, or a retry would write them twice.
            del self._rows[: len(batch)]
            self.written += len(batch)
        return True

    def _trim(self) -> None:
        excess = len(self._rows) - self.max_buffered
        if excess > 0:
            del self._rows[:excess]
            self.dropped += excess
            log.error("ledger_rows_dropped", dropped=excess, total_dropped=self.dropped)

    def defer(self, settle: Coroutine[Any, Any, None]) -> None:
        """Run a settlement that must wait (for the tokenizer) before its row is recorded;
        ``close`` waits for those still running."""
        task = asyncio.ensure_future(settle)
        self._deferred.add(task)
        task.add_done_callback(self._deferred.discard)

    async def close(self, timeout: float = 30.0) -> None:
        """Stop the writer and write everything still queued (retrying until ``timeout``)."""
        if self._deferred:
            await asyncio.wait(set(self._deferred), timeout=timeout)
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
        deadline = time.monotonic() + timeout
        while not await self.flush() and time.monotonic() < deadline:
            await asyncio.sleep(0.5)
        if self._rows:
            log.error("ledger_rows_unwritten", rows=len(self._rows))
