"""The gateway end to end through the official OpenAI SDK, against the mock and a fake upstream."""

from __future__ import annotations

import openai

from tests.conftest import GatewayProcess
from tests.fakes import FakeUpstream


def client(gateway: GatewayProcess) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=gateway.key, max_retries=0)


def test_mock_echo_completion(gateway: GatewayProcess) -> None:
    answer = client(gateway).chat.completions.create(
        model="echo", messages=[{"role": "user", "content": "hello gateway"}]
    )
    assert answer.choices[0].message.content == "hello gateway"
    assert answer.model == "mock/echo"


def test_fake_upstream_stream(gateway: GatewayProcess, fake: FakeUpstream) -> None:
    stream = client(gateway).chat.completions.create(
        model="fake/ok", messages=[{"role": "user", "content": "one two"}], stream=True
    )
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert text == "fake: one two"
    assert fake.bodies()[0]["stream_options"] == {"include_usage": True}
