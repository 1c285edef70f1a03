"""The Anthropic endpoint end to end through the official ``anthropic`` SDK, against fake
OpenAI-, Anthropic- and Gemini-dialect upstreams over HTTP (and the built-in mock)."""

from __future__ import annotations

from typing import Any

import anthropic
import httpx2 as httpx
import pytest

from bench.fake_upstream import FakeUpstream
from tests.conftest import GatewayProcess

pytestmark = pytest.mark.e2e



# One model per upstream dialect, all answering with the same fake behaviours.
UPSTREAMS = ["fake", "fakeanthropic", "fakegemini"]
TOOLS: list[Any] = [
    {
        "name": "get_weather",
        "description": "Weather in a city",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
    {
        "name": "get_time",
        "description": "Time in a zone",
        "input_schema": {"type": "object", "properties": {"tz": {"type": "string"}}},
    },
]


def client(gateway: GatewayProcess, prefix: str = "/anthropic") -> anthropic.Anthropic:
    return anthropic.Anthropic(
        base_url=gateway.url + prefix, auth_token=gateway.key, api_key=None, max_retries=0
    )


@pytest.mark.parametrize("provider", UPSTREAMS)
def test_messages_create(
    dialect_gateway: GatewayProcess, fake: FakeUpstream, provider: str
) -> None:
    message = client(dialect_gateway).messages.create(
        model=f"{provider}/ok",
        max_tokens=100,
        system="be brief",
        messages=[{"role": "user", "content": "hello there"}],
    )
    assert message.content[0].type == "text"
    assert message.content[0].text == "fake: hello there"
    assert message.model == f"{provider}/ok"
    assert message.stop_reason == "end_turn"
    assert message.usage.output_tokens > 0
    assert message.usage.input_tokens > 0


@pytest.mark.parametrize("provider", UPSTREAMS)
def test_messages_stream_final_message(
    dialect_gateway: GatewayProcess, fake: FakeUpstream, provider: str
) -> None:
    with client(dialect_gateway).messages.stream(
        model=f"{provider}/ok",
        max_tokens=100,
        messages=[{"role": "user", "content": "one two three"}],
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "fake: one two three"
    assert final.content[0].type == "text"
    assert final.content[0].text == text
    assert final.model == f"{provider}/ok"
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens == 4


@pytest.mark.parametrize("provider", UPSTREAMS)
@pytest.mark.parametrize("streamed", [False, True])
def test_tool_use_loop(
    dialect_gateway: GatewayProcess, fake: FakeUpstream, provider: str, streamed: bool
) -> None:
    """Two parallel calls, their results (one an error) sent back, then the final answer."""
    api = client(dialect_gateway)
    messages: list[Any] = [{"role": "user", "content": "weather and time?"}]
    request: dict[str, Any] = {"model": f"{provider}/tools", "max_tokens": 200, "tools": TOOLS}
    if streamed:
        with api.messages.stream(messages=messages, **request) as stream:
            first = stream.get_final_message()
    else:
        first = api.messages.create(messages=messages, **request)
    assert first.stop_reason == "tool_use"
    calls = [block for block in first.content if block.type == "tool_use"]
    assert [(call.name, call.input) for call in calls] == [
        ("get_weather", {"city": "Paris"}),
        ("get_time", {"tz": "CET"}),
    ]
    assert len({call.id for call in calls}) == 2
    messages.append({"role": "assistant", "content": [b.model_dump() for b in first.content]})
    messages.append(
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": calls[0].id, "content": "sunny"},
                {
                    "type": "tool_result",
                    "tool_use_id": calls[1].id,
                    "content": [{"type": "text", "text": "clock broken"}],
                    "is_error": True,
                },
            ],
        }
    )
    second = api.messages.create(messages=messages, **request)
    assert second.stop_reason == "end_turn"
    answer = second.content[-1]
    assert answer.type == "text"
    assert "results:" in answer.text
    assert "sunny" in answer.text
    assert "clock broken" in answer.text


@pytest.mark.parametrize("provider", UPSTREAMS)
def test_thinking_streamed_in_its_own_block(
    dialect_gateway: GatewayProcess, fake: FakeUpstream, provider: str
) -> None:
    with client(dialect_gateway).messages.stream(
        model=f"{provider}/thinking" if provider != "fake" else "fake/reasoning",
        max_tokens=4000,
        thinking={"type": "enabled", "budget_tokens": 2000},
        messages=[{"role": "user", "content": "think"}],
    ) as stream:
        final = stream.get_final_message()
    kinds = [block.type for block in final.content]
    assert kinds == ["thinking", "text"]
    assert final.content[0].thinking  # type: ignore[union-attr]
    assert final.content[1].text.startswith("fake")  # type: ignore[union-attr]
    if provider == "fakeanthropic":
        assert final.content[0].signature == fake.ANTHROPIC_SIGNATURE  # type: ignore[union-attr]


def test_mock_provider_through_anthropic_endpoint(dialect_gateway: GatewayProcess) -> None:
    message = client(dialect_gateway, prefix="").messages.create(
        model="echo", max_tokens=50, messages=[{"role": "user", "content": "ping pong"}]
    )
    assert message.content[0].text == "ping pong"  # type: ignore[union-attr]


def test_anthropic_passthrough_keeps_body_and_beta_header(
    dialect_gateway: GatewayProcess, fake: FakeUpstream
) -> None:
    """The body reaches an Anthropic upstream as sent (model rewritten) with anthropic-beta."""
    system = [{"type": "text", "text": "sys", "cache_control": {"type": "ephemeral"}}]
    client(dialect_gateway).messages.create(
        model="fakeanthropic/ok",
        max_tokens=64,
        system=system,  # type: ignore[arg-type]
        messages=[{"role": "user", "content": "hi"}],
        extra_headers={"anthropic-beta": "prompt-caching-2024-07-31"},
        extra_body={"some_future_field": {"kept": True}},
    )
    recorded = fake.requests[-1]
    assert recorded.body["model"] == "ok"
    assert recorded.body["system"] == system
    assert recorded.body["some_future_field"] == {"kept": True}
    assert recorded.headers["anthropic-beta"] == "prompt-caching-2024-07-31"
    assert recorded.headers["x-api-key"] == "sk-ant-fake-upstream-secret"
    assert recorded.headers["anthropic-version"] == "2023-06-01"


def test_passthrough_stream_frames_untouched(
    dialect_gateway: GatewayProcess, fake: FakeUpstream
) -> None:
    with client(dialect_gateway).messages.stream(
        model="fakeanthropic/thinking",
        max_tokens=4000,
        thinking={"type": "enabled", "budget_tokens": 2000},
        messages=[{"role": "user", "content": "x"}],
    ) as stream:
        final = stream.get_final_message()
    assert final.model == "fakeanthropic/thinking"
    assert final.content[0].signature == fake.ANTHROPIC_SIGNATURE  # type: ignore[union-attr]
    assert final.usage.cache_read_input_tokens == 20
    assert final.usage.cache_creation_input_tokens == 5
    assert final.usage.input_tokens == 10


def test_x_api_key_auth_and_errors_in_anthropic_shape(dialect_gateway: GatewayProcess) -> None:
    url = dialect_gateway.url + "/v1/messages"
    body = {"model": "echo", "max_tokens": 10, "messages": [{"role": "user", "content": "x"}]}
    ok = httpx.post(
        url,
        json=body,
        headers={"x-api-key": dialect_gateway.key, "anthropic-version": "2023-06-01"},
    )
    assert ok.status_code == 200, ok.text
    bad_key = httpx.post(url, json=body, headers={"x-api-key": "nope"})
    assert bad_key.status_code == 401
    assert bad_key.json()["type"] == "error"
    assert bad_key.json()["error"]["type"] == "authentication_error"
    missing = httpx.post(
        url,
        json={"model": "echo", "messages": [{"role": "user", "content": "x"}]},
        headers={"x-api-key": dialect_gateway.key},
    )
    assert missing.status_code == 400
    assert missing.json()["error"] == {
        "type": "invalid_request_error",
        "message": "max_tokens: Field required (the most tokens the answer may have)",
    }
    unknown = httpx.post(
        url, json={**body, "model": "nope/nothing"}, headers={"x-api-key": dialect_gateway.key}
    )
    assert unknown.status_code == 404
    assert unknown.json()["error"]["type"] == "not_found_error"


def test_sdk_raises_typed_errors(dialect_gateway: GatewayProcess, fake: FakeUpstream) -> None:
    with pytest.raises(anthropic.RateLimitError) as caught:
        client(dialect_gateway).messages.create(
            model="fake/error-429", max_tokens=10, messages=[{"role": "user", "content": "x"}]
        )
    assert "fake/error-429" in str(caught.value)
    with pytest.raises(anthropic.BadRequestError):
        client(dialect_gateway).messages.create(
            model="fakegemini/error-400", max_tokens=10, messages=[{"role": "user", "content": "x"}]
        )


def test_error_after_commit_is_an_error_event(
    dialect_gateway: GatewayProcess, fake: FakeUpstream
) -> None:
    with pytest.raises(anthropic.APIStatusError) as caught:  # noqa: SIM117
        with client(dialect_gateway).messages.stream(
            model="fake/cut", max_tokens=10, messages=[{"role": "user", "content": "a b c"}]
        ) as stream:
            for _ in stream:
                pass
    assert "fake/cut" in str(caught.value)


def test_count_tokens(dialect_gateway: GatewayProcess) -> None:
    count = client(dialect_gateway).messages.count_tokens(
        model="echo",
        system="you are helpful",
        messages=[{"role": "user", "content": "x" * 400}],
        tools=TOOLS,
    )
    assert 100 < count.input_tokens < 400
    with pytest.raises(anthropic.NotFoundError):
        client(dialect_gateway).messages.count_tokens(
            model="nope/none", messages=[{"role": "user", "content": "x"}]
        )


def test_streamed_error_before_commit_is_a_typed_sdk_error(
    dialect_gateway: GatewayProcess, fake: FakeUpstream
) -> None:
    with pytest.raises(anthropic.RateLimitError):  # noqa: SIM117
        with client(dialect_gateway).messages.stream(
            model="fakeanthropic/error-429",
            max_tokens=10,
            messages=[{"role": "user", "content": "x"}],
        ) as stream:
            stream.get_final_message()


@pytest.mark.parametrize("provider", ["fakeanthropic", "fake"])
def test_streamed_usage_with_cache_reaches_the_ledger(
    dialect_gateway: GatewayProcess, fake: FakeUpstream, provider: str
) -> None:
    """Cache reads and writes of a stream are recorded and billed, pass-through or not."""
    marker = f"ledger-{provider}"
    with client(dialect_gateway).messages.stream(
        model=f"{provider}/ok", max_tokens=10, messages=[{"role": "user", "content": marker}]
    ) as stream:
        request_id = stream.response.headers["x-request-id"]
        stream.get_final_message()

    def row() -> dict[str, object] | None:
        rows = [r for r in dialect_gateway.usage_rows() if r["request_id"] == request_id]
        return rows[0] if rows else None

    assert fake.wait_for(lambda: row() is not None)
    recorded = row()
    assert recorded is not None
    assert recorded["dialect"] == "anthropic"
    if provider == "fakeanthropic":
        # 10 uncached + 20 read + 5 written, as the canonical (OpenAI) count includes the cache.
        assert (recorded["prompt_tokens"], recorded["cached_tokens"]) == (35, 20)
        assert recorded["cache_creation_tokens"] == 5
    else:
        assert (recorded["prompt_tokens"], recorded["cached_tokens"]) == (10, 4)


def test_count_tokens_asks_anthropic_for_its_models(
    dialect_gateway: GatewayProcess, fake: FakeUpstream
) -> None:
    count = client(dialect_gateway).messages.count_tokens(
        model="fakeanthropic/ok", messages=[{"role": "user", "content": "hello"}]
    )
    assert count.input_tokens == 4242
    assert fake.requests[-1].body["model"] == "ok"
    assert fake.requests[-1].headers["x-api-key"] == "sk-ant-fake-upstream-secret"
    fallback = client(dialect_gateway).messages.count_tokens(
        model="fakeanthropic/error-500", messages=[{"role": "user", "content": "hello"}]
    )
    assert 0 < fallback.input_tokens < 100  # the estimate, when Anthropic cannot count


@pytest.mark.parametrize("provider", ["fakeanthropic", "fakegemini"])
def test_stream_cut_short_by_the_upstream_ends_with_an_error(
    dialect_gateway: GatewayProcess, fake: FakeUpstream, provider: str
) -> None:
    """A body that ends before the stream's own end is not passed off as a whole answer."""
    with pytest.raises(anthropic.APIStatusError) as caught:  # noqa: SIM117
        with client(dialect_gateway).messages.stream(
            model=f"{provider}/truncated",
            max_tokens=10,
            messages=[{"role": "user", "content": "a b c d"}],
        ) as stream:
            stream.get_final_message()
    assert "ended" in str(caught.value)


def test_callers_fallback_chain_across_dialects(
    dialect_gateway: GatewayProcess, fake: FakeUpstream
) -> None:
    """``models`` + ``route: fallback`` on the Anthropic endpoint: a failing OpenAI-dialect
    model falls back to an Anthropic pass-through, which never sees the routing keys."""
    message = client(dialect_gateway).messages.create(
        model="fake/error-503",
        max_tokens=20,
        messages=[{"role": "user", "content": "fall back"}],
        extra_body={"models": ["fake/error-503", "fakeanthropic/ok"], "route": "fallback"},
    )
    assert message.model == "fakeanthropic/ok"
    assert message.content[0].text == "fake: fall back"  # type: ignore[union-attr]
    sent = fake.requests[-1].body
    assert "models" not in sent and "route" not in sent
