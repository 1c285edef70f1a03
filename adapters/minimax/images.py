"""MiniMax image generation (``POST /v1/image_generation``, model ``image-01``): its wire
Structs, and the translations from OpenAI's images request and back to OpenAI's answer.

OpenAI's ``size`` becomes MiniMax's ``aspect_ratio`` (MiniMax makes each ratio at one size):

==============================================  ============  ======================
size                                            aspect_ratio  MiniMax makes
==============================================  ============  ======================
256x256, 512x512, 1024x1024                     1:1           1024x1024
1792x1024, 1280x720                             16:9          1280x720
1024x1792, 720x1280                             9:16          720x1280
1536x1024, 1248x832                             3:2           1248x832
1024x1536, 832x1248                             2:3           832x1248
1152x864                                        4:3           1152x864
864x1152                                        3:4           864x1152
1344x576                                        21:9          1344x576
auto, or none                                   (not sent)    1024x1024 (its default)
==============================================  ============  ======================

``response_format`` ``b64_json`` asks MiniMax for ``base64`` (JPEG), ``url`` for URLs (MiniMax
keeps them 24 hours). ``n`` goes as it is (MiniMax makes 1 to 9: more is refused here with a
400 before any call). ``quality``, ``style`` and ``user`` have no MiniMax equivalent and are not
sent. An answer whose every image was withheld (MiniMax's safety filter) is a 400 saying so;
a partial one bills only the images it holds.
"""

from __future__ import annotations

import time

import msgspec
from msgspec import UNSET, UnsetType

from adapters.errors import ProviderHTTPError
from adapters.images import Image, ImagesRequest, answer_bytes
from adapters.minimax.common import BaseResp

MAX_MINIMAX_IMAGES = 9

ASPECT_RATIOS = {
    "256x256": "1:1", "512x512": "1:1", "1024x1024": "1:1",
    "1792x1024": "16:9", "1280x720": "16:9",
    "1024x1792": "9:16", "720x1280": "9:16",
    "1536x1024": "3:2", "1248x832": "3:2",
    "1024x1536": "2:3", "832x1248": "2:3",
    "1152x864": "4:3", "864x1152": "3:4",
    "1344x576": "21:9",
}


class MiniMaxImageRequest(msgspec.Struct, kw_only=True):
    model: str
    prompt: str
    response_format: str  # "url" or "base64"
    n: int
    aspect_ratio: str | UnsetType = UNSET  # absent: MiniMax's 1:1


class MiniMaxImageData(msgspec.Struct):
    image_urls: list[str] | None = None
    image_base64: list[str] | None = None


class MiniMaxImageMetadata(msgspec.Struct):
    # MiniMax writes these counts as strings ("0", "3").
    success_count: str | int = 0
    failed_count: str | int = 0


class MiniMaxImageAnswer(msgspec.Struct):
    id: str = ""
    data: MiniMaxImageData | None = None
    metadata: MiniMaxImageMetadata | None = None
    base_resp: BaseResp | None = None


def openai_to_minimax_image_request(request: ImagesRequest, model: str) -> MiniMaxImageRequest:
    """The MiniMax body for an OpenAI images request (see the module docstring)."""
    if request.n > MAX_MINIMAX_IMAGES:
        raise ProviderHTTPError(
            400, f"'n' is {request.n}: {model} makes at most {MAX_MINIMAX_IMAGES} images a request"
        )
    ratio = ASPECT_RATIOS.get(request.size) if isinstance(request.size, str) else None
    return MiniMaxImageRequest(
        model=model,
        prompt=request.prompt,
        aspect_ratio=ratio if ratio is not None else UNSET,
        response_format="url" if request.wants_url else "base64",
        n=request.n,
    )


def minimax_image_answer_to_openai(answer: MiniMaxImageAnswer, request: ImagesRequest) -> bytes:
    """OpenAI's images answer for a MiniMax one whose ``base_resp`` succeeded."""
    data = answer.data or MiniMaxImageData()
    if request.wants_url:
        images = [Image(url=url) for url in data.image_urls or ()]
    else:
        images = [Image(b64_json=b64) for b64 in data.image_base64 or ()]
    if not images:
        failed = answer.metadata.failed_count if answer.metadata else 0
        raise ProviderHTTPError(
            400, f"MiniMax made no image ({failed} withheld by its content filter): "
            "change the prompt"
        )
    return answer_bytes(int(time.time()), images)
