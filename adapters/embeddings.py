"""The embeddings operation in the OpenAI dialect: the request callers send to
``POST /v1/embeddings`` and the answer they get, whatever the provider behind.

``input`` is a string, an array of strings, an array of token ids, or an array of arrays of
token ids (``inputs`` reads each kind into one list). ``encoding_format`` ``"base64"`` packs
each vector as little-endian float32 bytes, as OpenAI does; ``embeddings_reply`` writes that
for providers that only return floats (Gemini, the mock), so callers get what they asked for
whoever served them.
"""

from __future__ import annotations

import base64
import sys
from array import array
from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType

from adapters.errors import InvalidRequest

MAX_INPUTS = 2048  # OpenAI's limit of inputs per request

Input = str | list[Any]  # strings or token ids: checked by ``inputs``


class EmbeddingsRequest(msgspec.Struct, kw_only=True):
    """The fields of an embeddings request the gateway reads (others pass through)."""

    model: str
    input: Input
    dimensions: Annotated[int, Meta(ge=1, le=65536)] | UnsetType = UNSET
    encoding_format: Literal["float", "base64"] | UnsetType = UNSET
    user: str | UnsetType = UNSET


def _is_tokens(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(
        isinstance(t, int) and not isinstance(t, bool) and t >= 0 for t in value
    )


def inputs(value: Input) -> list[str] | list[list[int]]:
    """The inputs of a request, as strings or as token arrays; ``InvalidRequest`` naming
    ``input`` for anything else (empty, mixed, too many)."""
    if isinstance(value, str):
        if not value:
            raise InvalidRequest("'input' is an empty string: send text to embed",
                                 param="input")
        return [value]
    if not value:
        raise InvalidRequest("'input' is an empty array: send at least one input",
                             param="input")
    if len(value) > MAX_INPUTS:
        raise InvalidRequest(f"'input' has {len(value)} items; at most {MAX_INPUTS} per request",
                             param="input")
    if all(isinstance(item, str) for item in value):
        for index, item in enumerate(value):
            if not item:
                raise InvalidRequest(f"'input[{index}]' is an empty string", param="input")
        return value
    if _is_tokens(value):
        return [value]
    if all(_is_tokens(item) for item in value):
        return value
    raise InvalidRequest(
        "'input' must be a string, an array of strings, an array of token ids (non-negative "
        "integers) or an array of such arrays, not a mix", param="input")


def encode_vector(vector: list[float], encoding: str) -> list[float] | str:
    """One embedding as the caller asked: floats, or base64 of little-endian float32."""
    if encoding != "base64":
        return vector
    packed = array("f", vector)
    if sys.byteorder != "little":
        packed.byteswap()
    return base64.b64encode(packed.tobytes()).decode("ascii")


class _Embedding(msgspec.Struct):
    index: int
    embedding: list[float] | str
    object: str = "embedding"


class _Usage(msgspec.Struct):
    prompt_tokens: int
    total_tokens: int


class _Reply(msgspec.Struct):
    object: str
    data: list[_Embedding]
    model: str
    usage: _Usage | UnsetType = UNSET


_encode = msgspec.json.encode


def embeddings_reply(
    model: str, vectors: list[list[float]], encoding: str, tokens: int | None
) -> bytes:
    """An OpenAI embeddings answer for ``vectors`` (``tokens`` None: no usage member, so the
    gateway counts the input)."""
    return _encode(_Reply(
        object="list",
        data=[_Embedding(index=i, embedding=encode_vector(v, encoding))
              for i, v in enumerate(vectors)],
        model=model,
        usage=_Usage(tokens, tokens) if tokens is not None else UNSET,
    ))
