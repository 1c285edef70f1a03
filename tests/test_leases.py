"""``LeaseWorker.stop`` ends the loop even when the cancel lands as a look ends (woken, or its
interval up): on Python 3.11 ``asyncio.wait_for`` swallowed such a cancel, the loop went on,
and ``stop`` (a gateway's shutdown, an in-process test's exit) waited forever."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from gateway.leases import LeaseWorker

pytestmark = pytest.mark.unit


async def stopped(worker: LeaseWorker) -> bool:
    """Whether ``stop`` returned within 2 s (it swallows a cancel of its own, so it is not
    given one)."""
    stopping = asyncio.ensure_future(worker.stop())
    done, _ = await asyncio.wait({stopping}, timeout=2.0)
    if not done:  # end the loop that would not stop, for the next test
        assert worker._task is not None
        worker._task.cancel()
    return bool(done)


class Idle(LeaseWorker):
    async def claim(self) -> list[Any]:
        return []

    async def release(self) -> None:
        return None


async def test_stop_right_after_a_wake_ends_the_loop() -> None:
    worker = Idle(interval=10.0)
    worker.start()
    await asyncio.sleep(0.01)  # the loop waits for its next look
    worker.wake()  # the wait ends in the same turn of the event loop as stop's cancel
    assert await stopped(worker)


async def test_stop_as_the_interval_runs_out_ends_the_loop() -> None:
    for step in range(30):
        worker = Idle(interval=0.005)
        worker.start()
        await asyncio.sleep(0.004 + step * 0.0001)
        assert await stopped(worker)
