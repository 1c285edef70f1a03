"""The request log line: ``FastInfo`` writes the bytes structlog's chain would, or defers to it."""

from __future__ import annotations

import asyncio
import io
import re
import sys
from collections.abc import Iterator
from typing import Any

import pytest
import structlog
from structlog.testing import capture_logs

from gateway import logs

pytestmark = pytest.mark.unit

FIELDS: dict[str, Any] = {
    "request_id": "req_1", "operation": "chat", "status": 200, "error_type": None,
    "key_id": "key_1", "model": "m", "served": "p/m", "router": None, "stream": False,
    "prompt_tokens": 12, "completion_tokens": 16, "cached_tokens": 0,
    "cost_usd": round(1.14e-05, 8), "latency_ms": 8.97, "ttft_ms": None, "attempts": 1,
}


class _Stdout:
    def __init__(self) -> None:
        self.buffer = io.BytesIO()


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """Each test configures logging into a buffer; the next tests get back what was there."""
    before, configured = structlog.get_config(), list(logs._configured)
    yield
    structlog.configure(**before)
    logs._configured[:] = configured


def _configure(monkeypatch: pytest.MonkeyPatch, level: str = "info") -> io.BytesIO:
    out = _Stdout()
    monkeypatch.setattr(sys, "stdout", out)
    logs.configure_logging(level)
    monkeypatch.setattr(sys, "stdout", sys.__stdout__)
    return out.buffer


def _lines(buffer: io.BytesIO) -> list[bytes]:
    logs._configured[0].factory.writer.flush()
    stamp = re.compile(rb'"timestamp":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z"')
    return [stamp.sub(b'"timestamp":"T"', line) for line in buffer.getvalue().splitlines()]


async def test_the_request_line_is_structlogs_byte_for_byte(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    buffer = _configure(monkeypatch)
    structlog.get_logger("plain").info("request", **FIELDS)
    logs.FastInfo(structlog.get_logger("fast")).info("request", **FIELDS)
    plain, fast = _lines(buffer)
    assert fast == plain
    assert fast.startswith(b'{"request_id":"req_1","operation":"chat"')
    assert fast.endswith(b'"attempts":1,"event":"request","level":"info","timestamp":"T"}')
    await asyncio.sleep(0)


def test_the_request_line_defers_to_structlog_otherwise(monkeypatch: pytest.MonkeyPatch) -> None:
    buffer = _configure(monkeypatch)
    fast = logs.FastInfo(structlog.get_logger("fast"))
    with capture_logs() as captured:
        fast.info("request", **FIELDS)
    assert captured == [{**FIELDS, "event": "request", "log_level": "info"}]
    assert _lines(buffer) == []
    quiet = _configure(monkeypatch, "warning")
    fast.info("request", **FIELDS)
    assert _lines(quiet) == []


async def test_info_and_warnings_wait_for_company_errors_go_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    buffer = _configure(monkeypatch)
    log = structlog.get_logger("when")
    log.info("batched")
    log.warning("warned")
    await asyncio.sleep(0)
    assert buffer.getvalue() == b""  # up to FLUSH_DELAY, for company
    log.error("at_once")  # with what was waiting, in order
    written = buffer.getvalue()
    assert written.index(b'"event":"batched"') < written.index(b'"event":"warned"') \
        < written.index(b'"event":"at_once"')
    log.warning("later")
    await asyncio.sleep(0)
    assert b'"event":"later"' not in buffer.getvalue()
    await asyncio.sleep(logs.FLUSH_DELAY * 2)
    assert b'"event":"later"' in buffer.getvalue()


def test_a_line_left_by_a_finished_loop_is_written_by_the_next(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    buffer = _configure(monkeypatch)
    log = structlog.get_logger("loops")

    async def log_and_leave() -> None:
        log.warning("first")  # its flush was due on this loop, which ends first

    async def log_and_wait() -> None:
        log.info("second")
        await asyncio.sleep(logs.FLUSH_DELAY * 2)

    asyncio.run(log_and_leave())
    assert buffer.getvalue() == b""
    asyncio.run(log_and_wait())
    assert b'"event":"first"' in buffer.getvalue() and b'"event":"second"' in buffer.getvalue()
    log.warning("outside")  # no loop running: at once
    assert b'"event":"outside"' in buffer.getvalue()


async def test_a_warning_is_structlogs_byte_for_byte(monkeypatch: pytest.MonkeyPatch) -> None:
    buffer = _configure(monkeypatch)
    fields = {"request_id": "req_1", "target": "p/m", "status": 500, "error": "boom"}
    structlog.get_logger("plain").warning("upstream_failed", **fields)
    logs.FastInfo(structlog.get_logger("fast")).warning("upstream_failed", **dict(fields))
    plain, fast = _lines(buffer)
    assert fast == plain
    assert fast.endswith(b'"event":"upstream_failed","level":"warning","timestamp":"T"}')
    quiet = _configure(monkeypatch, "error")
    logs.FastInfo(structlog.get_logger("fast")).warning("upstream_failed", **dict(fields))
    assert _lines(quiet) == []
