"""The embeddings operation translated for Gemini: an OpenAI embeddings body becomes one
``batchEmbedContents`` call (a request per input), and its answer an OpenAI embeddings answer.

``dimensions`` becomes ``outputDimensionality``; ``encoding_format`` ``base64`` is packed here
(Gemini returns floats only). Gemini embeds text, so token-id inputs are refused (400), and it
reports no usage: the gateway counts the input (``gateway.pipeline.whole``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec
from msgspec import UNSET, UnsetType

from adapters.embeddings import embeddings_reply, inputs
from adapters.errors import InvalidRequest, ProviderHTTPError, ProviderProtocolError


class _Part(msgspec.Struct):
    text: str


class _Content(msgspec.Struct):
    parts: list[_Part]


class _EmbedRequest(msgspec.Struct, omit_defaults=True, rename="camel"):
    model: str
    content: _Content
    output_dimensionality: int | UnsetType = UNSET


class _BatchRequest(msgspec.Struct):
    requests: list[_EmbedRequest]


class _Values(msgspec.Struct):
    values: list[float]


class _BatchReply(msgspec.Struct):
    embeddings: list[_Values] = []


_encode = msgspec.json.encode
_reply = msgspec.json.Decoder(_BatchReply)


def openai_to_gemini_embeddings(body: Mapping[str, Any], model: str) -> bytes:
    """The ``batchEmbedContents`` body for an OpenAI embeddings body (``model``: Gemini's
    name, without ``models/``)."""
    try:
        items = inputs(body.get("input", ""))
    except InvalidRequest as invalid:
        raise ProviderHTTPError(400, invalid.message) from invalid
    texts = [item for item in items if isinstance(item, str)]
    if len(texts) != len(items):
        raise ProviderHTTPError(400, "Gemini embeds text only: send 'input' as strings, "
                                     "not token ids")
    dimensions = body.get("dimensions")
    size = dimensions if isinstance(dimensions, int) else UNSET
    name = f"models/{model}"
    return _encode(_BatchRequest([
        _EmbedRequest(model=name, content=_Content([_Part(text)]), output_dimensionality=size)
        for text in texts
    ]))


def gemini_to_openai_embeddings(answer: bytes, body: Mapping[str, Any], model: str) -> bytes:
    """Gemini's ``batchEmbedContents`` answer as an OpenAI embeddings answer, in the
    ``encoding_format`` the caller asked for (no usage: Gemini reports none)."""
    try:
        vectors = [e.values for e in _reply.decode(answer).embeddings]
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise ProviderProtocolError(f"malformed batchEmbedContents answer: {exc}") from exc
    return embeddings_reply(model, vectors, str(body.get("encoding_format", "float")), None)
