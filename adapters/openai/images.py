"""OpenAI's images API, provider side: the caller's body to ``{base_url}/images/generations``
and the answer back.

The body passes through with ``model`` rewritten (unknown fields kept). The gpt-image models
always answer base64 and refuse ``response_format``: it is left out for them, and a caller that
asked for URLs gets each image as a ``data:`` URL (``output_format`` names its type, png by
default). Every other answer goes back byte for byte.
"""

from __future__ import annotations

import time

import msgspec

from adapters.base import Call
from adapters.errors import ProviderProtocolError
from adapters.images import (
    OUTPUT_FORMATS,
    Image,
    ImagesRequest,
    answer_bytes,
    data_url,
    without_keys,
)


def base64_only(model: str) -> bool:
    """Whether an OpenAI image model answers base64 only (the gpt-image family)."""
    return model.startswith("gpt-image")


def openai_images_body(call: Call) -> bytes:
    """What goes upstream: the caller's body, ``model`` rewritten, and no ``response_format``
    for a model that takes none."""
    assert call.raw is not None
    body = without_keys(call.raw, "response_format") if base64_only(call.model) else dict(call.raw)
    body["model"] = call.model
    return msgspec.json.encode(body)


class _Answer(msgspec.Struct):
    data: list[Image]
    created: int = 0
    output_format: str = "png"
    usage: msgspec.Raw = msgspec.Raw(b"")  # gpt-image's tokens: kept as they came


_answer = msgspec.json.Decoder(_Answer)


def openai_images_reply(body: bytes, request: ImagesRequest, model: str) -> bytes:
    """The caller's answer from an OpenAI images answer: as it came, or with base64 images
    turned into ``data:`` URLs when the caller asked for URLs of a base64-only model."""
    if not (request.wants_url and base64_only(model)):
        return body
    try:
        answer = _answer.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise ProviderProtocolError(f"malformed images answer: {exc}") from exc
    fmt = request.output_format if isinstance(request.output_format, str) else answer.output_format
    media_type = OUTPUT_FORMATS.get(fmt, "image/png")
    images = [
        Image(url=data_url(image.b64_json, media_type), revised_prompt=image.revised_prompt)
        if isinstance(image.b64_json, str) else image
        for image in answer.data
    ]
    return answer_bytes(answer.created or int(time.time()), images, answer.usage)
