"""Anthropic Messages (``POST /v1/messages``, whole and streamed) and ``count_tokens``."""

from __future__ import annotations

import json
from typing import Any

from bench.fake_upstream.scenario import Scenario
from bench.fake_upstream.wire import (
    Event,
    Reply,
    Request,
    answer_text,
    json_reply,
    last_user_text,
    sse_event,
    stream_reply,
    stream_words,
)

SIGNATURE = "EqQBCkYIARgCKkBzaWduYXR1cmUtb2YtYW50aHJvcGlj"
USAGE = {"input_tokens": 10, "cache_read_input_tokens": 20, "cache_creation_input_tokens": 5}
_KINDS = {429: "rate_limit_error", 400: "invalid_request_error"}


def message(model: str, content: list[dict[str, Any]], usage: dict[str, Any], *,
            stop: str | None = "end_turn", reply_id: str = "msg_fake") -> dict[str, Any]:
    """A ``message`` body; with ``content=[]`` and ``stop=None`` it is a stream's start."""
    return {"id": reply_id, "type": "message", "role": "assistant", "model": model,
            "content": content, "stop_reason": stop, "stop_sequence": None, "usage": usage}


def error(status: int, text: str | None = None) -> Reply:
    """The Anthropic error body."""
    kind = _KINDS.get(status, "api_error")
    body = {"type": "error", "error": {"type": kind,
                                       "message": text or f"fake anthropic error {status}"}}
    return json_reply(status, body)


def count_tokens(request: Request, s: Scenario) -> Reply:
    """``/v1/messages/count_tokens``: always 4242 (``error<N>`` answers a 500)."""
    return error(500, "fake count error") if s.error else json_reply(200, {"input_tokens": 4242})


def _tool_results(content: Any) -> list[str]:
    if not isinstance(content, list):
        return []
    texts = []
    for block in content:
        if block.get("type") != "tool_result":
            continue
        inner = block.get("content")
        text = inner if isinstance(inner, str) else "".join(b.get("text", "") for b in inner or [])
        texts.append(("ERROR " if block.get("is_error") else "") + text)
    return texts


def _blocks(s: Scenario, body: dict[str, Any]) -> list[dict[str, Any]]:
    messages = body.get("messages", [])
    results = _tool_results(messages[-1].get("content")) if messages else []
    if s.has("tools") and not results:
        return [{"type": "tool_use", "id": "toolu_a", "name": "get_weather",
                 "input": {"city": "Paris"}},
                {"type": "tool_use", "id": "toolu_b", "name": "get_time", "input": {"tz": "CET"}}]
    text = f"results: {' | '.join(results)}" if results else answer_text(
        s, last_user_text(messages))
    blocks: list[dict[str, Any]] = []
    if s.has("thinking"):
        blocks.append({"type": "thinking", "thinking": "let me think", "signature": SIGNATURE})
    blocks.append({"type": "text", "text": text})
    return blocks


def answer(request: Request, s: Scenario) -> Reply:
    """The reply ``s`` asks for, in the Messages dialect."""
    if s.error:
        return error(s.error)
    blocks = _blocks(s, {} if s.cacheable else request.json())
    stop = "tool_use" if any(b["type"] == "tool_use" for b in blocks) else "end_turn"
    words = sum(len(b.get("text", "").split()) for b in blocks) or 1
    model = request.probe.model + "-20250929"
    if not request.probe.stream:
        return json_reply(200, message(model, blocks, {**USAGE, "output_tokens": words},
                                       stop=stop))
    start = message(model, [], {**USAGE, "output_tokens": 1}, stop=None)
    events: list[Event] = [(sse_event("message_start",
                                      {"type": "message_start", "message": start}), False)]
    for index, block in enumerate(blocks):
        events += _block_events(index, block, s)
        if s.has("overloaded"):
            overloaded = {"type": "overloaded_error", "message": "Overloaded"}
            events.append((sse_event("error", {"type": "error", "error": overloaded}), False))
            return stream_reply(events, s)
        if s.has("truncated"):
            return stream_reply(events, s)  # a clean end of the body, but no message_stop
    delta = {"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": None},
             "usage": {"output_tokens": words}}
    events.append((sse_event("message_delta", delta), False))
    events.append((sse_event("message_stop", {"type": "message_stop"}), False))
    return stream_reply(events, s)


def _block_events(index: int, block: dict[str, Any], s: Scenario) -> list[Event]:
    kind = block["type"]
    empty = {"text": {"type": "text", "text": ""},
             "thinking": {"type": "thinking", "thinking": "", "signature": ""},
             "tool_use": {**block, "input": {}}}[kind]
    events: list[Event] = [(sse_event("content_block_start", {
        "type": "content_block_start", "index": index, "content_block": empty}), False)]
    if index == 0:
        events.append((sse_event("ping", {"type": "ping"}), False))
    if kind == "text":
        deltas = [{"type": "text_delta", "text": w}
                  for w in stream_words(block["text"], s, leading=True)]
    elif kind == "thinking":
        deltas = [{"type": "thinking_delta", "thinking": block["thinking"]},
                  {"type": "signature_delta", "signature": block["signature"]}]
    else:
        arguments = json.dumps(block["input"])
        deltas = [{"type": "input_json_delta", "partial_json": part}
                  for part in ("", arguments[:6], arguments[6:])]
    events += [(sse_event("content_block_delta", {
        "type": "content_block_delta", "index": index, "delta": delta}), True)
        for delta in deltas]
    events.append((sse_event("content_block_stop",
                             {"type": "content_block_stop", "index": index}), False))
    return events
