"""The client for Google's Gemini API (provider kind ``gemini``).

``base_url`` is the one Google's SDK uses (``https://generativelanguage.googleapis.com``); the
adapter appends ``/v1beta/models/{model}:generateContent`` (``:streamGenerateContent?alt=sse``
for streams) and sends the key as ``x-goog-api-key``. Gemini has no client-facing dialect here,
so every call is converted from the canonical request. Embeddings (``perform``) go to
``:batchEmbedContents``, translated by ``adapters/gemini/embeddings.py``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import quote

import msgspec

from adapters import canonical as c
from adapters.base import Call, ProviderSettings, RawReply
from adapters.errors import ProviderHTTPError
from adapters.gemini.embeddings import gemini_to_openai_embeddings, openai_to_gemini_embeddings
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
    modes = ("chat", "embeddings")
    key_header, key_prefix = "x-goog-api-key", ""

    def __init__(self, settings: ProviderSettings, client: UpstreamClient) -> None:
        super().__init__(settings, client)
        base = settings.base_url.rstrip("/")
        self.base = base if base.endswith(("/v1beta", "/v1")) else base + "/v1beta"

    def url(self, model: str, stream: bool) -> str:
        """The model's generation endpoint (``model_url``)."""
        if stream:
            return self.model_url(model, "streamGenerateContent?alt=sse")
        return self.model_url(model, "generateContent")

    def model_url(self, model: str, method: str) -> str:
        """``{base}/models/{model}:{method}``: the name escaped as one path segment (a ``/``
        in it is ``%2F``), and a name with ``..`` refused, so no name reaches another path on
        the provider's host with the operator's key."""
        bare = model.removeprefix("models/")
        if ".." in bare or bare in ("", "."):
            raise ProviderHTTPError(400, f"{model!r} is not a Gemini model name")
        return f"{self.base}/models/{quote(bare, safe='-._~')}:{method}"

    async def perform(self, operation: str, call: Call) -> RawReply:
        """Embeddings, translated to and from ``batchEmbedContents``."""
        assert call.raw is not None
        model = call.model.removeprefix("models/")
        url = self.model_url(model, "batchEmbedContents")
        answer = await self.client.fetch(
            url, openai_to_gemini_embeddings(call.raw, model), self._headers(call)
        )
        return RawReply(gemini_to_openai_embeddings(answer, call.raw, call.model))

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

    def stream(self, call: Call) -> AsyncIterator[bytes | c.StreamEvent]:
        url = self.url(call.model, stream=True)
        return relay_sse(
            lambda: self.client.post(url, self._body(call), self._headers(call)),
            self.client.timeouts.first_byte, GeminiChunkDecoder(),
        )
