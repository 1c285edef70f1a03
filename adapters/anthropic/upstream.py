"""The Anthropic Messages dialect, provider side: canonical requests out, canonical answers in.

``canonical_to_anthropic_request`` builds a Messages body for an Anthropic upstream,
``anthropic_response_to_canonical`` reads its answer and ``AnthropicEventDecoder`` turns its SSE
events into canonical stream events. No I/O here: the HTTP client is
``adapters.anthropic_provider``.
"""

from __future__ import annotations

from typing import Any

import msgspec
from msgspec import UNSET

from adapters import canonical as c
from adapters.anthropic.wire import (
    UsageWire,
    anthropic_stop_to_canonical,
    anthropic_usage_to_canonical,
    mid_stream_error,
)
from adapters.base import has_value
from adapters.errors import ProviderConnectionError, ProviderProtocolError

# Anthropic requires max_tokens; this is what a request that did not say gets.
DEFAULT_MAX_TOKENS = 4096
# OpenAI's reasoning_effort as a thinking budget (Anthropic's minimum budget is 1024).
EFFORT_BUDGET = {"minimal": 1024, "low": 2048, "medium": 8192, "high": 24576}


def _with_cache(out: dict[str, Any], block: Any) -> dict[str, Any]:
    if getattr(block, "cache_control", UNSET) is not UNSET:
        out["cache_control"] = block.cache_control
    return out


def _image_to_anthropic(block: c.ImageBlock) -> dict[str, Any]:
    if block.url is not UNSET:
        source: dict[str, Any] = {"type": "url", "url": block.url}
    else:
        source = {
            "type": "base64",
            "media_type": block.media_type if block.media_type is not UNSET else "image/png",
            "data": block.data if block.data is not UNSET else "",
        }
    return _with_cache({"type": "image", "source": source}, block)


def _block_to_anthropic(block: c.ContentBlock) -> dict[str, Any] | None:
    if isinstance(block, c.TextBlock):
        if not block.text:
            return None  # Anthropic rejects empty text blocks
        out: dict[str, Any] = {"type": "text", "text": block.text}
        if block.citations is not UNSET:
            out["citations"] = block.citations
        return _with_cache(out, block)
    if isinstance(block, c.ImageBlock):
        return _image_to_anthropic(block)
    if isinstance(block, c.ToolUseBlock):
        out = {"type": "tool_use", "id": block.id, "name": block.name, "input": block.input}
        return _with_cache(out, block)
    if isinstance(block, c.ToolResultBlock):
        content: list[dict[str, Any]] = []
        for part in block.content:
            converted = _block_to_anthropic(part)
            if converted is not None:
                content.append(converted)
        out = {"type": "tool_result", "tool_use_id": block.tool_use_id, "content": content}
        if block.is_error:
            out["is_error"] = True
        return _with_cache(out, block)
    if isinstance(block, c.ThinkingBlock):
        # Anthropic accepts only the thinking it signed; reasoning from other models is dropped.
        if block.signature is UNSET or not block.signature:
            return None
        return {"type": "thinking", "thinking": block.thinking, "signature": block.signature}
    if isinstance(block, c.RedactedThinkingBlock):
        return {"type": "redacted_thinking", "data": block.data}
    return None  # audio has no Anthropic spelling


def _message_to_anthropic(message: c.Message) -> dict[str, Any] | None:
    blocks = [out for block in message.content if (out := _block_to_anthropic(block)) is not None]
    if message.role == "user":
        # Tool results must open a user turn.
        blocks.sort(key=lambda block: block["type"] != "tool_result")
    if not blocks:
        return None
    return {"role": message.role, "content": blocks}


def _tool_choice_to_anthropic(choice: c.ToolChoice) -> dict[str, Any]:
    mode = {"auto": "auto", "required": "any", "tool": "tool", "none": "none"}[choice.mode]
    out: dict[str, Any] = {"type": mode}
    if mode == "tool" and choice.name is not UNSET:
        out["name"] = choice.name
    if choice.disable_parallel is not UNSET and mode != "none":
        out["disable_parallel_tool_use"] = choice.disable_parallel
    return out


def _json_instruction(request: c.Request) -> str:
    """OpenAI's response_format as an instruction: Anthropic has no JSON mode of its own."""
    if request.response_format is UNSET:
        return ""
    kind = request.response_format.get("type")
    if kind == "json_object":
        return "Answer with one JSON object and nothing else: no prose, no code fences."
    if kind == "json_schema":
        spec = request.response_format.get("json_schema") or {}
        schema = msgspec.json.encode(spec.get("schema", {})).decode()
        return (
            "Answer with one JSON object that conforms to this JSON Schema, and nothing else "
            f"(no prose, no code fences): {schema}"
        )
    return ""


def _signed_thinking_leads_tool_turn(messages: list[dict[str, Any]]) -> bool:
    """Whether thinking may be switched on for this history.

    With thinking on, Anthropic refuses a last assistant turn that called tools without opening
    with its signed thinking block, which history from another model never has: thinking is
    then left off for this request rather than failing it.
    """
    for message in reversed(messages):
        if message["role"] != "assistant":
            continue
        content = message["content"]
        if not any(block["type"] == "tool_use" for block in content):
            return True
        return content[0]["type"] in ("thinking", "redacted_thinking")
    return True


def canonical_to_anthropic_request(request: c.Request, model: str) -> dict[str, Any]:
    """A canonical request as an Anthropic Messages body for ``model``."""
    messages: list[dict[str, Any]] = []
    for message in request.messages:
        converted = _message_to_anthropic(message)
        if converted is None:
            continue
        if messages and messages[-1]["role"] == converted["role"]:
            messages[-1]["content"].extend(converted["content"])
        else:
            messages.append(converted)
    max_tokens = request.max_tokens if request.max_tokens is not UNSET else DEFAULT_MAX_TOKENS
    body: dict[str, Any] = {"model": model, "messages": messages, "max_tokens": max_tokens}
    system = [
        _with_cache({"type": "text", "text": block.text}, block)
        for block in request.system
        if block.text
    ]
    instruction = _json_instruction(request)
    if instruction:
        system.append({"type": "text", "text": instruction})
    if system:
        body["system"] = system
    if request.stream:
        body["stream"] = True
    if request.stop is not UNSET and request.stop:
        body["stop_sequences"] = request.stop
    thinking = False
    if request.reasoning is not UNSET:
        budget = request.reasoning.budget_tokens
        if budget is UNSET and request.reasoning.effort is not UNSET:
            effort = request.reasoning.effort
            budget = EFFORT_BUDGET.get(effort, 8192) if effort != "none" else UNSET
        if budget is not UNSET and _signed_thinking_leads_tool_turn(messages):
            budget = max(budget, 1024)
            thinking = True
            body["thinking"] = {"type": "enabled", "budget_tokens": budget}
            if body["max_tokens"] <= budget:
                body["max_tokens"] = budget + (
                    request.max_tokens if request.max_tokens is not UNSET else DEFAULT_MAX_TOKENS
                )
    # Extended thinking refuses temperature and top_k, and top_p below 0.95.
    if request.temperature is not UNSET and not thinking:
        body["temperature"] = min(request.temperature, 1.0)  # OpenAI's range goes up to 2
    if request.top_p is not UNSET and not thinking:
        body["top_p"] = request.top_p
    if request.top_k is not UNSET and not thinking:
        body["top_k"] = request.top_k
    if request.tools is not UNSET and request.tools:
        body["tools"] = [
            _with_cache(
                {
                    "name": tool.name,
                    **({"description": tool.description} if tool.description is not UNSET else {}),
                    "input_schema": tool.parameters or {"type": "object", "properties": {}},
                },
                tool,
            )
            for tool in request.tools
        ]
        if request.tool_choice is not UNSET:
            body["tool_choice"] = _tool_choice_to_anthropic(request.tool_choice)
    if request.user is not UNSET:
        body["metadata"] = {"user_id": request.user}
    return body


# --- upstream: Anthropic response -> canonical ----------------------------------------------


class _ResponseWire(msgspec.Struct):
    id: str = ""
    model: str = ""
    content: list[dict[str, Any]] = []
    stop_reason: str | None = None
    stop_sequence: str | None = None
    usage: UsageWire | None = None


_response_wire = msgspec.json.Decoder(_ResponseWire)


def answer_block_to_canonical(block: dict[str, Any]) -> c.ContentBlock | None:
    """One block of an Anthropic answer (server-tool blocks have no canonical form)."""
    kind = block.get("type")
    if kind == "text":
        citations = block.get("citations")
        return c.TextBlock(
            text=str(block.get("text", "")),
            citations=citations if isinstance(citations, list) else UNSET,
        )
    if kind == "thinking":
        signature = block.get("signature")
        return c.ThinkingBlock(
            thinking=str(block.get("thinking", "")),
            signature=signature if isinstance(signature, str) and signature else UNSET,
        )
    if kind == "redacted_thinking":
        return c.RedactedThinkingBlock(data=str(block.get("data", "")))
    if kind == "tool_use":
        raw_input = block.get("input")
        return c.ToolUseBlock(
            id=str(block.get("id", "")),
            name=str(block.get("name", "")),
            input=raw_input if isinstance(raw_input, dict) else {},
        )
    return None


def anthropic_response_to_canonical(body: bytes) -> c.Response:
    """An Anthropic ``message`` body in canonical form."""
    try:
        wire = _response_wire.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise ProviderProtocolError(f"malformed response body: {exc}") from exc
    blocks = [out for block in wire.content if (out := answer_block_to_canonical(block))]
    return c.Response(
        id=wire.id or "msg",
        model=wire.model,
        content=blocks,
        stop_reason=anthropic_stop_to_canonical(wire.stop_reason),
        stop_sequence=wire.stop_sequence,
        usage=anthropic_usage_to_canonical(wire.usage) if wire.usage else c.Usage(),
    )


# --- upstream: Anthropic stream -> canonical events -----------------------------------------


class _BlockWire(msgspec.Struct):
    type: str = ""
    id: str = ""
    name: str = ""
    text: str = ""
    thinking: str = ""


class _DeltaWire(msgspec.Struct):
    type: str = ""
    text: str = ""
    thinking: str = ""
    signature: str = ""
    partial_json: str = ""
    stop_reason: str | None = None
    stop_sequence: str | None = None


class _MessageWire(msgspec.Struct):
    id: str = ""
    model: str = ""
    usage: UsageWire | None = None


class _EventWire(msgspec.Struct):
    type: str = ""
    index: int = 0
    message: _MessageWire | None = None
    content_block: _BlockWire | None = None
    delta: _DeltaWire | None = None
    usage: UsageWire | None = None
    error: msgspec.Raw = msgspec.Raw()  # empty when absent


_event_wire = msgspec.json.Decoder(_EventWire)


class AnthropicEventDecoder:
    """Anthropic SSE data payloads -> canonical stream events (indices kept as sent)."""

    def __init__(self) -> None:
        self._usage: c.Usage | None = None
        self._stop: c.StopReason | None = None
        self._stop_sequence: str | None = None
        self._blocks: set[int] = set()  # indices of blocks with a canonical form
        self._finished = False
        self._stopped = False

    def feed(self, data: bytes) -> list[c.StreamEvent]:
        try:
            wire = _event_wire.decode(data)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise ProviderProtocolError(f"malformed stream event: {exc}") from exc
        kind = wire.type
        if kind == "content_block_delta" and wire.delta is not None:
            return self._delta(wire.index, wire.delta)
        if kind == "content_block_start" and wire.content_block is not None:
            return self._start(wire.index, wire.content_block)
        if kind == "content_block_stop":
            if wire.index in self._blocks:
                self._blocks.discard(wire.index)
                return [c.BlockStop(index=wire.index)]
            return []
        if kind == "message_start" and wire.message is not None:
            message = wire.message
            if message.usage is not None:
                self._usage = anthropic_usage_to_canonical(message.usage)
            start = c.MessageStart(id=message.id or "msg", model=message.model)
            if self._usage is not None:
                start.usage = self._usage
            return [start]
        if kind == "message_delta":
            events: list[c.StreamEvent] = []
            if wire.delta is not None and wire.delta.stop_reason:
                self._stop = anthropic_stop_to_canonical(wire.delta.stop_reason)
                self._stop_sequence = wire.delta.stop_sequence
            if wire.usage is not None:
                self._usage = anthropic_usage_to_canonical(wire.usage, self._usage)
                events.append(c.UsageUpdate(usage=self._usage))
            return events
        if kind == "message_stop":
            self._stopped = True
            return self.close()
        if kind == "error" and has_value(wire.error):
            raise mid_stream_error(wire.error)
        return []  # ping, and event types added after this was written

    def _start(self, index: int, block: _BlockWire) -> list[c.StreamEvent]:
        events: list[c.StreamEvent] = []
        if block.type == "text":
            self._blocks.add(index)
            events.append(c.BlockStart(index=index, block=c.TextStart()))
            if block.text:
                events.append(c.BlockDelta(index=index, delta=c.TextDelta(text=block.text)))
        elif block.type == "thinking":
            self._blocks.add(index)
            events.append(c.BlockStart(index=index, block=c.ThinkingStart()))
            if block.thinking:
                delta = c.ThinkingDelta(thinking=block.thinking)
                events.append(c.BlockDelta(index=index, delta=delta))
        elif block.type == "tool_use":
            self._blocks.add(index)
            start = c.ToolUseStart(id=block.id, name=block.name)
            events.append(c.BlockStart(index=index, block=start))
        return events

    def _delta(self, index: int, delta: _DeltaWire) -> list[c.StreamEvent]:
        if index not in self._blocks:
            return []
        kind = delta.type
        item: c.TextDelta | c.ThinkingDelta | c.SignatureDelta | c.ToolArgsDelta
        if kind == "text_delta":
            item = c.TextDelta(text=delta.text)
        elif kind == "thinking_delta":
            item = c.ThinkingDelta(thinking=delta.thinking)
        elif kind == "signature_delta":
            item = c.SignatureDelta(signature=delta.signature)
        elif kind == "input_json_delta":
            if not delta.partial_json:
                return []
            item = c.ToolArgsDelta(partial_json=delta.partial_json)
        else:
            return []
        return [c.BlockDelta(index=index, delta=item)]

    def close(self) -> list[c.StreamEvent]:
        """The closing events, once; a stream that ends before ``message_stop`` was cut."""
        if self._finished:
            return []
        if not self._stopped:
            raise ProviderConnectionError("the stream ended before message_stop")
        self._finished = True
        events: list[c.StreamEvent] = [c.BlockStop(index=i) for i in sorted(self._blocks)]
        self._blocks.clear()
        if self._stop is None and self._usage is None:
            return events
        events.append(
            c.Finish(stop_reason=self._stop or "end_turn", stop_sequence=self._stop_sequence)
        )
        return events
