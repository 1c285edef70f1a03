"""``POST /v1/images/generations``: OpenAI's images API on the whole-answer pipeline.

Validated here (``adapters.images``): ``prompt``, ``n``, ``size``, ``quality``,
``response_format``, ``style``, ``output_format`` (a 400 naming the field). An openai-kind
provider gets the body as it came (gpt-image without ``response_format``); MiniMax gets it
translated; the mock draws PNGs. Every adapter answers in OpenAI's shape, and the images it
holds are what the call is billed for (``price_per_image``; gpt-image's tokens too, when the
model has token prices).
"""

from __future__ import annotations

from typing import Any

from adapters import canonical as c
from adapters.base import Adapter, Call, RawReply, perform
from adapters.client import Parsed
from adapters.images import ImagesRequest, check_images_request, images_usage
from gateway.pipeline.whole import WholeOperation
from gateway.usage_estimate import SentBodies
from routers.catalog import Deployment


class ImagesOperation(WholeOperation):
    """Image generation in the OpenAI dialect."""

    name = "images"
    request_type = ImagesRequest

    def check(self, request: ImagesRequest) -> None:
        check_images_request(request)

    def output_units(self, parsed: Parsed) -> c.Usage | None:
        request: ImagesRequest = parsed.typed
        return c.Usage(images=request.n)  # a prepaid balance must cover every image asked

    async def send(self, adapter: Adapter, call: Call) -> RawReply:
        # No token usage is counted or added: an images answer is billed by what it holds.
        return await perform(adapter, self.name, call)

    def reply(self, reply: RawReply | Any, served: Deployment) -> tuple[bytes, c.Usage | None]:
        return reply.body, images_usage(reply.body)

    def estimate(self, body: bytes, sent: SentBodies | None) -> c.Usage:
        return c.Usage()  # an answer that never came made no image
