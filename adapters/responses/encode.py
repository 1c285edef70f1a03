"""Answers written back to a Responses API caller: the ``response`` object and its items.

``canonical_to_responses`` encodes a canonical answer; ``output_items`` turns answer blocks into
output items (a ``message`` with ``output_text`` per text block, a ``function_call`` per tool
use, a ``reasoning`` item with a summary per thinking block); ``response_object`` is the
envelope the stream encoder (``adapters.responses.stream``) sends at its start and end too.
The shapes are those the official openai SDK's ``openai.types.responses`` models read.
"""

from __future__ import annotations

import time
from typing import Any

import msgspec

from adapters import canonical as c
from adapters.base import inspect_reply
from adapters.errors import CallerError
from adapters.responses.wire import InputDetails, OutputDetails, UsageWire

Item = dict[str, Any]

# Request fields the response object repeats back, with the value when the caller set none.
ECHOED: dict[str, Any] = {
    "instructions": None,
    "max_output_tokens": None,
    "metadata": {},
    "parallel_tool_calls": True,
    "previous_response_id": None,
    "temperature": None,
    "tool_choice": "auto",
    "tools": [],
    "top_p": None,
}


def response_id(request_id: str) -> str:
    """The ``resp_…`` id of the answer to request ``request_id``."""
    return request_id if request_id.startswith("resp_") else f"resp_{request_id}"


def echoed(raw: Any) -> dict[str, Any]:
    """The request fields a response object repeats, read from the caller's body."""
    if not isinstance(raw, dict):
        return dict(ECHOED)
    return {key: raw[key] if raw.get(key) is not None else default
            for key, default in ECHOED.items()}


def canonical_usage_to_responses(usage: c.Usage) -> UsageWire:
    """Canonical usage as a Responses ``usage`` object."""
    return UsageWire(
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        total_tokens=usage.total_tokens,
        input_tokens_details=InputDetails(cached_tokens=usage.cache_read_tokens,
                                          cache_write_tokens=usage.cache_creation_tokens),
        output_tokens_details=OutputDetails(reasoning_tokens=usage.reasoning_tokens),
    )


def responses_usage_to_canonical(usage: UsageWire) -> c.Usage:
    """A Responses upstream's ``usage`` in canonical form."""
    return c.Usage(
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        cache_read_tokens=usage.input_tokens_details.cached_tokens,
        cache_creation_tokens=usage.input_tokens_details.cache_write_tokens,
        reasoning_tokens=usage.output_tokens_details.reasoning_tokens,
    )


def text_part(text: str) -> Item:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def message_item(item_id: str, text: str, status: str = "completed") -> Item:
    content = [text_part(text)] if status == "completed" else []
    return {"type": "message", "id": item_id, "role": "assistant", "status": status,
            "content": content}


def function_call_item(item_id: str, call_id: str, name: str, arguments: str,
                       status: str = "completed") -> Item:
    return {"type": "function_call", "id": item_id, "call_id": call_id, "name": name,
            "arguments": arguments, "status": status}


def reasoning_item(item_id: str, summary: str | None) -> Item:
    parts = [] if summary is None else [{"type": "summary_text", "text": summary}]
    return {"type": "reasoning", "id": item_id, "summary": parts}


def output_items(blocks: list[c.ContentBlock], rid: str) -> list[Item]:
    """Canonical answer blocks as Responses output items, ids derived from ``rid``."""
    items: list[Item] = []
    for block in blocks:
        item_id = f"{len(items)}_{rid.removeprefix('resp_')}"
        if isinstance(block, c.TextBlock):
            items.append(message_item(f"msg_{item_id}", block.text))
        elif isinstance(block, c.ToolUseBlock):
            arguments = msgspec.json.encode(block.input).decode()
            items.append(function_call_item(f"fc_{item_id}", block.id, block.name, arguments))
        elif isinstance(block, c.ThinkingBlock):
            items.append(reasoning_item(f"rs_{item_id}", block.thinking))
    return items


def response_object(
    rid: str,
    model: str,
    created_at: int,
    *,
    status: str,
    output: list[Item],
    echo: dict[str, Any] | None = None,
    usage: c.Usage | None = None,
    stop_reason: str | None = None,
    error: dict[str, Any] | None = None,
) -> Item:
    """The ``response`` object: ``status`` in_progress, completed, incomplete or failed."""
    incomplete = None
    if stop_reason == "max_tokens" and status == "completed":
        status, incomplete = "incomplete", {"reason": "max_output_tokens"}
    body: Item = {
        "id": rid,
        "object": "response",
        "created_at": created_at,
        "status": status,
        "model": model,
        "output": output,
        "error": error,
        "incomplete_details": incomplete,
        **(echo if echo is not None else ECHOED),
        "usage": None if usage is None else msgspec.to_builtins(
            canonical_usage_to_responses(usage)),
    }
    return body


def canonical_to_responses(response: c.Response, model: str) -> Item:
    """A canonical answer as a Responses ``response`` object naming ``model``."""
    rid = response_id(response.id)
    return response_object(
        rid, model, int(time.time()), status="completed",
        output=output_items(response.content, rid), usage=response.usage,
        stop_reason=response.stop_reason,
    )


_encode = msgspec.json.encode


def error_code(error: CallerError) -> str:
    """The ``code`` of a Responses error event or failed response."""
    if error.code:
        return error.code
    return "rate_limit_exceeded" if error.status == 429 else "server_error"


def error_fields(error: CallerError) -> dict[str, Any]:
    """The fields of an ``error`` event (the SDK yields it as a ``ResponseErrorEvent``)."""
    return {"code": error_code(error), "message": error.message, "param": error.param}


def failure(error: CallerError) -> Item:
    """The ``error`` of a failed ``response`` object."""
    return {"code": error_code(error), "message": error.message}


def responses_error_frame(error: CallerError) -> bytes:
    """An ``error`` event written without a stream's state (``sequence_number`` 0): a stream
    that sent keep-alives and then failed on every target. A stream past its commit point ends
    with its translator's ``fail`` instead."""
    event = {"type": "error", **error_fields(error), "sequence_number": 0}
    return b"event: error\ndata: " + _encode(event) + b"\n\n"


class _ResponseView(msgspec.Struct):
    model: str = ""
    usage: UsageWire | None = None


_response_view = msgspec.json.Decoder(_ResponseView)


def inspect_responses_reply(body: bytes, served_model: str) -> tuple[bytes, c.Usage | None]:
    """A Responses upstream's non-streamed answer renamed to ``served_model``, and its usage."""
    return inspect_reply(body, served_model, _response_view, responses_usage_to_canonical)

