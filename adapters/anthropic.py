"""The Anthropic Messages dialect, client side: wire types and pure conversions.

Ingress (a client speaking Anthropic, such as Claude Code): ``MessagesRequest`` validates a body,
``anthropic_to_canonical`` turns it into the canonical request, ``canonical_to_anthropic_response``
and ``AnthropicStreamEncoder`` answer it from canonical results, and ``AnthropicPassthrough``
inspects an Anthropic upstream's events on their way through untouched.

The upstream side (canonical -> an Anthropic provider and back) is ``adapters.anthropic_upstream``.

Usage: Anthropic's ``input_tokens`` excludes cache reads and writes; the canonical (OpenAI)
``input_tokens`` includes them. ``anthropic_usage_to_canonical`` and
``canonical_usage_to_anthropic`` are the only two places that convert.

No I/O here.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec
from msgspec import UNSET, UnsetType

from adapters import canonical as c
from adapters.base import inspect_reply
from adapters.errors import ProviderHTTPError, ProviderProtocolError
from adapters.sse import event_fields

_encode = msgspec.json.encode

# --- wire types (ingress validation) --------------------------------------------------------


class AnthropicMessage(msgspec.Struct, omit_defaults=True):
    role: str
    content: str | list[dict[str, Any]]


class MessagesRequest(msgspec.Struct, omit_defaults=True):
    """The fields of a Messages body the gateway reads (others pass through as sent)."""

    model: str
    messages: list[AnthropicMessage]
    max_tokens: int | None = None  # required: checked by the ingress with Anthropic's wording
    system: str | list[dict[str, Any]] | None = None
    stream: bool | None = None
    stop_sequences: list[str] | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: dict[str, Any] | None = None
    thinking: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    output_config: dict[str, Any] | None = None  # effort, and structured output's format


class CountTokensRequest(msgspec.Struct, omit_defaults=True):
    model: str
    messages: list[AnthropicMessage]
    system: str | list[dict[str, Any]] | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: dict[str, Any] | None = None
    thinking: dict[str, Any] | None = None


# --- stop reasons ---------------------------------------------------------------------------

_STOP_TO_CANONICAL: dict[str, c.StopReason] = {
    "end_turn": "end_turn",
    "max_tokens": "max_tokens",
    "stop_sequence": "stop_sequence",
    "tool_use": "tool_use",
    "refusal": "refusal",
    "pause_turn": "end_turn",
    "model_context_window_exceeded": "max_tokens",
}


def anthropic_stop_to_canonical(reason: str | None) -> c.StopReason:
    return _STOP_TO_CANONICAL.get(reason or "end_turn", "end_turn")


def canonical_stop_to_anthropic(reason: str) -> str:
    return "end_turn" if reason == "error" else reason


# --- usage ----------------------------------------------------------------------------------


class UsageWire(msgspec.Struct):
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read_input_tokens: int | None = None
    cache_creation_input_tokens: int | None = None


def anthropic_usage_to_canonical(usage: UsageWire, into: c.Usage | None = None) -> c.Usage:
    """Anthropic usage (input excludes the cache) in canonical form (input includes it).

    With ``into``, fields the wire leaves out keep their value from ``into``: a stream's
    ``message_delta`` often carries only ``output_tokens``.
    """
    base = into or c.Usage()
    read = usage.cache_read_input_tokens
    created = usage.cache_creation_input_tokens
    cache_read = read if read is not None else base.cache_read_tokens
    cache_creation = created if created is not None else base.cache_creation_tokens
    if usage.input_tokens is not None:
        input_tokens = usage.input_tokens + cache_read + cache_creation
    else:
        input_tokens = base.input_tokens
    output = usage.output_tokens if usage.output_tokens is not None else base.output_tokens
    return c.Usage(
        input_tokens=input_tokens,
        output_tokens=output,
        cache_read_tokens=cache_read,
        cache_creation_tokens=cache_creation,
        reasoning_tokens=base.reasoning_tokens,
    )


def canonical_usage_to_anthropic(usage: c.Usage) -> dict[str, int]:
    """Canonical usage as Anthropic spells it: every field an int, as Claude Code expects."""
    uncached = usage.input_tokens - usage.cache_read_tokens - usage.cache_creation_tokens
    return {
        "input_tokens": max(uncached, 0),
        "cache_creation_input_tokens": usage.cache_creation_tokens,
        "cache_read_input_tokens": usage.cache_read_tokens,
        "output_tokens": usage.output_tokens,
    }


# --- ingress: Anthropic request -> canonical ------------------------------------------------


def _cache(block: dict[str, Any]) -> dict[str, Any] | UnsetType:
    value = block.get("cache_control")
    return value if isinstance(value, dict) else UNSET


def _image(block: dict[str, Any]) -> c.ImageBlock | None:
    source = block.get("source") or {}
    kind = source.get("type")
    if kind == "base64":
        return c.ImageBlock(
            data=str(source.get("data", "")),
            media_type=str(source.get("media_type", "image/png")),
            cache_control=_cache(block),
        )
    if kind == "url":
        return c.ImageBlock(url=str(source.get("url", "")), cache_control=_cache(block))
    return None


def _text(block: dict[str, Any]) -> c.TextBlock:
    citations = block.get("citations")
    return c.TextBlock(
        text=str(block.get("text", "")),
        cache_control=_cache(block),
        citations=citations if isinstance(citations, list) else UNSET,
    )


def _document(block: dict[str, Any]) -> c.TextBlock | None:
    """A plain-text document becomes text; PDFs have no canonical form and are dropped."""
    source = block.get("source") or {}
    if source.get("type") == "text":
        title = block.get("title")
        text = str(source.get("data", ""))
        return c.TextBlock(text=f"{title}\n\n{text}" if title else text)
    return None


def _tool_result(block: dict[str, Any]) -> c.ToolResultBlock:
    content = block.get("content")
    parts: list[c.TextBlock | c.ImageBlock] = []
    if isinstance(content, str):
        if content:
            parts.append(c.TextBlock(text=content))
    elif isinstance(content, list):
        for item in content:
            if not isinstance(item, dict):
                continue
            if item.get("type") == "text":
                parts.append(_text(item))
            elif item.get("type") == "image" and (image := _image(item)) is not None:
                parts.append(image)
            elif item.get("type") == "document" and (doc := _document(item)) is not None:
                parts.append(doc)
    return c.ToolResultBlock(
        tool_use_id=str(block.get("tool_use_id", "")),
        content=parts,
        is_error=bool(block.get("is_error", False)),
        cache_control=_cache(block),
    )


def anthropic_blocks_to_canonical(content: str | list[dict[str, Any]]) -> list[c.ContentBlock]:
    """One Anthropic message's content as canonical blocks (unknown block types are dropped)."""
    if isinstance(content, str):
        return [c.TextBlock(text=content)] if content else []
    blocks: list[c.ContentBlock] = []
    for block in content:
        kind = block.get("type")
        if kind == "text":
            blocks.append(_text(block))
        elif kind == "image":
            if (image := _image(block)) is not None:
                blocks.append(image)
        elif kind == "document":
            if (doc := _document(block)) is not None:
                blocks.append(doc)
        elif kind == "tool_use":
            raw_input = block.get("input")
            blocks.append(
                c.ToolUseBlock(
                    id=str(block.get("id", "")),
                    name=str(block.get("name", "")),
                    input=raw_input if isinstance(raw_input, dict) else {},
                    cache_control=_cache(block),
                )
            )
        elif kind == "tool_result":
            blocks.append(_tool_result(block))
        elif kind == "thinking":
            signature = block.get("signature")
            blocks.append(
                c.ThinkingBlock(
                    thinking=str(block.get("thinking", "")),
                    signature=signature if isinstance(signature, str) and signature else UNSET,
                )
            )
        elif kind == "redacted_thinking":
            blocks.append(c.RedactedThinkingBlock(data=str(block.get("data", ""))))
    return blocks


def anthropic_system_to_canonical(system: str | list[dict[str, Any]] | None) -> list[c.TextBlock]:
    if system is None:
        return []
    if isinstance(system, str):
        return [c.TextBlock(text=system)] if system else []
    return [
        _text(block)
        for block in system
        if block.get("type", "text") == "text"
        # Claude Code's attribution line is for Anthropic alone; elsewhere it only breaks the
        # prompt prefix that providers cache.
        and not str(block.get("text", "")).startswith("x-anthropic-billing-header:")
    ]


def anthropic_tools_to_canonical(tools: list[dict[str, Any]]) -> list[c.Tool]:
    """Client tools; Anthropic's server tools (web search, code execution…) have no
    equivalent elsewhere and are dropped."""
    result: list[c.Tool] = []
    for tool in tools:
        kind = tool.get("type")
        if kind not in (None, "custom") or "name" not in tool:
            continue
        schema = tool.get("input_schema")
        description = tool.get("description")
        result.append(
            c.Tool(
                name=str(tool["name"]),
                description=description if isinstance(description, str) else UNSET,
                parameters=schema if isinstance(schema, dict) else {"type": "object"},
                cache_control=_cache(tool),
            )
        )
    return result


_CHOICE_MODES = {"auto": "auto", "any": "required", "tool": "tool", "none": "none"}


def anthropic_tool_choice_to_canonical(choice: dict[str, Any]) -> c.ToolChoice:
    mode = _CHOICE_MODES.get(str(choice.get("type", "auto")), "auto")
    disable = choice.get("disable_parallel_tool_use")
    name = choice.get("name")
    return c.ToolChoice(
        mode=mode,  # type: ignore[arg-type]
        name=name if isinstance(name, str) and mode == "tool" else UNSET,
        disable_parallel=disable if isinstance(disable, bool) else UNSET,
    )


def anthropic_thinking_to_canonical(
    thinking: dict[str, Any], effort: str | None = None
) -> c.Reasoning | UnsetType:
    """``thinking`` (a budget, or ``adaptive`` at ``output_config.effort``) as reasoning."""
    kind = thinking.get("type")
    if kind == "enabled":
        budget = thinking.get("budget_tokens")
        return c.Reasoning(budget_tokens=budget if isinstance(budget, int) else 1024)
    if kind == "adaptive":
        # Anthropic's effort levels are low, medium, high and max; OpenAI's stop at high.
        return c.Reasoning(effort="high" if effort == "max" else effort or "medium")
    return UNSET


def _output_format(output_config: dict[str, Any]) -> dict[str, Any] | UnsetType:
    """Anthropic's structured output (``output_config.format``) as OpenAI's response_format."""
    spec = output_config.get("format")
    if isinstance(spec, dict) and spec.get("type") == "json_schema":
        schema = spec.get("schema")
        return {
            "type": "json_schema",
            "json_schema": {"name": "output", "schema": schema if isinstance(schema, dict) else {}},
        }
    return UNSET


def anthropic_to_canonical(request: MessagesRequest) -> c.Request:
    """A validated Anthropic Messages request in canonical form."""
    messages: list[c.Message] = []
    system = anthropic_system_to_canonical(request.system)
    for message in request.messages:
        if message.role == "system":
            # Claude Code's mid-conversation system messages: other dialects have one system
            # prompt, so they join it.
            system.extend(anthropic_system_to_canonical(message.content))
            continue
        blocks = anthropic_blocks_to_canonical(message.content)
        role: Literal["user", "assistant"] = "assistant" if message.role == "assistant" else "user"
        if messages and messages[-1].role == role:
            messages[-1].content.extend(blocks)
        else:
            messages.append(c.Message(role=role, content=blocks))
    canonical = c.Request(
        model=request.model,
        messages=messages,
        system=system,
        stream=bool(request.stream),
    )
    if request.max_tokens is not None:
        canonical.max_tokens = request.max_tokens
    if request.stop_sequences:
        canonical.stop = list(request.stop_sequences)
    if request.temperature is not None:
        canonical.temperature = request.temperature
    if request.top_p is not None:
        canonical.top_p = request.top_p
    if request.top_k is not None:
        canonical.top_k = request.top_k
    if request.tools:
        canonical.tools = anthropic_tools_to_canonical(request.tools)
    if request.tool_choice:
        canonical.tool_choice = anthropic_tool_choice_to_canonical(request.tool_choice)
    output_config = request.output_config or {}
    if request.thinking:
        effort = output_config.get("effort")
        canonical.reasoning = anthropic_thinking_to_canonical(
            request.thinking, effort if isinstance(effort, str) else None
        )
    if output_config:
        canonical.response_format = _output_format(output_config)
    user = (request.metadata or {}).get("user_id")
    if isinstance(user, str) and len(user) <= 64:  # OpenAI's limit; Claude Code's ids are longer
        canonical.user = user
    return canonical


# --- ingress: canonical -> Anthropic response -----------------------------------------------


def message_id(response_id: str) -> str:
    return response_id if response_id.startswith("msg_") else f"msg_{response_id}"


def canonical_block_to_anthropic(block: c.ContentBlock) -> dict[str, Any] | None:
    """One answer block as Anthropic spells it (None for blocks an answer never holds)."""
    if isinstance(block, c.TextBlock):
        out: dict[str, Any] = {"type": "text", "text": block.text}
        if block.citations is not UNSET:
            out["citations"] = block.citations
        return out
    if isinstance(block, c.ThinkingBlock):
        signature = block.signature if block.signature is not UNSET else ""
        return {"type": "thinking", "thinking": block.thinking, "signature": signature}
    if isinstance(block, c.RedactedThinkingBlock):
        return {"type": "redacted_thinking", "data": block.data}
    if isinstance(block, c.ToolUseBlock):
        return {"type": "tool_use", "id": block.id, "name": block.name, "input": block.input}
    return None


def canonical_to_anthropic_response(response: c.Response, model: str) -> dict[str, Any]:
    """A canonical answer as an Anthropic ``message`` object naming ``model``."""
    content = [
        out
        for block in response.content
        if (out := canonical_block_to_anthropic(block)) is not None
    ]
    return {
        "id": message_id(response.id),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": canonical_stop_to_anthropic(response.stop_reason),
        "stop_sequence": response.stop_sequence,
        "usage": canonical_usage_to_anthropic(response.usage),
    }


def event(name: str, data: bytes) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + data + b"\n\n"


PING = event("ping", b'{"type":"ping"}')


def anthropic_error_frame(body: dict[str, Any]) -> bytes:
    """An error after the stream has started, as Anthropic's SDKs expect it."""
    return event("error", _encode(body))


_DELTA_KIND: dict[type, str] = {
    c.TextDelta: "text",
    c.ThinkingDelta: "thinking",
    c.SignatureDelta: "thinking",
    c.ToolArgsDelta: "tool_use",
}


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
        message: dict[str, Any] = {
            "id": self._id,
            "type": "message",
            "role": "assistant",
            "model": self._model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": canonical_usage_to_anthropic(self.usage or c.Usage()),
        }
        return event("message_start", _encode({"type": "message_start", "message": message}))

    def _stop_open(self) -> bytes:
        if self._open is None:
            return b""
        index = self._open[1]
        self._open = None
        return event("content_block_stop", b'{"type":"content_block_stop","index":%d}' % index)

    def _start(self, canonical_index: int, kind: str, block: dict[str, Any]) -> bytes:
        out = self._stop_open()
        index = self._next
        self._next += 1
        self._open = (canonical_index, index, kind)
        body = {"type": "content_block_start", "index": index, "content_block": block}
        out += event("content_block_start", _encode(body))
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
                start = {"type": "tool_use", "id": block.id, "name": block.name, "input": {}}
                return out + self._start(item.index, "tool_use", start)
            if isinstance(block, c.ThinkingStart):
                start = {"type": "thinking", "thinking": "", "signature": ""}
                return out + self._start(item.index, "thinking", start)
            return out + self._start(item.index, "text", {"type": "text", "text": ""})
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
            fresh = (
                {"type": "thinking", "thinking": "", "signature": ""}
                if kind == "thinking"
                else {"type": "text", "text": ""}
            )
            out = self._start(item.index, kind, fresh)
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
        delta = {
            "type": "message_delta",
            "delta": {
                "stop_reason": self.stop_reason or "end_turn",
                "stop_sequence": self.stop_sequence,
            },
            "usage": canonical_usage_to_anthropic(self.usage or c.Usage()),
        }
        out += event("message_delta", _encode(delta))
        return out + event("message_stop", b'{"type":"message_stop"}')


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

# Anthropic's error types and the status each stands for, for errors sent inside a stream.
ERROR_STATUS: dict[str, int] = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}


def has_value(raw: msgspec.Raw) -> bool:
    """True when a ``Raw`` field was present and not null."""
    return len(raw) > 0 and bytes(raw) != b"null"


def mid_stream_error(raw: msgspec.Raw) -> ProviderHTTPError:
    """An Anthropic ``error`` event as the provider error it reports."""
    try:
        error = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        error = {}
    if not isinstance(error, dict):
        error = {}
    status = ERROR_STATUS.get(str(error.get("type", "")), 502)
    return ProviderHTTPError(status, str(error.get("message", "error mid-stream")))


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
        error = {"type": "api_error", "message": "the upstream ended the stream early; retry"}
        return anthropic_error_frame({"type": "error", "error": error})


class _ResponseView(msgspec.Struct):
    model: str = ""
    usage: UsageWire | None = None


_response_view = msgspec.json.Decoder(_ResponseView)


def inspect_anthropic_response(body: bytes, served_model: str) -> tuple[bytes, c.Usage | None]:
    """A non-streamed Anthropic answer renamed to ``served_model``, and its usage."""
    return inspect_reply(body, served_model, _response_view, anthropic_usage_to_canonical)
