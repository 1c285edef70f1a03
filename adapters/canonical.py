"""The neutral request, response and stream-event model that every dialect converts to and from.

It covers the union of the OpenAI, Anthropic and Gemini chat dialects. It is modelled on content
blocks (Anthropic's shape, the richest of the three): a message is a list of blocks, and a
stream is a sequence of block start / delta / stop events framed by a message start and a finish.

Conventions:

* The system prompt lives in ``Request.system``, never among the messages.
* Tool results are ``ToolResultBlock`` items inside a ``user`` message (OpenAI's ``tool`` role
  messages are folded into one).
* ``msgspec.UNSET`` means "the caller did not say"; it is never sent upstream.
* Stop reasons use Anthropic's vocabulary (``end_turn``, ``max_tokens``, ``stop_sequence``,
  ``tool_use``, ``refusal``); each dialect maps its own finish reasons in one function.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec
from msgspec import UNSET, UnsetType


class Base(msgspec.Struct, omit_defaults=True, kw_only=True):
    """Shared options: absent fields stay absent on the wire."""


# --- content blocks -------------------------------------------------------------------------


class TextBlock(Base, tag="text", tag_field="type"):
    text: str
    cache_control: dict[str, Any] | UnsetType = UNSET
    citations: list[dict[str, Any]] | UnsetType = UNSET


class ImageBlock(Base, tag="image", tag_field="type"):
    """An image given either by URL or inline as base64 ``data`` with its ``media_type``."""

    url: str | UnsetType = UNSET
    data: str | UnsetType = UNSET
    media_type: str | UnsetType = UNSET
    detail: str | UnsetType = UNSET
    cache_control: dict[str, Any] | UnsetType = UNSET


class AudioBlock(Base, tag="audio", tag_field="type"):
    data: str
    format: str


class ToolUseBlock(Base, tag="tool_use", tag_field="type"):
    id: str
    name: str
    input: dict[str, Any] = msgspec.field(default_factory=dict)
    # Gemini attaches an opaque signature to function calls that must come back next turn.
    signature: str | UnsetType = UNSET
    cache_control: dict[str, Any] | UnsetType = UNSET


class ToolResultBlock(Base, tag="tool_result", tag_field="type"):
    tool_use_id: str
    content: list[TextBlock | ImageBlock] = msgspec.field(default_factory=list)
    is_error: bool = False
    name: str | UnsetType = UNSET  # Gemini needs the function name with its response
    cache_control: dict[str, Any] | UnsetType = UNSET


class ThinkingBlock(Base, tag="thinking", tag_field="type"):
    thinking: str
    signature: str | UnsetType = UNSET


class RedactedThinkingBlock(Base, tag="redacted_thinking", tag_field="type"):
    data: str


ContentBlock = (
    TextBlock
    | ImageBlock
    | AudioBlock
    | ToolUseBlock
    | ToolResultBlock
    | ThinkingBlock
    | RedactedThinkingBlock
)


class Message(Base):
    role: Literal["user", "assistant"]
    content: list[ContentBlock]


# --- request --------------------------------------------------------------------------------


class Tool(Base):
    name: str
    description: str | UnsetType = UNSET
    parameters: dict[str, Any] = msgspec.field(default_factory=dict)
    cache_control: dict[str, Any] | UnsetType = UNSET


class ToolChoice(Base):
    """``auto``, ``none``, ``required`` (any tool) or ``tool`` (the one named)."""

    mode: Literal["auto", "none", "required", "tool"] = "auto"
    name: str | UnsetType = UNSET
    disable_parallel: bool | UnsetType = UNSET


class Reasoning(Base):
    """Reasoning controls: OpenAI's effort level or Anthropic's thinking budget."""

    effort: str | UnsetType = UNSET
    budget_tokens: int | UnsetType = UNSET


class Request(Base):
    model: str
    messages: list[Message]
    system: list[TextBlock] = msgspec.field(default_factory=list)
    tools: list[Tool] | UnsetType = UNSET
    tool_choice: ToolChoice | UnsetType = UNSET
    max_tokens: int | UnsetType = UNSET
    temperature: float | UnsetType = UNSET
    top_p: float | UnsetType = UNSET
    top_k: int | UnsetType = UNSET
    stop: list[str] | UnsetType = UNSET
    seed: int | UnsetType = UNSET
    response_format: dict[str, Any] | UnsetType = UNSET
    reasoning: Reasoning | UnsetType = UNSET
    user: str | UnsetType = UNSET
    stream: bool = False


# --- response -------------------------------------------------------------------------------

StopReason = Literal["end_turn", "max_tokens", "stop_sequence", "tool_use", "refusal", "error"]


class Usage(Base):
    """What a call consumed. ``input_tokens`` includes cached reads, as OpenAI counts them;
    ``images``, ``videos`` and ``video_seconds`` are what image and video models made (zero
    for every other operation)."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_creation_tokens: int = 0
    reasoning_tokens: int = 0
    images: int = 0
    videos: int = 0
    video_seconds: float = 0.0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


class Response(Base):
    id: str
    model: str
    content: list[ContentBlock]
    stop_reason: StopReason = "end_turn"
    stop_sequence: str | None = None
    usage: Usage = msgspec.field(default_factory=Usage)


# --- stream events --------------------------------------------------------------------------


class MessageStart(Base, tag="message_start", tag_field="type"):
    id: str
    model: str
    usage: Usage | UnsetType = UNSET


class TextStart(Base, tag="text", tag_field="type"):
    pass


class ToolUseStart(Base, tag="tool_use", tag_field="type"):
    id: str
    name: str
    signature: str | UnsetType = UNSET


class ThinkingStart(Base, tag="thinking", tag_field="type"):
    pass


class BlockStart(Base, tag="block_start", tag_field="type"):
    index: int
    block: TextStart | ToolUseStart | ThinkingStart


class TextDelta(Base, tag="text_delta", tag_field="type"):
    text: str


class ToolArgsDelta(Base, tag="input_json_delta", tag_field="type"):
    partial_json: str


class ThinkingDelta(Base, tag="thinking_delta", tag_field="type"):
    thinking: str


class SignatureDelta(Base, tag="signature_delta", tag_field="type"):
    signature: str


class BlockDelta(Base, tag="block_delta", tag_field="type"):
    index: int
    delta: TextDelta | ToolArgsDelta | ThinkingDelta | SignatureDelta


class BlockStop(Base, tag="block_stop", tag_field="type"):
    index: int


class UsageUpdate(Base, tag="usage", tag_field="type"):
    """Cumulative usage so far; the last one seen is the bill."""

    usage: Usage


class Finish(Base, tag="finish", tag_field="type"):
    stop_reason: StopReason
    stop_sequence: str | None = None


StreamEvent = MessageStart | BlockStart | BlockDelta | BlockStop | UsageUpdate | Finish


def is_content(event: StreamEvent) -> bool:
    """True for the events that commit a stream: the first piece of generated content."""
    return isinstance(event, BlockDelta) or (
        isinstance(event, BlockStart) and isinstance(event.block, ToolUseStart)
    )


def text_of(blocks: list[TextBlock]) -> str:
    """The plain text of a list of text blocks, joined by blank lines."""
    return "\n\n".join(block.text for block in blocks)
