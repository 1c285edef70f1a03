"""The wire bodies every fake upstream answers with, shared by the bench and the tests.

``bench/fake_upstream.py`` (the bench's raw-asyncio fake, which caches what it builds) and
``tests/fakes.py`` / ``tests/fakes_dialects.py`` (the tests' aiohttp fakes with scripted
failures) both build their OpenAI chat completions and SSE streams, and their Anthropic messages
and events, here: one implementation of each shape, so the bench measures the gateway against
the same upstream replies the tests check it with.

Only shapes live here; how a reply is paced, cut, cached or served is each fake's business.
"""

from __future__ import annotations

from typing import Any

import msgspec

_encode = msgspec.json.encode
DONE = b"data: [DONE]\n\n"


def sse_data(payload: Any) -> bytes:
    """One ``data:`` SSE frame holding ``payload`` as JSON."""
    return b"data: " + _encode(payload) + b"\n\n"


def sse_event(name: str, payload: Any) -> bytes:
    """One named SSE event (Anthropic's framing)."""
    return b"event: " + name.encode() + b"\ndata: " + _encode(payload) + b"\n\n"


# --- OpenAI chat completions ----------------------------------------------------------------


def openai_completion(
    model: str,
    message: dict[str, Any],
    usage: dict[str, Any],
    *,
    finish: str = "stop",
    created: int = 1,
    reply_id: str = "chatcmpl-fake",
) -> dict[str, Any]:
    """A non-streamed ``chat.completion`` body with one choice."""
    return {
        "id": reply_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": usage,
    }


def openai_chunk(
    model: str,
    delta: dict[str, Any] | None,
    finish: str | None = None,
    *,
    usage: dict[str, Any] | None = None,
    created: int = 1,
    reply_id: str = "chatcmpl-fake",
) -> dict[str, Any]:
    """One ``chat.completion.chunk``; ``delta=None`` gives the choiceless usage chunk."""
    chunk: dict[str, Any] = {
        "id": reply_id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [] if delta is None else [
            {"index": 0, "delta": delta, "finish_reason": finish}
        ],
    }
    if usage is not None:
        chunk["usage"] = usage
    return chunk


def openai_stream(
    model: str,
    deltas: list[dict[str, Any]],
    usage: dict[str, Any] | None,
    *,
    finish: str = "stop",
    created: int = 1,
    reply_id: str = "chatcmpl-fake",
) -> list[bytes]:
    """Every SSE frame of one stream: a frame per delta, the finish frame, the usage frame
    (when ``usage`` is given, as ``stream_options.include_usage`` asks) and ``[DONE]``."""
    def frame(delta: dict[str, Any] | None, end: str | None = None, **extra: Any) -> bytes:
        return sse_data(openai_chunk(model, delta, end, created=created, reply_id=reply_id,
                                     **extra))

    frames = [frame(delta) for delta in deltas]
    frames.append(frame({}, finish))
    if usage is not None:
        frames.append(frame(None, usage=usage))
    frames.append(DONE)
    return frames


# --- Anthropic messages ---------------------------------------------------------------------


def anthropic_message(
    model: str,
    content: list[dict[str, Any]],
    usage: dict[str, Any],
    *,
    stop: str | None = "end_turn",
    reply_id: str = "msg_fake",
) -> dict[str, Any]:
    """A ``message`` body; with ``content=[]`` and ``stop=None`` it is a stream's start."""
    return {
        "id": reply_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": usage,
    }


def anthropic_start(model: str, usage: dict[str, Any], *, reply_id: str = "msg_fake") -> bytes:
    """The ``message_start`` event of a stream."""
    message = anthropic_message(model, [], usage, stop=None, reply_id=reply_id)
    return sse_event("message_start", {"type": "message_start", "message": message})


def anthropic_block_start(index: int, block: dict[str, Any]) -> bytes:
    """``content_block_start`` for the (empty) ``block`` at ``index``."""
    payload = {"type": "content_block_start", "index": index, "content_block": block}
    return sse_event("content_block_start", payload)


def anthropic_block_delta(index: int, delta: dict[str, Any]) -> bytes:
    """``content_block_delta`` carrying ``delta`` for the block at ``index``."""
    payload = {"type": "content_block_delta", "index": index, "delta": delta}
    return sse_event("content_block_delta", payload)


def anthropic_block_stop(index: int) -> bytes:
    """``content_block_stop`` for the block at ``index``."""
    return sse_event("content_block_stop", {"type": "content_block_stop", "index": index})


def anthropic_end(stop: str, output_tokens: int) -> tuple[bytes, bytes]:
    """The ``message_delta`` (stop reason, output tokens) and ``message_stop`` events."""
    delta = {
        "type": "message_delta",
        "delta": {"stop_reason": stop, "stop_sequence": None},
        "usage": {"output_tokens": output_tokens},
    }
    return sse_event("message_delta", delta), sse_event("message_stop", {"type": "message_stop"})
