"""The client for Anthropic's Messages API (provider kind ``anthropic``).

``base_url`` is the one Anthropic's SDK uses (``https://api.anthropic.com``); the adapter
appends ``/v1/messages``. Pass-through calls (the caller speaks Anthropic) forward the caller's
body with only ``model`` rewritten, and the answer's bytes come back untouched, so thinking
signatures, ``cache_control`` and citations survive. Other calls are converted from the
canonical request.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import msgspec

from adapters import canonical as c
from adapters.anthropic.upstream import (
    AnthropicEventDecoder,
    anthropic_response_to_canonical,
    canonical_to_anthropic_request,
)
from adapters.base import Call, ProviderSettings, RawReply
from adapters.errors import ProviderProtocolError
from adapters.upstream import UpstreamClient, relay_sse

_encode = msgspec.json.encode
API_VERSION = "2023-06-01"


class AnthropicProvider:
    """Messages over Anthropic's HTTP API."""

    dialect = "anthropic"

    def __init__(self, settings: ProviderSettings, client: UpstreamClient) -> None:
        self.settings = settings
        self.client = client
        base = settings.base_url.rstrip("/")
        self.url = base + ("/messages" if base.endswith("/v1") else "/v1/messages")

    def _headers(self, call: Call) -> dict[str, str]:
        headers = {
            "Content-Type": "application/json",
            "anthropic-version": API_VERSION,
            **self.settings.headers,
        }
        beta = call.headers.get("anthropic-beta")
        if beta:
            headers["anthropic-beta"] = beta
        key = call.api_key or self.settings.api_key
        if key:
            headers["x-api-key"] = key
        return headers

    def _body(self, call: Call) -> bytes:
        if call.raw is not None:
            return _encode({**call.raw, "model": call.model})  # a copy: shared by fallbacks
        assert call.request is not None
        return _encode(canonical_to_anthropic_request(call.request, call.model))

    async def complete(self, call: Call) -> RawReply | c.Response:
        body = await self.client.fetch(self.url, self._body(call), self._headers(call))
        if call.raw is not None:
            return RawReply(body)
        return anthropic_response_to_canonical(body)

    async def count_tokens(self, body: dict[str, Any], model: str, beta: str | None) -> int:
        """Anthropic's own count for a count_tokens body (``model`` rewritten)."""
        call = Call(model=model, stream=False, headers={"anthropic-beta": beta} if beta else {})
        url = self.url + "/count_tokens"
        response = await self.client.post(
            url, _encode({**body, "model": model}), self._headers(call)
        )
        try:
            payload = await response.read()
        finally:
            response.close()
        try:
            return int(msgspec.json.decode(payload)["input_tokens"])
        except (msgspec.DecodeError, KeyError, TypeError, ValueError) as exc:
            raise ProviderProtocolError(f"malformed count_tokens answer: {exc}") from exc

    def stream(self, call: Call) -> AsyncIterator[bytes | c.StreamEvent]:
        decoder = None if call.raw is not None else AnthropicEventDecoder()
        return relay_sse(
            lambda: self.client.post(self.url, self._body(call), self._headers(call)),
            self.client.timeouts.first_byte, decoder,
        )
