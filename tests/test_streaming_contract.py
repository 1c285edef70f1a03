"""The streaming contract's slow paths: keep-alives before commit, first-token timeout after."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import httpx2 as httpx
import pytest

from bench.fake_upstream import FakeUpstream
from tests.conftest import GatewayProcess, fake_config

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def impatient(
    tmp_path_factory: pytest.TempPathFactory, upstream: FakeUpstream
) -> Iterator[GatewayProcess]:
    tmp = tmp_path_factory.mktemp("impatient")
    config = fake_config(tmp, upstream.url).replace("commit_timeout = 10.0", "commit_timeout = 0.3")
    gateway = GatewayProcess(tmp, config).start()
    yield gateway
    gateway.stop()


def test_uncommitted_stream_sends_headers_and_keepalives_then_times_out(
    impatient: GatewayProcess, fake: FakeUpstream
) -> None:
    body = {
        "model": "fake/hang",
        "stream": True,
        "messages": [{"role": "user", "content": "x"}],
    }
    started = time.monotonic()
    with httpx.stream(
        "POST",
        f"{impatient.url}/v1/chat/completions",
        json=body,
        headers=impatient.headers(),
        timeout=10,
    ) as response:
        headers_after = time.monotonic() - started
        assert response.status_code == 200
        assert response.headers["x-resolved-model"] == "fake/hang"
        lines = [line for line in response.iter_lines() if line]
    assert headers_after < 2.5  # well before the 3 s first-token timeout
    assert ": keep-alive" in lines
    error = json.loads(lines[-1].removeprefix("data: "))["error"]
    assert error["type"] == "timeout" and "first token" in error["message"]


def test_a_fast_stream_sends_no_keepalive(impatient: GatewayProcess, fake: FakeUpstream) -> None:
    body = {"model": "fake/ok", "stream": True, "messages": [{"role": "user", "content": "x"}]}
    with httpx.stream(
        "POST", f"{impatient.url}/v1/chat/completions", json=body, headers=impatient.headers()
    ) as response:
        lines = [line for line in response.iter_lines() if line]
    assert ": keep-alive" not in lines and lines[-1] == "data: [DONE]"


def test_anthropic_stream_keepalives_then_an_error_event(
    impatient: GatewayProcess, fake: FakeUpstream
) -> None:
    body = {
        "model": "fake/hang",
        "max_tokens": 50,
        "stream": True,
        "messages": [{"role": "user", "content": "x"}],
    }
    with httpx.stream(
        "POST",
        f"{impatient.url}/anthropic/v1/messages",
        json=body,
        headers={"x-api-key": impatient.key, "anthropic-version": "2023-06-01"},
        timeout=10,
    ) as response:
        assert response.status_code == 200
        lines = [line for line in response.iter_lines() if line]
    assert ": keep-alive" in lines
    assert lines[-2] == "event: error"
    error = json.loads(lines[-1].removeprefix("data: "))
    assert error["type"] == "error" and error["error"]["type"] == "timeout_error"
