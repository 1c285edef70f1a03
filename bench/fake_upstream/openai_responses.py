"""The OpenAI Responses API (``POST /v1/responses``), which the gateway passes through to a
provider with ``responses_api = true``: answers ``fake responses: <input>``."""

from __future__ import annotations

from typing import Any

from bench.fake_upstream.openai_chat import error
from bench.fake_upstream.scenario import Scenario
from bench.fake_upstream.wire import Event, Reply, Request, json_reply, sse_event, stream_reply

USAGE = {"input_tokens": 7, "output_tokens": 3, "total_tokens": 10,
         "input_tokens_details": {"cached_tokens": 2, "cache_write_tokens": 0},
         "output_tokens_details": {"reasoning_tokens": 0}}


def _event(kind: str, **fields: Any) -> Event:
    return sse_event(kind, {"type": kind, **fields}), kind.endswith(".delta")


def answer(request: Request, s: Scenario) -> Reply:
    """The reply ``s`` asks for, as a Responses API upstream."""
    if s.error:
        return error(s.error)
    body = request.json()
    text = f"fake responses: {body['input']}"
    message = {"type": "message", "id": "msg_up", "role": "assistant", "status": "completed",
               "content": [{"type": "output_text", "text": text, "annotations": []}]}
    final = {"id": "resp_up", "object": "response", "created_at": 1, "status": "completed",
             "model": body["model"] + "-2025", "output": [message], "tools": [],
             "tool_choice": "auto", "parallel_tool_calls": True, "usage": USAGE}
    if not request.probe.stream:
        return json_reply(200, final)
    start = {**final, "status": "in_progress", "output": [], "usage": None}
    where = {"item_id": "msg_up", "output_index": 0}
    return stream_reply([
        _event("response.created", sequence_number=0, response=start),
        _event("response.output_item.added", sequence_number=1, output_index=0,
               item={**message, "status": "in_progress", "content": []}),
        _event("response.content_part.added", sequence_number=2, **where, content_index=0,
               part={"type": "output_text", "text": "", "annotations": []}),
        _event("response.output_text.delta", sequence_number=3, **where, content_index=0,
               delta=text, logprobs=[]),
        _event("response.output_item.done", sequence_number=4, output_index=0, item=message),
        _event("response.completed", sequence_number=5, response=final),
    ], s)
