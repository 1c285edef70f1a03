"""The OpenAI chat-completions dialect, provider side: canonical requests out to an
OpenAI-compatible upstream, its answers and stream chunks back in canonical form.

No I/O here: the HTTP client is ``adapters.openai.provider``.
"""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec
from msgspec import UNSET, UnsetType

from adapters import canonical as c
from adapters.errors import ProviderProtocolError
from adapters.openai.wire import (
    ChatMessage,
    ChatRequest,
    ContentPart,
    FunctionCall,
    FunctionDef,
    FunctionName,
    ImageURL,
    InputAudio,
    NamedToolChoice,
    StreamOptions,
    ToolCall,
    ToolDef,
    UsageWire,
    blocks_to_message,
    content_parts_to_blocks,
    mid_stream_error,
    openai_finish_to_canonical,
    openai_usage_to_canonical,
    parse_arguments,
)

T = TypeVar("T")

# --- upstream: canonical -> OpenAI request --------------------------------------------------


def _image_part(block: c.ImageBlock) -> ContentPart:
    if block.url is not UNSET:
        url = block.url
    else:
        url = f"data:{block.media_type or 'image/png'};base64,{block.data}"
    return ContentPart(type="image_url", image_url=ImageURL(url=url, detail=block.detail))


def _user_parts(blocks: list[c.ContentBlock]) -> list[ContentPart]:
    parts: list[ContentPart] = []
    for block in blocks:
        if isinstance(block, c.TextBlock):
            parts.append(ContentPart(type="text", text=block.text))
        elif isinstance(block, c.ImageBlock):
            parts.append(_image_part(block))
        elif isinstance(block, c.AudioBlock):
            audio = InputAudio(data=block.data, format=block.format)
            parts.append(ContentPart(type="input_audio", input_audio=audio))
    return parts


def _simplify(parts: list[ContentPart]) -> str | list[ContentPart]:
    if all(part.type == "text" for part in parts):
        return "".join(part.text for part in parts if isinstance(part.text, str))
    return parts


def _tool_result_message(block: c.ToolResultBlock) -> ChatMessage:
    text = "".join(b.text for b in block.content if isinstance(b, c.TextBlock))
    if block.is_error and not text.startswith("Error"):
        text = f"Error: {text}" if text else "Error"
    return ChatMessage(role="tool", tool_call_id=block.tool_use_id, content=text)


def _canonical_messages_to_openai(request: c.Request) -> list[ChatMessage]:
    messages: list[ChatMessage] = []
    if request.system:
        messages.append(ChatMessage(role="system", content=c.text_of(request.system)))
    for message in request.messages:
        if message.role == "assistant":
            # Reasoning is not sent back: Groq, Cerebras and others refuse a reasoning_content
            # property (400), and Anthropic-signed thinking means nothing to another model.
            spoken: list[c.ContentBlock] = [
                b for b in message.content if not isinstance(b, c.ThinkingBlock)
            ]
            messages.append(blocks_to_message(spoken))
            continue
        results = [b for b in message.content if isinstance(b, c.ToolResultBlock)]
        others = [b for b in message.content if not isinstance(b, c.ToolResultBlock)]
        messages.extend(_tool_result_message(block) for block in results)
        # Images inside tool results have no place in an OpenAI tool message: a user turn.
        images = [
            image for block in results for image in block.content if isinstance(image, c.ImageBlock)
        ]
        parts = _user_parts([*images, *others])
        if parts:
            messages.append(ChatMessage(role="user", content=_simplify(parts)))
    return messages


def _tool_choice_to_openai(choice: c.ToolChoice) -> str | NamedToolChoice:
    if choice.mode == "tool":
        name = choice.name if choice.name is not UNSET else ""
        return NamedToolChoice(function=FunctionName(name=name))
    return choice.mode


def _tool_def(tool: c.Tool) -> ToolDef:
    return ToolDef(FunctionDef(tool.name, tool.description, tool.parameters))


def _reasoning_effort(reasoning: c.Reasoning) -> str | None:
    effort = reasoning.effort
    if effort is UNSET and reasoning.budget_tokens is not UNSET:
        budget = reasoning.budget_tokens
        effort = "low" if budget < 4096 else "medium" if budget < 16384 else "high"
    return effort if effort is not UNSET else None


def canonical_to_openai_request(
    request: c.Request, model: str, max_tokens_field: str = "max_tokens"
) -> ChatRequest:
    """A canonical request as an OpenAI chat-completions body for ``model`` (a Struct: the
    provider encodes it once per call, nobody changes it)."""
    choice = request.tool_choice
    tools = request.tools
    body = ChatRequest(
        model=model,
        messages=_canonical_messages_to_openai(request),
        stream=True if request.stream else None,
        stream_options=StreamOptions(include_usage=True) if request.stream else None,
        tools=[_tool_def(tool) for tool in tools] if tools is not UNSET else None,
        temperature=_given(request.temperature),
        top_p=_given(request.top_p),
        seed=_given(request.seed),
        response_format=_given(request.response_format),
        user=_given(request.user),
        stop=_given(request.stop),
        reasoning_effort=(
            _reasoning_effort(request.reasoning) if request.reasoning is not UNSET else None
        ),
    )
    if choice is not UNSET:
        if choice.mode != "auto" or choice.name is not UNSET:
            body.tool_choice = _tool_choice_to_openai(choice)
        if choice.disable_parallel is not UNSET and tools is not UNSET:
            body.parallel_tool_calls = not choice.disable_parallel
    if request.max_tokens is not UNSET:
        if max_tokens_field == "max_completion_tokens":
            body.max_completion_tokens = request.max_tokens
        else:
            body.max_tokens = request.max_tokens
    return body


def _given(value: T | UnsetType) -> T | None:
    return None if value is UNSET else value


# --- upstream: OpenAI response -> canonical -------------------------------------------------


class _MessageWire(msgspec.Struct):
    content: str | list[ContentPart] | None = None
    reasoning_content: str | None = None
    reasoning: str | None = None
    refusal: str | None = None
    tool_calls: list[ToolCall] | None = None


class _ChoiceWire(msgspec.Struct):
    message: _MessageWire = msgspec.field(default_factory=_MessageWire)
    finish_reason: str | None = None


class ResponseWire(msgspec.Struct):
    id: str = ""
    model: str = ""
    choices: list[_ChoiceWire] = []
    usage: UsageWire | None = None


_response_wire = msgspec.json.Decoder(ResponseWire)


def openai_response_to_canonical(body: bytes) -> c.Response:
    """An OpenAI ``chat.completion`` body in canonical form (first choice)."""
    try:
        wire = _response_wire.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise ProviderProtocolError(f"malformed response body: {exc}") from exc
    blocks: list[c.ContentBlock] = []
    finish: c.StopReason = "end_turn"
    if wire.choices:
        choice = wire.choices[0]
        message = choice.message
        reasoning = message.reasoning_content or message.reasoning
        if reasoning:
            blocks.append(c.ThinkingBlock(thinking=reasoning))
        if isinstance(message.content, str) and message.content:
            blocks.append(c.TextBlock(text=message.content))
        elif isinstance(message.content, list):
            blocks.extend(content_parts_to_blocks(message.content))
        if message.refusal:
            blocks.append(c.TextBlock(text=message.refusal))
        for call in message.tool_calls or []:
            blocks.append(
                c.ToolUseBlock(
                    id=call.id,
                    name=call.function.name,
                    input=parse_arguments(call.function.arguments),
                )
            )
        finish = openai_finish_to_canonical(choice.finish_reason)
    usage = openai_usage_to_canonical(wire.usage) if wire.usage else c.Usage()
    return c.Response(
        id=wire.id or "chatcmpl", model=wire.model, content=blocks, stop_reason=finish, usage=usage
    )


# --- upstream: OpenAI stream -> canonical events --------------------------------------------


class _ToolCallChunk(msgspec.Struct):
    index: int = 0
    id: str | None = None
    function: FunctionCall | None = None


class _DeltaWire(msgspec.Struct):
    content: str | None = None
    reasoning_content: str | None = None
    reasoning: str | None = None
    refusal: str | None = None
    tool_calls: list[_ToolCallChunk] | None = None


class _StreamChoice(msgspec.Struct):
    delta: _DeltaWire | None = None
    finish_reason: str | None = None


class _StreamChunk(msgspec.Struct):
    id: str = ""
    model: str = ""
    choices: list[_StreamChoice] = []
    usage: UsageWire | None = None
    error: Any = None


_stream_chunk = msgspec.json.Decoder(_StreamChunk)


class OpenAIChunkDecoder:
    """OpenAI SSE data payloads -> canonical stream events, with block indices assigned.

    Text, reasoning and each tool call become separate blocks; a block is stopped when a
    different kind of content starts, so they never interleave inside one block.
    """

    def __init__(self) -> None:
        self._started = False
        self._next_index = 0
        self._open: tuple[str, int] | None = None  # ("text" | "thinking" | "tool:<i>", index)
        self._finish: c.StopReason | None = None
        self._usage: c.Usage | None = None
        self._closed = False
        self._tool_id = ""  # the id of the latest tool call started

    def _switch(
        self,
        key: str,
        start: c.TextStart | c.ToolUseStart | c.ThinkingStart,
        events: list[c.StreamEvent],
    ) -> int:
        if self._open is not None and self._open[0] == key:
            return self._open[1]
        if self._open is not None:
            events.append(c.BlockStop(index=self._open[1]))
        index = self._next_index
        self._next_index += 1
        self._open = (key, index)
        events.append(c.BlockStart(index=index, block=start))
        return index

    def feed(self, data: bytes) -> list[c.StreamEvent]:
        if data == b"[DONE]":
            return self.close()
        try:
            chunk = _stream_chunk.decode(data)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise ProviderProtocolError(f"malformed stream chunk: {exc}") from exc
        if chunk.error is not None:
            raise mid_stream_error(chunk.error)
        if self._started and chunk.usage is None and len(chunk.choices) == 1:
            # Most of a stream: more text of the open text block, and nothing else.
            choice, opened = chunk.choices[0], self._open
            delta = choice.delta
            if (opened is not None and opened[0] == "text" and delta is not None
                    and delta.content and choice.finish_reason is None and not delta.tool_calls
                    and not delta.reasoning_content and not delta.reasoning):
                return [c.BlockDelta(index=opened[1], delta=c.TextDelta(text=delta.content))]
        events: list[c.StreamEvent] = []
        if not self._started:
            self._started = True
            events.append(c.MessageStart(id=chunk.id or "chatcmpl", model=chunk.model))
        for choice in chunk.choices[:1]:
            delta = choice.delta
            if delta is not None:
                reasoning = delta.reasoning_content or delta.reasoning
                if reasoning:
                    index = self._switch("thinking", c.ThinkingStart(), events)
                    events.append(
                        c.BlockDelta(index=index, delta=c.ThinkingDelta(thinking=reasoning))
                    )
                text = delta.content or delta.refusal
                if text:
                    index = self._switch("text", c.TextStart(), events)
                    events.append(c.BlockDelta(index=index, delta=c.TextDelta(text=text)))
                for call in delta.tool_calls or []:
                    # A new id at the same index is a new call: some providers send no index.
                    key = f"tool:{call.index}:{call.id or self._tool_id}"
                    self._tool_id = call.id or self._tool_id
                    if self._open is None or self._open[0] != key:
                        name = call.function.name if call.function else ""
                        start = c.ToolUseStart(id=call.id or f"call_{call.index}", name=name)
                        index = self._switch(key, start, events)
                    else:
                        index = self._open[1]
                    arguments = call.function.arguments if call.function else ""
                    if arguments:
                        events.append(
                            c.BlockDelta(index=index, delta=c.ToolArgsDelta(partial_json=arguments))
                        )
            if choice.finish_reason:
                self._finish = openai_finish_to_canonical(choice.finish_reason)
        if chunk.usage is not None:
            self._usage = openai_usage_to_canonical(chunk.usage)
            events.append(c.UsageUpdate(usage=self._usage))
        return events

    def close(self) -> list[c.StreamEvent]:
        """The closing events, once, when the upstream says it is done."""
        if self._closed:
            return []
        self._closed = True
        events: list[c.StreamEvent] = []
        if self._open is not None:
            events.append(c.BlockStop(index=self._open[1]))
            self._open = None
        if self._finish is None and not self._started:
            return events
        events.append(c.Finish(stop_reason=self._finish or "end_turn"))
        return events

