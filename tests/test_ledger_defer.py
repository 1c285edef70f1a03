"""A settlement deferred until the tokenizer has loaded still lands in the ledger, even when
the gateway shuts down meanwhile: ``Ledger.close`` waits for it."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence

import pytest

from gateway.ledger import Ledger, UsageRow

pytestmark = pytest.mark.unit


class RowsStore:
    def __init__(self) -> None:
        self.rows: list[UsageRow] = []

    async def insert_usage(
        self, rows: Sequence[UsageRow], last_used: Mapping[str, float] | None = None
    ) -> None:
        self.rows.extend(rows)


async def test_close_waits_for_a_deferred_settlement() -> None:
    store = RowsStore()
    ledger = Ledger(store, flush_interval=0.01)  # type: ignore[arg-type]
    ledger.start()
    loaded = asyncio.Event()

    async def settle() -> None:
        await loaded.wait()  # the tokenizer loading in its thread
        ledger.record(UsageRow(request_id="req_late", created_at=1.0, completion_tokens=7))

    ledger.defer(settle())
    closing = asyncio.ensure_future(ledger.close())
    await asyncio.sleep(0.05)
    assert not closing.done() and store.rows == []
    loaded.set()
    await asyncio.wait_for(closing, 5)
    assert [(row.request_id, row.completion_tokens) for row in store.rows] == [("req_late", 7)]


class SlowStore(RowsStore):
    """A store whose writes take a while, recording each batch's size."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[int] = []

    async def insert_usage(
        self, rows: Sequence[UsageRow], last_used: Mapping[str, float] | None = None
    ) -> None:
        await asyncio.sleep(0.02)
        self.batches.append(len(rows))
        await super().insert_usage(rows, last_used)


async def test_rows_recorded_during_a_write_wait_for_the_next_batch() -> None:
    """A steady trickle of requests is written in batches, not a transaction every few rows:
    rows recorded while a batch is written wait for the next flush; ``close`` writes them."""
    store = SlowStore()
    ledger = Ledger(store, flush_interval=10)  # type: ignore[arg-type]
    ledger.start()
    ledger.record(UsageRow(request_id="first", created_at=1.0))
    flushing = asyncio.ensure_future(ledger.flush())
    await asyncio.sleep(0.005)
    ledger.record(UsageRow(request_id="second", created_at=2.0))
    assert await flushing
    assert store.batches == [1] and ledger.pending == 1
    await ledger.close()
    assert [row.request_id for row in store.rows] == ["first", "second"]
