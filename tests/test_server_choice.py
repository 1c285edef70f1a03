"""``gateway serve --server uvicorn|granian``: same API, same graceful drain and ledger flush."""

from __future__ import annotations

import signal
import threading
from pathlib import Path

import openai
import pytest

from bench.fake_upstream import FakeUpstream
from tests.conftest import GatewayProcess, fake_config

pytestmark = pytest.mark.e2e


def serve_with(tmp: Path, upstream: FakeUpstream, server: str) -> GatewayProcess:
    process = GatewayProcess(tmp, fake_config(tmp, upstream.url))
    process.key = process.create_key("--name", "servers", "--user", "servers@example.com")
    return process.start(server=server)


@pytest.mark.parametrize("server", ["uvicorn", "granian"])
def test_other_server_serves_drains_and_flushes_ledger(
    tmp_path: Path, upstream: FakeUpstream, server: str
) -> None:
    pytest.importorskip(server)
    gateway = serve_with(tmp_path, upstream, server)
    client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=gateway.key, max_retries=0)
    try:
        answer = client.chat.completions.create(
            model="fake/ok", messages=[{"role": "user", "content": "hi there"}]
        )
        assert answer.choices[0].message.content == "fake: hi there"
        # A stream still running when SIGTERM arrives is finished, not cut.
        words = " ".join(f"w{i}" for i in range(8))
        stream = client.chat.completions.create(
            model="fake/gap50", messages=[{"role": "user", "content": words}], stream=True
        )
        first = next(iter(stream))
        assert gateway.process is not None
        threading.Timer(0.1, gateway.process.send_signal, (signal.SIGTERM,)).start()
        text = (first.choices[0].delta.content or "") + "".join(
            chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices
        )
        assert text == f"fake: {words}"
    finally:
        code = gateway.stop()
    assert code == 0, gateway.logs()
    rows = gateway.usage_rows()
    assert [(row["model_requested"], row["status"]) for row in rows] == [
        ("fake/ok", 200),
        ("fake/gap50", 200),
    ]
