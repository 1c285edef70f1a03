"""Golden translation tests across dialect pairs, each chain exactly as the gateway runs it:
ingress parse -> canonical -> upstream body, and upstream stream -> canonical -> client stream.

The ``test_regression_*`` tests guard bugs other gateways shipped; each name says which.
Whole request -> upstream body cases are data: ``tests/golden/requests/*.json``, run by
``tests/test_translate_golden.py``.
"""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest

from adapters import canonical as c
from adapters.anthropic.client import anthropic_to_canonical
from adapters.anthropic.encode import AnthropicStreamEncoder, canonical_to_anthropic_response
from adapters.anthropic.upstream import AnthropicEventDecoder
from adapters.anthropic.wire import MessagesRequest
from adapters.gemini.upstream import GeminiChunkDecoder, canonical_to_gemini_request, unpack_tool_id
from adapters.openai.client import openai_to_canonical
from adapters.openai.encode import OpenAIStreamEncoder
from adapters.openai.upstream import (
    OpenAIChunkDecoder,
    canonical_to_openai_request,
    openai_response_to_canonical,
)
from adapters.openai.wire import ChatRequest

pytestmark = pytest.mark.unit

SIGNATURE = "CiQB+/z9Q2lnbmF0dXJlcw=="


def anthropic_request(**body: Any) -> c.Request:
    body.setdefault("model", "m")
    body.setdefault("max_tokens", 100)
    return anthropic_to_canonical(msgspec.json.decode(json.dumps(body), type=MessagesRequest))


def openai_request(**body: Any) -> c.Request:
    body.setdefault("model", "m")
    return openai_to_canonical(msgspec.json.decode(json.dumps(body), type=ChatRequest))


def sse_events(frames: bytes) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for chunk in frames.decode().split("\n\n"):
        if chunk.strip():
            lines = dict(line.split(": ", 1) for line in chunk.split("\n"))
            out.append((lines["event"], json.loads(lines["data"])))
    return out


def openai_chunks(frames: bytes) -> list[dict[str, Any]]:
    return [
        json.loads(line[6:]) for line in frames.decode().split("\n\n") if line.startswith("data: {")
    ]


def openai_to_anthropic_stream(chunks: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    decoder = OpenAIChunkDecoder()
    encoder = AnthropicStreamEncoder("r", "served")
    frames = b""
    for chunk in chunks:
        for item in decoder.feed(json.dumps(chunk).encode()):
            frames += encoder.feed(item)
    for item in decoder.feed(b"[DONE]"):
        frames += encoder.feed(item)
    return sse_events(frames + encoder.close())


def delta(payload: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {
        "id": "c",
        "model": "up",
        "choices": [{"index": 0, "delta": payload, "finish_reason": finish}],
    }


CLAUDE_HISTORY: list[dict[str, Any]] = [
    {"role": "user", "content": "fix the bug"},
    {
        "role": "assistant",
        "content": [
            {"type": "thinking", "thinking": "look first", "signature": "sig"},
            {"type": "text", "text": "Reading."},
            {"type": "tool_use", "id": "toolu_1", "name": "Read", "input": {"path": "a.py"}},
            {"type": "tool_use", "id": "toolu_2", "name": "Bash", "input": {"cmd": "ls"}},
        ],
    },
    {
        "role": "user",
        "content": [
            {"type": "tool_result", "tool_use_id": "toolu_1", "content": "print(1)"},
            {
                "type": "tool_result",
                "tool_use_id": "toolu_2",
                "content": [{"type": "text", "text": "permission denied"}],
                "is_error": True,
            },
            {"type": "text", "text": "go on"},
        ],
    },
]


# --- Anthropic ingress -> OpenAI upstream ---------------------------------------------------


def test_openai_stream_to_anthropic_events_with_reasoning_text_and_parallel_tools() -> None:
    out = openai_to_anthropic_stream(
        [
            delta({"role": "assistant", "content": ""}),
            delta({"reasoning_content": "hm"}),
            delta({"content": "Sure"}),
            delta(
                {
                    "tool_calls": [
                        {"index": 0, "id": "call_a", "function": {"name": "f", "arguments": ""}}
                    ]
                }
            ),
            delta({"tool_calls": [{"index": 0, "function": {"arguments": '{"ci'}}]}),
            delta({"tool_calls": [{"index": 0, "function": {"arguments": 'ty":"P"}'}}]}),
            delta(
                {
                    "tool_calls": [
                        {"index": 1, "id": "call_b", "function": {"name": "g", "arguments": "{}"}}
                    ]
                }
            ),
            delta({}, "tool_calls"),
            {
                "id": "c",
                "model": "up",
                "choices": [],
                "usage": {
                    "prompt_tokens": 100,
                    "completion_tokens": 20,
                    "prompt_tokens_details": {"cached_tokens": 80},
                },
            },
        ]
    )
    starts = [(d["index"], d["content_block"]) for name, d in out if name == "content_block_start"]
    assert starts == [
        (0, {"type": "thinking", "thinking": "", "signature": ""}),
        (1, {"type": "text", "text": ""}),
        (2, {"type": "tool_use", "id": "call_a", "name": "f", "input": {}}),
        (3, {"type": "tool_use", "id": "call_b", "name": "g", "input": {}}),
    ]
    args: dict[int, str] = {}
    for name, data in out:
        if name == "content_block_delta" and data["delta"]["type"] == "input_json_delta":
            args[data["index"]] = args.get(data["index"], "") + data["delta"]["partial_json"]
    assert args == {2: '{"city":"P"}', 3: "{}"}
    assert out[-2] == (
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": "tool_use", "stop_sequence": None},
            "usage": {
                "input_tokens": 20,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 80,
                "output_tokens": 20,
            },
        },
    )
    assert out[-1] == ("message_stop", {"type": "message_stop"})
    stops = [d["index"] for name, d in out if name == "content_block_stop"]
    assert stops == [0, 1, 2, 3]


def test_openai_response_to_anthropic_message() -> None:
    body = {
        "id": "chatcmpl-1",
        "model": "gpt-x",
        "choices": [
            {
                "message": {
                    "content": None,
                    "reasoning_content": "r",
                    "tool_calls": [
                        {
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": "f", "arguments": '{"a": 1}'},
                        }
                    ],
                },
                "finish_reason": "tool_calls",
            }
        ],
        "usage": {
            "prompt_tokens": 50,
            "completion_tokens": 5,
            "prompt_tokens_details": {"cached_tokens": 30},
        },
    }
    message = msgspec.to_builtins(canonical_to_anthropic_response(
        openai_response_to_canonical(json.dumps(body).encode()), "served"
    ))
    assert message["content"] == [
        {"type": "thinking", "thinking": "r", "signature": ""},
        {"type": "tool_use", "id": "call_1", "name": "f", "input": {"a": 1}},
    ]
    assert message["stop_reason"] == "tool_use"
    assert message["usage"] == {
        "input_tokens": 20,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 30,
        "output_tokens": 5,
    }


def test_openai_length_finish_is_max_tokens() -> None:
    out = openai_to_anthropic_stream([delta({"content": "a"}), delta({}, "length")])
    assert out[-2][1]["delta"]["stop_reason"] == "max_tokens"


# --- OpenAI ingress -> Anthropic upstream ---------------------------------------------------


def test_anthropic_stream_to_openai_chunks() -> None:
    payloads: list[dict[str, Any]] = [
        {
            "type": "message_start",
            "message": {
                "id": "msg_1",
                "model": "claude",
                "usage": {"input_tokens": 5, "cache_read_input_tokens": 40, "output_tokens": 1},
            },
        },
        {
            "type": "content_block_start",
            "index": 0,
            "content_block": {"type": "thinking", "thinking": ""},
        },
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "thinking_delta", "thinking": "hm"},
        },
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "signature_delta", "signature": "s"},
        },
        {"type": "content_block_stop", "index": 0},
        {"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "Hi"}},
        {"type": "content_block_stop", "index": 1},
        {
            "type": "content_block_start",
            "index": 2,
            "content_block": {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}},
        },
        {
            "type": "content_block_delta",
            "index": 2,
            "delta": {"type": "input_json_delta", "partial_json": '{"a":'},
        },
        {
            "type": "content_block_delta",
            "index": 2,
            "delta": {"type": "input_json_delta", "partial_json": "1}"},
        },
        {"type": "content_block_stop", "index": 2},
        {
            "type": "message_delta",
            "delta": {"stop_reason": "tool_use"},
            "usage": {"output_tokens": 9},
        },
        {"type": "message_stop"},
    ]
    decoder = AnthropicEventDecoder()
    encoder = OpenAIStreamEncoder("r", "served", include_usage=True)
    frames = b""
    for payload in payloads:
        for item in decoder.feed(json.dumps(payload).encode()):
            frames += encoder.feed(item)
    chunks = openai_chunks(frames + encoder.close())
    deltas = [ch["choices"][0]["delta"] for ch in chunks if ch["choices"]]
    assert deltas == [
        {"role": "assistant", "content": ""},
        {"reasoning_content": "hm"},
        {"content": "Hi"},
        {
            "tool_calls": [
                {
                    "index": 0,
                    "id": "toolu_1",
                    "type": "function",
                    "function": {"name": "f", "arguments": ""},
                }
            ]
        },
        {"tool_calls": [{"index": 0, "function": {"arguments": '{"a":'}}]},
        {"tool_calls": [{"index": 0, "function": {"arguments": "1}"}}]},
        {},
    ]
    assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"
    assert chunks[-1]["usage"] == {
        "prompt_tokens": 45,
        "completion_tokens": 9,
        "total_tokens": 54,
        "prompt_tokens_details": {"cached_tokens": 40},
        "completion_tokens_details": {"reasoning_tokens": 0},
    }


# --- Anthropic / OpenAI ingress -> Gemini upstream ------------------------------------------


def test_anthropic_request_to_gemini_body_names_tool_results() -> None:
    request = anthropic_request(system="sys", messages=CLAUDE_HISTORY)
    body = msgspec.to_builtins(canonical_to_gemini_request(request))
    assert body["systemInstruction"] == {"parts": [{"text": "sys"}]}
    model_parts = body["contents"][1]["parts"]
    assert model_parts[0] == {"text": "Reading."}
    assert [p["functionCall"] for p in model_parts[1:]] == [
        {"name": "Read", "args": {"path": "a.py"}, "id": "toolu_1"},
        {"name": "Bash", "args": {"cmd": "ls"}, "id": "toolu_2"},
    ]
    assert body["contents"][2]["parts"] == [
        {"functionResponse": {"name": "Read", "response": {"result": "print(1)"}, "id": "toolu_1"}},
        {
            "functionResponse": {
                "name": "Bash",
                "response": {"error": "permission denied"},
                "id": "toolu_2",
            }
        },
        {"text": "go on"},
    ]


def test_openai_request_to_gemini_body() -> None:
    request = openai_request(
        messages=[
            {"role": "user", "content": "hi"},
            {
                "role": "assistant",
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "f", "arguments": "{}"},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "done"},
        ],
        tool_choice="none",
        tools=[{"type": "function", "function": {"name": "f"}}],
        reasoning_effort="low",
    )
    body = msgspec.to_builtins(canonical_to_gemini_request(request))
    assert body["contents"][2] == {
        "role": "user",
        "parts": [
            {"functionResponse": {"name": "f", "response": {"result": "done"}, "id": "call_1"}}
        ],
    }
    assert body["toolConfig"] == {"functionCallingConfig": {"mode": "NONE"}}
    assert body["generationConfig"] == {
        "thinkingConfig": {"thinkingBudget": 1024, "includeThoughts": True}
    }


# --- regressions ----------------------------------------------------------------------------


def test_regression_tool_use_input_dropped_when_upstream_is_not_anthropic() -> None:
    """Tool inputs survive both ways: history to an OpenAI upstream, and streamed arguments
    back to an Anthropic client (input_json_delta, never an empty input)."""
    body = msgspec.to_builtins(
        canonical_to_openai_request(anthropic_request(messages=CLAUDE_HISTORY), "gpt")
    )
    calls = body["messages"][1]["tool_calls"]
    assert [json.loads(call["function"]["arguments"]) for call in calls] == [
        {"path": "a.py"},
        {"cmd": "ls"},
    ]
    out = openai_to_anthropic_stream(
        [
            delta(
                {
                    "tool_calls": [
                        {
                            "index": 0,
                            "id": "c1",
                            "function": {"name": "Read", "arguments": '{"path": "a.py"}'},
                        }
                    ]
                }
            ),
            delta({}, "tool_calls"),
        ]
    )
    partial = [d["delta"]["partial_json"] for n, d in out if n == "content_block_delta"]
    assert json.loads("".join(partial)) == {"path": "a.py"}


def test_regression_thinking_deltas_emitted_inside_a_text_block() -> None:
    """Reasoning that resumes after text opens a new thinking block; a thinking delta sent at a
    text block's index never lands inside that text block."""
    out = openai_to_anthropic_stream(
        [
            delta({"reasoning_content": "a"}),
            delta({"content": "b"}),
            delta({"reasoning_content": "c"}),
            delta({}, "stop"),
        ]
    )
    opened: dict[int, str] = {}
    for name, data in out:
        if name == "content_block_start":
            opened[data["index"]] = data["content_block"]["type"]
        if name == "content_block_delta":
            kind = data["delta"]["type"]
            assert (
                opened[data["index"]] == {"thinking_delta": "thinking", "text_delta": "text"}[kind]
            )
    assert list(opened.values()) == ["thinking", "text", "thinking"]
    encoder = AnthropicStreamEncoder("r", "m")
    frames = encoder.feed(c.BlockStart(index=0, block=c.TextStart()))
    frames += encoder.feed(c.BlockDelta(index=0, delta=c.TextDelta(text="x")))
    frames += encoder.feed(c.BlockDelta(index=0, delta=c.ThinkingDelta(thinking="y")))
    frames += encoder.close()
    starts = [
        d["content_block"]["type"] for n, d in sse_events(frames) if n == "content_block_start"
    ]
    assert starts == ["text", "thinking"]


def test_regression_gemini_thought_signatures_lost_between_turns() -> None:
    """A signed Gemini function call streamed to an Anthropic client, echoed back as the
    client's next turn, reaches Gemini with its signature on the same part."""
    decoder = GeminiChunkDecoder()
    encoder = AnthropicStreamEncoder("r", "m")
    chunk = {
        "candidates": [
            {
                "content": {
                    "parts": [
                        {
                            "functionCall": {"name": "f", "args": {"a": 1}},
                            "thoughtSignature": SIGNATURE,
                        },
                        {"functionCall": {"name": "g", "args": {}}},
                    ]
                },
                "finishReason": "STOP",
            }
        ]
    }
    frames = b"".join(encoder.feed(item) for item in decoder.feed(json.dumps(chunk).encode()))
    frames += b"".join(encoder.feed(item) for item in decoder.close()) + encoder.close()
    blocks = [d["content_block"] for n, d in sse_events(frames) if n == "content_block_start"]
    assert unpack_tool_id(blocks[0]["id"])[1] == SIGNATURE
    history = [
        {"role": "user", "content": "go"},
        {
            "role": "assistant",
            "content": [{**b, "input": {"a": 1} if b["name"] == "f" else {}} for b in blocks],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": blocks[0]["id"], "content": "1"},
                {"type": "tool_result", "tool_use_id": blocks[1]["id"], "content": "2"},
            ],
        },
    ]
    body = msgspec.to_builtins(canonical_to_gemini_request(anthropic_request(messages=history)))
    parts = body["contents"][1]["parts"]
    assert parts[0]["thoughtSignature"] == SIGNATURE
    assert parts[0]["functionCall"] == {"name": "f", "args": {"a": 1}}
    responses = [p["functionResponse"]["name"] for p in body["contents"][2]["parts"]]
    assert responses == ["f", "g"]


def test_regression_usage_object_whose_shape_breaks_claude_code() -> None:
    """message_start and message_delta both carry every usage field as an int (never null or
    missing), even when the upstream reported no usage at all."""
    encoder = AnthropicStreamEncoder("r", "m")
    frames = encoder.feed(c.MessageStart(id="x", model="m"))
    frames += encoder.feed(c.BlockStart(index=0, block=c.TextStart()))
    frames += encoder.feed(c.BlockDelta(index=0, delta=c.TextDelta(text="x")))
    frames += encoder.close()
    out = dict(sse_events(frames))
    fields = {
        "input_tokens",
        "output_tokens",
        "cache_read_input_tokens",
        "cache_creation_input_tokens",
    }
    for usage in (out["message_start"]["message"]["usage"], out["message_delta"]["usage"]):
        assert set(usage) == fields
        assert all(isinstance(value, int) for value in usage.values())


def test_regression_cached_tokens_dropped_from_streamed_usage() -> None:
    """Cache reads reported only in the final usage chunk reach the Anthropic client; cache
    writes and reads from an Anthropic stream reach the OpenAI client."""
    out = openai_to_anthropic_stream(
        [
            delta({"content": "a"}, "stop"),
            {
                "id": "c",
                "choices": [],
                "usage": {
                    "prompt_tokens": 1000,
                    "completion_tokens": 3,
                    "prompt_tokens_details": {"cached_tokens": 900},
                },
            },
        ]
    )
    assert out[-2][1]["usage"]["cache_read_input_tokens"] == 900
    assert out[-2][1]["usage"]["input_tokens"] == 100
    decoder = AnthropicEventDecoder()
    encoder = OpenAIStreamEncoder("r", "m", include_usage=True)
    frames = b""
    for payload in (
        {
            "type": "message_start",
            "message": {
                "id": "m",
                "model": "c",
                "usage": {
                    "input_tokens": 2,
                    "cache_read_input_tokens": 30,
                    "cache_creation_input_tokens": 8,
                    "output_tokens": 1,
                },
            },
        },
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "x"}},
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn"},
            "usage": {"output_tokens": 4},
        },
        {"type": "message_stop"},
    ):
        for item in decoder.feed(json.dumps(payload).encode()):
            frames += encoder.feed(item)
    usage = openai_chunks(frames + encoder.close())[-1]["usage"]
    assert usage["prompt_tokens"] == 40
    assert usage["prompt_tokens_details"] == {"cached_tokens": 30, "cache_creation_tokens": 8}


def test_parallel_tool_calls_without_index_stay_apart() -> None:
    """Providers that omit tool_calls[].index: a new id starts a new call."""
    out = openai_to_anthropic_stream(
        [
            delta({"tool_calls": [{"id": "a", "function": {"name": "f", "arguments": '{"x":'}}]}),
            delta({"tool_calls": [{"function": {"arguments": "1}"}}]}),
            delta({"tool_calls": [{"id": "b", "function": {"name": "g", "arguments": "{}"}}]}),
            delta({}, "tool_calls"),
        ]
    )
    starts = [d["content_block"]["id"] for n, d in out if n == "content_block_start"]
    assert starts == ["a", "b"]
    args: dict[int, str] = {}
    for name, data in out:
        if name == "content_block_delta":
            args[data["index"]] = args.get(data["index"], "") + data["delta"]["partial_json"]
    assert args == {0: '{"x":1}', 1: "{}"}
