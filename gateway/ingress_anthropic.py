"""The Anthropic Messages ingress: ``POST /v1/messages`` (also under ``/anthropic``) and
``POST /v1/messages/count_tokens``.

Bodies are validated the way Anthropic validates them (``max_tokens`` is required), errors use
Anthropic's shape, and answers are Anthropic messages or event streams whatever dialect the
upstream speaks. An Anthropic upstream is a pass-through: its bytes come back untouched.
"""

from __future__ import annotations

from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from adapters import canonical as c
from adapters.anthropic import (
    AnthropicPassthrough,
    AnthropicStreamEncoder,
    CountTokensRequest,
    MessagesRequest,
    anthropic_error_frame,
    anthropic_to_canonical,
    canonical_to_anthropic_response,
    inspect_anthropic_response,
)
from adapters.anthropic_provider import AnthropicProvider
from adapters.base import StreamTranslator
from adapters.errors import ProviderError
from gateway.auth import key_from_headers
from gateway.errors import BadRequest, GatewayError, ModelNotFound, routing_error
from gateway.ingress import Parsed, decode_json, routing_chain
from gateway.wiring import Gateway
from routers.catalog import ModelInfo
from routers.features import features_from_canonical
from routers.plan import RoutingRefused

_messages_request = msgspec.json.Decoder(MessagesRequest)
_count_request = msgspec.json.Decoder(CountTokensRequest)
_ROLES = ("user", "assistant", "system")  # system: Claude Code's mid-conversation messages


def _check_messages(messages: list[Any]) -> None:
    if not messages:
        raise BadRequest("messages: at least one message is required", param="messages")
    for index, message in enumerate(messages):
        if message.role not in _ROLES:
            raise BadRequest(
                f"messages.{index}.role: Input should be 'user', 'assistant' or 'system'",
                param=f"messages.{index}.role",
            )
        if isinstance(message.content, list):
            for number, block in enumerate(message.content):
                if not isinstance(block.get("type"), str):
                    raise BadRequest(
                        f"messages.{index}.content.{number}.type: Field required",
                        param=f"messages.{index}.content.{number}.type",
                    )


class AnthropicIngress:
    """``POST /v1/messages``."""

    dialect = "anthropic"

    def parse(self, body: bytes) -> Parsed:
        request: MessagesRequest = decode_json(body, _messages_request)
        if not request.model:
            raise BadRequest("model: name a model (GET /v1/models lists them)", param="model")
        if request.max_tokens is None:
            raise BadRequest(
                "max_tokens: Field required (the most tokens the answer may have)",
                param="max_tokens",
            )
        if request.max_tokens < 1:
            raise BadRequest("max_tokens: must be at least 1", param="max_tokens")
        _check_messages(request.messages)
        thinking = request.thinking or {}
        if thinking.get("type") == "enabled":
            budget = thinking.get("budget_tokens")
            if not isinstance(budget, int) or budget < 1024:
                raise BadRequest(
                    "thinking.budget_tokens: must be an integer of at least 1024",
                    param="thinking.budget_tokens",
                )
            if budget >= request.max_tokens:
                raise BadRequest(
                    "max_tokens must be greater than thinking.budget_tokens",
                    param="max_tokens",
                )
        # The caller's own fallback chain (``models`` + ``route``), as on the OpenAI endpoint.
        routing_fields = b'"models"' in body or b'"route"' in body
        chain = routing_chain(body) if routing_fields else None
        return Parsed(
            body,
            request,
            request.model,
            bool(request.stream),
            True,
            chain=chain,
            routing_fields=routing_fields,
        )

    def to_canonical(self, parsed: Parsed) -> c.Request:
        return parsed.canonical(anthropic_to_canonical)

    def passthrough_translator(self, parsed: Parsed, served_model: str) -> StreamTranslator:
        return AnthropicPassthrough(served_model)

    def canonical_translator(
        self, parsed: Parsed, served_model: str, response_id: str
    ) -> StreamTranslator:
        return AnthropicStreamEncoder(response_id, served_model)

    def passthrough_reply(self, body: bytes, served_model: str) -> tuple[bytes, c.Usage | None]:
        return inspect_anthropic_response(body, served_model)

    def canonical_reply(self, response: c.Response, served_model: str) -> bytes:
        return msgspec.json.encode(canonical_to_anthropic_response(response, served_model))

    def error_frame(self, error: GatewayError) -> bytes:
        return anthropic_error_frame(error.anthropic_body())


# --- count_tokens ---------------------------------------------------------------------------


def count_request_to_canonical(request: CountTokensRequest) -> c.Request:
    return anthropic_to_canonical(
        MessagesRequest(
            model=request.model,
            messages=request.messages,
            system=request.system,
            tools=request.tools,
            tool_choice=request.tool_choice,
        )
    )


def estimate_input_tokens(request: CountTokensRequest) -> int:
    """About four characters a token over everything the model reads, images at a flat 1,600
    (Anthropic's cost of a ~1.15 megapixel image). An estimate, not a tokenizer."""
    canonical = count_request_to_canonical(request)
    chars = sum(len(block.text) for block in canonical.system)
    images = 0
    for message in canonical.messages:
        for block in message.content:
            if isinstance(block, c.TextBlock):
                chars += len(block.text)
            elif isinstance(block, c.ImageBlock):
                images += 1
            elif isinstance(block, c.ToolUseBlock):
                chars += len(block.name) + len(msgspec.json.encode(block.input))
            elif isinstance(block, c.ToolResultBlock):
                for part in block.content:
                    if isinstance(part, c.TextBlock):
                        chars += len(part.text)
                    else:
                        images += 1
            elif isinstance(block, c.ThinkingBlock):
                chars += len(block.thinking)
    for tool in request.tools or []:
        chars += len(msgspec.json.encode(tool))
    return max(1, (chars + 3) // 4) + images * 1600 + 4 * len(canonical.messages)


async def _upstream_count(
    gateway: Gateway, target: ModelInfo, raw: bytes, headers: Any
) -> int | None:
    """Anthropic's exact count when the model is served by Anthropic; None to estimate."""
    adapter = gateway.adapters.get(target.provider)
    if not isinstance(adapter, AnthropicProvider):
        return None
    try:
        return await adapter.count_tokens(
            msgspec.json.decode(raw), target.upstream, headers.get("anthropic-beta")
        )
    except ProviderError:
        return None  # an estimate beats an error for a count


def count_tokens_endpoint(gateway: Gateway) -> Any:
    """``POST /v1/messages/count_tokens``: Anthropic's own count for a model it serves, an
    estimate for any other."""

    async def count_tokens(request: Request) -> Response:
        try:
            headers = request.headers
            await gateway.keys.authenticate(
                key_from_headers(
                    headers.get("authorization", "").encode("latin-1") or None,
                    headers.get("x-api-key", "").encode("latin-1") or None,
                )
            )
            raw = await request.body()
            body: CountTokensRequest = decode_json(raw, _count_request)
            _check_messages(body.messages)
            try:
                plan = gateway.planner.plan(
                    body.model, lambda: features_from_canonical(count_request_to_canonical(body))
                )
            except RoutingRefused as refusal:
                raise routing_error(refusal) from refusal
            if plan is None:
                raise ModelNotFound(
                    f"Unknown model '{body.model}': GET /v1/models lists the models you can use",
                    param="model",
                )
            count = await _upstream_count(gateway, plan.targets[0], raw, headers)
            if count is None:
                count = estimate_input_tokens(body)
        except GatewayError as error:
            return Response(
                error.body("anthropic"),
                status_code=error.status,
                headers=error.headers,
                media_type="application/json",
            )
        return Response(msgspec.json.encode({"input_tokens": count}), media_type="application/json")

    return count_tokens
