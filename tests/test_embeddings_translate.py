"""The embeddings translation for Gemini and the OpenAI answer the gateway writes itself:
pure functions, no I/O."""

from __future__ import annotations

import base64
import struct

import msgspec
import pytest

from adapters.embeddings import embeddings_reply, encode_vector
from adapters.errors import ProviderHTTPError, ProviderProtocolError
from adapters.gemini.embeddings import gemini_to_openai_embeddings, openai_to_gemini_embeddings

pytestmark = pytest.mark.unit


def test_an_openai_body_becomes_one_batch_request_per_input() -> None:
    body = {"model": "x", "input": ["a", "b c"], "dimensions": 2}
    assert msgspec.json.decode(openai_to_gemini_embeddings(body, "gemini-embedding-001")) == {
        "requests": [
            {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "a"}]},
             "outputDimensionality": 2},
            {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "b c"}]},
             "outputDimensionality": 2},
        ]}
    single = msgspec.json.decode(openai_to_gemini_embeddings({"input": "a"}, "m"))
    assert single == {"requests": [{"model": "models/m", "content": {"parts": [{"text": "a"}]}}]}


def test_token_ids_cannot_go_to_gemini() -> None:
    with pytest.raises(ProviderHTTPError, match="text only") as refused:
        openai_to_gemini_embeddings({"input": [1, 2]}, "m")
    assert refused.value.status == 400


def test_gemini_vectors_come_back_in_the_encoding_asked_for() -> None:
    answer = b'{"embeddings": [{"values": [0.5, -1.0]}, {"values": [2.0, 0.25]}]}'
    floats = msgspec.json.decode(gemini_to_openai_embeddings(answer, {}, "m"))
    assert floats == {"object": "list", "model": "m", "data": [
        {"index": 0, "embedding": [0.5, -1.0], "object": "embedding"},
        {"index": 1, "embedding": [2.0, 0.25], "object": "embedding"}]}
    packed = msgspec.json.decode(
        gemini_to_openai_embeddings(answer, {"encoding_format": "base64"}, "m"))
    raw = base64.b64decode(packed["data"][1]["embedding"])
    assert struct.unpack("<2f", raw) == (2.0, 0.25)
    with pytest.raises(ProviderProtocolError):
        gemini_to_openai_embeddings(b'{"embeddings": "no"}', {}, "m")


def test_base64_is_little_endian_float32_and_usage_is_optional() -> None:
    assert encode_vector([1.0], "base64") == base64.b64encode(struct.pack("<f", 1.0)).decode()
    assert encode_vector([1.0], "float") == [1.0]
    with_usage = msgspec.json.decode(embeddings_reply("m", [[1.0]], "float", 3))
    assert with_usage["usage"] == {"prompt_tokens": 3, "total_tokens": 3}
    assert "usage" not in msgspec.json.decode(embeddings_reply("m", [[1.0]], "float", None))
