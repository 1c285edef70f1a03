"""The OpenAI endpoint end to end through the official ``openai`` SDK, against fake Anthropic and
Gemini upstreams over HTTP: text, streams, tool loops, reasoning, cached usage and errors."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest

from bench.fake_upstream import FakeUpstream
from tests.conftest import GatewayProcess

pytestmark = pytest.mark.e2e



UPSTREAMS = ["fakeanthropic", "fakegemini"]
TOOLS: list[Any] = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    },
    {
        "type": "function",
        "function": {
            "name": "get_time",
            "parameters": {"type": "object", "properties": {"tz": {"type": "string"}}},
        },
    },
]


def client(gateway: GatewayProcess) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=gateway.key, max_retries=0)


@pytest.mark.parametrize("provider", UPSTREAMS)
def test_chat_completion(
    dialect_gateway: GatewayProcess, fake: FakeUpstream, provider: str
) -> None:
    answer = client(dialect_gateway).chat.completions.create(
        model=f"{provider}/ok",
        messages=[
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "hello there"},
        ],
        max_tokens=50,
        stop=["END"],
    )
    assert answer.choices[0].message.content == "fake: hello there"
    assert answer.choices[0].finish_reason == "stop"
    assert answer.model == f"{provider}/ok"
    usage = answer.usage
    assert usage is not None and usage.prompt_tokens_details is not None
    if provider == "fakeanthropic":
        # Anthropic's 10 uncached + 20 read + 5 written = OpenAI's 35 prompt tokens.
        assert usage.prompt_tokens == 35
        assert usage.prompt_tokens_details.cached_tokens == 20
        sent = fake.requests[-1].body
        assert sent["system"] == [{"type": "text", "text": "be brief"}]
        assert sent["max_tokens"] == 50
        assert sent["stop_sequences"] == ["END"]
    else:
        assert usage.prompt_tokens == 30
        assert usage.prompt_tokens_details.cached_tokens == 12
        sent = fake.requests[-1].body
        assert sent["systemInstruction"] == {"parts": [{"text": "be brief"}]}
        assert sent["generationConfig"] == {"maxOutputTokens": 50, "stopSequences": ["END"]}
        assert fake.requests[-1].headers["x-goog-api-key"] == "gemini-fake-upstream-secret"


@pytest.mark.parametrize("provider", UPSTREAMS)
def test_stream_with_usage(
    dialect_gateway: GatewayProcess, fake: FakeUpstream, provider: str
) -> None:
    stream = client(dialect_gateway).chat.completions.create(
        model=f"{provider}/ok",
        messages=[{"role": "user", "content": "one two"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "fake: one two"
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == "stop"
    usage = chunks[-1].usage
    assert usage is not None and usage.prompt_tokens_details is not None
    assert usage.prompt_tokens_details.cached_tokens == (20 if provider == "fakeanthropic" else 12)
    assert usage.completion_tokens == 3


@pytest.mark.parametrize("provider", UPSTREAMS)
@pytest.mark.parametrize("streamed", [False, True])
def test_tool_loop(
    dialect_gateway: GatewayProcess, fake: FakeUpstream, provider: str, streamed: bool
) -> None:
    api = client(dialect_gateway)
    messages: list[Any] = [{"role": "user", "content": "weather and time?"}]
    model = f"{provider}/tools"
    if streamed:
        calls: dict[int, dict[str, str]] = {}
        finish = None
        for chunk in api.chat.completions.create(
            model=model, messages=messages, tools=TOOLS, stream=True
        ):
            if not chunk.choices:
                continue
            finish = chunk.choices[0].finish_reason or finish
            for call in chunk.choices[0].delta.tool_calls or []:
                entry = calls.setdefault(call.index, {"id": "", "name": "", "arguments": ""})
                entry["id"] += call.id or ""
                if call.function is not None:
                    entry["name"] += call.function.name or ""
                    entry["arguments"] += call.function.arguments or ""
        tool_calls = [calls[i] for i in sorted(calls)]
    else:
        answer = api.chat.completions.create(model=model, messages=messages, tools=TOOLS)
        finish = answer.choices[0].finish_reason
        tool_calls = [
            {"id": c.id, "name": c.function.name, "arguments": c.function.arguments}  # type: ignore[union-attr]
            for c in answer.choices[0].message.tool_calls or []
        ]
    assert finish == "tool_calls"
    assert [(c["name"], json.loads(c["arguments"])) for c in tool_calls] == [
        ("get_weather", {"city": "Paris"}),
        ("get_time", {"tz": "CET"}),
    ]
    messages.append(
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": c["id"],
                    "type": "function",
                    "function": {"name": c["name"], "arguments": c["arguments"]},
                }
                for c in tool_calls
            ],
        }
    )
    messages.append({"role": "tool", "tool_call_id": tool_calls[0]["id"], "content": "sunny"})
    messages.append({"role": "tool", "tool_call_id": tool_calls[1]["id"], "content": "noon"})
    final = api.chat.completions.create(model=model, messages=messages, tools=TOOLS)
    text = final.choices[0].message.content or ""
    assert text.startswith("results:")
    assert "sunny" in text and "noon" in text
    if provider == "fakegemini":
        sent = fake.requests[-1].body["contents"]
        call_parts = sent[1]["parts"]
        assert call_parts[0]["thoughtSignature"] == fake.GEMINI_SIGNATURE
        responses = [p["functionResponse"] for p in sent[2]["parts"]]
        assert [r["name"] for r in responses] == ["get_weather", "get_time"]


@pytest.mark.parametrize("provider", UPSTREAMS)
def test_reasoning_content_from_thinking(
    dialect_gateway: GatewayProcess, fake: FakeUpstream, provider: str
) -> None:
    api = client(dialect_gateway)
    answer = api.chat.completions.create(
        model=f"{provider}/thinking",
        messages=[{"role": "user", "content": "hm"}],
        reasoning_effort="low",
    )
    message = answer.choices[0].message
    assert message.content == "fake: hm"
    assert getattr(message, "reasoning_content", None) in ("let me think", "pondering")
    sent = fake.requests[-1].body
    if provider == "fakeanthropic":
        assert sent["thinking"] == {"type": "enabled", "budget_tokens": 2048}
        assert sent["max_tokens"] > 2048
    else:
        assert sent["generationConfig"]["thinkingConfig"] == {
            "thinkingBudget": 1024,
            "includeThoughts": True,
        }
        assert answer.usage is not None and answer.usage.completion_tokens_details is not None
        assert answer.usage.completion_tokens_details.reasoning_tokens == 7
    streamed = api.chat.completions.create(
        model=f"{provider}/thinking", messages=[{"role": "user", "content": "hm"}], stream=True
    )
    reasoning = text = ""
    for chunk in streamed:
        if chunk.choices:
            reasoning += getattr(chunk.choices[0].delta, "reasoning_content", None) or ""
            text += chunk.choices[0].delta.content or ""
    assert reasoning in ("let me think", "pondering")
    assert text == "fake: hm"


@pytest.mark.parametrize("provider", UPSTREAMS)
def test_images_url_and_base64(
    dialect_gateway: GatewayProcess, fake: FakeUpstream, provider: str
) -> None:
    client(dialect_gateway).chat.completions.create(
        model=f"{provider}/ok",
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "what is this"},
                    {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
                    {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,QUJD"}},
                ],
            }
        ],
    )
    sent = fake.requests[-1].body
    if provider == "fakeanthropic":
        assert sent["messages"][0]["content"][1:] == [
            {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.png"}},
            {
                "type": "image",
                "source": {"type": "base64", "media_type": "image/jpeg", "data": "QUJD"},
            },
        ]
    else:
        assert sent["contents"][0]["parts"][1:] == [
            {"fileData": {"mimeType": "image/png", "fileUri": "https://example.com/cat.png"}},
            {"inlineData": {"mimeType": "image/jpeg", "data": "QUJD"}},
        ]


@pytest.mark.parametrize("provider", UPSTREAMS)
def test_upstream_errors_in_openai_shape(
    dialect_gateway: GatewayProcess, fake: FakeUpstream, provider: str
) -> None:
    with pytest.raises(openai.RateLimitError) as caught:
        client(dialect_gateway).chat.completions.create(
            model=f"{provider}/error-429", messages=[{"role": "user", "content": "x"}]
        )
    # The first 429 is the provider's own; later ones the gateway answers while it cools down.
    assert f"{provider}/error-429" in str(caught.value)
    with pytest.raises(openai.BadRequestError):
        client(dialect_gateway).chat.completions.create(
            model=f"{provider}/error-400", messages=[{"role": "user", "content": "x"}]
        )


def test_anthropic_error_event_mid_stream_becomes_openai_error(
    dialect_gateway: GatewayProcess, fake: FakeUpstream
) -> None:
    stream = client(dialect_gateway).chat.completions.create(
        model="fakeanthropic/overloaded", messages=[{"role": "user", "content": "a b"}], stream=True
    )
    with pytest.raises(openai.APIError) as caught:
        for _ in stream:
            pass
    assert "Overloaded" in str(caught.value)
