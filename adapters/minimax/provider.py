"""The ``minimax`` provider kind: MiniMax's media APIs (image generation here).

Chat is not served by this kind: MiniMax's chat API speaks OpenAI's dialect, so its chat models
belong under a ``kind = "openai"`` provider (``base_url = "https://api.minimax.io/v1"``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import msgspec

from adapters import canonical as c
from adapters.base import Call, ProviderSettings, RawReply
from adapters.errors import ProviderHTTPError
from adapters.images import typed
from adapters.minimax.common import MiniMaxAPI, decode_checked
from adapters.minimax.images import (
    MiniMaxImageAnswer,
    minimax_image_answer_to_openai,
    openai_to_minimax_image_request,
)
from adapters.upstream import UpstreamClient

_image_answer = msgspec.json.Decoder(MiniMaxImageAnswer)


def _no_chat(call: Call) -> ProviderHTTPError:
    # 501 is retryable: a chain moves on to a model that can answer.
    return ProviderHTTPError(
        501, f"{call.model}: a kind = \"minimax\" provider serves images only; serve MiniMax "
        "chat models through a kind = \"openai\" provider at https://api.minimax.io/v1"
    )


class MiniMaxProvider(MiniMaxAPI):
    """MiniMax image generation, answered in OpenAI's images shape."""

    dialect = "minimax"
    modes = ("images",)

    def __init__(self, settings: ProviderSettings, client: UpstreamClient) -> None:
        super().__init__(settings, client)
        self.image_url = self.url("/v1/image_generation")

    async def perform(self, operation: str, call: Call) -> RawReply:
        """The one operation of ``modes``: images."""
        return RawReply(await self.generate_images(call))

    async def generate_images(self, call: Call) -> bytes:
        """``image-01`` through ``/v1/image_generation`` (see ``adapters.minimax.images``),
        answered in OpenAI's images shape."""
        request = typed(call)
        body = msgspec.json.encode(openai_to_minimax_image_request(request, call.model))
        reply = await self.client.fetch(self.image_url, body, self._headers(call))
        return minimax_image_answer_to_openai(decode_checked(reply, _image_answer), request)

    async def complete(self, call: Call) -> RawReply | c.Response:
        raise _no_chat(call)

    async def stream(self, call: Call) -> AsyncIterator[bytes | c.StreamEvent]:
        raise _no_chat(call)
        yield b""  # pragma: no cover (makes this an async generator)
