"""The OpenAI chat-completions dialect: wire types and pure conversions in both directions.

Ingress side (a client speaking OpenAI): ``ChatRequest`` validates a body, ``openai_to_canonical``
turns it into the canonical request, ``canonical_to_openai_response`` and ``OpenAIChunkEncoder``
answer it from canonical results, and ``OpenAIPassthrough`` inspects an OpenAI upstream's frames
on their way through untouched.

Upstream side (an OpenAI-compatible provider): ``canonical_to_openai_request``,
``openai_response_to_canonical`` and ``OpenAIChunkDecoder``.

No I/O here: the HTTP client is ``adapters.openai_provider``.
"""

from __future__ import annotations

import time
from typing import Any

import msgspec
from msgspec import UNSET, UnsetType

from adapters import canonical as c
from adapters.base import inspect_reply
from adapters.errors import ProviderHTTPError, ProviderProtocolError
from adapters.sse import event_data

# --- wire types (ingress validation) --------------------------------------------------------


class FunctionCall(msgspec.Struct, omit_defaults=True):
    name: str = ""
    arguments: str = ""


class ToolCall(msgspec.Struct, omit_defaults=True):
    id: str
    function: FunctionCall
    type: str = "function"


class ChatMessage(msgspec.Struct, omit_defaults=True):
    role: str
    content: str | list[dict[str, Any]] | None = None
    name: str | UnsetType = UNSET
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | UnsetType = UNSET
    reasoning_content: str | None = None
    function_call: FunctionCall | None = None


class FunctionDef(msgspec.Struct, omit_defaults=True):
    name: str
    description: str | UnsetType = UNSET
    parameters: dict[str, Any] | UnsetType = UNSET
    strict: bool | None = None


class ToolDef(msgspec.Struct, omit_defaults=True):
    function: FunctionDef
    type: str = "function"


class StreamOptions(msgspec.Struct, omit_defaults=True):
    include_usage: bool | None = None


class ChatRequest(msgspec.Struct, omit_defaults=True):
    """The fields of a chat-completions body the gateway reads (others pass through as sent)."""

    model: str
    messages: list[ChatMessage]
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    n: int | None = None
    stop: str | list[str] | None = None
    tools: list[ToolDef] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    response_format: dict[str, Any] | None = None
    reasoning_effort: str | None = None
    seed: int | None = None
    user: str | None = None

    @property
    def wants_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)

    @property
    def output_limit(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens


REQUEST_ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})

# --- finish reasons -------------------------------------------------------------------------

_FINISH_TO_CANONICAL: dict[str, c.StopReason] = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}
_CANONICAL_TO_FINISH: dict[str, str] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
    "error": "stop",
}


def openai_finish_to_canonical(reason: str | None) -> c.StopReason:
    return _FINISH_TO_CANONICAL.get(reason or "stop", "end_turn")


def canonical_stop_to_openai(reason: str) -> str:
    return _CANONICAL_TO_FINISH.get(reason, "stop")


# --- usage ----------------------------------------------------------------------------------


class _TokenDetails(msgspec.Struct):
    cached_tokens: int | None = None
    reasoning_tokens: int | None = None
    cache_creation_tokens: int | None = None


class UsageWire(msgspec.Struct):
    prompt_tokens: int | None = 0
    completion_tokens: int | None = 0
    total_tokens: int | None = 0
    prompt_tokens_details: _TokenDetails | None = None
    completion_tokens_details: _TokenDetails | None = None
    # DeepSeek reports cache hits here instead of prompt_tokens_details.
    prompt_cache_hit_tokens: int | None = None


def openai_usage_to_canonical(usage: UsageWire) -> c.Usage:
    prompt = usage.prompt_tokens_details
    completion = usage.completion_tokens_details
    cached = (prompt.cached_tokens if prompt else None) or usage.prompt_cache_hit_tokens or 0
    return c.Usage(
        input_tokens=usage.prompt_tokens or 0,
        output_tokens=usage.completion_tokens or 0,
        cache_read_tokens=cached,
        cache_creation_tokens=(prompt.cache_creation_tokens or 0) if prompt else 0,
        reasoning_tokens=(completion.reasoning_tokens or 0) if completion else 0,
    )


def canonical_usage_to_openai(usage: c.Usage) -> dict[str, Any]:
    wire: dict[str, Any] = {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.input_tokens + usage.output_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cache_read_tokens},
        "completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
    }
    if usage.cache_creation_tokens:
        wire["prompt_tokens_details"]["cache_creation_tokens"] = usage.cache_creation_tokens
    return wire


# --- ingress: OpenAI request -> canonical ---------------------------------------------------


def _image_block(url: str, detail: str | UnsetType = UNSET) -> c.ImageBlock:
    if url.startswith("data:") and ";base64," in url:
        header, data = url[5:].split(";base64,", 1)
        return c.ImageBlock(data=data, media_type=header or "image/png", detail=detail)
    return c.ImageBlock(url=url, detail=detail)


def _content_parts_to_blocks(content: str | list[dict[str, Any]] | None) -> list[c.ContentBlock]:
    if content is None:
        return []
    if isinstance(content, str):
        return [c.TextBlock(text=content)] if content else []
    blocks: list[c.ContentBlock] = []
    for part in content:
        kind = part.get("type")
        if kind == "text":
            blocks.append(c.TextBlock(text=str(part.get("text", ""))))
        elif kind == "image_url":
            image = part.get("image_url") or {}
            url = image if isinstance(image, str) else str(image.get("url", ""))
            detail = image.get("detail", UNSET) if isinstance(image, dict) else UNSET
            blocks.append(_image_block(url, detail))
        elif kind == "input_audio":
            audio = part.get("input_audio") or {}
            blocks.append(c.AudioBlock(data=audio.get("data", ""), format=audio.get("format", "")))
        elif kind == "refusal":
            blocks.append(c.TextBlock(text=str(part.get("refusal", ""))))
    return blocks


def _parse_arguments(arguments: str) -> dict[str, Any]:
    if not arguments:
        return {}
    try:
        parsed = msgspec.json.decode(arguments)
    except msgspec.DecodeError:
        return {"_raw_arguments": arguments}
    return parsed if isinstance(parsed, dict) else {"value": parsed}


def _tool_choice_to_canonical(choice: str | dict[str, Any], parallel: bool | None) -> c.ToolChoice:
    disable_parallel: bool | UnsetType = UNSET if parallel is None else not parallel
    if isinstance(choice, str):
        mode = choice if choice in ("auto", "none", "required") else "auto"
        return c.ToolChoice(mode=mode, disable_parallel=disable_parallel)  # type: ignore[arg-type]
    name = (choice.get("function") or {}).get("name", "")
    return c.ToolChoice(mode="tool", name=name, disable_parallel=disable_parallel)


def openai_to_canonical(request: ChatRequest) -> c.Request:
    """A validated OpenAI chat request in canonical form."""
    system: list[c.TextBlock] = []
    messages: list[c.Message] = []

    def append(role: str, blocks: list[c.ContentBlock]) -> None:
        # Consecutive messages of one role merge: tool results after tool calls, etc.
        if messages and messages[-1].role == role:
            messages[-1].content.extend(blocks)
        else:
            messages.append(c.Message(role=role, content=blocks))  # type: ignore[arg-type]

    for message in request.messages:
        if message.role in ("system", "developer"):
            system.extend(
                b for b in _content_parts_to_blocks(message.content) if isinstance(b, c.TextBlock)
            )
        elif message.role == "user":
            append("user", _content_parts_to_blocks(message.content))
        elif message.role == "assistant":
            blocks: list[c.ContentBlock] = []
            if message.reasoning_content:
                blocks.append(c.ThinkingBlock(thinking=message.reasoning_content))
            blocks.extend(_content_parts_to_blocks(message.content))
            for call in message.tool_calls or []:
                blocks.append(
                    c.ToolUseBlock(
                        id=call.id,
                        name=call.function.name,
                        input=_parse_arguments(call.function.arguments),
                    )
                )
            append("assistant", blocks)
        elif message.role in ("tool", "function"):
            result_blocks = [
                b
                for b in _content_parts_to_blocks(message.content)
                if isinstance(b, c.TextBlock | c.ImageBlock)
            ]
            tool_call_id = message.tool_call_id if message.tool_call_id is not UNSET else ""
            append(
                "user",
                [
                    c.ToolResultBlock(
                        tool_use_id=tool_call_id,
                        content=result_blocks,
                        name=message.name,
                    )
                ],
            )

    stop: list[str] | UnsetType = UNSET
    if isinstance(request.stop, str):
        stop = [request.stop]
    elif request.stop:
        stop = list(request.stop)

    canonical = c.Request(
        model=request.model,
        messages=messages,
        system=system,
        stream=bool(request.stream),
        stop=stop,
    )
    if request.tools:
        canonical.tools = [
            c.Tool(
                name=tool.function.name,
                description=tool.function.description,
                parameters=tool.function.parameters
                if tool.function.parameters is not UNSET
                else {"type": "object", "properties": {}},
            )
            for tool in request.tools
        ]
    if request.tool_choice is not None:
        canonical.tool_choice = _tool_choice_to_canonical(
            request.tool_choice, request.parallel_tool_calls
        )
    elif request.parallel_tool_calls is not None:
        canonical.tool_choice = c.ToolChoice(disable_parallel=not request.parallel_tool_calls)
    if request.output_limit is not None:
        canonical.max_tokens = request.output_limit
    if request.temperature is not None:
        canonical.temperature = request.temperature
    if request.top_p is not None:
        canonical.top_p = request.top_p
    if request.seed is not None:
        canonical.seed = request.seed
    if request.response_format is not None:
        canonical.response_format = request.response_format
    if request.reasoning_effort is not None:
        canonical.reasoning = c.Reasoning(effort=request.reasoning_effort)
    if request.user is not None:
        canonical.user = request.user
    return canonical


# --- ingress: canonical -> OpenAI response --------------------------------------------------


def _blocks_to_message(blocks: list[c.ContentBlock]) -> dict[str, Any]:
    text: list[str] = []
    reasoning: list[str] = []
    tool_calls: list[dict[str, Any]] = []
    for block in blocks:
        if isinstance(block, c.TextBlock):
            text.append(block.text)
        elif isinstance(block, c.ThinkingBlock):
            reasoning.append(block.thinking)
        elif isinstance(block, c.ToolUseBlock):
            tool_calls.append(
                {
                    "id": block.id,
                    "type": "function",
                    "function": {
                        "name": block.name,
                        "arguments": msgspec.json.encode(block.input).decode(),
                    },
                }
            )
    message: dict[str, Any] = {
        "role": "assistant",
        "content": "".join(text) if text or not tool_calls else None,
    }
    if reasoning:
        message["reasoning_content"] = "".join(reasoning)
    if tool_calls:
        message["tool_calls"] = tool_calls
    return message


def canonical_to_openai_response(response: c.Response, model: str) -> dict[str, Any]:
    """A canonical answer as an OpenAI ``chat.completion`` object naming ``model``."""
    return {
        "id": response.id if response.id.startswith("chatcmpl") else f"chatcmpl-{response.id}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": _blocks_to_message(response.content),
                "finish_reason": canonical_stop_to_openai(response.stop_reason),
                "logprobs": None,
            }
        ],
        "usage": canonical_usage_to_openai(response.usage),
    }


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
        self._id = response_id if response_id.startswith("chatcmpl") else f"chatcmpl-{response_id}"
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
        body = _encode(
            {
                "id": self._id,
                "object": "chat.completion.chunk",
                "created": self._created,
                "model": self._model,
                "choices": [],
                "usage": canonical_usage_to_openai(self.usage),
            }
        )
        return b"data: " + body + b"\n\n" + DONE


DONE = b"data: [DONE]\n\n"


def openai_error_frame(body: dict[str, Any]) -> bytes:
    """An error after the stream has committed, as OpenAI's SDKs expect it."""
    return b"data: " + _encode(body) + b"\n\n"


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


def _mid_stream_error(error: Any) -> ProviderHTTPError:
    message = error.get("message", "error mid-stream") if isinstance(error, dict) else str(error)
    status = error.get("code") if isinstance(error, dict) else None
    return ProviderHTTPError(status if isinstance(status, int) and status >= 400 else 502, message)


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
            raise _mid_stream_error(chunk.error)
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


# --- upstream: canonical -> OpenAI request --------------------------------------------------


def _image_part(block: c.ImageBlock) -> dict[str, Any]:
    if block.url is not UNSET:
        url = block.url
    else:
        url = f"data:{block.media_type or 'image/png'};base64,{block.data}"
    image: dict[str, Any] = {"url": url}
    if block.detail is not UNSET:
        image["detail"] = block.detail
    return {"type": "image_url", "image_url": image}


def _user_parts(blocks: list[c.ContentBlock]) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    for block in blocks:
        if isinstance(block, c.TextBlock):
            parts.append({"type": "text", "text": block.text})
        elif isinstance(block, c.ImageBlock):
            parts.append(_image_part(block))
        elif isinstance(block, c.AudioBlock):
            parts.append(
                {"type": "input_audio", "input_audio": {"data": block.data, "format": block.format}}
            )
    return parts


def _simplify(parts: list[dict[str, Any]]) -> str | list[dict[str, Any]]:
    if all(part["type"] == "text" for part in parts):
        return "".join(part["text"] for part in parts)
    return parts


def _tool_result_message(block: c.ToolResultBlock) -> dict[str, Any]:
    text = "".join(b.text for b in block.content if isinstance(b, c.TextBlock))
    if block.is_error and not text.startswith("Error"):
        text = f"Error: {text}" if text else "Error"
    return {"role": "tool", "tool_call_id": block.tool_use_id, "content": text}


def _canonical_messages_to_openai(request: c.Request) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    if request.system:
        messages.append({"role": "system", "content": c.text_of(request.system)})
    for message in request.messages:
        if message.role == "assistant":
            # Reasoning is not sent back: Groq, Cerebras and others refuse a reasoning_content
            # property (400), and Anthropic-signed thinking means nothing to another model.
            spoken: list[c.ContentBlock] = [
                b for b in message.content if not isinstance(b, c.ThinkingBlock)
            ]
            messages.append(_blocks_to_message(spoken))
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
            messages.append({"role": "user", "content": _simplify(parts)})
    return messages


def _tool_choice_to_openai(choice: c.ToolChoice) -> str | dict[str, Any]:
    if choice.mode == "tool":
        return {"type": "function", "function": {"name": choice.name}}
    return choice.mode


def canonical_to_openai_request(
    request: c.Request, model: str, max_tokens_field: str = "max_tokens"
) -> dict[str, Any]:
    """A canonical request as an OpenAI chat-completions body for ``model``."""
    body: dict[str, Any] = {"model": model, "messages": _canonical_messages_to_openai(request)}
    if request.stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    if request.tools is not UNSET:
        body["tools"] = [
            {
                "type": "function",
                "function": {
                    "name": tool.name,
                    **({"description": tool.description} if tool.description is not UNSET else {}),
                    "parameters": tool.parameters,
                },
            }
            for tool in request.tools
        ]
    if request.tool_choice is not UNSET:
        if request.tool_choice.mode != "auto" or request.tool_choice.name is not UNSET:
            body["tool_choice"] = _tool_choice_to_openai(request.tool_choice)
        if request.tool_choice.disable_parallel is not UNSET and request.tools is not UNSET:
            body["parallel_tool_calls"] = not request.tool_choice.disable_parallel
    if request.max_tokens is not UNSET:
        body[max_tokens_field] = request.max_tokens
    for name in ("temperature", "top_p", "seed", "response_format", "user"):
        value = getattr(request, name)
        if value is not UNSET:
            body[name] = value
    if request.stop is not UNSET:
        body["stop"] = request.stop
    if request.reasoning is not UNSET:
        effort = request.reasoning.effort
        if effort is UNSET and request.reasoning.budget_tokens is not UNSET:
            budget = request.reasoning.budget_tokens
            effort = "low" if budget < 4096 else "medium" if budget < 16384 else "high"
        if effort is not UNSET:
            body["reasoning_effort"] = effort
    return body


# --- upstream: OpenAI response -> canonical -------------------------------------------------


class _MessageWire(msgspec.Struct):
    content: str | list[dict[str, Any]] | None = None
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
            blocks.extend(_content_parts_to_blocks(message.content))
        if message.refusal:
            blocks.append(c.TextBlock(text=message.refusal))
        for call in message.tool_calls or []:
            blocks.append(
                c.ToolUseBlock(
                    id=call.id,
                    name=call.function.name,
                    input=_parse_arguments(call.function.arguments),
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
            raise _mid_stream_error(chunk.error)
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
