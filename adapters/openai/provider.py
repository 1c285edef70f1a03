"""The client for OpenAI and every OpenAI-compatible provider (DeepSeek, Groq, Mistral, vLLM…).

A provider of this kind is configuration only: a ``base_url`` as its official SDK uses it and a
key. Pass-through calls forward the caller's body with only ``model`` rewritten and usage
requested on streams; other calls are converted from the canonical request. A provider with
``responses_api`` also takes Responses API bodies as they are (``also_speaks``), sent to
``{base_url}/responses``. Operations other than chat (``perform``) pass through to their
own paths (``OPERATION_PATHS``), the body as the caller sent it with ``model`` rewritten
(images: see ``adapters.openai.images`` for gpt-image's base64-only answers).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import msgspec

from adapters import canonical as c
from adapters.base import Call, ProviderSettings, RawReply, decoded
from adapters.images import typed
from adapters.openai.images import openai_images_body, openai_images_reply
from adapters.openai.upstream import (
    OpenAIChunkDecoder,
    canonical_to_openai_request,
    openai_response_to_canonical,
)
from adapters.upstream import JSONProvider, UpstreamClient, relay_sse

_encode = msgspec.json.encode

# Where each operation other than chat goes, under base_url (vLLM, Jina and others serve
# /rerank beside /embeddings; OpenAI serves /moderations).
OPERATION_PATHS = {
    "embeddings": "/embeddings",
    "rerank": "/rerank",
    "moderation": "/moderations",
    "images": "/images/generations",
}


class OpenAIProvider(JSONProvider):
    """Chat completions over an OpenAI-compatible HTTP API."""

    dialect = "openai"
    modes = ("chat", *OPERATION_PATHS)

    def __init__(self, settings: ProviderSettings, client: UpstreamClient) -> None:
        super().__init__(settings, client)
        base = self.base = settings.base_url.rstrip("/")
        self.url = base + "/chat/completions"
        self.responses_url = base + "/responses"
        self.also_speaks: tuple[str, ...] = ("responses",) if settings.responses_api else ()

    def _url(self, call: Call) -> str:
        """Where the call goes: a pass-through Responses body (it has ``input``, never
        ``messages``) to the Responses API, everything else to chat completions."""
        raw = call.raw
        if self.also_speaks and raw is not None and "messages" not in raw:
            return self.responses_url
        return self.url

    def _body(self, call: Call) -> bytes:
        if call.raw is not None:
            # A new mapping per call: the caller's body is shared by every fallback.
            body = {**call.raw, "model": call.model}
            if call.stream and "messages" in body:
                options = decoded(call.raw.get("stream_options"))
                body["stream_options"] = {
                    **(options if isinstance(options, dict) else {}),
                    "include_usage": True,
                }
            return _encode(body)
        assert call.request is not None
        return _encode(
            canonical_to_openai_request(
                call.request, call.model, self.settings.max_tokens_field
            )
        )

    async def complete(self, call: Call) -> RawReply | c.Response:
        body = await self.client.fetch(self._url(call), self._body(call), self._headers(call))
        if call.raw is not None:
            return RawReply(body)
        return openai_response_to_canonical(body)

    async def perform(self, operation: str, call: Call) -> RawReply:
        """An operation other than chat, passed through (see the module docstring)."""
        assert call.raw is not None
        if operation == "images":  # gpt-image's base64-only answers need a look
            return RawReply(await self._images(call))
        body = _encode({**call.raw, "model": call.model})
        url = self.base + OPERATION_PATHS[operation]
        return RawReply(await self.client.fetch(url, body, self._headers(call)))

    async def _images(self, call: Call) -> bytes:
        url = self.base + OPERATION_PATHS["images"]
        body = await self.client.fetch(url, openai_images_body(call), self._headers(call))
        return openai_images_reply(body, typed(call), call.model)

    def stream(self, call: Call) -> AsyncIterator[bytes | c.StreamEvent]:
        decoder = None if call.raw is not None else OpenAIChunkDecoder()
        return relay_sse(
            lambda: self.client.post(self._url(call), self._body(call), self._headers(call)),
            self.client.timeouts.first_byte, decoder,
        )
