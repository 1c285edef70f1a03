"""OpenAI Responses API wire types of a caller's ``POST /v1/responses`` body (private to the
``adapters.responses`` package).

Input items and content parts are flat Structs read by their ``type`` (the easy message form
has no ``type``), so an unknown kind is refused by ``adapters.responses.client`` with a message
that names it rather than by a decoder error.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from msgspec import UNSET, Meta, UnsetType

NonNegative = Annotated[int, Meta(ge=0)]
Positive = Annotated[int, Meta(ge=1)]
Temperature = Annotated[float, Meta(ge=0, le=2)]
Probability = Annotated[float, Meta(ge=0, le=1)]


class Part(msgspec.Struct, omit_defaults=True):
    """One content part: ``input_text``/``output_text``, ``input_image``, ``input_file``,
    ``refusal``."""

    type: str
    text: str | UnsetType = UNSET
    image_url: str | UnsetType = UNSET
    file_id: str | UnsetType = UNSET
    file_data: str | UnsetType = UNSET
    file_url: str | UnsetType = UNSET
    filename: str | UnsetType = UNSET
    detail: str | UnsetType = UNSET
    refusal: str | UnsetType = UNSET


class SummaryPart(msgspec.Struct):
    text: str = ""
    type: str = "summary_text"


class InputItem(msgspec.Struct, omit_defaults=True):
    """A message (``type`` absent or ``message``), ``function_call``,
    ``function_call_output`` or ``reasoning`` item. ``content`` may be null (Codex sends its
    reasoning items back with ``"content": null``)."""

    type: str = "message"
    role: str | UnsetType = UNSET
    content: str | list[Part] | UnsetType | None = UNSET
    id: str | UnsetType = UNSET
    call_id: str | UnsetType = UNSET
    name: str | UnsetType = UNSET
    arguments: str | UnsetType = UNSET
    output: str | list[Part] | UnsetType = UNSET
    summary: list[SummaryPart] | UnsetType = UNSET
    status: str | UnsetType = UNSET


class ToolDef(msgspec.Struct, omit_defaults=True):
    """A tool: only ``function`` tools have a canonical form."""

    type: str
    name: str | UnsetType = UNSET
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class NamedChoice(msgspec.Struct, omit_defaults=True):
    type: str
    name: str | UnsetType = UNSET


class TextFormat(msgspec.Struct, omit_defaults=True):
    type: str = "text"
    name: str | UnsetType = UNSET
    schema: dict[str, Any] | UnsetType = UNSET
    strict: bool | None = None
    description: str | UnsetType = UNSET


class TextConfig(msgspec.Struct, omit_defaults=True):
    format: TextFormat | UnsetType = UNSET
    verbosity: str | None = None


class ReasoningConfig(msgspec.Struct, omit_defaults=True):
    effort: str | None = None
    summary: str | None = None
    generate_summary: str | None = None


class ResponsesRequest(msgspec.Struct, omit_defaults=True):
    """The fields of a Responses body the gateway reads; others pass through untouched to a
    Responses upstream and are ignored by translation."""

    model: str
    input: str | list[InputItem] = ""
    instructions: str | None = None
    tools: list[ToolDef] | None = None
    tool_choice: str | NamedChoice | None = None
    parallel_tool_calls: bool | None = None
    max_output_tokens: Positive | None = None
    temperature: Temperature | None = None
    top_p: Probability | None = None
    text: TextConfig | None = None
    reasoning: ReasoningConfig | None = None
    metadata: dict[str, str] | None = None
    stream: bool | None = None
    store: bool | None = None
    previous_response_id: str | None = None
    user: str | None = None
    safety_identifier: str | None = None
    include: list[str] | None = None
    truncation: str | None = None
    max_tool_calls: NonNegative | None = None


# --- usage, shared by the encoders and the pass-through inspection ---------------------------


class InputDetails(msgspec.Struct):
    cached_tokens: int = 0
    cache_write_tokens: int = 0


class OutputDetails(msgspec.Struct):
    reasoning_tokens: int = 0


class UsageWire(msgspec.Struct):
    """``usage`` of a Responses ``response`` object, read from an upstream and written back."""

    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    input_tokens_details: InputDetails = msgspec.field(default_factory=InputDetails)
    output_tokens_details: OutputDetails = msgspec.field(default_factory=OutputDetails)
