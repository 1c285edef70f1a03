"""uvicorn, the default server, as the gateway runs it: a response's head leaves with its body."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx2 as httpx
import pytest

from bench.fake_upstream import FakeUpstream
from gateway.server_uvicorn import HeadWithBody
from tests.conftest import GatewayProcess, fake_config

HEAD = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n"


class Recording:
    """A transport that keeps each write as it was made."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closing = False
        self.aborted = False

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))

    def writelines(self, pieces: tuple[bytes, ...]) -> None:
        self.writes.append(b"".join(pieces))

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def abort(self) -> None:
        self.aborted = self.closing = True

    def get_extra_info(self, name: str) -> str:
        return f"extra {name}"


def _held(transport: Recording) -> HeadWithBody:
    out = HeadWithBody(transport, asyncio.get_running_loop())  # type: ignore[arg-type]
    out.hold_next = True
    return out


@pytest.mark.unit
async def test_a_head_goes_out_with_the_first_body_bytes() -> None:
    transport = Recording()
    out = _held(transport)

    out.write(HEAD)
    assert transport.writes == []
    out.write(b"hello")
    out.write(b" more")

    assert transport.writes == [HEAD + b"hello", b" more"]
    await asyncio.sleep(0)
    assert transport.writes == [HEAD + b"hello", b" more"]  # nothing left to flush


@pytest.mark.unit
async def test_a_head_with_no_body_yet_leaves_at_the_end_of_the_turn() -> None:
    transport = Recording()
    out = _held(transport)

    out.write(HEAD)  # a stream whose first chunk is not ready
    await asyncio.sleep(0)

    assert transport.writes == [HEAD]
    out.write(b"data: 1\n\n")
    assert transport.writes == [HEAD, b"data: 1\n\n"]


@pytest.mark.unit
async def test_closing_sends_a_held_head_and_aborting_drops_it() -> None:
    closed, aborted = Recording(), Recording()
    closing, aborting = _held(closed), _held(aborted)

    closing.write(HEAD)
    closing.close()
    aborting.write(HEAD)
    aborting.abort()
    await asyncio.sleep(0)

    assert closed.writes == [HEAD] and closed.closing
    assert aborted.writes == [] and aborted.aborted
    assert closing.get_extra_info("peername") == "extra peername"  # the rest is the transport's


@pytest.mark.unit
async def test_a_large_body_is_sent_beside_its_head_in_one_call() -> None:
    transport = Recording()
    out = _held(transport)
    body = b"x" * (1 << 20)

    out.write(HEAD)
    out.write(body)

    assert transport.writes == [HEAD + body]


def _write_calls(pid: int) -> int:
    """The write system calls the process (all its threads) has made."""
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        if line.startswith("syscw:"):
            return int(line.split()[1])
    raise AssertionError("no syscw in /proc/<pid>/io")


@pytest.mark.e2e
def test_a_whole_answer_costs_the_server_one_write(tmp_path: Path, upstream: FakeUpstream) -> None:
    """One to the provider, one to the caller: not a second for the caller's headers. (The
    ledger and the log, the process's other writers, are kept quiet for the count.)"""
    config = fake_config(tmp_path, upstream.url).replace(
        "ledger_flush_interval = 0.1", "ledger_flush_interval = 60"
    ).replace("[server]\n", '[server]\nlog_level = "warning"\n', 1)
    gateway = GatewayProcess(tmp_path, config).start()
    assert gateway.process is not None
    body = {"model": "fake/ok", "messages": [{"role": "user", "content": "hi"}]}
    try:
        with httpx.Client(base_url=gateway.url, headers=gateway.headers(), timeout=10) as client:
            assert client.post("/v1/chat/completions", json=body).status_code == 200
            before = _write_calls(gateway.process.pid)
            for _ in range(40):
                answer = client.post("/v1/chat/completions", json=body)
                assert answer.status_code == 200 and answer.json()["choices"]
            writes = (_write_calls(gateway.process.pid) - before) / 40
    finally:
        assert gateway.stop() == 0, gateway.logs()

    assert writes < 2.5, f"{writes:.2f} write calls a request"
