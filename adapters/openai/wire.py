"""OpenAI chat-completions wire types shared by the client and provider sides: the request
body's Structs, finish reasons, usage, and the content conversions both directions use."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from msgspec import UNSET, Meta, UnsetType

from adapters import canonical as c
from adapters.errors import ProviderHTTPError

# --- wire types: a caller's body in, and the body sent to an OpenAI-compatible upstream ------
#
# One set of Structs for both directions. Structs that go out with a fixed ``type`` say
# ``omit_defaults=False`` so it is always written; UNSET fields are never written.


class FunctionCall(msgspec.Struct):
    name: str = ""
    arguments: str = ""


class ToolCall(msgspec.Struct):
    id: str
    function: FunctionCall
    type: str = "function"


class ImageURL(msgspec.Struct, omit_defaults=True):
    url: str
    detail: str | UnsetType = UNSET


class InputAudio(msgspec.Struct):
    data: str
    format: str = ""


class ContentPart(msgspec.Struct, omit_defaults=True):
    """One part of a message's content. The fields the gateway reads are typed (an
    ``image_url: 5`` is refused); parts of other kinds are accepted and pass through."""

    type: str
    text: str | UnsetType = UNSET
    image_url: str | ImageURL | UnsetType = UNSET
    input_audio: InputAudio | UnsetType = UNSET
    refusal: str | UnsetType = UNSET


class ChatMessage(msgspec.Struct, omit_defaults=True):
    role: str
    # UNSET when absent; None is written as null (an assistant turn of tool calls only).
    content: str | list[ContentPart] | UnsetType | None = UNSET
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


class ToolDef(msgspec.Struct):
    function: FunctionDef
    type: str = "function"


class FunctionName(msgspec.Struct):
    name: str = ""


class NamedToolChoice(msgspec.Struct):
    """``tool_choice`` as an object: a named function (other kinds are read as ``auto``)."""

    type: str = "function"
    function: FunctionName | UnsetType = UNSET


class StreamOptions(msgspec.Struct, omit_defaults=True):
    include_usage: bool | None = None


# OpenAI's documented ranges: a value outside gets a 400 here rather than from the upstream.
PositiveInt = Annotated[int, Meta(ge=1)]
Temperature = Annotated[float, Meta(ge=0, le=2)]
Probability = Annotated[float, Meta(ge=0, le=1)]
Penalty = Annotated[float, Meta(ge=-2, le=2)]
Choices = Annotated[int, Meta(ge=1, le=128)]


class ChatRequest(msgspec.Struct, omit_defaults=True):
    """The fields of a chat-completions body the gateway reads or range-checks (others pass
    through as sent)."""

    model: str
    messages: list[ChatMessage]
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    max_tokens: PositiveInt | None = None
    max_completion_tokens: PositiveInt | None = None
    temperature: Temperature | None = None
    top_p: Probability | None = None
    n: Choices | None = None
    presence_penalty: Penalty | None = None
    frequency_penalty: Penalty | None = None
    stop: str | list[str] | None = None
    tools: list[ToolDef] | None = None
    tool_choice: str | NamedToolChoice | None = None
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


class _PromptDetailsOut(msgspec.Struct, omit_defaults=True):
    cached_tokens: int
    cache_creation_tokens: int = 0  # written only when there were some


class _CompletionDetailsOut(msgspec.Struct):
    reasoning_tokens: int


class UsageOut(msgspec.Struct):
    """Usage as the gateway writes it to an OpenAI caller."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    prompt_tokens_details: _PromptDetailsOut
    completion_tokens_details: _CompletionDetailsOut


def canonical_usage_to_openai(usage: c.Usage) -> UsageOut:
    return UsageOut(
        prompt_tokens=usage.input_tokens,
        completion_tokens=usage.output_tokens,
        total_tokens=usage.input_tokens + usage.output_tokens,
        prompt_tokens_details=_PromptDetailsOut(
            usage.cache_read_tokens, usage.cache_creation_tokens
        ),
        completion_tokens_details=_CompletionDetailsOut(usage.reasoning_tokens),
    )


# --- content both sides read and write ------------------------------------------------------


def image_block(url: str, detail: str | UnsetType = UNSET) -> c.ImageBlock:
    if url.startswith("data:") and ";base64," in url:
        header, data = url[5:].split(";base64,", 1)
        return c.ImageBlock(data=data, media_type=header or "image/png", detail=detail)
    return c.ImageBlock(url=url, detail=detail)


def content_parts_to_blocks(
    content: str | list[ContentPart] | UnsetType | None,
) -> list[c.ContentBlock]:
    """A message's content (text or typed parts) as canonical blocks; unknown parts dropped."""
    if content is None or content is UNSET:
        return []
    if isinstance(content, str):
        return [c.TextBlock(text=content)] if content else []
    blocks: list[c.ContentBlock] = []
    for part in content:
        kind = part.type
        if kind == "text":
            blocks.append(c.TextBlock(text=part.text if part.text is not UNSET else ""))
        elif kind == "image_url":
            image = part.image_url
            if isinstance(image, ImageURL):
                blocks.append(image_block(image.url, image.detail))
            else:
                blocks.append(image_block(image if isinstance(image, str) else ""))
        elif kind == "input_audio":
            audio = part.input_audio
            if isinstance(audio, InputAudio):
                blocks.append(c.AudioBlock(data=audio.data, format=audio.format))
            else:
                blocks.append(c.AudioBlock(data="", format=""))
        elif kind == "refusal":
            blocks.append(c.TextBlock(text=part.refusal if part.refusal is not UNSET else ""))
    return blocks


def parse_arguments(arguments: str) -> dict[str, Any]:
    if not arguments:
        return {}
    try:
        parsed = msgspec.json.decode(arguments)
    except msgspec.DecodeError:
        return {"_raw_arguments": arguments}
    return parsed if isinstance(parsed, dict) else {"value": parsed}

def blocks_to_message(blocks: list[c.ContentBlock]) -> ChatMessage:
    """Canonical answer blocks as one OpenAI assistant message (text, reasoning, tool calls)."""
    text: list[str] = []
    reasoning: list[str] = []
    tool_calls: list[ToolCall] = []
    for block in blocks:
        if isinstance(block, c.TextBlock):
            text.append(block.text)
        elif isinstance(block, c.ThinkingBlock):
            reasoning.append(block.thinking)
        elif isinstance(block, c.ToolUseBlock):
            arguments = msgspec.json.encode(block.input).decode()
            tool_calls.append(ToolCall(id=block.id, function=FunctionCall(block.name, arguments)))
    return ChatMessage(
        role="assistant",
        content="".join(text) if text or not tool_calls else None,
        reasoning_content="".join(reasoning) if reasoning else None,
        tool_calls=tool_calls or None,
    )


DONE = b"data: [DONE]\n\n"


def mid_stream_error(error: Any) -> ProviderHTTPError:
    message = error.get("message", "error mid-stream") if isinstance(error, dict) else str(error)
    status = error.get("code") if isinstance(error, dict) else None
    return ProviderHTTPError(status if isinstance(status, int) and status >= 400 else 502, message)

