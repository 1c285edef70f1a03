"""Golden, pure translation tests for the Anthropic dialect's client side: request ->
canonical, canonical -> response, the stream encoder and the pass-through inspector."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest
from msgspec import UNSET

from adapters import canonical as c
from adapters.anthropic.client import anthropic_to_canonical
from adapters.anthropic.encode import (
    AnthropicPassthrough,
    AnthropicStreamEncoder,
    canonical_to_anthropic_response,
    inspect_anthropic_response,
)
from adapters.anthropic.wire import (
    MessagesRequest,
    UsageWire,
    anthropic_usage_to_canonical,
    canonical_usage_to_anthropic,
)
from adapters.errors import ProviderHTTPError

pytestmark = pytest.mark.unit


def request(**body: Any) -> MessagesRequest:
    body.setdefault("model", "m")
    body.setdefault("max_tokens", 100)
    return msgspec.json.decode(json.dumps(body), type=MessagesRequest)


def events(frames: bytes) -> list[tuple[str, dict[str, Any]]]:
    """SSE bytes as (event name, data) pairs."""
    out = []
    for chunk in frames.decode().split("\n\n"):
        if not chunk.strip():
            continue
        lines = dict(line.split(": ", 1) for line in chunk.split("\n"))
        out.append((lines["event"], json.loads(lines["data"])))
    return out


def encode(items: list[c.StreamEvent]) -> list[tuple[str, dict[str, Any]]]:
    encoder = AnthropicStreamEncoder("abc", "served/model")
    frames = b"".join(encoder.feed(item) for item in items) + encoder.close()
    return events(frames)


# --- request -> canonical -------------------------------------------------------------------


def test_system_string_and_block_list() -> None:
    assert anthropic_to_canonical(request(system="be brief", messages=[])).system == [
        c.TextBlock(text="be brief")
    ]
    blocks = [
        {"type": "text", "text": "one"},
        {"type": "text", "text": "two", "cache_control": {"type": "ephemeral"}},
    ]
    assert anthropic_to_canonical(request(system=blocks, messages=[])).system == [
        c.TextBlock(text="one"),
        c.TextBlock(text="two", cache_control={"type": "ephemeral"}),
    ]


def test_full_conversation_to_canonical() -> None:
    body = request(
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "look"},
                    {"type": "image", "source": {"type": "url", "url": "https://x/y.png"}},
                    {
                        "type": "image",
                        "source": {"type": "base64", "media_type": "image/jpeg", "data": "QUJD"},
                    },
                ],
            },
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "hmm", "signature": "sig1"},
                    {"type": "redacted_thinking", "data": "opaque"},
                    {"type": "text", "text": "calling"},
                    {"type": "tool_use", "id": "t1", "name": "f", "input": {"a": 1}},
                    {"type": "tool_use", "id": "t2", "name": "g", "input": {}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "t1", "content": "ok"},
                    {
                        "type": "tool_result",
                        "tool_use_id": "t2",
                        "is_error": True,
                        "content": [{"type": "text", "text": "boom"}],
                    },
                    {"type": "text", "text": "go on"},
                ],
            },
        ],
        stop_sequences=["END"],
        temperature=0.5,
        top_k=5,
        metadata={"user_id": "u1"},
    )
    canonical = anthropic_to_canonical(body)
    assert canonical.messages == [
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
                c.ThinkingBlock(thinking="hmm", signature="sig1"),
                c.RedactedThinkingBlock(data="opaque"),
                c.TextBlock(text="calling"),
                c.ToolUseBlock(id="t1", name="f", input={"a": 1}),
                c.ToolUseBlock(id="t2", name="g", input={}),
            ],
        ),
        c.Message(
            role="user",
            content=[
                c.ToolResultBlock(tool_use_id="t1", content=[c.TextBlock(text="ok")]),
                c.ToolResultBlock(
                    tool_use_id="t2", content=[c.TextBlock(text="boom")], is_error=True
                ),
                c.TextBlock(text="go on"),
            ],
        ),
    ]
    assert canonical.stop == ["END"]
    assert canonical.max_tokens == 100
    assert canonical.temperature == 0.5
    assert canonical.top_k == 5
    assert canonical.user == "u1"


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ({"type": "auto"}, c.ToolChoice(mode="auto")),
        ({"type": "any"}, c.ToolChoice(mode="required")),
        ({"type": "none"}, c.ToolChoice(mode="none")),
        ({"type": "tool", "name": "f"}, c.ToolChoice(mode="tool", name="f")),
        (
            {"type": "auto", "disable_parallel_tool_use": True},
            c.ToolChoice(mode="auto", disable_parallel=True),
        ),
    ],
)
def test_tool_choice(choice: dict[str, Any], expected: c.ToolChoice) -> None:
    tools = [{"name": "f", "input_schema": {"type": "object"}}]
    canonical = anthropic_to_canonical(request(messages=[], tools=tools, tool_choice=choice))
    assert canonical.tool_choice == expected


def test_tools_keep_schema_and_cache_control_and_drop_server_tools() -> None:
    tools = [
        {
            "name": "f",
            "description": "does f",
            "input_schema": {"type": "object", "properties": {"a": {"type": "integer"}}},
            "cache_control": {"type": "ephemeral"},
        },
        {"type": "web_search_20250305", "name": "web_search", "max_uses": 3},
    ]
    assert anthropic_to_canonical(request(messages=[], tools=tools)).tools == [
        c.Tool(
            name="f",
            description="does f",
            parameters={"type": "object", "properties": {"a": {"type": "integer"}}},
            cache_control={"type": "ephemeral"},
        )
    ]


def test_thinking_budget() -> None:
    thinking = {"type": "enabled", "budget_tokens": 2048}
    canonical = anthropic_to_canonical(request(messages=[], thinking=thinking))
    assert canonical.reasoning == c.Reasoning(budget_tokens=2048)
    disabled = anthropic_to_canonical(request(messages=[], thinking={"type": "disabled"}))
    assert disabled.reasoning is UNSET


# --- usage ----------------------------------------------------------------------------------


def test_usage_both_ways_keeps_cache_reads_and_writes() -> None:
    wire = UsageWire(
        input_tokens=10, output_tokens=7, cache_read_input_tokens=20, cache_creation_input_tokens=5
    )
    canonical = anthropic_usage_to_canonical(wire)
    assert canonical == c.Usage(
        input_tokens=35, output_tokens=7, cache_read_tokens=20, cache_creation_tokens=5
    )
    assert msgspec.to_builtins(canonical_usage_to_anthropic(canonical)) == {
        "input_tokens": 10,
        "cache_creation_input_tokens": 5,
        "cache_read_input_tokens": 20,
        "output_tokens": 7,
    }


def test_message_delta_usage_only_updates_what_it_carries() -> None:
    start = anthropic_usage_to_canonical(
        UsageWire(input_tokens=10, output_tokens=1, cache_read_input_tokens=20)
    )
    final = anthropic_usage_to_canonical(UsageWire(output_tokens=42), start)
    assert final == c.Usage(input_tokens=30, output_tokens=42, cache_read_tokens=20)


# --- canonical -> response ------------------------------------------------------------------


def test_response_golden() -> None:
    response = c.Response(
        id="r1",
        model="upstream",
        content=[
            c.ThinkingBlock(thinking="hm"),
            c.TextBlock(text="hi"),
            c.ToolUseBlock(id="t", name="f", input={"x": 1}),
        ],
        stop_reason="tool_use",
        usage=c.Usage(input_tokens=100, output_tokens=9, cache_read_tokens=60),
    )
    assert msgspec.to_builtins(canonical_to_anthropic_response(response, "served")) == {
        "id": "msg_r1",
        "type": "message",
        "role": "assistant",
        "model": "served",
        "content": [
            {"type": "thinking", "thinking": "hm", "signature": ""},
            {"type": "text", "text": "hi"},
            {"type": "tool_use", "id": "t", "name": "f", "input": {"x": 1}},
        ],
        "stop_reason": "tool_use",
        "stop_sequence": None,
        "usage": {
            "input_tokens": 40,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 60,
            "output_tokens": 9,
        },
    }


# --- stream encoder -------------------------------------------------------------------------


def test_stream_encoder_full_sequence_with_interleaved_blocks() -> None:
    """thinking, text, two tool calls: indices 0..3, one open block at a time."""
    out = encode(
        [
            c.MessageStart(id="x", model="up", usage=c.Usage(input_tokens=5)),
            c.BlockStart(index=0, block=c.ThinkingStart()),
            c.BlockDelta(index=0, delta=c.ThinkingDelta(thinking="hm")),
            c.BlockDelta(index=0, delta=c.SignatureDelta(signature="sig")),
            c.BlockStop(index=0),
            c.BlockStart(index=1, block=c.TextStart()),
            c.BlockDelta(index=1, delta=c.TextDelta(text="hi")),
            c.BlockStop(index=1),
            c.BlockStart(index=2, block=c.ToolUseStart(id="a", name="f")),
            c.BlockDelta(index=2, delta=c.ToolArgsDelta(partial_json='{"x"')),
            c.BlockDelta(index=2, delta=c.ToolArgsDelta(partial_json=":1}")),
            c.BlockStop(index=2),
            c.BlockStart(index=3, block=c.ToolUseStart(id="b", name="g")),
            c.BlockStop(index=3),
            c.Finish(stop_reason="tool_use"),
            c.UsageUpdate(usage=c.Usage(input_tokens=50, output_tokens=7, cache_read_tokens=30)),
        ]
    )
    assert out == [
        (
            "message_start",
            {
                "type": "message_start",
                "message": {
                    "id": "msg_abc",
                    "type": "message",
                    "role": "assistant",
                    "model": "served/model",
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": {
                        "input_tokens": 5,
                        "cache_creation_input_tokens": 0,
                        "cache_read_input_tokens": 0,
                        "output_tokens": 0,
                    },
                },
            },
        ),
        (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "thinking", "thinking": "", "signature": ""},
            },
        ),
        ("ping", {"type": "ping"}),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "thinking_delta", "thinking": "hm"},
            },
        ),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "signature_delta", "signature": "sig"},
            },
        ),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 1,
                "content_block": {"type": "text", "text": ""},
            },
        ),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 1,
                "delta": {"type": "text_delta", "text": "hi"},
            },
        ),
        ("content_block_stop", {"type": "content_block_stop", "index": 1}),
        (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 2,
                "content_block": {"type": "tool_use", "id": "a", "name": "f", "input": {}},
            },
        ),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 2,
                "delta": {"type": "input_json_delta", "partial_json": '{"x"'},
            },
        ),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 2,
                "delta": {"type": "input_json_delta", "partial_json": ":1}"},
            },
        ),
        ("content_block_stop", {"type": "content_block_stop", "index": 2}),
        (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 3,
                "content_block": {"type": "tool_use", "id": "b", "name": "g", "input": {}},
            },
        ),
        ("content_block_stop", {"type": "content_block_stop", "index": 3}),
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "tool_use", "stop_sequence": None},
                "usage": {
                    "input_tokens": 20,
                    "cache_creation_input_tokens": 0,
                    "cache_read_input_tokens": 30,
                    "output_tokens": 7,
                },
            },
        ),
        ("message_stop", {"type": "message_stop"}),
    ]


def test_stream_encoder_commits_at_first_content_only() -> None:
    encoder = AnthropicStreamEncoder("abc", "m")
    encoder.feed(c.MessageStart(id="x", model="m"))
    encoder.feed(c.BlockStart(index=0, block=c.TextStart()))
    assert not encoder.committed
    encoder.feed(c.BlockDelta(index=0, delta=c.TextDelta(text="a")))
    assert encoder.committed


def test_stream_encoder_empty_stream_is_still_a_whole_message() -> None:
    names = [name for name, _ in encode([])]
    assert names == ["message_start", "message_delta", "message_stop"]


def test_stream_encoder_stop_sequence() -> None:
    out = encode(
        [
            c.BlockStart(index=0, block=c.TextStart()),
            c.BlockDelta(index=0, delta=c.TextDelta(text="a")),
            c.Finish(stop_reason="stop_sequence", stop_sequence="END"),
        ]
    )
    assert out[-2][1]["delta"] == {"stop_reason": "stop_sequence", "stop_sequence": "END"}


# --- pass-through ---------------------------------------------------------------------------


def sse(name: str, data: dict[str, Any]) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data)}".encode()


def test_passthrough_renames_model_tracks_usage_and_commits_at_first_delta() -> None:
    passthrough = AnthropicPassthrough("anthropic/claude")
    start = sse(
        "message_start",
        {
            "type": "message_start",
            "message": {
                "id": "msg_1",
                "model": "claude-sonnet-4-5-20250929",
                "usage": {
                    "input_tokens": 3,
                    "cache_read_input_tokens": 100,
                    "cache_creation_input_tokens": 50,
                    "output_tokens": 1,
                },
            },
        },
    )
    out = passthrough.feed(start)
    assert b'"model": "anthropic/claude"' in out
    assert b"claude-sonnet-4-5-20250929" not in out
    block = sse(
        "content_block_start",
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text"}},
    )
    assert passthrough.feed(block) == block + b"\n\n"
    assert not passthrough.committed
    passthrough.feed(
        sse(
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": "a"},
            },
        )
    )
    assert passthrough.committed
    passthrough.feed(
        sse(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn"},
                "usage": {"output_tokens": 9},
            },
        )
    )
    assert passthrough.usage == c.Usage(
        input_tokens=153, output_tokens=9, cache_read_tokens=100, cache_creation_tokens=50
    )
    assert passthrough.stop_reason == "end_turn"


def test_passthrough_error_event_raises_with_its_status() -> None:
    passthrough = AnthropicPassthrough("m")
    error = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    with pytest.raises(ProviderHTTPError) as caught:
        passthrough.feed(sse("error", error))
    assert caught.value.status == 529
    assert caught.value.retryable


def test_inspect_response_renames_model_and_reads_usage() -> None:
    body = json.dumps(
        {
            "id": "msg_1",
            "model": "claude-x",
            "content": [],
            "usage": {"input_tokens": 1, "output_tokens": 2, "cache_read_input_tokens": 3},
        }
    ).encode()
    renamed, usage = inspect_anthropic_response(body, "anthropic/x")
    assert json.loads(renamed)["model"] == "anthropic/x"
    assert usage == c.Usage(input_tokens=4, output_tokens=2, cache_read_tokens=3)


def test_passthrough_close_without_message_stop_is_an_error_event() -> None:
    passthrough = AnthropicPassthrough("m")
    name, data = events(passthrough.close())[0]
    assert name == "error"
    assert data["error"]["type"] == "api_error"
    passthrough.feed(sse("message_stop", {"type": "message_stop"}))
    assert passthrough.close() == b""


def test_claude_code_2_1_shape_system_messages_adaptive_thinking_and_output_config() -> None:
    """Seen from Claude Code 2.1: role ``system`` mid-conversation, ``thinking: adaptive`` with
    ``output_config.effort``, and structured output in ``output_config.format``."""
    canonical = anthropic_to_canonical(
        request(
            system=[
                {"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1.197.c31;"},
                {"type": "text", "text": "base"},
            ],
            messages=[
                {"role": "user", "content": "hi"},
                {"role": "system", "content": "Available agent types: ..."},
                {"role": "user", "content": "go"},
            ],
            thinking={"type": "adaptive"},
            output_config={
                "effort": "max",
                "format": {"type": "json_schema", "schema": {"type": "object"}},
            },
            context_management={"edits": [{"type": "clear_thinking_20251015"}]},
        )
    )
    assert canonical.system == [
        c.TextBlock(text="base"),
        c.TextBlock(text="Available agent types: ..."),
    ]
    assert canonical.messages == [
        c.Message(role="user", content=[c.TextBlock(text="hi"), c.TextBlock(text="go")])
    ]
    assert canonical.reasoning == c.Reasoning(effort="high")
    assert canonical.response_format == {
        "type": "json_schema",
        "json_schema": {"name": "output", "schema": {"type": "object"}},
    }
