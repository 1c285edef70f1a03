"""``POST /v1/messages/count_tokens`` (also under ``/anthropic``): Anthropic's own count for a
model it serves, an estimate for any other. Bodies are read by the Anthropic dialect's client
side, errors use Anthropic's shape."""

from __future__ import annotations

from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from adapters.anthropic.client import (
    check_messages,
    count_request,
    count_request_to_canonical,
    estimate_input_tokens,
)
from adapters.anthropic.provider import AnthropicProvider
from adapters.anthropic.wire import CountTokensRequest
from adapters.client import check_model_name, decode_json
from adapters.errors import InvalidRequest, ProviderError
from adapters.features import features_from_canonical
from gateway.accounts.keys import key_from_headers
from gateway.errors import GatewayError, from_invalid_request
from gateway.pipeline.intake import plan_or_refuse
from gateway.wiring import Gateway
from routers.catalog import Deployment


async def _upstream_count(
    gateway: Gateway, target: Deployment, raw: bytes, headers: Any
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
            try:
                body: CountTokensRequest = decode_json(raw, count_request)
                check_model_name(body.model)
                check_messages(body.messages)
            except InvalidRequest as invalid:
                raise from_invalid_request(invalid) from invalid
            plan = plan_or_refuse(
                gateway.planner, body.model,
                lambda: features_from_canonical(count_request_to_canonical(body)),
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
