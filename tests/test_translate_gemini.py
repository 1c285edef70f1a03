"""Golden, pure translation tests for the Gemini dialect: canonical -> generateContent body,
answers and stream chunks -> canonical, thought signatures and usage."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest

from adapters import canonical as c
from adapters.errors import ProviderConnectionError, ProviderHTTPError
from adapters.gemini.upstream import (
    SKIP_SIGNATURE,
    GeminiChunkDecoder,
    canonical_to_gemini_request,
    gemini_response_to_canonical,
    pack_tool_id,
    unpack_tool_id,
)

pytestmark = pytest.mark.unit

SIGNATURE = "CiQB+/z9Q2lnbmF0dXJlcw=="


@pytest.mark.parametrize(
    ("mode", "expected"), [("auto", "AUTO"), ("none", "NONE"), ("required", "ANY")]
)
def test_tool_choice_modes(mode: Any, expected: str) -> None:
    request = c.Request(
        model="m", messages=[], tools=[c.Tool(name="f")], tool_choice=c.ToolChoice(mode=mode)
    )
    assert msgspec.to_builtins(canonical_to_gemini_request(request))["toolConfig"] == {
        "functionCallingConfig": {"mode": expected}
    }


def test_pack_and_unpack_tool_id_round_trip_with_id_safe_characters() -> None:
    packed = pack_tool_id("call_1", SIGNATURE)
    assert all(ch.isalnum() or ch in "_-" for ch in packed)
    assert unpack_tool_id(packed) == ("call_1", SIGNATURE)
    assert unpack_tool_id("call_plain") == ("call_plain", "")
    assert pack_tool_id("call_1", "") == "call_1"


def test_response_to_canonical_with_thoughts_calls_and_usage() -> None:
    body = {
        "candidates": [
            {
                "content": {
                    "role": "model",
                    "parts": [
                        {"text": "pondering", "thought": True},
                        {"text": "answer"},
                        {
                            "functionCall": {"name": "f", "args": {"a": 1}, "id": "fc1"},
                            "thoughtSignature": SIGNATURE,
                        },
                    ],
                },
                "finishReason": "STOP",
            }
        ],
        "usageMetadata": {
            "promptTokenCount": 100,
            "candidatesTokenCount": 20,
            "cachedContentTokenCount": 60,
            "thoughtsTokenCount": 30,
            "totalTokenCount": 150,
        },
        "modelVersion": "gemini-2.5-flash",
        "responseId": "r1",
    }
    response = gemini_response_to_canonical(json.dumps(body).encode())
    assert response == c.Response(
        id="r1",
        model="gemini-2.5-flash",
        content=[
            c.ThinkingBlock(thinking="pondering"),
            c.TextBlock(text="answer"),
            c.ToolUseBlock(
                id=pack_tool_id("fc1", SIGNATURE), name="f", input={"a": 1}, signature=SIGNATURE
            ),
        ],
        stop_reason="tool_use",
        usage=c.Usage(
            input_tokens=100, output_tokens=50, cache_read_tokens=60, reasoning_tokens=30
        ),
    )


@pytest.mark.parametrize(
    ("finish", "expected"),
    [
        ("STOP", "end_turn"),
        ("MAX_TOKENS", "max_tokens"),
        ("SAFETY", "refusal"),
        ("OTHER", "end_turn"),
    ],
)
def test_finish_reasons(finish: str, expected: str) -> None:
    body = {"candidates": [{"content": {"parts": [{"text": "x"}]}, "finishReason": finish}]}
    assert gemini_response_to_canonical(json.dumps(body).encode()).stop_reason == expected


def test_error_body_inside_a_stream_raises() -> None:
    body = {"error": {"code": 503, "message": "model overloaded", "status": "UNAVAILABLE"}}
    with pytest.raises(ProviderHTTPError) as caught:
        GeminiChunkDecoder().feed(json.dumps(body).encode())
    assert caught.value.status == 503


def test_stream_decoder_golden() -> None:
    chunks: list[dict[str, Any]] = [
        {
            "candidates": [{"content": {"parts": [{"text": "hm", "thought": True}]}}],
            "modelVersion": "g",
            "responseId": "r",
        },
        {"candidates": [{"content": {"parts": [{"text": "Hel"}]}}]},
        {"candidates": [{"content": {"parts": [{"text": "lo"}]}}]},
        {
            "candidates": [
                {
                    "content": {
                        "parts": [
                            {
                                "functionCall": {"name": "f", "args": {"a": 1}},
                                "thoughtSignature": SIGNATURE,
                            }
                        ]
                    },
                    "finishReason": "STOP",
                }
            ],
            "usageMetadata": {
                "promptTokenCount": 5,
                "candidatesTokenCount": 3,
                "cachedContentTokenCount": 2,
            },
        },
    ]
    decoder = GeminiChunkDecoder()
    out: list[c.StreamEvent] = []
    for chunk in chunks:
        out.extend(decoder.feed(json.dumps(chunk).encode()))
    out.extend(decoder.close())
    tool_start = out[8]
    assert isinstance(tool_start, c.BlockStart) and isinstance(tool_start.block, c.ToolUseStart)
    call_id = tool_start.block.id
    assert unpack_tool_id(call_id)[1] == SIGNATURE
    assert out == [
        c.MessageStart(id="r", model="g"),
        c.BlockStart(index=0, block=c.ThinkingStart()),
        c.BlockDelta(index=0, delta=c.ThinkingDelta(thinking="hm")),
        c.BlockStop(index=0),
        c.BlockStart(index=1, block=c.TextStart()),
        c.BlockDelta(index=1, delta=c.TextDelta(text="Hel")),
        c.BlockDelta(index=1, delta=c.TextDelta(text="lo")),
        c.BlockStop(index=1),
        c.BlockStart(index=2, block=c.ToolUseStart(id=call_id, name="f", signature=SIGNATURE)),
        c.BlockDelta(index=2, delta=c.ToolArgsDelta(partial_json='{"a":1}')),
        c.BlockStop(index=2),
        c.UsageUpdate(usage=c.Usage(input_tokens=5, output_tokens=3, cache_read_tokens=2)),
        c.Finish(stop_reason="tool_use"),
    ]


def test_unsigned_first_call_gets_the_documented_placeholder() -> None:
    request = c.Request(
        model="m",
        messages=[
            c.Message(
                role="assistant",
                content=[
                    c.ToolUseBlock(id="toolu_1", name="f"),
                    c.ToolUseBlock(id="toolu_2", name="g"),
                ],
            )
        ],
    )
    parts = msgspec.to_builtins(canonical_to_gemini_request(request))["contents"][0]["parts"]
    assert [part.get("thoughtSignature") for part in parts] == [SKIP_SIGNATURE, None]


def test_stream_without_a_finish_reason_was_cut() -> None:
    decoder = GeminiChunkDecoder()
    decoder.feed(json.dumps({"candidates": [{"content": {"parts": [{"text": "a"}]}}]}).encode())
    with pytest.raises(ProviderConnectionError):
        decoder.close()
