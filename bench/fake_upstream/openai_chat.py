"""OpenAI chat completions (``POST /v1/chat/completions``), whole and streamed."""

from __future__ import annotations

from typing import Any

from bench.fake_upstream.scenario import Scenario
from bench.fake_upstream.wire import (
    DONE,
    Event,
    Reply,
    Request,
    answer_text,
    json_reply,
    last_user_text,
    sse_data,
    stream_reply,
    stream_words,
)

CREATED = 1700000000
TOOL_CALLS: list[dict[str, Any]] = [
    {"id": "call_a", "type": "function",
     "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}},
    {"id": "call_b", "type": "function",
     "function": {"name": "get_time", "arguments": '{"tz": "CET"}'}},
]


def completion(model: str, message: dict[str, Any], usage: dict[str, Any], *,
               finish: str = "stop", reply_id: str = "chatcmpl-fake") -> dict[str, Any]:
    """A non-streamed ``chat.completion`` body with one choice."""
    return {"id": reply_id, "object": "chat.completion", "created": CREATED, "model": model,
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": usage}


def chunk(model: str, delta: dict[str, Any] | None, finish: str | None = None, *,
          usage: dict[str, Any] | None = None, reply_id: str = "chatcmpl-fake") -> dict[str, Any]:
    """One ``chat.completion.chunk``; ``delta=None`` gives the choiceless usage chunk."""
    choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
    body: dict[str, Any] = {"id": reply_id, "object": "chat.completion.chunk",
                            "created": CREATED, "model": model, "choices": choices}
    if usage is not None:
        body["usage"] = usage
    return body


def error(status: int) -> Reply:
    """The OpenAI error body; a 429 says ``Retry-After: 1``."""
    headers = {"retry-after": "1"} if status == 429 else None
    body = {"error": {"message": f"fake upstream error {status}", "type": "fake"}}
    return json_reply(status, body, headers)


def _context_error() -> Reply:
    return json_reply(400, {"error": {
        "message": "This model's maximum context length is 8192 tokens.",
        "type": "invalid_request_error", "code": "context_length_exceeded"}})


def _tool_results(body: dict[str, Any]) -> list[str]:
    results: list[str] = []
    for message in reversed(body.get("messages", [])):
        if message.get("role") != "tool":
            break
        results.insert(0, str(message.get("content")))
    return results


def answer(request: Request, s: Scenario) -> Reply:
    """The reply ``s`` asks for, in the chat-completions dialect."""
    if s.error:
        return error(s.error)
    if s.has("context"):
        return _context_error()
    body = {} if s.cacheable else request.json()
    model = request.probe.model + "-2025"
    results = _tool_results(body) if s.has("tools") else []
    calls = s.has("tools") and not results
    text = "results: " + " | ".join(results) if results else answer_text(
        s, last_user_text(body.get("messages", [])))
    words = len(text.split())
    usage = {"prompt_tokens": 10, "completion_tokens": words, "total_tokens": 10 + words,
             "prompt_tokens_details": {"cached_tokens": 4},
             "completion_tokens_details": {"reasoning_tokens": 0}}
    if not request.probe.stream:
        message: dict[str, Any] = {"role": "assistant", "content": text}
        if calls:
            message = {"role": "assistant", "content": None, "tool_calls": TOOL_CALLS}
        if s.has("reasoning"):
            message["reasoning_content"] = "thinking it over"
        return json_reply(200, completion(model, message, usage,
                                          finish="tool_calls" if calls else "stop"))
    events: list[Event] = [(sse_data(chunk(model, {"role": "assistant", "content": ""})), False)]
    events += [(sse_data(chunk(model, delta)), True) for delta in _deltas(s, text, calls)]
    if not s.has("truncated"):
        events.append((sse_data(chunk(model, {}, "tool_calls" if calls else "stop")), False))
        if request.probe.include_usage:
            events.append((sse_data(chunk(model, None, usage=usage)), False))
        events.append((DONE, False))
    return stream_reply(events, s)


def _deltas(s: Scenario, text: str, calls: bool) -> list[dict[str, Any]]:
    if calls:
        deltas: list[dict[str, Any]] = []
        for index, call in enumerate(TOOL_CALLS):
            function = call["function"]
            deltas.append({"tool_calls": [{"index": index, "id": call["id"], "type": "function",
                                           "function": {"name": function["name"],
                                                        "arguments": ""}}]})
            arguments = function["arguments"]
            deltas += [{"tool_calls": [{"index": index, "function": {"arguments": part}}]}
                       for part in (arguments[:5], arguments[5:])]
        return deltas
    reasoning = ["thinking ", "it ", "over"] if s.has("reasoning") else []
    return [{"reasoning_content": word} for word in reasoning] + [
        {"content": word} for word in stream_words(text, s)]
