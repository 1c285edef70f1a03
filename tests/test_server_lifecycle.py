"""Serving: first start prints a key, SIGTERM drains in-flight streams, several workers."""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
import subprocess
import threading
import time
from pathlib import Path

import httpx2 as httpx
import pytest

from bench.fake_upstream import FakeUpstream
from tests.conftest import GATEWAY, GatewayProcess, fake_config, free_port, launch, stop_tree

pytestmark = pytest.mark.e2e


def test_first_start_prints_a_key_that_works(tmp_path: Path, upstream: FakeUpstream) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text(fake_config(tmp_path, upstream.url))
    port = free_port()
    process = launch(
        [GATEWAY, "serve", "--config", str(config), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline() for _ in range(3)]
        key = next(line.strip() for line in lines if line.strip().startswith("gw-"))
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                httpx.get(f"http://127.0.0.1:{port}/health", timeout=0.5)
                break
            except httpx.HTTPError:
                time.sleep(0.05)
        answer = httpx.post(
            f"http://127.0.0.1:{port}/v1/chat/completions",
            headers={"Authorization": f"Bearer {key}"},
            json={"model": "echo", "messages": [{"role": "user", "content": "first start"}]},
        )
        assert answer.json()["choices"][0]["message"]["content"] == "first start"
    finally:
        assert stop_tree(process, 15) == 0
    # A second start finds the key and does not print another.
    again = launch(
        [GATEWAY, "serve", "--config", str(config), "--port", str(free_port())],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert again.stdout is not None
        first = again.stdout.readline()
        assert "listening" in first.lower()
    finally:
        stop_tree(again, 15)


def test_sigterm_lets_streams_finish_flushes_usage_and_exits_0(
    tmp_path: Path, upstream: FakeUpstream
) -> None:
    gateway = GatewayProcess(tmp_path, fake_config(tmp_path, upstream.url)).start()
    body = {
        "model": "fake/gap50",
        "stream": True,
        "messages": [{"role": "user", "content": " ".join(["w"] * 20)}],
    }
    headers = {**gateway.headers(), "x-request-id": "drain-1"}
    contents: list[str] = []
    with httpx.stream(
        "POST", f"{gateway.url}/v1/chat/completions", json=body, headers=headers
    ) as r:
        for line in r.iter_lines():
            if line.startswith("data: {"):
                delta = json.loads(line[6:])["choices"]
                if delta and delta[0]["delta"].get("content"):
                    contents.append(delta[0]["delta"]["content"])
                if len(contents) == 2:
                    assert gateway.process is not None
                    gateway.process.send_signal(signal.SIGTERM)
                    time.sleep(0.3)
                    with pytest.raises(httpx.ConnectError):
                        httpx.get(f"{gateway.url}/health", timeout=1)
            elif line == "data: [DONE]":
                contents.append("[DONE]")
    assert "".join(contents[:-1]) == "fake: " + " ".join(["w"] * 20)
    assert contents[-1] == "[DONE]"
    assert gateway.process is not None and gateway.process.wait(15) == 0
    rows = gateway.usage_rows()
    assert [row["request_id"] for row in rows] == ["drain-1"]
    assert rows[0]["status"] == 200 and rows[0]["completion_tokens"] == 21


def test_several_workers_serve_and_write_one_ledger(tmp_path: Path, upstream: FakeUpstream) -> None:
    # Rows are written only at shutdown here, so every worker must be let to flush.
    config = fake_config(tmp_path, upstream.url).replace(
        "ledger_flush_interval = 0.1", "ledger_flush_interval = 600"
    )
    gateway = GatewayProcess(tmp_path, config).start(workers=2)
    try:
        # One connection, so one worker holds every row while the other has none to flush.
        with httpx.Client() as http:
            for index in range(8):
                answer = http.post(
                    f"{gateway.url}/v1/chat/completions",
                    headers={**gateway.headers(), "x-request-id": f"w-{index}"},
                    json={"model": "echo", "messages": [{"role": "user", "content": f"n{index}"}]},
                )
                assert answer.json()["choices"][0]["message"]["content"] == f"n{index}"
    finally:
        assert gateway.stop() == 0
    assert sorted(row["request_id"] for row in gateway.usage_rows()) == [f"w-{i}" for i in range(8)]


async def test_two_workers_writing_one_sqlite_file_under_load_lose_no_row(
    tmp_path: Path, upstream: FakeUpstream
) -> None:
    # Both workers flush small batches often, so their writes collide on the file's lock.
    config = fake_config(tmp_path, upstream.url).replace(
        "ledger_flush_interval = 0.1", "ledger_flush_interval = 0.01\nledger_batch_size = 5"
    )
    gateway = GatewayProcess(tmp_path, config).start(workers=2)
    body = {"model": "echo", "messages": [{"role": "user", "content": "x"}]}
    # A third writer commits all the time (as a CLI or another process would), so a worker's
    # snapshot goes stale between its read and its write.
    stop = threading.Event()

    def keep_committing() -> None:
        with sqlite3.connect(tmp_path / "gateway.db", timeout=30) as db:
            while not stop.is_set():
                db.execute("UPDATE api_keys SET name = name")
                db.commit()

    writer = threading.Thread(target=keep_committing, daemon=True)
    writer.start()
    try:
        limits = httpx.Limits(max_connections=64, max_keepalive_connections=0)
        async with httpx.AsyncClient(limits=limits, timeout=30) as http:

            async def one(index: int) -> int:
                headers = {**gateway.headers(), "x-request-id": f"load-{index}"}
                answer = await http.post(
                    f"{gateway.url}/v1/chat/completions", json=body, headers=headers
                )
                return answer.status_code

            statuses = await asyncio.gather(*(one(i) for i in range(1500)))
        assert statuses.count(200) == 1500
    finally:
        stop.set()
        writer.join(5)
        assert gateway.stop() == 0
    assert len(gateway.usage_rows()) == 1500
    assert "ledger_rows_unwritten" not in gateway.logs()
