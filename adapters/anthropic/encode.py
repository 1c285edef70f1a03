"""The Anthropic Messages dialect, client side: answers written back to an Anthropic caller.

``canonical_to_anthropic_response`` and ``AnthropicStreamEncoder`` encode canonical results;
``AnthropicPassthrough`` inspects an Anthropic upstream's events on their way through untouched.
"""

from __future__ import annotations

import msgspec
from msgspec import UNSET

from adapters import canonical as c
from adapters.anthropic.wire import (
    PING,
    Block,
    UsageOut,
    UsageWire,
    anthropic_usage_to_canonical,
    canonical_stop_to_anthropic,
    canonical_usage_to_anthropic,
    mid_stream_error,
)
from adapters.base import has_value, inspect_reply
from adapters.errors import CallerError, ProviderProtocolError
from adapters.sse import encode_event, event_fields

_encode = msgspec.json.encode

# --- ingress: canonical -> Anthropic response -----------------------------------------------


def message_id(response_id: str) -> str:
    return response_id if response_id.startswith("msg_") else f"msg_{response_id}"


def canonical_block_to_anthropic(block: c.ContentBlock) -> Block | None:
    """One answer block as Anthropic spells it (None for blocks an answer never holds)."""
    if isinstance(block, c.TextBlock):
        return Block(type="text", text=block.text, citations=block.citations)
    if isinstance(block, c.ThinkingBlock):
        signature = block.signature if block.signature is not UNSET else ""
        return Block(type="thinking", thinking=block.thinking, signature=signature)
    if isinstance(block, c.RedactedThinkingBlock):
        return Block(type="redacted_thinking", data=block.data)
    if isinstance(block, c.ToolUseBlock):
        return Block(type="tool_use", id=block.id, name=block.name, input=block.input)
    return None


class Message(msgspec.Struct):
    """A non-streamed answer to an Anthropic caller (a ``message`` object)."""

    id: str
    model: str
    content: list[Block]
    stop_reason: str
    stop_sequence: str | None
    usage: UsageOut
    type: str = "message"
    role: str = "assistant"


def canonical_to_anthropic_response(response: c.Response, model: str) -> Message:
    """A canonical answer as an Anthropic ``message`` object naming ``model``."""
    content = [
        out
        for block in response.content
        if (out := canonical_block_to_anthropic(block)) is not None
    ]
    return Message(
        id=message_id(response.id),
        model=model,
        content=content,
        stop_reason=canonical_stop_to_anthropic(response.stop_reason),
        stop_sequence=response.stop_sequence,
        usage=canonical_usage_to_anthropic(response.usage),
    )


class _ErrorDetail(msgspec.Struct):
    type: str
    message: str


class _ErrorBody(msgspec.Struct, tag="error", tag_field="type"):
    error: _ErrorDetail


def _error_event(kind: str, message: str) -> bytes:
    return encode_event(_encode(_ErrorBody(_ErrorDetail(kind, message))), "error")


def anthropic_error_body(error: CallerError) -> bytes:
    """An error as Anthropic spells it: ``{"type": "error", "error": {type, message}}``."""
    return _encode(_ErrorBody(_ErrorDetail(error.anthropic_type, error.message)))


def anthropic_error_frame(error: CallerError) -> bytes:
    """An error after the stream has started, as Anthropic's SDKs expect it."""
    return encode_event(anthropic_error_body(error), "error")


_DELTA_KIND: dict[type, str] = {
    c.TextDelta: "text",
    c.ThinkingDelta: "thinking",
    c.SignatureDelta: "thinking",
    c.ToolArgsDelta: "tool_use",
}


class _StartedMessage(msgspec.Struct):
    id: str
    model: str
    usage: UsageOut
    content: tuple[()] = ()
    stop_reason: None = None
    stop_sequence: None = None
    type: str = "message"
    role: str = "assistant"


class _MessageStart(msgspec.Struct, tag="message_start", tag_field="type"):
    message: _StartedMessage


class _BlockStart(msgspec.Struct, tag="content_block_start", tag_field="type"):
    index: int
    content_block: Block


class _Stop(msgspec.Struct):
    stop_reason: str
    stop_sequence: str | None


class _MessageDelta(msgspec.Struct, tag="message_delta", tag_field="type"):
    delta: _Stop
    usage: UsageOut


def _fresh(kind: str) -> Block:
    """An empty text or thinking block, as a stream opens one."""
    if kind == "thinking":
        return Block(type="thinking", thinking="", signature="")
    return Block(type="text", text="")


class AnthropicStreamEncoder:
    """Canonical stream events -> Anthropic Messages SSE events.

    Output blocks are numbered from 0 in the order they open, and exactly one is open at a time:
    a delta whose kind differs from the open block's (a thinking delta while a text block is
    open) closes it and opens a block of the right kind, so deltas never land in the wrong
    block. ``message_delta`` (with the final, cumulative usage) and ``message_stop`` are sent by
    ``close`` because OpenAI upstreams report usage after their finish reason.
    """

    def __init__(self, response_id: str, model: str) -> None:
        self.committed = False
        self.usage: c.Usage | None = None
        self.stop_reason: str | None = None
        self.stop_sequence: str | None = None
        self._id = message_id(response_id)
        self._model = model
        self._started = False
        self._next = 0
        self._open: tuple[int, int, str] | None = None  # (canonical index, output index, kind)
        self._pinged = False

    def _message_start(self) -> bytes:
        self._started = True
        usage = canonical_usage_to_anthropic(self.usage or c.Usage())
        start = _MessageStart(_StartedMessage(self._id, self._model, usage))
        return encode_event(_encode(start), "message_start")

    def _stop_open(self) -> bytes:
        if self._open is None:
            return b""
        index = self._open[1]
        self._open = None
        stop = b'{"type":"content_block_stop","index":%d}' % index
        return encode_event(stop, "content_block_stop")

    def _start(self, canonical_index: int, kind: str, block: Block) -> bytes:
        out = self._stop_open()
        index = self._next
        self._next += 1
        self._open = (canonical_index, index, kind)
        out += encode_event(_encode(_BlockStart(index, block)), "content_block_start")
        if not self._pinged:
            self._pinged = True
            out += PING
        return out

    def feed(self, item: bytes | c.StreamEvent) -> bytes:
        if isinstance(item, bytes):
            raise TypeError("AnthropicStreamEncoder takes canonical events")
        if not self.committed and c.is_content(item):
            self.committed = True
        if isinstance(item, c.MessageStart):
            if item.usage is not UNSET:
                self.usage = item.usage
            return b"" if self._started else self._message_start()
        out = b"" if self._started else self._message_start()
        if isinstance(item, c.BlockStart):
            block = item.block
            if isinstance(block, c.ToolUseStart):
                start = Block(type="tool_use", id=block.id, name=block.name, input={})
                return out + self._start(item.index, "tool_use", start)
            if isinstance(block, c.ThinkingStart):
                return out + self._start(item.index, "thinking", _fresh("thinking"))
            return out + self._start(item.index, "text", _fresh("text"))
        if isinstance(item, c.BlockDelta):
            return out + self._delta(item)
        if isinstance(item, c.BlockStop):
            if self._open is not None and self._open[0] == item.index:
                return out + self._stop_open()
            return out
        if isinstance(item, c.UsageUpdate):
            self.usage = item.usage
            return out
        if isinstance(item, c.Finish):
            self.stop_reason = canonical_stop_to_anthropic(item.stop_reason)
            self.stop_sequence = item.stop_sequence
            return out + self._stop_open()
        return out

    def _delta(self, item: c.BlockDelta) -> bytes:
        delta = item.delta
        kind = _DELTA_KIND[type(delta)]
        out = b""
        if self._open is None or self._open[0] != item.index or self._open[2] != kind:
            if kind == "tool_use":
                return b""  # arguments for a call that never started: nothing to attach them to
            out = self._start(item.index, kind, _fresh(kind))
        assert self._open is not None
        # Only the delta's own string is encoded per event; the envelope is fixed bytes.
        head = (
            b'event: content_block_delta\ndata: {"type":"content_block_delta","index":%d'
            % (self._open[1])
        )
        if isinstance(delta, c.TextDelta):
            wire = b',"delta":{"type":"text_delta","text":' + _encode(delta.text)
        elif isinstance(delta, c.ThinkingDelta):
            wire = b',"delta":{"type":"thinking_delta","thinking":' + _encode(delta.thinking)
        elif isinstance(delta, c.SignatureDelta):
            wire = b',"delta":{"type":"signature_delta","signature":' + _encode(delta.signature)
        else:
            assert isinstance(delta, c.ToolArgsDelta)
            wire = b',"delta":{"type":"input_json_delta","partial_json":' + _encode(
                delta.partial_json
            )
        return out + head + wire + b"}}\n\n"

    def close(self) -> bytes:
        out = b"" if self._started else self._message_start()
        out += self._stop_open()
        delta = _MessageDelta(
            _Stop(self.stop_reason or "end_turn", self.stop_sequence),
            canonical_usage_to_anthropic(self.usage or c.Usage()),
        )
        out += encode_event(_encode(delta), "message_delta")
        return out + encode_event(b'{"type":"message_stop"}', "message_stop")


# --- pass-through inspection (Anthropic upstream to Anthropic client) -----------------------


class _MessageView(msgspec.Struct):
    model: str = ""
    usage: UsageWire | None = None


class _DeltaView(msgspec.Struct):
    type: str = ""
    stop_reason: str | None = None


class _EventView(msgspec.Struct):
    type: str = ""
    message: _MessageView | None = None
    delta: _DeltaView | None = None
    usage: UsageWire | None = None
    error: msgspec.Raw = msgspec.Raw()  # empty when absent


_event_view = msgspec.json.Decoder(_EventView)


def _content_delta(kind: str) -> bool:
    return kind in ("text_delta", "thinking_delta", "input_json_delta", "citations_delta")


class AnthropicPassthrough:
    """Reads an Anthropic upstream's SSE events on their way to an Anthropic client.

    Tracks the commit point (the first content delta), usage (``message_start`` plus each
    ``message_delta``, cache reads and writes included) and the stop reason; renames the
    upstream's model to the served model id by a byte replacement (no re-encoding).
    """

    __slots__ = ("_model_to", "_stopped", "committed", "stop_reason", "usage")

    def __init__(self, served_model: str) -> None:
        self.committed = False
        self.usage: c.Usage | None = None
        self.stop_reason: str | None = None
        self._model_to = _encode(served_model)
        self._stopped = False

    def feed(self, item: bytes | c.StreamEvent) -> bytes:
        if not isinstance(item, bytes):
            raise TypeError("AnthropicPassthrough takes raw SSE events")
        _, data = event_fields(item)
        if data is None:
            return b""
        try:
            view = _event_view.decode(data)
        except msgspec.DecodeError as exc:
            raise ProviderProtocolError(f"malformed stream event: {exc}") from exc
        kind = view.type
        if kind == "content_block_delta":
            if not self.committed and view.delta is not None and _content_delta(view.delta.type):
                self.committed = True
        elif kind == "message_start" and view.message is not None:
            if view.message.usage is not None:
                self.usage = anthropic_usage_to_canonical(view.message.usage)
            upstream = view.message.model
            if upstream and _encode(upstream) != self._model_to:
                item = item.replace(_encode(upstream), self._model_to, 1)
        elif kind == "message_delta":
            if view.usage is not None:
                self.usage = anthropic_usage_to_canonical(view.usage, self.usage)
            if view.delta is not None and view.delta.stop_reason:
                self.stop_reason = view.delta.stop_reason
        elif kind == "message_stop":
            self._stopped = True
        elif kind == "error" and has_value(view.error):
            raise mid_stream_error(view.error)
        return item + b"\n\n"

    def close(self) -> bytes:
        """Nothing after a whole stream; an error event after one cut short before its end."""
        if self._stopped:
            return b""
        return _error_event("api_error", "the upstream ended the stream early; retry")


class _ResponseView(msgspec.Struct):
    model: str = ""
    usage: UsageWire | None = None


_response_view = msgspec.json.Decoder(_ResponseView)


def inspect_anthropic_response(body: bytes, served_model: str) -> tuple[bytes, c.Usage | None]:
    """A non-streamed Anthropic answer renamed to ``served_model``, and its usage."""
    return inspect_reply(body, served_model, _response_view, anthropic_usage_to_canonical)

