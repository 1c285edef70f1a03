"""Golden, pure translation tests for the Anthropic dialect's provider side: canonical ->
Messages body, Messages answer -> canonical, and Anthropic SSE -> canonical events."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest

from adapters import canonical as c
from adapters.anthropic.upstream import (
    AnthropicEventDecoder,
    anthropic_response_to_canonical,
    canonical_to_anthropic_request,
)
from adapters.errors import ProviderConnectionError, ProviderHTTPError

pytestmark = pytest.mark.unit


def conversation() -> c.Request:
    return c.Request(
        model="m",
        system=[c.TextBlock(text="sys", cache_control={"type": "ephemeral"})],
        messages=[
            c.Message(
                role="user",
                content=[
                    c.TextBlock(text="look"),
                    c.ImageBlock(url="https://x/y.png"),
                    c.ImageBlock(data="QUJD", media_type="image/jpeg"),
                ],
            ),
            c.Message(
                role="assistant",
                content=[
                    c.ThinkingBlock(thinking="unsigned, from another model"),
                    c.TextBlock(text=""),
                    c.ToolUseBlock(id="call_1", name="f", input={"a": 1}),
                    c.ToolUseBlock(id="call_2", name="g", input={}),
                ],
            ),
            c.Message(
                role="user",
                content=[
                    c.TextBlock(text="and then"),
                    c.ToolResultBlock(tool_use_id="call_1", content=[c.TextBlock(text="ok")]),
                    c.ToolResultBlock(
                        tool_use_id="call_2", content=[c.TextBlock(text="bad")], is_error=True
                    ),
                ],
            ),
        ],
        tools=[c.Tool(name="f", description="does f", parameters={"type": "object"})],
        tool_choice=c.ToolChoice(mode="required", disable_parallel=True),
        stop=["END"],
        temperature=1.5,
        user="u1",
        stream=True,
    )


@pytest.mark.parametrize(
    ("reasoning", "max_tokens", "thinking", "expected_max"),
    [
        (c.Reasoning(effort="low"), 1000, {"type": "enabled", "budget_tokens": 2048}, 3048),
        (c.Reasoning(effort="high"), 40000, {"type": "enabled", "budget_tokens": 24576}, 40000),
        (c.Reasoning(budget_tokens=500), 8000, {"type": "enabled", "budget_tokens": 1024}, 8000),
        (c.Reasoning(effort="none"), 100, None, 100),
    ],
)
def test_reasoning_to_thinking_budget(
    reasoning: c.Reasoning, max_tokens: int, thinking: Any, expected_max: int
) -> None:
    request = c.Request(
        model="m",
        messages=[c.Message(role="user", content=[c.TextBlock(text="x")])],
        reasoning=reasoning,
        max_tokens=max_tokens,
        temperature=0.2,
    )
    body = msgspec.to_builtins(canonical_to_anthropic_request(request, "m"))
    assert body.get("thinking") == thinking
    assert body["max_tokens"] == expected_max
    # Extended thinking refuses a temperature.
    assert ("temperature" in body) == (thinking is None)


def test_thinking_left_off_when_the_tool_turn_has_no_signed_thinking() -> None:
    request = conversation()
    request.reasoning = c.Reasoning(effort="medium")
    assert "thinking" not in msgspec.to_builtins(canonical_to_anthropic_request(request, "m"))
    request.messages[1].content.insert(0, c.ThinkingBlock(thinking="t", signature="sig"))
    body = msgspec.to_builtins(canonical_to_anthropic_request(request, "m"))
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 8192}
    assert body["messages"][1]["content"][0] == {
        "type": "thinking",
        "thinking": "t",
        "signature": "sig",
    }


def test_response_to_canonical() -> None:
    body = {
        "id": "msg_1",
        "model": "claude-x",
        "content": [
            {"type": "thinking", "thinking": "hm", "signature": "sig"},
            {"type": "text", "text": "hi", "citations": [{"type": "char_location"}]},
            {"type": "server_tool_use", "id": "s", "name": "web_search", "input": {}},
            {"type": "tool_use", "id": "t", "name": "f", "input": {"a": 1}},
        ],
        "stop_reason": "tool_use",
        "usage": {
            "input_tokens": 3,
            "output_tokens": 4,
            "cache_read_input_tokens": 10,
            "cache_creation_input_tokens": 2,
        },
    }
    response = anthropic_response_to_canonical(json.dumps(body).encode())
    assert response == c.Response(
        id="msg_1",
        model="claude-x",
        content=[
            c.ThinkingBlock(thinking="hm", signature="sig"),
            c.TextBlock(text="hi", citations=[{"type": "char_location"}]),
            c.ToolUseBlock(id="t", name="f", input={"a": 1}),
        ],
        stop_reason="tool_use",
        usage=c.Usage(
            input_tokens=15, output_tokens=4, cache_read_tokens=10, cache_creation_tokens=2
        ),
    )


def feed_all(payloads: list[dict[str, Any]]) -> list[c.StreamEvent]:
    decoder = AnthropicEventDecoder()
    out: list[c.StreamEvent] = []
    for payload in payloads:
        out.extend(decoder.feed(json.dumps(payload).encode()))
    out.extend(decoder.close())
    return out


def test_event_decoder_golden() -> None:
    out = feed_all(
        [
            {
                "type": "message_start",
                "message": {
                    "id": "msg_1",
                    "model": "claude-x",
                    "usage": {"input_tokens": 3, "output_tokens": 1, "cache_read_input_tokens": 7},
                },
            },
            {"type": "content_block_start", "index": 0, "content_block": {"type": "thinking"}},
            {"type": "ping"},
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "thinking_delta", "thinking": "hm"},
            },
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "signature_delta", "signature": "sig"},
            },
            {"type": "content_block_stop", "index": 0},
            {
                "type": "content_block_start",
                "index": 1,
                "content_block": {"type": "tool_use", "id": "t", "name": "f", "input": {}},
            },
            {
                "type": "content_block_delta",
                "index": 1,
                "delta": {"type": "input_json_delta", "partial_json": ""},
            },
            {
                "type": "content_block_delta",
                "index": 1,
                "delta": {"type": "input_json_delta", "partial_json": '{"a":1}'},
            },
            {"type": "content_block_stop", "index": 1},
            {
                "type": "message_delta",
                "delta": {"stop_reason": "tool_use", "stop_sequence": None},
                "usage": {"output_tokens": 12},
            },
            {"type": "message_stop"},
        ]
    )
    final_usage = c.Usage(input_tokens=10, output_tokens=12, cache_read_tokens=7)
    assert out == [
        c.MessageStart(
            id="msg_1",
            model="claude-x",
            usage=c.Usage(input_tokens=10, output_tokens=1, cache_read_tokens=7),
        ),
        c.BlockStart(index=0, block=c.ThinkingStart()),
        c.BlockDelta(index=0, delta=c.ThinkingDelta(thinking="hm")),
        c.BlockDelta(index=0, delta=c.SignatureDelta(signature="sig")),
        c.BlockStop(index=0),
        c.BlockStart(index=1, block=c.ToolUseStart(id="t", name="f")),
        c.BlockDelta(index=1, delta=c.ToolArgsDelta(partial_json='{"a":1}')),
        c.BlockStop(index=1),
        c.UsageUpdate(usage=final_usage),
        c.Finish(stop_reason="tool_use"),
    ]


def test_event_decoder_error_event() -> None:
    decoder = AnthropicEventDecoder()
    error = {"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}}
    with pytest.raises(ProviderHTTPError) as caught:
        decoder.feed(json.dumps(error).encode())
    assert caught.value.status == 429
    assert caught.value.message == "slow down"


def test_event_decoder_stream_ending_before_message_stop_is_cut() -> None:
    decoder = AnthropicEventDecoder()
    start = {"type": "message_start", "message": {"id": "m", "model": "c"}}
    decoder.feed(json.dumps(start).encode())
    with pytest.raises(ProviderConnectionError):
        decoder.close()


def test_response_format_becomes_a_system_instruction() -> None:
    request = c.Request(
        model="m",
        messages=[c.Message(role="user", content=[c.TextBlock(text="x")])],
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "n", "schema": {"type": "object"}},
        },
    )
    system = msgspec.to_builtins(canonical_to_anthropic_request(request, "m"))["system"]
    assert system[-1]["text"].endswith('(no prose, no code fences): {"type":"object"}')
