"""Image generation, dialect-neutral: the request callers send and the answer they get back.

Callers speak OpenAI's images API (``POST /v1/images/generations``), for DALL·E 3 and the
gpt-image models alike, so its shapes are the neutral ones here: an openai-kind provider takes
the caller's body as it is (unknown fields pass through); other dialects (MiniMax) translate
``ImagesRequest`` to their own and their answer back to ``ImagesAnswer``. Whoever made them,
the caller gets OpenAI's answer, and ``images_usage`` reads what it is billed for.

``check_images_request`` is the bad-input check beyond the types: an empty prompt, ``n``
outside 1-10, a size, quality, style or format not in the lists below is a 400 naming the field,
before anything is planned or reserved.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal, get_args

import msgspec
from msgspec import UNSET, Meta, UnsetType

from adapters.base import Call, has_value
from adapters.canonical import Usage
from adapters.client import check_model_name, decode_json
from adapters.errors import InvalidRequest, ProviderProtocolError

MAX_IMAGES = 10  # OpenAI's own bound; a provider that makes fewer refuses more itself
MAX_PROMPT_CHARS = 32_000  # gpt-image's limit, the longest of OpenAI's image models

# OpenAI's sizes (dall-e-2: the squares; dall-e-3: 1024 square, 1792 wide and tall; gpt-image:
# 1024 square, 1536 wide and tall, "auto"), and the sizes MiniMax image-01 makes for each of its
# aspect ratios, so a caller can ask for those exactly.
OpenAISize = Literal[
    "256x256", "512x512", "1024x1024", "1792x1024", "1024x1792", "1536x1024", "1024x1536",
]
MiniMaxSize = Literal[
    "1280x720", "720x1280", "1152x864", "864x1152", "1248x832", "832x1248", "1344x576",
]
Size = Literal[OpenAISize, MiniMaxSize, "auto"]
Quality = Literal["standard", "hd", "low", "medium", "high", "auto"]
ResponseFormat = Literal["url", "b64_json"]
Style = Literal["vivid", "natural"]
OutputFormat = Literal["png", "jpeg", "webp"]
OPENAI_SIZES: tuple[str, ...] = get_args(OpenAISize)
MINIMAX_SIZES: tuple[str, ...] = get_args(MiniMaxSize)
SIZES = frozenset(get_args(Size))
# The closed lists a field's value must be in. The request takes them as strings and checks
# them itself, so that a 400 lists the choices (the OpenAPI schema has them as enums).
CHOICES: dict[str, tuple[str, ...]] = {
    "quality": get_args(Quality),
    "response_format": get_args(ResponseFormat),
    "style": get_args(Style),
    "output_format": get_args(OutputFormat),
}
OUTPUT_FORMATS = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}


class ImagesRequest(msgspec.Struct, omit_defaults=True, kw_only=True):
    """``POST /v1/images/generations``: the fields the gateway reads; others pass through to an
    openai-kind upstream untouched (gpt-image's ``background``, ``output_compression``…)."""

    model: str
    prompt: str
    n: Annotated[int, Meta(ge=1, le=MAX_IMAGES)] = 1
    size: str | UnsetType = UNSET
    quality: str | UnsetType = UNSET
    response_format: str | UnsetType = UNSET  # url (dall-e's default) or b64_json
    style: str | UnsetType = UNSET  # dall-e-3: vivid or natural
    user: str | UnsetType = UNSET
    output_format: str | UnsetType = UNSET  # gpt-image: png (its default), jpeg or webp
    stream: bool | UnsetType = UNSET

    @property
    def wants_url(self) -> bool:
        """OpenAI's default is a URL (dall-e); gpt-image always answers base64."""
        return self.response_format != "b64_json"


class Image(msgspec.Struct, omit_defaults=True, kw_only=True):
    url: str | UnsetType = UNSET
    b64_json: str | UnsetType = UNSET
    revised_prompt: str | UnsetType = UNSET


class ImagesAnswer(msgspec.Struct, omit_defaults=True, kw_only=True):
    """The answer callers get: OpenAI's images response."""

    created: int
    data: list[Image]
    usage: msgspec.Raw | UnsetType = UNSET  # gpt-image's token counts


_images_request = msgspec.json.Decoder(ImagesRequest)


def _refuse(message: str, param: str) -> InvalidRequest:
    return InvalidRequest(message, param=param)


def parse_images_request(body: bytes) -> ImagesRequest:
    """A validated images request; ``InvalidRequest`` names the field at fault."""
    request: ImagesRequest = decode_json(body, _images_request)
    check_model_name(request.model)
    check_images_request(request)
    return request


def check_images_request(request: ImagesRequest) -> None:
    """Refuse (``InvalidRequest``) what the types cannot express (see the module docstring)."""
    if not request.prompt.strip():
        raise _refuse("'prompt' is empty: describe the image to make", "prompt")
    if len(request.prompt) > MAX_PROMPT_CHARS:
        raise _refuse(f"'prompt' is {len(request.prompt)} characters; the limit is "
                      f"{MAX_PROMPT_CHARS}", "prompt")
    if request.size is not UNSET and request.size not in SIZES:
        raise _refuse(f"Unknown 'size' {request.size!r}: use one of "
                      f"{', '.join(OPENAI_SIZES)}, auto (or MiniMax's {', '.join(MINIMAX_SIZES)})",
                      "size")
    for name, choices in CHOICES.items():
        value = getattr(request, name)
        if value is not UNSET and value not in choices:
            raise _refuse(f"Unknown '{name}' {value!r}: use one of {', '.join(choices)}", name)
    if request.stream:
        raise _refuse("Streamed image generation is not supported: leave 'stream' out",
                      "stream")


def typed(call: Call) -> ImagesRequest:
    """The typed view of a call's body (validated at intake, so this cannot fail)."""
    assert call.raw is not None
    return msgspec.convert(call.raw, ImagesRequest)


def data_url(b64: str, media_type: str) -> str:
    """An image made as base64, as a URL a browser or ``<img>`` takes as it is."""
    return f"data:{media_type};base64,{b64}"


class _TokensView(msgspec.Struct):
    input_tokens: int = 0
    output_tokens: int = 0


class _UsageView(msgspec.Struct):
    data: list[msgspec.Raw]
    usage: _TokensView | None = None


_usage_view = msgspec.json.Decoder(_UsageView)


def images_usage(body: bytes) -> Usage:
    """What an OpenAI images answer is billed for: its images, and the tokens gpt-image
    reports (the images' strings are skipped, not copied)."""
    try:
        view = _usage_view.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise ProviderProtocolError(f"malformed images answer: {exc}") from exc
    tokens = view.usage or _TokensView()
    return Usage(images=len(view.data), input_tokens=tokens.input_tokens,
                 output_tokens=tokens.output_tokens)


def answer_bytes(created: int, images: list[Image], usage: msgspec.Raw | None = None) -> bytes:
    """An ``ImagesAnswer`` encoded for the caller (``usage`` as it came, when it came)."""
    kept = usage if usage is not None and has_value(usage) else UNSET
    return msgspec.json.encode(ImagesAnswer(created=created, data=images, usage=kept))


def without_keys(body: Mapping[str, Any], *keys: str) -> dict[str, Any]:
    """A copy of a body without ``keys`` (the caller's mapping is shared, never changed)."""
    return {k: v for k, v in body.items() if k not in keys}
