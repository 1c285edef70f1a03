"""The client for Google's Gemini API (provider kind ``gemini``).

``base_url`` is the one Google's SDK uses (``https://generativelanguage.googleapis.com``); the
adapter appends ``/v1beta/models/{model}:generateContent`` (``:streamGenerateContent?alt=sse``
for streams) and sends the key as ``x-goog-api-key``. Gemini has no client-facing dialect here,
so every call is converted from the canonical request.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import quote

import msgspec

from adapters import canonical as c
from adapters.base import Call, ProviderSettings, RawReply
from adapters.errors import ProviderHTTPError
from adapters.gemini.upstream import (
    GeminiChunkDecoder,
    canonical_to_gemini_request,
    gemini_response_to_canonical,
)
from adapters.upstream import JSONProvider, UpstreamClient, relay_sse

_encode = msgspec.json.encode


class GeminiProvider(JSONProvider):
    """``generateContent`` over Gemini's HTTP API."""

    dialect = "gemini"
    key_header, key_prefix = "x-goog-api-key", ""

    def __init__(self, settings: ProviderSettings, client: UpstreamClient) -> None:
        super().__init__(settings, client)
        base = settings.base_url.rstrip("/")
        self.base = base if base.endswith(("/v1beta", "/v1")) else base + "/v1beta"

    def url(self, model: str, stream: bool) -> str:
        """The model's endpoint: the name escaped as one path segment (a ``/`` in it is
        ``%2F``), and a name with ``..`` refused, so no name reaches another path on the
        provider's host with the operator's key."""
        bare = model.removeprefix("models/")
        if ".." in bare or bare in ("", "."):
            raise ProviderHTTPError(400, f"{model!r} is not a Gemini model name")
        name = quote(bare, safe="-._~")
        if stream:
            return f"{self.base}/models/{name}:streamGenerateContent?alt=sse"
        return f"{self.base}/models/{name}:generateContent"

    def _body(self, call: Call) -> bytes:
        if call.request is None:
            raise ValueError("the Gemini provider answers canonical requests only")
        return _encode(canonical_to_gemini_request(call.request))

    async def complete(self, call: Call) -> RawReply | c.Response:
        url = self.url(call.model, stream=False)
        body = await self.client.fetch(url, self._body(call), self._headers(call))
        answer = gemini_response_to_canonical(body)
        answer.model = answer.model or call.model
        return answer

    async def stream(self, call: Call) -> AsyncIterator[bytes | c.StreamEvent]:
        url = self.url(call.model, stream=True)
        response = await self.client.post(url, self._body(call), self._headers(call))
        decoder = GeminiChunkDecoder()
        async for item in relay_sse(response, self.client.timeouts.first_byte, decoder):
            yield item
