"""The mock provider's operations beside chat: deterministic embeddings, rerank, moderation
and images, so a fresh gateway serves every mode with no key and no network.

* embeddings: each input hashed into a unit vector (``dimensions`` long, 256 by default): the
  same text always gets the same vector, different texts different ones.
* rerank: documents scored by the share of the query's words they contain.
* images: small PNGs drawn from the prompt (``adapters.mock.images``).
* moderation: an input is flagged for ``violence`` when it says "kill", "attack" or "bomb",
  for ``harassment`` when it says "idiot" or "stupid"; nothing else is flagged.

Token counts are the mock's own (about four characters a token; a token array its length).
"""

from __future__ import annotations

import hashlib
import math
import random
import re
import struct
from collections.abc import Callable, Mapping
from typing import Any

import msgspec

from adapters.embeddings import embeddings_reply, inputs
from adapters.mock.images import mock_images

DEFAULT_DIMENSIONS = 256
_WORD = re.compile(r"\w+")
_FLAGS = {
    "violence": ("kill", "attack", "bomb"),
    "harassment": ("idiot", "stupid"),
}
CATEGORIES = (
    "harassment", "harassment/threatening", "hate", "hate/threatening", "illicit",
    "illicit/violent", "self-harm", "self-harm/instructions", "self-harm/intent", "sexual",
    "sexual/minors", "violence", "violence/graphic",
)
_encode = msgspec.json.encode


def _tokens(text: str) -> int:
    return max(1, (len(text) + 3) // 4) if text else 0


def hashed_vector(text: str, dimensions: int) -> list[float]:
    """A unit vector of ``dimensions`` floats drawn from the text's hash."""
    values: list[float] = []
    block = 0
    while len(values) < dimensions:
        digest = hashlib.blake2b(f"{block}:{text}".encode(), digest_size=64).digest()
        values.extend(v / 2**31 - 1.0 for v in struct.unpack("<16I", digest))
        block += 1
    values = values[:dimensions]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return [round(v / norm, 6) for v in values]


def embed(model: str, body: Mapping[str, Any]) -> bytes:
    items = inputs(body.get("input", ""))
    dimensions = body.get("dimensions") or DEFAULT_DIMENSIONS
    texts = [item if isinstance(item, str) else " ".join(map(str, item)) for item in items]
    tokens = sum(_tokens(i) if isinstance(i, str) else len(i) for i in items)
    vectors = [hashed_vector(text, int(dimensions)) for text in texts]
    return embeddings_reply(model, vectors, str(body.get("encoding_format", "float")), tokens)


def _text(document: Any) -> str:
    return document.get("text", "") if isinstance(document, dict) else str(document)


def rerank(model: str, body: Mapping[str, Any]) -> bytes:
    query = set(_WORD.findall(str(body.get("query", "")).lower()))
    documents = [_text(d) for d in body.get("documents", [])]
    scored = []
    for index, text in enumerate(documents):
        words = set(_WORD.findall(text.lower()))
        score = len(query & words) / len(query) if query else 0.0
        scored.append((round(score, 6), -index, index, text))
    scored.sort(reverse=True)
    top_n = body.get("top_n") or len(scored)
    results = []
    for score, _, index, text in scored[:top_n]:
        result: dict[str, Any] = {"index": index, "relevance_score": score}
        if body.get("return_documents"):
            result["document"] = {"text": text}
        results.append(result)
    tokens = _tokens(str(body.get("query", ""))) + sum(_tokens(t) for t in documents)
    return _encode({
        "id": f"rerank-{random.getrandbits(64):016x}", "model": model, "results": results,
        "usage": {"total_tokens": tokens},
    })


def _moderation_texts(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [item if isinstance(item, str) else _text(item) for item in value]
    return []


def moderate(model: str, body: Mapping[str, Any]) -> bytes:
    results = []
    texts = _moderation_texts(body.get("input", ""))
    for text in texts:
        words = set(_WORD.findall(text.lower()))
        flagged = {c: bool(words & set(_FLAGS.get(c, ()))) for c in CATEGORIES}
        results.append({
            "flagged": any(flagged.values()),
            "categories": flagged,
            "category_scores": {c: 0.9 if hit else 0.0001 for c, hit in flagged.items()},
            "category_applied_input_types": {c: ["text"] for c in CATEGORIES},
        })
    return _encode({
        "id": f"modr-{random.getrandbits(64):016x}", "model": model, "results": results,
        "usage": {"prompt_tokens": sum(map(_tokens, texts)),
                  "total_tokens": sum(map(_tokens, texts))},
    })


OPERATIONS: dict[str, Callable[[str, Mapping[str, Any]], bytes]] = {
    "embeddings": embed,
    "rerank": rerank,
    "moderation": moderate,
    "images": mock_images,
}
