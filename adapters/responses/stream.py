"""Streams to a Responses API caller.

``ResponsesStreamEncoder`` turns canonical stream events into the documented event sequence:
``response.created`` and ``response.in_progress``; per output item ``response.output_item.added``
(then ``response.content_part.added`` for a message, ``response.reasoning_summary_part.added``
for reasoning), its deltas (``response.output_text.delta``,
``response.function_call_arguments.delta``, ``response.reasoning_summary_text.delta``), their
``.done`` events and ``response.output_item.done``; and last ``response.completed`` carrying
the whole response with ``usage``. Every event has a ``sequence_number``; there is no
``[DONE]``. A stream that breaks after its commit point ends (``fail``) with an ``error`` event
and then ``response.failed``, whose response has status ``failed``, its ``error`` and the output
so far: the openai SDK yields both, and Codex reads the error from ``response.failed``.

``ResponsesPassthrough`` reads a Responses upstream's events on their way through untouched.

Both keep the final response object as JSON (``final``), for the response store; the final
event is sent by ``close`` (the pass-through holds the upstream's until then), so the pipeline
can store the response before its caller sees it end.
"""

from __future__ import annotations

import time
from typing import Any

import msgspec

from adapters import canonical as c
from adapters.errors import CallerError, ProviderHTTPError, ProviderProtocolError
from adapters.responses import encode as e
from adapters.responses.wire import UsageWire
from adapters.sse import event_data

_encode = msgspec.json.encode


class _Open:
    """One output item being streamed: its item, kind and the text or arguments so far."""

    __slots__ = ("delta_head", "item", "kind", "output_index", "parts")

    def __init__(self, item: e.Item, kind: str, output_index: int) -> None:
        self.item = item
        self.kind = kind
        self.output_index = output_index
        self.parts: list[str] = []
        # A text delta event up to its delta, built once: deltas are most of a stream.
        self.delta_head = (
            b'event: response.output_text.delta\ndata: {"type":"response.output_text.delta",'
            b'"item_id":' + _encode(item["id"]) + b',"output_index":'
            + str(output_index).encode() + b',"content_index":0,"logprobs":[],"delta":'
        )


class ResponsesStreamEncoder:
    """Canonical stream events -> Responses API SSE events (see the module docstring)."""

    def __init__(self, request_id: str, model: str, echo: dict[str, Any]) -> None:
        self.committed = False
        self.usage: c.Usage | None = None
        self._rid = e.response_id(request_id)
        self._model = model
        self._echo = echo
        self._created = int(time.time())
        self._seq = 0
        self._started = False
        self._stop: str | None = None
        self._open: dict[int, _Open] = {}  # canonical block index -> item being streamed
        self._output: list[e.Item] = []
        self.final: bytes | None = None  # the final response object, once known

    def _event(self, kind: str, **fields: Any) -> bytes:
        fields["type"] = kind
        fields["sequence_number"] = self._seq
        self._seq += 1
        return b"event: " + kind.encode() + b"\ndata: " + _encode(fields) + b"\n\n"

    def _response(self, status: str, error: e.Item | None = None) -> e.Item:
        return e.response_object(
            self._rid, self._model, self._created, status=status,
            output=self._output if status != "in_progress" else [], echo=self._echo,
            usage=self.usage if status != "in_progress" else None, stop_reason=self._stop,
            error=error,
        )

    def _final(self, kind: str, response: e.Item) -> bytes:
        """The last event, ``kind``, carrying ``response`` (kept as ``final``)."""
        self.final = _encode(response)
        return self._event(kind, response=msgspec.Raw(self.final))

    def _start(self) -> bytes:
        self._started = True
        response = msgspec.Raw(_encode(self._response("in_progress")))  # the same in both
        created = self._event("response.created", response=response)
        return created + self._event("response.in_progress", response=response)

    def feed(self, event: bytes | c.StreamEvent) -> bytes:
        if type(event) is c.BlockDelta and self._started:
            # Most of a stream: a text delta of the open message, from its prebuilt head.
            delta = event.delta
            item = self._open.get(event.index)
            if type(delta) is c.TextDelta and item is not None and item.kind == "text":
                self.committed = True
                item.parts.append(delta.text)
                seq = self._seq
                self._seq = seq + 1
                return b'%s%s,"sequence_number":%d}\n\n' % (item.delta_head, _encode(delta.text),
                                                            seq)
        if isinstance(event, bytes):
            raise TypeError("ResponsesStreamEncoder takes canonical events")
        if not self.committed and c.is_content(event):
            self.committed = True
        out = b"" if self._started else self._start()
        if isinstance(event, c.BlockDelta):
            return out + self._delta(event)
        if isinstance(event, c.BlockStart):
            return out + self._open_item(event.index, event.block)
        if isinstance(event, c.BlockStop):
            return out + self._close_item(event.index)
        if isinstance(event, c.UsageUpdate):
            self.usage = event.usage
        elif isinstance(event, c.MessageStart):
            if isinstance(event.usage, c.Usage) and self.usage is None:
                self.usage = event.usage
        elif isinstance(event, c.Finish):
            self._stop = event.stop_reason
        return out

    def _open_item(
        self, index: int, block: c.TextStart | c.ToolUseStart | c.ThinkingStart
    ) -> bytes:
        output_index = len(self._output)
        suffix = f"{output_index}_{self._rid.removeprefix('resp_')}"
        if isinstance(block, c.ToolUseStart):
            item = e.function_call_item(f"fc_{suffix}", block.id, block.name, "", "in_progress")
            kind = "tool"
        elif isinstance(block, c.ThinkingStart):
            item, kind = e.reasoning_item(f"rs_{suffix}", None), "thinking"
        else:
            item, kind = e.message_item(f"msg_{suffix}", "", "in_progress"), "text"
        self._open[index] = _Open(item, kind, output_index)
        self._output.append(item)
        out = self._event("response.output_item.added", output_index=output_index,
                          item=dict(item, content=[]) if kind == "text" else dict(item))
        where = {"item_id": item["id"], "output_index": output_index}
        if kind == "text":
            out += self._event("response.content_part.added", **where, content_index=0,
                               part=e.text_part(""))
        elif kind == "thinking":
            out += self._event("response.reasoning_summary_part.added", **where,
                               summary_index=0, part={"type": "summary_text", "text": ""})
        return out

    def _delta(self, event: c.BlockDelta) -> bytes:
        delta = event.delta
        if isinstance(delta, c.SignatureDelta):
            return b""
        out = b""
        item = self._open.get(event.index)
        if item is None:  # content without a block start: a text block, opened here
            start = c.ThinkingStart() if isinstance(delta, c.ThinkingDelta) else c.TextStart()
            out = self._open_item(event.index, start)
            item = self._open[event.index]
        if isinstance(delta, c.TextDelta) and item.kind == "text":
            item.parts.append(delta.text)
            self._seq += 1
            return out + b'%s%s,"sequence_number":%d}\n\n' % (
                item.delta_head, _encode(delta.text), self._seq - 1)
        where = {"item_id": item.item["id"], "output_index": item.output_index}
        if isinstance(delta, c.ToolArgsDelta) and item.kind == "tool":
            item.parts.append(delta.partial_json)
            return out + self._event("response.function_call_arguments.delta", **where,
                                     delta=delta.partial_json)
        if isinstance(delta, c.ThinkingDelta) and item.kind == "thinking":
            item.parts.append(delta.thinking)
            return out + self._event("response.reasoning_summary_text.delta", **where,
                                     summary_index=0, delta=delta.thinking)
        return out

    def _close_item(self, index: int) -> bytes:
        item = self._open.pop(index, None)
        if item is None:
            return b""
        text = "".join(item.parts)
        where = {"item_id": item.item["id"], "output_index": item.output_index}
        out = b""
        if item.kind == "text":
            item.item.update(status="completed", content=[e.text_part(text)])
            out += self._event("response.output_text.done", **where, content_index=0, text=text,
                               logprobs=[])
            out += self._event("response.content_part.done", **where, content_index=0,
                               part=e.text_part(text))
        elif item.kind == "tool":
            item.item.update(status="completed", arguments=text)
            out += self._event("response.function_call_arguments.done", **where,
                               name=item.item["name"], arguments=text)
        else:
            part = {"type": "summary_text", "text": text}
            item.item["summary"] = [part]
            out += self._event("response.reasoning_summary_text.done", **where, summary_index=0,
                               text=text)
            out += self._event("response.reasoning_summary_part.done", **where,
                               summary_index=0, part=part)
        return out + self._event("response.output_item.done", output_index=item.output_index,
                                 item=item.item)

    def close(self) -> bytes:
        out = b"" if self._started else self._start()
        for index in list(self._open):
            out += self._close_item(index)
        return out + self._final("response.completed", self._response("completed"))

    def fail(self, error: CallerError) -> bytes:
        """The end of a stream broken after its commit point: ``error``, then
        ``response.failed`` with the output so far (items cut short are ``incomplete``)."""
        out = b"" if self._started else self._start()
        for item in self._open.values():
            text = "".join(item.parts)
            if item.kind == "text":
                item.item["content"] = [e.text_part(text)]
            elif item.kind == "tool":
                item.item["arguments"] = text
            else:
                item.item["summary"] = [{"type": "summary_text", "text": text}]
            item.item["status"] = "incomplete"
        self._open.clear()
        out += self._event("error", **e.error_fields(error))
        failed = self._response("failed", e.failure(error))
        return out + self._final("response.failed", failed)


# --- pass-through inspection (Responses upstream to Responses caller) ------------------------

_CONTENT_EVENTS = frozenset((
    "response.output_text.delta",
    "response.function_call_arguments.delta",
    "response.reasoning_summary_text.delta",
    "response.reasoning_text.delta",
    "response.refusal.delta",
    "response.completed",
))
_FINAL_EVENTS = frozenset(("response.completed", "response.incomplete", "response.failed"))


class _Lifecycle(msgspec.Struct):
    model: str = ""
    usage: UsageWire | None = None


class _EventView(msgspec.Struct):
    type: str = ""
    response: _Lifecycle | None = None
    message: str = ""
    sequence_number: int = -1


class _LifecycleRaw(msgspec.Struct):
    response: msgspec.Raw = msgspec.Raw(b"null")


_event_view = msgspec.json.Decoder(_EventView)
_lifecycle_raw = msgspec.json.Decoder(_LifecycleRaw)


class ResponsesPassthrough:
    """Reads a Responses upstream's SSE events on their way to a Responses caller: the commit
    point (the first delta) and usage (from the final response). Only the lifecycle events
    carry the model's name: in those, the served model's name replaces the upstream's.

    The final event (``response.completed``, ``.incomplete`` or ``.failed``) is held for
    ``close``, its response kept as ``final``; ``response.created``'s response is kept too, for
    ``fail`` to write a ``response.failed`` of the same id if the upstream breaks off."""

    __slots__ = ("_created", "_held", "_next", "_served", "committed", "final", "usage")

    def __init__(self, served_model: str) -> None:
        self.committed = False
        self.usage: c.Usage | None = None
        self.final: bytes | None = None
        self._served = served_model
        self._created: bytes | None = None
        self._held = b""
        self._next = 0  # the sequence number after the upstream's last

    def feed(self, event: bytes | c.StreamEvent) -> bytes:
        if not isinstance(event, bytes):
            raise TypeError("ResponsesPassthrough takes raw SSE events")
        data = event_data(event)
        if data is None or data == b"[DONE]":
            return b""
        try:
            view = _event_view.decode(data)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise ProviderProtocolError(f"malformed stream event: {exc}") from exc
        if view.type == "error" and not self.committed:
            raise ProviderHTTPError(502, view.message or "error before any output")
        self.committed = self.committed or view.type in _CONTENT_EVENTS
        self._next = max(self._next, view.sequence_number + 1)
        response = view.response
        if response is None:
            return event + b"\n\n"
        if response.model and response.model != self._served:
            event = event.replace(_encode(response.model), _encode(self._served), 1)
        if view.type in _FINAL_EVENTS:
            if response.usage is not None:
                self.usage = e.responses_usage_to_canonical(response.usage)
            self.final = self._response_of(event)
            self._held = event + b"\n\n"
            return b""
        if view.type == "response.created":
            self._created = self._response_of(event)
        return event + b"\n\n"

    @staticmethod
    def _response_of(event: bytes) -> bytes | None:
        data = event_data(event)
        return None if data is None else bytes(_lifecycle_raw.decode(data).response)

    def close(self) -> bytes:
        held, self._held = self._held, b""
        return held

    def fail(self, error: CallerError) -> bytes:
        """``error``, then ``response.failed``: the response ``response.created`` announced,
        with this status and error (when the upstream announced none, ``error`` alone)."""
        fields = {"type": "error", **e.error_fields(error), "sequence_number": self._next}
        out = b"event: error\ndata: " + _encode(fields) + b"\n\n"
        created = msgspec.json.decode(self._created) if self._created else None
        if not isinstance(created, dict):
            return out
        created.update(status="failed", error=e.failure(error))
        self.final = _encode(created)
        failed = {"type": "response.failed", "response": msgspec.Raw(self.final),
                  "sequence_number": self._next + 1}
        return out + b"event: response.failed\ndata: " + _encode(failed) + b"\n\n"
