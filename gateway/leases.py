"""``LeaseWorker``: the background loop of one instance over rows that every instance shares
(the webhook outbox, video jobs), each row leased to one instance while it is worked on.

Each look ``claim``s the rows this instance may work on now (the subclass's conditional
``UPDATE`` of a lease) and works each in a task of its own; looks come every ``interval``
seconds, or at once after ``wake``. ``stop`` cancels the loop and the work under way, then
hands this instance's leases back (``release``) so another instance need not wait for them to
run out. A database outage is logged and the next look tries again.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from typing import Any

import structlog

from gateway.storage import StorageUnavailable

log = structlog.get_logger("gateway.leases")


class LeaseWorker:
    """Subclasses supply ``claim``, ``work`` and ``release`` (see the module docstring)."""

    unavailable_event = "leased_rows_unavailable"

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.owner = "inst_" + secrets.token_hex(6)
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._running: set[asyncio.Task[None]] = set()

    async def claim(self) -> list[Any]:
        """Lease the rows due now to this instance."""
        raise NotImplementedError

    async def work(self, row: Any) -> None:
        """Work on one leased row."""
        raise NotImplementedError

    async def release(self) -> None:
        """Hand back every lease of this instance."""
        raise NotImplementedError

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop())

    def wake(self) -> None:
        """Look now (a row was just added)."""
        self._wake.set()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for task in list(self._running):
            task.cancel()
        await asyncio.gather(*self._running, return_exceptions=True)
        with contextlib.suppress(StorageUnavailable):
            await self.release()

    async def _loop(self) -> None:
        while True:
            try:
                for row in await self.claim():
                    task = asyncio.create_task(self.work(row))
                    self._running.add(task)
                    task.add_done_callback(self._running.discard)
            except StorageUnavailable as exc:
                log.warning(self.unavailable_event, error=str(exc))
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for swallows a cancel that
            # lands as the wait ends (a wake, or the interval), and ``stop`` then waits forever.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.interval):
                    await self._wake.wait()
            self._wake.clear()
