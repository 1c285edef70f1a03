"""The response store's write on the event loop's thread (``gateway.storage.inline``): made at
once when SQLite's write lock is free, the long way (aiosqlite's thread, waiting its turn) when
another writer holds it, and never for a database in memory; no row is lost either way."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.config import ResponsesConfig
from gateway.responses.keeper import ResponseKeeper
from gateway.storage import Store, open_store
from gateway.storage.records import StoredResponse

pytestmark = pytest.mark.unit


def response(response_id: str) -> StoredResponse:
    return StoredResponse(owner="a@example.com", id=response_id, created_at=time.time(),
                          response=json.dumps({"id": response_id, "status": "completed"}),
                          input_items="[]", key_id="key_1", model="m", status="completed")


def stored_ids(path: Path) -> set[str]:
    with contextlib.closing(sqlite3.connect(path)) as db:
        return {row[0] for row in db.execute("SELECT id FROM stored_responses")}


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await open_store(f"sqlite:///{tmp_path}/gateway.db")
    yield opened
    await opened.close()


async def test_a_free_write_lock_means_the_row_is_written_before_keep_returns(
    store: Store, tmp_path: Path,
) -> None:
    keeper = ResponseKeeper(ResponsesConfig(), lambda: store.db)  # no writer task started
    assert await asyncio.wait_for(keeper.keep(response("resp_1")), timeout=1) is True
    assert stored_ids(tmp_path / "gateway.db") == {"resp_1"}
    assert (await keeper.find("a@example.com", "resp_1")) is not None


async def test_a_held_write_lock_sends_the_row_the_long_way_and_it_lands(
    store: Store, tmp_path: Path,
) -> None:
    keeper = ResponseKeeper(ResponsesConfig(), lambda: store.db)
    keeper.start()
    other = sqlite3.connect(tmp_path / "gateway.db", isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")  # another process's writer, mid-transaction
        kept = asyncio.create_task(keeper.keep(response("resp_2")))
        await asyncio.sleep(0.3)
        assert not kept.done()  # waiting its turn, not failed and not written
        other.execute("COMMIT")
        assert await asyncio.wait_for(kept, timeout=5) is True
    finally:
        other.close()
        await keeper.stop()
    assert stored_ids(tmp_path / "gateway.db") == {"resp_2"}
    # and the next one, the lock free again, is written at once
    assert await asyncio.wait_for(keeper.keep(response("resp_3")), timeout=1) is True
    assert stored_ids(tmp_path / "gateway.db") == {"resp_2", "resp_3"}


async def test_a_database_in_memory_is_never_written_inline() -> None:
    store = await open_store("sqlite://")
    try:
        assert store.db.inline is None
        keeper = ResponseKeeper(ResponsesConfig(), lambda: store.db)
        keeper.start()
        assert await keeper.keep(response("resp_4")) is True
        assert (await keeper.find("a@example.com", "resp_4")) is not None
        await keeper.stop()
    finally:
        await store.close()
