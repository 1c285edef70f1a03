"""Anthropic Messages wire types and conversions shared by the client and provider sides.

Usage: Anthropic's ``input_tokens`` excludes cache reads and writes; the canonical (OpenAI)
``input_tokens`` includes them. ``anthropic_usage_to_canonical`` and
``canonical_usage_to_anthropic`` are the only two places that convert.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from msgspec import UNSET, Meta, UnsetType

from adapters import canonical as c
from adapters.errors import ProviderHTTPError
from adapters.sse import encode_event

_encode = msgspec.json.encode

# --- wire types (ingress validation) --------------------------------------------------------


class Source(msgspec.Struct, omit_defaults=True):
    """Where an image's or document's bytes are: ``base64`` data, a ``url``, ``text``…"""

    type: str = ""
    media_type: str | UnsetType = UNSET
    data: str | UnsetType = UNSET
    url: str | UnsetType = UNSET


class Block(msgspec.Struct, omit_defaults=True):
    """One content block, read from a caller or an upstream and written to either. The fields
    the gateway reads are typed (an image's ``source: "x"`` is refused at parse); blocks of
    kinds it does not read are accepted, and a pass-through body keeps them whole."""

    type: str
    text: str | UnsetType = UNSET
    source: Source | str | UnsetType = UNSET  # a search_result's source is its URL
    title: str | UnsetType | None = UNSET
    id: str | UnsetType = UNSET
    name: str | UnsetType = UNSET
    input: dict[str, Any] | UnsetType = UNSET
    tool_use_id: str | UnsetType = UNSET
    content: str | list[Block] | dict[str, Any] | UnsetType = UNSET
    is_error: bool | UnsetType = UNSET
    thinking: str | UnsetType = UNSET
    signature: str | UnsetType = UNSET
    data: str | UnsetType = UNSET
    citations: list[Any] | dict[str, Any] | UnsetType = UNSET
    cache_control: dict[str, Any] | UnsetType = UNSET


class Tool(msgspec.Struct, omit_defaults=True):
    """A tool offered to the model: a client tool (``name``, ``input_schema``) or one of
    Anthropic's server tools (``type`` names it; its other fields are kept by pass-through)."""

    name: str | UnsetType = UNSET
    type: str | UnsetType = UNSET
    description: str | UnsetType = UNSET
    input_schema: dict[str, Any] | UnsetType = UNSET
    cache_control: dict[str, Any] | UnsetType = UNSET


class AnthropicMessage(msgspec.Struct):
    role: str
    content: str | list[Block]


class ToolChoice(msgspec.Struct, omit_defaults=True):
    type: str = "auto"
    name: str | UnsetType = UNSET
    disable_parallel_tool_use: bool | UnsetType = UNSET


class Thinking(msgspec.Struct, omit_defaults=True):
    type: str
    budget_tokens: int | UnsetType = UNSET


# Anthropic's documented ranges: a value outside gets a 400 here rather than from the upstream.
PositiveInt = Annotated[int, Meta(ge=1)]
Probability = Annotated[float, Meta(ge=0, le=1)]
TopK = Annotated[int, Meta(ge=0)]


class MessagesRequest(msgspec.Struct, omit_defaults=True):
    """The fields of a Messages body the gateway reads or range-checks (others pass through as
    sent)."""

    model: str
    messages: list[AnthropicMessage]
    # Required: checked by the ingress with Anthropic's wording.
    max_tokens: PositiveInt | None = None
    system: str | list[Block] | None = None
    stream: bool | None = None
    stop_sequences: list[str] | None = None
    temperature: Probability | None = None
    top_p: Probability | None = None
    top_k: TopK | None = None
    tools: list[Tool] | None = None
    tool_choice: ToolChoice | None = None
    thinking: Thinking | None = None
    metadata: dict[str, Any] | None = None
    output_config: dict[str, Any] | None = None  # effort, and structured output's format


class CountTokensRequest(msgspec.Struct, omit_defaults=True):
    model: str
    messages: list[AnthropicMessage]
    system: str | list[Block] | None = None
    tools: list[Tool] | None = None
    tool_choice: ToolChoice | None = None
    thinking: Thinking | None = None


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


class UsageOut(msgspec.Struct):
    """Usage as the gateway writes it to an Anthropic caller: every field an int, as Claude
    Code expects."""

    input_tokens: int
    cache_creation_input_tokens: int
    cache_read_input_tokens: int
    output_tokens: int


def canonical_usage_to_anthropic(usage: c.Usage) -> UsageOut:
    """Canonical usage as Anthropic spells it (input excludes the cache)."""
    uncached = usage.input_tokens - usage.cache_read_tokens - usage.cache_creation_tokens
    return UsageOut(
        input_tokens=max(uncached, 0),
        cache_creation_input_tokens=usage.cache_creation_tokens,
        cache_read_input_tokens=usage.cache_read_tokens,
        output_tokens=usage.output_tokens,
    )



PING = encode_event(b'{"type":"ping"}', "ping")



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

