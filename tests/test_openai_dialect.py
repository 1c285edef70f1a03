"""Pure tests of the OpenAI dialect and the canonical model: no I/O, golden pairs."""

from __future__ import annotations

import json

import msgspec
import pytest

from adapters import canonical as c
from adapters.errors import ProviderHTTPError, ProviderProtocolError
from adapters.openai.client import openai_to_canonical
from adapters.openai.encode import OpenAIPassthrough, OpenAIStreamEncoder, inspect_openai_response
from adapters.openai.upstream import (
    OpenAIChunkDecoder,
    canonical_to_openai_request,
    openai_response_to_canonical,
)
from adapters.openai.wire import ChatRequest

pytestmark = pytest.mark.unit


def request(body: dict[str, object]) -> ChatRequest:
    return msgspec.convert(body, ChatRequest)


def test_openai_request_to_canonical_and_back() -> None:
    body = {
        "model": "m",
        "messages": [
            {"role": "system", "content": "sys"},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "look"},
                    {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,QUJD"}},
                ],
            },
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "c1",
                        "type": "function",
                        "function": {"name": "f", "arguments": '{"a": 1}'},
                    },
                    {"id": "c2", "type": "function", "function": {"name": "g", "arguments": "{}"}},
                ],
            },
            {"role": "tool", "tool_call_id": "c1", "content": "one"},
            {"role": "tool", "tool_call_id": "c2", "content": "two"},
        ],
        "tools": [
            {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
        ],
        "tool_choice": "required",
        "max_tokens": 50,
        "stop": "END",
        "reasoning_effort": "high",
    }
    canonical = openai_to_canonical(request(body))
    assert canonical.system == [c.TextBlock(text="sys")]
    assert [m.role for m in canonical.messages] == ["user", "assistant", "user"]
    image = canonical.messages[0].content[1]
    assert image == c.ImageBlock(data="QUJD", media_type="image/jpeg")
    calls = canonical.messages[1].content
    assert calls[0] == c.ToolUseBlock(id="c1", name="f", input={"a": 1})
    results = canonical.messages[2].content
    assert [r.tool_use_id for r in results if isinstance(r, c.ToolResultBlock)] == ["c1", "c2"]
    assert canonical.stop == ["END"] and canonical.max_tokens == 50
    assert canonical.tool_choice == c.ToolChoice(mode="required")
    assert canonical.reasoning == c.Reasoning(effort="high")

    back = msgspec.to_builtins(canonical_to_openai_request(canonical, "upstream-model"))
    assert back["model"] == "upstream-model"
    assert back["messages"][0] == {"role": "system", "content": "sys"}
    assert back["messages"][1]["content"][1]["image_url"]["url"] == "data:image/jpeg;base64,QUJD"
    assert back["messages"][2]["tool_calls"][0]["function"] == {"name": "f", "arguments": '{"a":1}'}
    assert back["messages"][3] == {"role": "tool", "tool_call_id": "c1", "content": "one"}
    assert back["messages"][4] == {"role": "tool", "tool_call_id": "c2", "content": "two"}
    assert back["tool_choice"] == "required" and back["reasoning_effort"] == "high"


def test_stream_encoder_emits_openai_chunks_and_usage_only_when_asked() -> None:
    encoder = OpenAIStreamEncoder("abc", "served/model", include_usage=True)
    events: list[c.StreamEvent] = [
        c.MessageStart(id="abc", model="x"),
        c.BlockStart(index=0, block=c.ThinkingStart()),
        c.BlockDelta(index=0, delta=c.ThinkingDelta(thinking="hmm")),
        c.BlockStop(index=0),
        c.BlockStart(index=1, block=c.TextStart()),
        c.BlockDelta(index=1, delta=c.TextDelta(text='say "hi"')),
        c.BlockStart(index=2, block=c.ToolUseStart(id="t1", name="f")),
        c.BlockDelta(index=2, delta=c.ToolArgsDelta(partial_json='{"a"')),
        c.UsageUpdate(usage=c.Usage(input_tokens=5, output_tokens=3, cache_read_tokens=2)),
        c.Finish(stop_reason="tool_use"),
    ]
    frames = b"".join(encoder.feed(e) for e in events) + encoder.close()
    payloads = [json.loads(f[6:]) for f in frames.split(b"\n\n") if f.startswith(b"data: {")]
    assert all(p["model"] == "served/model" and p["id"] == "chatcmpl-abc" for p in payloads)
    deltas = [p["choices"][0]["delta"] for p in payloads if p["choices"]]
    assert deltas[0] == {"role": "assistant", "content": ""}
    assert {"reasoning_content": "hmm"} in deltas
    assert {"content": 'say "hi"'} in deltas
    assert {
        "tool_calls": [
            {"index": 0, "id": "t1", "type": "function", "function": {"name": "f", "arguments": ""}}
        ]
    } in deltas
    assert {"tool_calls": [{"index": 0, "function": {"arguments": '{"a"'}}]} in deltas
    assert payloads[-2]["choices"][0]["finish_reason"] == "tool_calls"
    assert payloads[-1]["usage"]["prompt_tokens_details"]["cached_tokens"] == 2
    assert frames.endswith(b"data: [DONE]\n\n")
    assert encoder.committed

    quiet = OpenAIStreamEncoder("abc", "m", include_usage=False)
    quiet.feed(c.UsageUpdate(usage=c.Usage(input_tokens=1)))
    assert quiet.close() == b"data: [DONE]\n\n"
    assert quiet.usage == c.Usage(input_tokens=1)


def chunk(
    delta: dict[str, object] | None, usage: dict[str, object] | None = None, model: str = "up-1",
    finish: str | None = None,
) -> bytes:
    choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
    payload: dict[str, object] = {"id": "x", "model": model, "choices": choices}
    if usage is not None:
        payload["usage"] = usage
    return b"data: " + json.dumps(payload, separators=(",", ":")).encode()


def test_passthrough_commits_at_first_content_and_hides_unrequested_usage() -> None:
    passthrough = OpenAIPassthrough("catalog/id", include_usage=False)
    role = passthrough.feed(chunk({"role": "assistant", "content": ""}))
    assert not passthrough.committed and b'"model":"catalog/id"' in role
    passthrough.feed(chunk({"content": "hi"}))
    assert passthrough.committed
    usage = {
        "prompt_tokens": 3,
        "completion_tokens": 1,
        "prompt_tokens_details": {"cached_tokens": 2},
    }
    assert passthrough.feed(chunk(None, usage)) == b""
    assert passthrough.usage == c.Usage(input_tokens=3, output_tokens=1, cache_read_tokens=2)
    assert passthrough.feed(b"data: [DONE]") == b""
    assert passthrough.close() == b"data: [DONE]\n\n"


def test_passthrough_leaves_content_that_looks_like_the_model_name_alone() -> None:
    passthrough = OpenAIPassthrough("catalog/id", include_usage=True)
    frame = passthrough.feed(chunk({"content": 'the model is "up-1"'}))
    assert json.loads(frame[6:])["choices"][0]["delta"]["content"] == 'the model is "up-1"'
    assert json.loads(frame[6:])["model"] == "catalog/id"


def test_passthrough_rejects_malformed_chunks_and_raises_mid_stream_errors() -> None:
    with pytest.raises(ProviderProtocolError):
        OpenAIPassthrough("m", False).feed(b"data: {not json")
    with pytest.raises(ProviderHTTPError, match="overloaded"):
        OpenAIPassthrough("m", False).feed(b'data: {"error": {"message": "overloaded"}}')


def test_chunk_decoder_separates_blocks() -> None:
    decoder = OpenAIChunkDecoder()
    events: list[c.StreamEvent] = []
    for data in (
        chunk({"role": "assistant", "content": ""}),
        chunk({"reasoning_content": "think"}),
        chunk({"content": "text"}),
        chunk(
            {"tool_calls": [{"index": 0, "id": "a", "function": {"name": "f", "arguments": "{"}}]}
        ),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": "}"}}]}),
        chunk(
            {"tool_calls": [{"index": 1, "id": "b", "function": {"name": "g", "arguments": "{}"}}]}
        ),
        chunk(None, {"prompt_tokens": 1, "completion_tokens": 2}),
    ):
        events.extend(decoder.feed(data[6:]))
    events.extend(decoder.feed(b"[DONE]"))
    kinds = [(type(e).__name__, getattr(e, "index", None)) for e in events]
    assert kinds == [
        ("MessageStart", None),
        ("BlockStart", 0),
        ("BlockDelta", 0),
        ("BlockStop", 0),
        ("BlockStart", 1),
        ("BlockDelta", 1),
        ("BlockStop", 1),
        ("BlockStart", 2),
        ("BlockDelta", 2),
        ("BlockDelta", 2),
        ("BlockStop", 2),
        ("BlockStart", 3),
        ("BlockDelta", 3),
        ("UsageUpdate", None),
        ("BlockStop", 3),
        ("Finish", None),
    ]


def test_chunk_decoder_text_run_keeps_its_block_and_what_rides_with_it() -> None:
    """Text after text stays in its block; text after reasoning opens a new one; a finish
    reason or a second kind of content in a text chunk is not lost."""
    decoder = OpenAIChunkDecoder()
    events: list[c.StreamEvent] = []
    for data in (
        chunk({"role": "assistant", "content": "a"}),
        chunk({"content": "b"}),
        chunk({"content": "c", "reasoning_content": "r"}),
        chunk({"content": "d"}),
        chunk({"content": "e"}, finish="length"),
    ):
        events.extend(decoder.feed(data[6:]))
    events.extend(decoder.feed(b"[DONE]"))
    shown = [(type(e).__name__, getattr(e, "index", None),
              getattr(getattr(e, "delta", None), "text", None)
              or getattr(getattr(e, "delta", None), "thinking", None)) for e in events]
    assert shown == [
        ("MessageStart", None, None),
        ("BlockStart", 0, None), ("BlockDelta", 0, "a"), ("BlockDelta", 0, "b"),
        ("BlockStop", 0, None), ("BlockStart", 1, None), ("BlockDelta", 1, "r"),
        ("BlockStop", 1, None), ("BlockStart", 2, None), ("BlockDelta", 2, "c"),
        ("BlockDelta", 2, "d"), ("BlockDelta", 2, "e"),
        ("BlockStop", 2, None), ("Finish", None, None),
    ]
    assert isinstance(events[-1], c.Finish) and events[-1].stop_reason == "max_tokens"


def test_response_inspection_and_conversion() -> None:
    body = json.dumps(
        {
            "id": "chatcmpl-1",
            "model": "up-1",
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "length",
                    "message": {"role": "assistant", "content": "hi", "reasoning_content": "r"},
                }
            ],
            "usage": {
                "prompt_tokens": 7,
                "completion_tokens": 2,
                "completion_tokens_details": {"reasoning_tokens": 1},
            },
        }
    ).encode()
    renamed, usage = inspect_openai_response(body, "catalog/id")
    assert json.loads(renamed)["model"] == "catalog/id"
    assert usage == c.Usage(input_tokens=7, output_tokens=2, reasoning_tokens=1)
    response = openai_response_to_canonical(body)
    assert response.content == [c.ThinkingBlock(thinking="r"), c.TextBlock(text="hi")]
    assert response.stop_reason == "max_tokens"


def test_is_content_marks_the_commit_point() -> None:
    assert not c.is_content(c.MessageStart(id="a", model="m"))
    assert not c.is_content(c.BlockStart(index=0, block=c.TextStart()))
    assert c.is_content(c.BlockStart(index=0, block=c.ToolUseStart(id="t", name="f")))
    assert c.is_content(c.BlockDelta(index=0, delta=c.TextDelta(text="x")))
