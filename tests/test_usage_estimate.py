"""Counting usage with the tokenizer when an upstream reports none, in both dialects."""

from __future__ import annotations

import json

import pytest

from gateway.usage_estimate import SentBodies, count_tokens, estimate_usage

pytestmark = pytest.mark.unit


async def _sent(*chunks: bytes, limit: int = 256 * 1024) -> SentBodies:
    async def send(message: object) -> None:
        return None

    recorder = SentBodies(send, limit)
    for chunk in chunks:
        await recorder({"type": "http.response.body", "body": chunk, "more_body": True})
    return recorder


def sse(payload: object, event: str = "") -> bytes:
    head = f"event: {event}\n".encode() if event else b""
    return head + b"data: " + json.dumps(payload).encode() + b"\n\n"


async def test_openai_stream_frames() -> None:
    body = json.dumps({"model": "m", "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "Say hello"}]}]}).encode()
    sent = await _sent(
        sse({"choices": [{"delta": {"role": "assistant", "content": ""}}], "model": "m"}),
        sse({"choices": [{"delta": {"content": "Hello"}}]}) + sse(
            {"choices": [{"delta": {"content": " there"}}]}),
        b"data: [DONE]\n\n",
    )
    usage = estimate_usage(body, sent)
    assert usage.input_tokens == count_tokens("Be brief.\nSay hello")
    assert usage.output_tokens == count_tokens("Hello there")


async def test_anthropic_request_and_frames() -> None:
    body = json.dumps({"model": "m", "max_tokens": 5, "system": "Be brief.",
                       "messages": [{"role": "user", "content": "Say hello"}]}).encode()
    sent = await _sent(
        sse({"type": "message_start", "message": {"content": [], "model": "m"}},
            "message_start"),
        sse({"type": "content_block_delta", "index": 0,
             "delta": {"type": "text_delta", "text": "Hello there"}}, "content_block_delta"),
    )
    usage = estimate_usage(body, sent)
    assert usage.input_tokens == count_tokens("Say hello\nBe brief.")
    assert usage.output_tokens == count_tokens("Hello there")


async def test_non_streamed_body_and_the_memory_cap_scales() -> None:
    reply = json.dumps({"choices": [{"message": {"content": "word " * 50}}]}).encode()
    assert estimate_usage(b"{}", await _sent(reply)).output_tokens == count_tokens("word " * 50)
    frame = sse({"choices": [{"delta": {"content": "word " * 20}}]})
    capped = await _sent(*[frame] * 10, limit=len(frame) * 5)
    assert len(capped.chunks) == 5 and capped.size == len(frame) * 10
    assert estimate_usage(b"{}", capped).output_tokens == 2 * count_tokens("word " * 100)

