"""The benchmark's fake upstream speaks both dialects well enough for the official SDKs."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator

import anthropic
import httpx2 as httpx
import openai
import pytest

from tests.conftest import ROOT, free_port

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def fake_url() -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.fake_upstream", "--port", str(port)],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                httpx.get(url + "/health", timeout=0.5)
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, "fake upstream did not start"
                time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        process.wait(5)


def test_openai_dialect_complete_and_stream(fake_url: str) -> None:
    client = openai.OpenAI(base_url=fake_url + "/v1", api_key="x", max_retries=0)
    messages: list[openai.types.chat.ChatCompletionMessageParam] = [
        {"role": "user", "content": "hi"}
    ]
    answer = client.chat.completions.create(model="bench-tok3", messages=messages)
    assert answer.choices[0].message.content == "tok tok tok "
    assert answer.usage is not None and answer.usage.completion_tokens == 3
    chunks = list(
        client.chat.completions.create(
            model="bench-tok5-gap20", messages=messages, stream=True,
            stream_options={"include_usage": True},
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "tok " * 5
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 5
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model="bench-error429", messages=messages)


def test_anthropic_dialect_complete_and_stream(fake_url: str) -> None:
    client = anthropic.Anthropic(base_url=fake_url, api_key="x", max_retries=0)
    messages: list[anthropic.types.MessageParam] = [{"role": "user", "content": "hi"}]
    answer = client.messages.create(model="bench-tok2", max_tokens=10, messages=messages)
    assert answer.content[0].type == "text" and answer.content[0].text == "tok tok "
    with client.messages.stream(model="bench-tok4", max_tokens=10, messages=messages) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "tok " * 4
    assert final.usage.output_tokens == 4 and final.stop_reason == "end_turn"


def _serve_bare(fake_url: str, fallbacks: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", "bench.bare_proxy:create_app",
         "--port", str(port), "--log-level", "warning"],
        env={**os.environ, "PYTHONPATH": str(ROOT), "BARE_UPSTREAM": fake_url,
             "BARE_FALLBACKS": fallbacks},
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 10
    while True:
        try:
            httpx.get(url + "/health", timeout=0.5)
            return process, url
        except httpx.HTTPError:
            assert time.monotonic() < deadline, "bare pass-through did not start"
            time.sleep(0.05)


def test_the_bare_pass_through_falls_back_only_where_told(fake_url: str) -> None:
    body = {"model": "bench-error500-tok4", "messages": [{"role": "user", "content": "hi"}]}
    told, told_url = _serve_bare(fake_url, "bench-error500-tok4=bench-tok4")
    untold, untold_url = _serve_bare(fake_url, "")
    try:
        answer = httpx.post(told_url + "/v1/chat/completions", json=body, timeout=5)
        failed = httpx.post(untold_url + "/v1/chat/completions", json=body, timeout=5)
    finally:
        for process in (told, untold):
            process.terminate()
            process.wait(5)

    assert answer.status_code == 200
    assert answer.json()["choices"][0]["message"]["content"] == "tok " * 4
    assert failed.status_code == 500
