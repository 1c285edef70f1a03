"""The Anthropic Messages dialect, provider side: canonical requests out, canonical answers in.

``canonical_to_anthropic_request`` builds a Messages body for an Anthropic upstream,
``anthropic_response_to_canonical`` reads its answer and ``AnthropicEventDecoder`` turns its SSE
events into canonical stream events. No I/O here: the HTTP client is
``adapters.anthropic_provider``.
"""

from __future__ import annotations

from typing import Any

import msgspec
from msgspec import UNSET, UnsetType

from adapters import canonical as c
from adapters.anthropic.wire import (
    AnthropicMessage,
    Block,
    Source,
    Thinking,
    ToolChoice,
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


class _Tool(msgspec.Struct, omit_defaults=True):
    name: str
    input_schema: dict[str, Any]
    description: str | UnsetType = UNSET
    cache_control: dict[str, Any] | UnsetType = UNSET


class _Metadata(msgspec.Struct):
    user_id: str


class MessagesBody(msgspec.Struct, omit_defaults=True):
    """A Messages body for an Anthropic upstream, built from a canonical request."""

    model: str
    messages: list[AnthropicMessage]
    max_tokens: int
    system: list[Block] | UnsetType = UNSET
    stream: bool | UnsetType = UNSET
    stop_sequences: list[str] | UnsetType = UNSET
    thinking: Thinking | UnsetType = UNSET
    temperature: float | UnsetType = UNSET
    top_p: float | UnsetType = UNSET
    top_k: int | UnsetType = UNSET
    tools: list[_Tool] | UnsetType = UNSET
    tool_choice: ToolChoice | UnsetType = UNSET
    metadata: _Metadata | UnsetType = UNSET


def _image_to_anthropic(block: c.ImageBlock) -> Block:
    if block.url is not UNSET:
        source = Source(type="url", url=block.url)
    else:
        source = Source(
            type="base64",
            media_type=block.media_type if block.media_type is not UNSET else "image/png",
            data=block.data if block.data is not UNSET else "",
        )
    return Block(type="image", source=source, cache_control=block.cache_control)


def _block_to_anthropic(block: c.ContentBlock) -> Block | None:
    if isinstance(block, c.TextBlock):
        if not block.text:
            return None  # Anthropic rejects empty text blocks
        return Block(type="text", text=block.text, citations=block.citations,
                     cache_control=block.cache_control)
    if isinstance(block, c.ImageBlock):
        return _image_to_anthropic(block)
    if isinstance(block, c.ToolUseBlock):
        return Block(type="tool_use", id=block.id, name=block.name, input=block.input,
                     cache_control=block.cache_control)
    if isinstance(block, c.ToolResultBlock):
        content = [out for part in block.content if (out := _block_to_anthropic(part))]
        return Block(type="tool_result", tool_use_id=block.tool_use_id, content=content,
                     is_error=True if block.is_error else UNSET,
                     cache_control=block.cache_control)
    if isinstance(block, c.ThinkingBlock):
        # Anthropic accepts only the thinking it signed; reasoning from other models is dropped.
        if block.signature is UNSET or not block.signature:
            return None
        return Block(type="thinking", thinking=block.thinking, signature=block.signature)
    if isinstance(block, c.RedactedThinkingBlock):
        return Block(type="redacted_thinking", data=block.data)
    return None  # audio has no Anthropic spelling


def _blocks_to_anthropic(message: c.Message) -> list[Block]:
    blocks = [out for block in message.content if (out := _block_to_anthropic(block)) is not None]
    if message.role == "user":
        # Tool results must open a user turn.
        blocks.sort(key=lambda block: block.type != "tool_result")
    return blocks


def _tool_choice_to_anthropic(choice: c.ToolChoice) -> ToolChoice:
    mode = {"auto": "auto", "required": "any", "tool": "tool", "none": "none"}[choice.mode]
    return ToolChoice(
        type=mode,
        name=choice.name if mode == "tool" else UNSET,
        disable_parallel_tool_use=choice.disable_parallel if mode != "none" else UNSET,
    )


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


def _signed_thinking_leads_tool_turn(messages: list[AnthropicMessage]) -> bool:
    """Whether thinking may be switched on for this history.

    With thinking on, Anthropic refuses a last assistant turn that called tools without opening
    with its signed thinking block, which history from another model never has: thinking is
    then left off for this request rather than failing it.
    """
    for message in reversed(messages):
        if message.role != "assistant" or isinstance(message.content, str):
            continue
        content = message.content
        if not any(block.type == "tool_use" for block in content):
            return True
        return content[0].type in ("thinking", "redacted_thinking")
    return True


def _messages(request: c.Request) -> list[AnthropicMessage]:
    """The conversation, consecutive turns of one role joined (Anthropic alternates roles)."""
    turns: list[tuple[str, list[Block]]] = []
    for message in request.messages:
        blocks = _blocks_to_anthropic(message)
        if not blocks:
            continue
        if turns and turns[-1][0] == message.role:
            turns[-1][1].extend(blocks)
        else:
            turns.append((message.role, blocks))
    return [AnthropicMessage(role=role, content=blocks) for role, blocks in turns]


def _thinking_budget(request: c.Request, messages: list[AnthropicMessage]) -> int | None:
    """The thinking budget to ask for, or None to leave thinking off."""
    if request.reasoning is UNSET:
        return None
    budget = request.reasoning.budget_tokens
    if budget is UNSET and request.reasoning.effort is not UNSET:
        effort = request.reasoning.effort
        budget = EFFORT_BUDGET.get(effort, 8192) if effort != "none" else UNSET
    if budget is UNSET or not _signed_thinking_leads_tool_turn(messages):
        return None
    return max(budget, 1024)


def canonical_to_anthropic_request(request: c.Request, model: str) -> MessagesBody:
    """A canonical request as an Anthropic Messages body for ``model`` (a Struct: the provider
    encodes it once per call, nobody changes it)."""
    messages = _messages(request)
    asked = request.max_tokens if request.max_tokens is not UNSET else DEFAULT_MAX_TOKENS
    system = [
        Block(type="text", text=block.text, cache_control=block.cache_control)
        for block in request.system
        if block.text
    ]
    instruction = _json_instruction(request)
    if instruction:
        system.append(Block(type="text", text=instruction))
    body = MessagesBody(model=model, messages=messages, max_tokens=asked)
    if system:
        body.system = system
    if request.stream:
        body.stream = True
    if request.stop is not UNSET and request.stop:
        body.stop_sequences = request.stop
    budget = _thinking_budget(request, messages)
    if budget is not None:
        body.thinking = Thinking(type="enabled", budget_tokens=budget)
        if asked <= budget:
            body.max_tokens = budget + asked
    else:
        # Extended thinking refuses temperature and top_k, and top_p below 0.95.
        if request.temperature is not UNSET:
            body.temperature = min(request.temperature, 1.0)  # OpenAI's range goes up to 2
        body.top_p = request.top_p
        body.top_k = request.top_k
    if request.tools is not UNSET and request.tools:
        body.tools = [
            _Tool(
                name=tool.name,
                input_schema=tool.parameters or {"type": "object", "properties": {}},
                description=tool.description,
                cache_control=tool.cache_control,
            )
            for tool in request.tools
        ]
        if request.tool_choice is not UNSET:
            body.tool_choice = _tool_choice_to_anthropic(request.tool_choice)
    if request.user is not UNSET:
        body.metadata = _Metadata(user_id=request.user)
    return body


# --- upstream: Anthropic response -> canonical ----------------------------------------------


class _ResponseWire(msgspec.Struct):
    id: str = ""
    model: str = ""
    content: list[Block] = []
    stop_reason: str | None = None
    stop_sequence: str | None = None
    usage: UsageWire | None = None


_response_wire = msgspec.json.Decoder(_ResponseWire)


def answer_block_to_canonical(block: Block) -> c.ContentBlock | None:
    """One block of an Anthropic answer (server-tool blocks have no canonical form)."""
    kind = block.type
    if kind == "text":
        citations = block.citations
        return c.TextBlock(
            text=block.text if block.text is not UNSET else "",
            citations=citations if isinstance(citations, list) else UNSET,
        )
    if kind == "thinking":
        return c.ThinkingBlock(
            thinking=block.thinking if block.thinking is not UNSET else "",
            signature=block.signature if block.signature else UNSET,
        )
    if kind == "redacted_thinking":
        return c.RedactedThinkingBlock(data=block.data if block.data is not UNSET else "")
    if kind == "tool_use":
        return c.ToolUseBlock(
            id=block.id if block.id is not UNSET else "",
            name=block.name if block.name is not UNSET else "",
            input=block.input if block.input is not UNSET else {},
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
