"""The bodies the gateway answers, as msgspec Structs the OpenAPI document is generated from.

Request bodies are the dialects' own wire Structs (``adapters``) where one exists, so the
document says what the decoder really accepts. Answers built as dicts by their handlers are
described here. Every field a handler may leave out has a default (not required); fields are
never closed (``additionalProperties`` is left open), since pass-through answers carry what the
provider sent. ``tests/test_openapi.py`` runs schemathesis against the real server, so an answer
that stops matching its Struct fails the suite.
"""

from __future__ import annotations

from typing import Any

import msgspec
from msgspec import UNSET, UnsetType

from adapters.anthropic.wire import CountTokensRequest, MessagesRequest
from adapters.embeddings import EmbeddingsRequest
from adapters.images import (
    ImagesAnswer,
    ImagesRequest,
    OutputFormat,
    Quality,
    ResponseFormat,
    Size,
    Style,
)
from adapters.moderation import ModerationRequest
from adapters.openai.wire import ChatRequest
from adapters.rerank import RerankRequest
from adapters.responses.wire import ResponsesRequest

# --- errors ---------------------------------------------------------------------------------


class OpenAIErrorDetail(msgspec.Struct):
    message: str
    type: str
    code: str | None = None
    param: str | None = None


class OpenAIError(msgspec.Struct):
    """Every error of the OpenAI endpoints and of the account API."""

    error: OpenAIErrorDetail


class AnthropicErrorDetail(msgspec.Struct):
    type: str
    message: str


class AnthropicError(msgspec.Struct):
    """Every error of the Anthropic endpoints (``/v1/messages``, ``/anthropic/...``)."""

    type: str
    error: AnthropicErrorDetail


# --- chat -----------------------------------------------------------------------------------


class ChatCompletionRequest(ChatRequest):
    """An OpenAI chat-completions body. Fields not listed pass through to OpenAI-dialect
    upstreams unchanged. ``route`` and ``models`` ask for a fallback chain of up to five."""

    route: str | None = None
    models: list[str] | None = None


class AssistantMessage(msgspec.Struct):
    role: str
    content: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    reasoning_content: str | None = None


class ChatChoice(msgspec.Struct):
    index: int
    message: AssistantMessage
    finish_reason: str | None = None
    logprobs: dict[str, Any] | None = None


class ChatUsage(msgspec.Struct):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    prompt_tokens_details: dict[str, Any] | None = None
    completion_tokens_details: dict[str, Any] | None = None


class ChatCompletion(msgspec.Struct):
    """A non-streamed answer; ``model`` is the catalog id that served it. Streamed answers
    (``stream: true``) are ``text/event-stream`` of ``chat.completion.chunk`` events."""

    id: str
    object: str
    model: str
    choices: list[ChatChoice]
    created: int = 0
    usage: ChatUsage | None = None


class ResponsesBody(ResponsesRequest):
    """An OpenAI Responses API body. Only function tools are translated for upstreams that do
    not speak the Responses API; the whole body passes unchanged to one that does."""

    route: str | None = None
    models: list[str] | None = None


class ResponseObject(msgspec.Struct):
    """A non-streamed Responses answer (``object: "response"``); streamed answers are
    ``text/event-stream`` of ``response.*`` events ending with ``response.completed``."""

    id: str
    object: str
    model: str
    output: list[dict[str, Any]]
    status: str | None = None
    created_at: float = 0
    usage: dict[str, Any] | None = None


class ResponseDeleted(msgspec.Struct):
    """``DELETE /v1/responses/{id}``: the stored response is gone."""

    id: str
    object: str
    deleted: bool


class InputItemList(msgspec.Struct):
    """The input items a stored response was made from (the whole conversation, a previous
    response's included), ``order`` desc by default."""

    object: str
    data: list[dict[str, Any]]
    has_more: bool
    first_id: str | None = None
    last_id: str | None = None


class AnthropicMessagesRequest(MessagesRequest):
    """An Anthropic Messages body (``max_tokens`` is required, as Anthropic requires it)."""


class AnthropicUsage(msgspec.Struct):
    input_tokens: int
    output_tokens: int
    cache_read_input_tokens: int | None = None
    cache_creation_input_tokens: int | None = None


class AnthropicMessageResponse(msgspec.Struct):
    """A non-streamed Messages answer; streamed answers are Anthropic's SSE events."""

    id: str
    type: str
    role: str
    model: str
    content: list[dict[str, Any]]
    stop_reason: str | None = None
    stop_sequence: str | None = None
    usage: AnthropicUsage | None = None


class TokenCountRequest(CountTokensRequest):
    """A Messages body without ``max_tokens``: the prompt to count."""


class TokenCount(msgspec.Struct):
    input_tokens: int


class ServerSentEvent(msgspec.Struct):
    """One event of a streamed answer (``"stream": true``): ``data`` is a JSON chunk of the
    dialect (OpenAI ``chat.completion.chunk``, then ``[DONE]``; Anthropic's typed events)."""

    data: str
    event: str | None = None
    id: str | None = None
    retry: int | None = None


# --- models ---------------------------------------------------------------------------------


class ModelPricing(msgspec.Struct):
    input: float
    output: float
    unit: str
    cached_input: float | None = None
    per_image: float | None = None  # images models: USD per image
    per_second: float | None = None  # video models: USD per second of video
    per_video: float | None = None  # video models: USD per video


class Model(msgspec.Struct):
    """A catalog model, or (``type`` router or persona) a name that resolves to models."""

    id: str
    object: str
    owned_by: str
    created: int = 0
    # The endpoint kind that serves it: chat, embeddings, images, video, rerank, moderation.
    mode: str | None = None
    context_length: int | None = None
    max_output_tokens: int | None = None
    capabilities: list[str] = []
    aliases: list[str] = []
    pricing: ModelPricing | None = None
    free: bool = False
    credits: int | None = None
    type: str | None = None
    description: str | None = None
    models: list[str] | None = None
    target: str | None = None


class ModelList(msgspec.Struct):
    object: str
    data: list[Model]


# --- service --------------------------------------------------------------------------------


class Health(msgspec.Struct):
    status: str


class Readiness(msgspec.Struct):
    """``status`` is ``ready`` (200) or ``unavailable`` (503); ``checks`` names each part."""

    status: str
    checks: dict[str, str]


# --- operations beyond chat -----------------------------------------------------------------


class EmbeddingsBody(EmbeddingsRequest):
    """An OpenAI embeddings body: ``input`` is a string, an array of strings, an array of token
    ids or an array of arrays of token ids (at most 2048 inputs)."""

    route: str | None = None
    models: list[str] | None = None


class Embedding(msgspec.Struct):
    index: int
    embedding: list[float] | str  # floats, or base64 of little-endian float32
    object: str = "embedding"


class InputUsage(msgspec.Struct):
    prompt_tokens: int = 0
    total_tokens: int = 0


class EmbeddingList(msgspec.Struct):
    object: str
    data: list[Embedding]
    model: str
    usage: InputUsage | None = None


class RerankBody(RerankRequest):
    """A rerank body in the Cohere/Jina shape: ``documents`` are strings or ``{"text"}``
    objects; ``top_n`` keeps the best; ``return_documents`` echoes them in the results."""

    route: str | None = None
    models: list[str] | None = None


class RerankResult(msgspec.Struct):
    index: int
    relevance_score: float
    document: dict[str, Any] | None = None


class RerankList(msgspec.Struct):
    results: list[RerankResult]
    id: str | None = None
    model: str | None = None


class ModerationBody(ModerationRequest):
    """An OpenAI moderation body: ``input`` is a string, strings, or text/image_url parts;
    ``model`` defaults to ``omni-moderation-latest`` (an alias the operator may give)."""

    route: str | None = None
    models: list[str] | None = None


class ModerationResult(msgspec.Struct):
    flagged: bool
    categories: dict[str, bool] = {}
    category_scores: dict[str, float] = {}


class ModerationList(msgspec.Struct):
    id: str
    model: str
    results: list[ModerationResult]


class ImagesBody(ImagesRequest):
    """An OpenAI images body (dall-e-3, gpt-image). ``size`` is one of OpenAI's sizes or
    MiniMax's; other fields (gpt-image's ``background``…) pass through to openai-kind
    providers unchanged."""

    # The closed lists, as enums (the gateway checks them itself: a 400 lists them).
    size: Size | UnsetType = UNSET
    quality: Quality | UnsetType = UNSET
    response_format: ResponseFormat | UnsetType = UNSET
    style: Style | UnsetType = UNSET
    output_format: OutputFormat | UnsetType = UNSET
    route: str | None = None
    models: list[str] | None = None


class ImagesResponse(ImagesAnswer):
    """``data`` holds a ``url`` (a ``data:`` URL for gpt-image and the mock) or a
    ``b64_json`` per image, as ``response_format`` asked."""
