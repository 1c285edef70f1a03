"""The OpenAI endpoint end to end: the real server, the official SDK, a fake upstream over HTTP."""

from __future__ import annotations

import json
import time

import httpx2 as httpx
import openai
import pytest

from bench.fake_upstream import FakeUpstream
from tests.conftest import GatewayProcess

pytestmark = pytest.mark.e2e


def client(gateway: GatewayProcess, key: str | None = None) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=key or gateway.key, max_retries=0)


def async_client(gateway: GatewayProcess) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{gateway.url}/v1", api_key=gateway.key, max_retries=0)


def row_for(gateway: GatewayProcess, request_id: str, timeout: float = 3.0) -> dict[str, object]:
    return gateway.usage_row(request_id, timeout)


# --- the mock, with no provider key ---


def test_mock_echo_answers_the_last_user_message(gateway: GatewayProcess) -> None:
    answer = client(gateway).chat.completions.create(
        model="echo", messages=[{"role": "user", "content": "hello gateway"}]
    )
    assert answer.choices[0].message.content == "hello gateway"
    assert answer.model == "mock/echo"
    assert answer.usage is not None and answer.usage.completion_tokens == 2


def test_mock_streams_max_tokens_words(gateway: GatewayProcess) -> None:
    stream = client(gateway).chat.completions.create(
        model="mock/lorem",
        messages=[{"role": "user", "content": "hi"}],
        max_tokens=7,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert len(text.split()) == 7
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 7


# --- pass-through to an OpenAI-compatible upstream ---


def test_every_field_reaches_the_upstream_unchanged(
    gateway: GatewayProcess, fake: FakeUpstream
) -> None:
    body = {
        "model": "fake/ok",
        "messages": [
            {"role": "system", "content": "be brief"},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "what is this?"},
                    {
                        "type": "image_url",
                        "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "low"},
                    },
                    {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}},
                ],
            },
        ],
        "tools": [
            {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
        ],
        "tool_choice": {"type": "function", "function": {"name": "f"}},
        "parallel_tool_calls": False,
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "x", "schema": {"type": "object"}},
        },
        "reasoning_effort": "low",
        "max_completion_tokens": 99,
        "n": 1,
        "seed": 7,
        "logprobs": True,
        "top_logprobs": 2,
        "stop": ["END"],
        "temperature": 0.2,
        "metadata": {"trace": "abc"},
        "a_field_from_the_future": {"nested": [1, 2, 3]},
    }
    response = httpx.post(
        f"{gateway.url}/v1/chat/completions", json=body, headers=gateway.headers()
    )
    assert response.status_code == 200, response.text
    sent = fake.bodies()[0]
    assert sent == {**body, "model": "ok"}


# What a decode and re-encode would change: a \u escape, trailing zeros, spaces inside a value.
_AS_WRITTEN = (
    b'"messages":[{"role":"user","content":"caf\\u00e9 costs 1.10"}]',
    b'"a_field_from_the_future":{"ratio": 1.10, "note":"\\u00e9"}',
    b'"temperature":0.70',
)


def test_nested_values_reach_the_provider_byte_for_byte(
    gateway: GatewayProcess, fake: FakeUpstream
) -> None:
    body = b'{"model":"fake/ok",' + b",".join(_AS_WRITTEN) + b"}"
    response = httpx.post(f"{gateway.url}/v1/chat/completions", content=body,
                          headers={**gateway.headers(), "content-type": "application/json"})
    assert response.status_code == 200, response.text
    [sent] = fake.requests
    assert sent.body["model"] == "ok"
    for member in _AS_WRITTEN:
        assert member in sent.raw


def test_each_fallback_of_a_callers_chain_gets_the_body_as_written(
    gateway: GatewayProcess, fake: FakeUpstream
) -> None:
    chain = b'"models":["fake/error500-as-written","fake/ok"],"route":"fallback"'
    body = b'{"model":"fake/error500-as-written",' + b",".join((*_AS_WRITTEN, chain)) + b"}"
    response = httpx.post(f"{gateway.url}/v1/chat/completions", content=body,
                          headers={**gateway.headers(), "content-type": "application/json"})
    assert response.status_code == 200, response.text
    assert [r.body["model"] for r in fake.requests] == ["error500-as-written", "ok"]
    for sent in fake.requests:
        assert "models" not in sent.body and "route" not in sent.body
        for member in _AS_WRITTEN:
            assert member in sent.raw


def test_a_callers_stream_options_are_kept_with_usage_asked_upstream(
    gateway: GatewayProcess, fake: FakeUpstream
) -> None:
    body = {"model": "fake/ok", "stream": True, "messages": [{"role": "user", "content": "a"}],
            "stream_options": {"include_usage": False, "include_obfuscation": False}}
    with httpx.stream("POST", f"{gateway.url}/v1/chat/completions", json=body,
                      headers=gateway.headers()) as response:
        assert response.status_code == 200
        text = b"".join(response.iter_bytes())
    assert b'"usage"' not in text  # not asked for: the upstream's usage is not forwarded
    options = fake.bodies()[0]["stream_options"]
    assert options == {"include_usage": True, "include_obfuscation": False}


def test_stream_usage_is_requested_upstream_but_forwarded_only_when_asked(
    gateway: GatewayProcess, fake: FakeUpstream
) -> None:
    sdk = client(gateway)
    messages = [{"role": "user", "content": "a b c"}]
    plain = list(sdk.chat.completions.create(model="fake/ok", messages=messages, stream=True))
    assert all(chunk.usage is None for chunk in plain)
    assert fake.bodies()[0]["stream_options"] == {"include_usage": True}

    with_usage = list(
        sdk.chat.completions.create(
            model="fake/ok", messages=messages, stream=True, stream_options={"include_usage": True}
        )
    )
    usage = with_usage[-1].usage
    assert usage is not None and usage.prompt_tokens == 10
    assert (
        usage.prompt_tokens_details is not None and usage.prompt_tokens_details.cached_tokens == 4
    )


def test_served_model_replaces_the_upstream_name(
    gateway: GatewayProcess, fake: FakeUpstream
) -> None:
    sdk = client(gateway)
    answer = sdk.chat.completions.create(
        model="fake-ok", messages=[{"role": "user", "content": "x"}]
    )
    assert answer.model == "fake/ok"
    chunks = list(
        sdk.chat.completions.create(
            model="fake-ok", messages=[{"role": "user", "content": "x"}], stream=True
        )
    )
    assert {chunk.model for chunk in chunks} == {"fake/ok"}


def test_streamed_parallel_tool_calls_assemble(gateway: GatewayProcess, fake: FakeUpstream) -> None:
    stream = client(gateway).chat.completions.create(
        model="fake/tools", messages=[{"role": "user", "content": "weather and time"}], stream=True
    )
    calls: dict[int, dict[str, str]] = {}
    finish = None
    for chunk in stream:
        for choice in chunk.choices:
            finish = choice.finish_reason or finish
            for call in choice.delta.tool_calls or []:
                entry = calls.setdefault(call.index, {"name": "", "arguments": ""})
                if call.function and call.function.name:
                    entry["name"] = call.function.name
                if call.function and call.function.arguments:
                    entry["arguments"] += call.function.arguments
    assert finish == "tool_calls"
    assert calls[0]["name"] == "get_weather" and json.loads(calls[0]["arguments"]) == {
        "city": "Paris"
    }
    assert calls[1]["name"] == "get_time" and json.loads(calls[1]["arguments"]) == {"tz": "CET"}


def test_a_200_kb_delta_passes(gateway: GatewayProcess, fake: FakeUpstream) -> None:
    stream = client(gateway).chat.completions.create(
        model="fake/big", messages=[{"role": "user", "content": "x"}], stream=True
    )
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert text == "x" * 200_000


async def test_async_client_streams(gateway: GatewayProcess, fake: FakeUpstream) -> None:
    sdk = async_client(gateway)
    stream = await sdk.chat.completions.create(
        model="fake/ok", messages=[{"role": "user", "content": "async works"}], stream=True
    )
    text = "".join(
        [chunk.choices[0].delta.content or "" async for chunk in stream if chunk.choices]
    )
    assert text == "fake: async works"
    answer = await sdk.chat.completions.create(
        model="fake/ok", messages=[{"role": "user", "content": "and plain"}]
    )
    assert answer.choices[0].message.content == "fake: and plain"


def test_sse_headers_tell_nginx_not_to_buffer(gateway: GatewayProcess, fake: FakeUpstream) -> None:
    body = {"model": "fake/ok", "stream": True, "messages": [{"role": "user", "content": "x"}]}
    with httpx.stream(
        "POST", f"{gateway.url}/v1/chat/completions", json=body, headers=gateway.headers()
    ) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        assert r.headers["x-accel-buffering"] == "no"
        assert r.headers["cache-control"] == "no-cache"
        assert r.headers["x-resolved-model"] == "fake/ok"
        lines = [line for line in r.iter_lines() if line]
    assert lines[-1] == "data: [DONE]"


def test_whole_answers_and_errors_say_their_length(
    gateway: GatewayProcess, fake: FakeUpstream
) -> None:
    """Sized, as every other JSON answer of the gateway, not sent as chunks."""
    url = f"{gateway.url}/v1/chat/completions"
    ok = httpx.post(url, headers=gateway.headers(), timeout=10,
                    json={"model": "fake/ok", "messages": [{"role": "user", "content": "x"}]})
    refused = httpx.post(url, headers=gateway.headers(), timeout=10,
                         json={"model": "fake/ok", "messages": []})

    assert (ok.status_code, refused.status_code) == (200, 400)
    for answer in (ok, refused):
        assert "transfer-encoding" not in answer.headers
        assert answer.headers["content-length"] == str(len(answer.content))
        assert answer.json()


# --- upstream failures ---


def test_upstream_4xx_keeps_its_message(gateway: GatewayProcess, fake: FakeUpstream) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client(gateway).chat.completions.create(
            model="fake/error-400", messages=[{"role": "user", "content": "x"}]
        )
    assert "fake upstream error 400" in caught.value.message


def test_upstream_429_keeps_retry_after(gateway: GatewayProcess, fake: FakeUpstream) -> None:
    body = {"model": "fake/error-429", "messages": [{"role": "user", "content": "x"}]}
    response = httpx.post(
        f"{gateway.url}/v1/chat/completions", json=body, headers=gateway.headers()
    )
    assert response.status_code == 429
    assert response.headers["retry-after"] == "1"
    assert response.json()["error"]["type"] == "rate_limit_error"


def test_upstream_5xx_becomes_502(gateway: GatewayProcess, fake: FakeUpstream) -> None:
    with pytest.raises(openai.APIStatusError) as caught:
        client(gateway).chat.completions.create(
            model="fake/error-503", messages=[{"role": "user", "content": "x"}]
        )
    assert caught.value.status_code == 502
    assert "sk-fake-upstream-secret" not in str(caught.value.body)


def test_upstream_timeout_becomes_504(gateway: GatewayProcess, fake: FakeUpstream) -> None:
    with pytest.raises(openai.APIStatusError) as caught:
        client(gateway).chat.completions.create(
            model="fake/stall", messages=[{"role": "user", "content": "x"}]
        )
    assert caught.value.status_code == 504


def test_failure_after_commit_ends_with_an_error_frame(
    gateway: GatewayProcess, fake: FakeUpstream
) -> None:
    stream = client(gateway).chat.completions.create(
        model="fake/cut", messages=[{"role": "user", "content": "one two three four"}], stream=True
    )
    received = []
    with pytest.raises(openai.APIError):
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                received.append(chunk.choices[0].delta.content)
    assert "".join(received) == "fake: one "


def test_client_disconnect_cancels_the_upstream(
    gateway: GatewayProcess, fake: FakeUpstream
) -> None:
    body = {
        "model": "fake/gap100",
        "stream": True,
        "messages": [{"role": "user", "content": " ".join(["word"] * 40)}],
    }
    headers = {**gateway.headers(), "x-request-id": "disconnect-test-1"}
    with httpx.stream(
        "POST", f"{gateway.url}/v1/chat/completions", json=body, headers=headers
    ) as r:
        lines = r.iter_lines()
        contents = 0
        for line in lines:
            if line.startswith("data: {") and "word" in json.loads(line[6:])["choices"][0][
                "delta"
            ].get("content", ""):
                contents += 1
            if contents == 2:
                break
    assert fake.wait_for(lambda: fake.cancelled["gap100"] == 1, timeout=3)
    row = row_for(gateway, "disconnect-test-1")
    assert row["status"] == 499


# --- bad input ---


@pytest.mark.parametrize(
    ("body", "status", "needle", "param"),
    [
        (b'{"model": "echo", "messages": [', 400, "not valid JSON", None),
        (b"[1, 2]", 400, "must be a JSON object", None),
        (b"", 400, "body is empty", None),
        (
            b'{"messages": [{"role": "user", "content": "x"}]}',
            400,
            "Missing required field 'model'",
            "model",
        ),
        (b'{"model": "echo"}', 400, "Missing required field 'messages'", "messages"),
        (b'{"model": "echo", "messages": []}', 400, "'messages' is empty", "messages"),
        (
            b'{"model": 5, "messages": [{"role": "user", "content": "x"}]}',
            400,
            "expected `str`",
            "model",
        ),
        (b'{"model": "echo", "messages": "hi"}', 400, "expected `array`", "messages"),
        (
            b'{"model": "echo", "messages": [{"role": "robot", "content": "x"}]}',
            400,
            "messages[0].role",
            "messages[0].role",
        ),
        (
            b'{"model": "echo", "messages": [{"role": "user", "content": "x"}], "stream": "yes"}',
            400,
            "expected `bool",
            "stream",
        ),
        (
            b'{"model": "nope", "messages": [{"role": "user", "content": "x"}]}',
            404,
            "Unknown model 'nope'",
            "model",
        ),
    ],
)
def test_bad_input_gets_a_clear_4xx(
    gateway: GatewayProcess, body: bytes, status: int, needle: str, param: str | None
) -> None:
    response = httpx.post(
        f"{gateway.url}/v1/chat/completions",
        content=body,
        headers={**gateway.headers(), "content-type": "application/json"},
    )
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert needle in error["message"]
    assert error["param"] == param
    assert error["type"] in ("invalid_request_error",)


def test_body_over_the_limit_is_413(gateway: GatewayProcess) -> None:
    big = {"model": "echo", "messages": [{"role": "user", "content": "x" * 1_100_000}]}
    response = httpx.post(f"{gateway.url}/v1/chat/completions", json=big, headers=gateway.headers())
    assert response.status_code == 413
    assert "limit" in response.json()["error"]["message"]


# --- keys ---


def test_missing_or_bad_key_is_401(gateway: GatewayProcess) -> None:
    body = {"model": "echo", "messages": [{"role": "user", "content": "x"}]}
    missing = httpx.post(f"{gateway.url}/v1/chat/completions", json=body)
    assert missing.status_code == 401
    assert "Missing API key" in missing.json()["error"]["message"]
    bad = httpx.post(
        f"{gateway.url}/v1/chat/completions", json=body, headers=gateway.headers("gw-nope")
    )
    assert bad.status_code == 401
    assert "gw-nope" not in bad.text


def test_x_api_key_header_works(gateway: GatewayProcess) -> None:
    body = {"model": "echo", "messages": [{"role": "user", "content": "via x-api-key"}]}
    response = httpx.post(
        f"{gateway.url}/v1/chat/completions", json=body, headers={"x-api-key": gateway.key}
    )
    assert response.status_code == 200
    assert response.json()["choices"][0]["message"]["content"] == "via x-api-key"


def test_keys_cli_create_list_revoke(gateway: GatewayProcess) -> None:
    key = gateway.create_key("--name", "ci-key", "--user", "ci@example.com")
    listing = gateway.cli("keys", "list").stdout
    assert "ci-key" in listing and key not in listing
    key_id = next(line.split("\t")[0] for line in listing.splitlines() if "ci-key" in line)
    assert gateway.cli("keys", "revoke", key_id).returncode == 0
    with pytest.raises(openai.AuthenticationError) as caught:
        client(gateway, key).chat.completions.create(
            model="echo", messages=[{"role": "user", "content": "x"}]
        )
    assert "revoked" in caught.value.message
    assert "revoked" in gateway.cli("keys", "list").stdout


# --- ledger, request ids, logs, models ---


def test_request_id_is_echoed_or_made(gateway: GatewayProcess) -> None:
    body = {"model": "echo", "messages": [{"role": "user", "content": "x"}]}
    given = httpx.post(
        f"{gateway.url}/v1/chat/completions",
        json=body,
        headers={**gateway.headers(), "x-request-id": "abc-123"},
    )
    assert given.headers["x-request-id"] == "abc-123"
    made = httpx.post(f"{gateway.url}/v1/chat/completions", json=body, headers=gateway.headers())
    assert made.headers["x-request-id"].startswith("req_")


@pytest.mark.parametrize("stream", [False, True])
def test_ledger_row_per_request_with_tokens_and_cost(
    gateway: GatewayProcess, fake: FakeUpstream, stream: bool
) -> None:
    request_id = f"ledger-{stream}"
    body = {
        "model": "fake-ok",
        "stream": stream,
        "messages": [{"role": "user", "content": "one two"}],
    }
    headers = {**gateway.headers(), "x-request-id": request_id}
    response = httpx.post(f"{gateway.url}/v1/chat/completions", json=body, headers=headers)
    assert response.status_code == 200
    row = row_for(gateway, request_id)
    # The fake reports 10 prompt tokens (4 cached) and one completion token per word.
    assert row["model_requested"] == "fake-ok"
    assert row["model_served"] == "fake/ok"
    assert row["provider"] == "fake"
    assert (row["prompt_tokens"], row["cached_tokens"], row["completion_tokens"]) == (10, 4, 3)
    assert row["cost_usd"] == pytest.approx((6 * 1.0 + 4 * 0.5 + 3 * 2.0) / 1_000_000)
    assert row["status"] == 200 and row["stream"] == int(stream)
    assert row["key_id"] and row["latency_ms"] > 0 and row["ttft_ms"] is not None


def test_logs_are_json_lines_without_keys_or_content(
    gateway: GatewayProcess, fake: FakeUpstream
) -> None:
    secret_text = "my-very-private-prompt-text"
    body = {"model": "fake/ok", "messages": [{"role": "user", "content": secret_text}]}
    headers = {**gateway.headers(), "x-request-id": "log-check-1"}
    httpx.post(f"{gateway.url}/v1/chat/completions", json=body, headers=headers)
    deadline = time.monotonic() + 3
    while "log-check-1" not in gateway.logs() and time.monotonic() < deadline:
        time.sleep(0.05)
    logs = gateway.logs()
    line = next(json.loads(line) for line in logs.splitlines() if "log-check-1" in line)
    assert line["status"] == 200 and line["model"] == "fake/ok" and line["completion_tokens"] == 2
    assert "latency_ms" in line and "ttft_ms" in line
    assert gateway.key not in logs
    assert secret_text not in logs
    assert "sk-fake-upstream-secret" not in logs


def test_models_list_and_get(gateway: GatewayProcess) -> None:
    models = client(gateway).models.list()
    entry = next(m for m in models.data if m.id == "fake/ok")
    extra = entry.model_dump()
    assert extra["pricing"] == {
        "input": 1.0,
        "output": 2.0,
        "cached_input": 0.5,
        "unit": "USD per 1M tokens",
    }
    assert extra["context_length"] > 0 and extra["max_output_tokens"] > 0
    assert "tools" in extra["capabilities"]
    one = httpx.get(f"{gateway.url}/v1/models/fake/ok", headers=gateway.headers())
    assert one.status_code == 200 and one.json()["id"] == "fake/ok"
    missing = httpx.get(f"{gateway.url}/v1/models/none/such", headers=gateway.headers())
    assert missing.status_code == 404 and "Unknown model" in missing.json()["error"]["message"]
