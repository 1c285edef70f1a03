"""The OpenAI chat-completions dialect, client side: answers written back to an OpenAI caller.

``canonical_to_openai_response`` and ``OpenAIStreamEncoder`` encode canonical results;
``OpenAIPassthrough`` and ``inspect_openai_response`` inspect an OpenAI upstream's bytes on
their way through untouched.
"""

from __future__ import annotations

import time
from typing import Any

import msgspec
from msgspec import UNSET, UnsetType

from adapters import canonical as c
from adapters.base import inspect_reply
from adapters.errors import CallerError, ProviderProtocolError
from adapters.openai.wire import (
    DONE,
    ChatMessage,
    UsageOut,
    UsageWire,
    blocks_to_message,
    canonical_stop_to_openai,
    canonical_usage_to_openai,
    mid_stream_error,
    openai_usage_to_canonical,
)
from adapters.sse import event_data


class _Choice(msgspec.Struct):
    index: int
    message: ChatMessage
    finish_reason: str
    logprobs: None = None


class ChatCompletion(msgspec.Struct):
    """A non-streamed answer to an OpenAI caller (``chat.completion``)."""

    id: str
    created: int
    model: str
    choices: list[_Choice]
    usage: UsageOut
    object: str = "chat.completion"


class _UsageChunk(msgspec.Struct):
    """The closing usage-only chunk of a stream, for a caller that asked for usage."""

    id: str
    created: int
    model: str
    usage: UsageOut
    choices: tuple[()] = ()
    object: str = "chat.completion.chunk"


def _completion_id(response_id: str) -> str:
    return response_id if response_id.startswith("chatcmpl") else f"chatcmpl-{response_id}"


def canonical_to_openai_response(response: c.Response, model: str) -> ChatCompletion:
    """A canonical answer as an OpenAI ``chat.completion`` object naming ``model``."""
    choice = _Choice(
        index=0,
        message=blocks_to_message(response.content),
        finish_reason=canonical_stop_to_openai(response.stop_reason),
    )
    return ChatCompletion(
        id=_completion_id(response.id),
        created=int(time.time()),
        model=model,
        choices=[choice],
        usage=canonical_usage_to_openai(response.usage),
    )


class _ToolCallDelta(msgspec.Struct, omit_defaults=True):
    index: int
    id: str | UnsetType = UNSET
    type: str | UnsetType = UNSET
    function: dict[str, str] | UnsetType = UNSET


class _DeltaOut(msgspec.Struct, omit_defaults=True):
    role: str | UnsetType = UNSET
    content: str | UnsetType = UNSET
    reasoning_content: str | UnsetType = UNSET
    tool_calls: list[_ToolCallDelta] | UnsetType = UNSET


_encode = msgspec.json.encode


class OpenAIStreamEncoder:
    """Canonical stream events -> OpenAI ``chat.completion.chunk`` SSE events.

    Only the delta is encoded per event: the envelope around it is built once per stream.
    """

    def __init__(self, response_id: str, model: str, include_usage: bool) -> None:
        self.include_usage = include_usage
        self.committed = False
        self.usage: c.Usage | None = None
        self.finish_reason: str | None = None
        self._id = _completion_id(response_id)
        self._created = int(time.time())
        self._model = model
        self._tool_index: dict[int, int] = {}  # canonical block index -> OpenAI tool_calls index
        head = _encode(
            {
                "id": self._id,
                "object": "chat.completion.chunk",
                "created": self._created,
                "model": self._model,
            }
        )
        self._prefix = b"data: " + head[:-1] + b',"choices":[{"index":0,"delta":'

    def _chunk(self, delta: bytes, finish: str | None = None) -> bytes:
        if finish is None:
            return self._prefix + delta + b',"finish_reason":null}]}\n\n'
        return self._prefix + delta + b',"finish_reason":"' + finish.encode() + b'"}]}\n\n'

    def feed(self, event: bytes | c.StreamEvent) -> bytes:
        if isinstance(event, bytes):
            raise TypeError("OpenAIStreamEncoder takes canonical events")
        if not self.committed and c.is_content(event):
            self.committed = True
        if isinstance(event, c.BlockDelta):
            delta = event.delta
            if isinstance(delta, c.TextDelta):
                return self._chunk(b'{"content":' + _encode(delta.text) + b"}")
            if isinstance(delta, c.ThinkingDelta):
                return self._chunk(b'{"reasoning_content":' + _encode(delta.thinking) + b"}")
            if isinstance(delta, c.ToolArgsDelta):
                call = _ToolCallDelta(
                    index=self._tool_index.get(event.index, 0),
                    function={"arguments": delta.partial_json},
                )
                return self._chunk(_encode(_DeltaOut(tool_calls=[call])))
            return b""  # signatures have no OpenAI spelling
        if isinstance(event, c.BlockStart):
            if not isinstance(event.block, c.ToolUseStart):
                return b""
            index = self._tool_index[event.index] = len(self._tool_index)
            call = _ToolCallDelta(
                index=index,
                id=event.block.id,
                type="function",
                function={"name": event.block.name, "arguments": ""},
            )
            return self._chunk(_encode(_DeltaOut(tool_calls=[call])))
        if isinstance(event, c.UsageUpdate):
            self.usage = event.usage
            return b""
        if isinstance(event, c.MessageStart):
            if event.usage is not UNSET and self.usage is None:
                self.usage = event.usage
            return self._chunk(b'{"role":"assistant","content":""}')
        if isinstance(event, c.Finish):
            self.finish_reason = canonical_stop_to_openai(event.stop_reason)
            return self._chunk(b"{}", self.finish_reason)
        return b""

    def close(self) -> bytes:
        if not self.include_usage or self.usage is None:
            return DONE
        usage = canonical_usage_to_openai(self.usage)
        body = _encode(_UsageChunk(self._id, self._created, self._model, usage))
        return b"data: " + body + b"\n\n" + DONE



class _ErrorDetail(msgspec.Struct):
    message: str
    type: str
    code: str | None
    param: str | None


class _ErrorBody(msgspec.Struct):
    error: _ErrorDetail


def openai_error_body(error: CallerError) -> bytes:
    """An error as OpenAI spells it: ``{"error": {message, type, code, param}}``."""
    detail = _ErrorDetail(error.message, error.openai_type, error.code, error.param)
    return _encode(_ErrorBody(detail))


def openai_error_frame(error: CallerError) -> bytes:
    """An error after the stream has committed, as OpenAI's SDKs expect it."""
    return b"data: " + openai_error_body(error) + b"\n\n"


# --- pass-through inspection (OpenAI upstream to OpenAI client) ------------------------------


class _DeltaView(msgspec.Struct):
    content: str | None = None
    reasoning_content: str | None = None
    reasoning: str | None = None
    refusal: str | None = None
    tool_calls: list[Any] | None = None
    function_call: dict[str, Any] | None = None


class _ChoiceView(msgspec.Struct):
    delta: _DeltaView | None = None
    finish_reason: str | None = None


class _ChunkView(msgspec.Struct):
    model: str = ""
    choices: list[_ChoiceView] = []
    usage: UsageWire | None = None
    error: Any = None


_chunk_view = msgspec.json.Decoder(_ChunkView)


def _delta_has_content(delta: _DeltaView | None) -> bool:
    return delta is not None and bool(
        delta.content
        or delta.tool_calls
        or delta.reasoning_content
        or delta.reasoning
        or delta.refusal
        or delta.function_call
    )


class OpenAIPassthrough:
    """Reads an OpenAI upstream's SSE data payloads on their way to an OpenAI client.

    Tracks the commit point, usage and finish reason; drops the usage-only chunk the gateway
    asked for on its own account; renames the upstream's model to the served model id by a
    byte replacement (no re-encoding).
    """

    __slots__ = ("_model_from", "_model_to", "committed", "finish_reason", "include_usage", "usage")

    def __init__(self, served_model: str, include_usage: bool) -> None:
        self.include_usage = include_usage
        self.committed = False
        self.usage: c.Usage | None = None
        self.finish_reason: str | None = None
        self._model_to = _encode(served_model)
        self._model_from: bytes | None = None

    def feed(self, event: bytes | c.StreamEvent) -> bytes:
        """The SSE event to send for one upstream event (b"" to send nothing)."""
        if not isinstance(event, bytes):
            raise TypeError("OpenAIPassthrough takes raw SSE events")
        data = event_data(event)
        if data is None or data == b"[DONE]":
            return b""
        try:
            chunk = _chunk_view.decode(data)
        except msgspec.DecodeError as exc:
            raise ProviderProtocolError(f"malformed stream chunk: {exc}") from exc
        if chunk.error is not None:
            raise mid_stream_error(chunk.error)
        if chunk.usage is not None:
            self.usage = openai_usage_to_canonical(chunk.usage)
        for choice in chunk.choices:
            if choice.finish_reason:
                self.finish_reason = choice.finish_reason
            if not self.committed and _delta_has_content(choice.delta):
                self.committed = True
        if not chunk.choices and chunk.usage is not None and not self.include_usage:
            return b""
        if self._model_from is None and chunk.model:
            needle = _encode(chunk.model)
            self._model_from = needle if needle != self._model_to else b""
        if self._model_from:
            data = data.replace(self._model_from, self._model_to)
        return b"data: " + data + b"\n\n"

    def close(self) -> bytes:
        return DONE


class _ResponseView(msgspec.Struct):
    model: str = ""
    usage: UsageWire | None = None


_response_view = msgspec.json.Decoder(_ResponseView)


def inspect_openai_response(body: bytes, served_model: str) -> tuple[bytes, c.Usage | None]:
    """A non-streamed OpenAI answer renamed to ``served_model``, and its usage."""
    return inspect_reply(body, served_model, _response_view, openai_usage_to_canonical)

