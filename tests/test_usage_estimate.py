"""Counting usage with the tokenizer when an upstream reports none, in both dialects."""

from __future__ import annotations

import json

import pytest

from adapters.anthropic.client import AnthropicIngress
from adapters.openai.client import OpenAIIngress
from gateway.usage_estimate import SentBodies, count_tokens, estimate_usage

pytestmark = pytest.mark.unit

OPENAI = OpenAIIngress()
ANTHROPIC = AnthropicIngress()


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
    usage = estimate_usage(OPENAI, body, sent)
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
    usage = estimate_usage(ANTHROPIC, body, sent)
    assert usage.input_tokens == count_tokens("Say hello\nBe brief.")
    assert usage.output_tokens == count_tokens("Hello there")


async def test_non_streamed_body_and_the_memory_cap_scales() -> None:
    reply = json.dumps({"choices": [{"message": {"content": "word " * 50}}]}).encode()
    whole = estimate_usage(OPENAI, b"{}", await _sent(reply))
    assert whole.output_tokens == count_tokens("word " * 50)
    frame = sse({"choices": [{"delta": {"content": "word " * 20}}]})
    capped = await _sent(*[frame] * 10, limit=len(frame) * 5)
    assert len(capped.chunks) == 5 and capped.size == len(frame) * 10
    assert estimate_usage(OPENAI, b"{}", capped).output_tokens == 2 * count_tokens("word " * 100)



async def test_each_dialect_counts_tool_arguments_and_reasoning_but_not_errors() -> None:
    body = json.dumps({"model": "m", "messages": [
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c", "type": "function", "function": {"name": "f", "arguments": '{"a":1}'}}]},
        {"role": "tool", "tool_call_id": "c", "content": "one"}]}).encode()
    sent = await _sent(
        sse({"choices": [{"delta": {"reasoning_content": "hmm"}}]}),
        sse({"choices": [{"delta": {"tool_calls": [
            {"index": 0, "function": {"arguments": '{"b":2}'}}]}}]}),
        sse({"error": {"message": "cut"}}),
    )
    usage = estimate_usage(OPENAI, body, sent)
    assert usage.input_tokens == count_tokens('{"a":1}\none')
    assert usage.output_tokens == count_tokens('hmm{"b":2}')
    events = await _sent(
        sse({"type": "content_block_delta", "index": 0,
             "delta": {"type": "input_json_delta", "partial_json": '{"b":'}}, "x"),
        sse({"type": "error", "error": {"type": "api_error", "message": "cut"}}, "error"),
    )
    answer = estimate_usage(ANTHROPIC, b'{"messages": [], "system": "s"}', events)
    assert (answer.input_tokens, answer.output_tokens) == (count_tokens("s"), count_tokens('{"b":'))
