"""The operations beside chat: OpenAI's ``POST /v1/embeddings`` and ``POST /v1/moderations``,
the Cohere/Jina ``POST /v1/rerank`` that vLLM serves, and Gemini's ``:batchEmbedContents``.

Embeddings are deterministic: input ``i`` of text ``t`` is ``[len(t), i, 0.5, …]``, cut or
padded to ``dimensions`` (8 unless asked), so a test can tell inputs apart and see the
dimensions it asked for; ``encoding_format: base64`` is packed as OpenAI does (little-endian
float32). Token counts are words (a token array: its length). ``error<N>`` answers that status;
``nousage`` leaves ``usage`` out (OpenAI's moderations never have one). Rerank scores a document
by the share of the query's words in it; moderation flags ``violence`` for "kill".
"""

from __future__ import annotations

import base64
import struct
from typing import Any

from bench.fake_upstream import gemini
from bench.fake_upstream.scenario import Scenario
from bench.fake_upstream.wire import Reply, Request, json_reply

DEFAULT_DIMENSIONS = 8


def fake_vector(text: str, index: int, dimensions: int) -> list[float]:
    """The vector the fake answers for input ``index`` of ``text``."""
    return ([float(len(text)), float(index)] + [0.5] * dimensions)[:dimensions]


def _tokens(item: Any) -> int:
    return len(item) if isinstance(item, list) else len(str(item).split())


def _items(value: Any) -> list[Any]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value and all(isinstance(v, int) for v in value):
        return [value]
    return list(value or [])


def _error(status: int) -> Reply:
    return json_reply(status, {"error": {"message": f"fake error {status}", "type": "fake"}})


def embeddings(request: Request, s: Scenario) -> Reply:
    """``/v1/embeddings``."""
    if s.error:
        return _error(s.error)
    body = request.json()
    items = _items(body.get("input"))
    dimensions = int(body.get("dimensions") or DEFAULT_DIMENSIONS)
    data = []
    for index, item in enumerate(items):
        text = item if isinstance(item, str) else "x" * len(item)
        vector: Any = fake_vector(text, index, dimensions)
        if body.get("encoding_format") == "base64":
            vector = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
        data.append({"object": "embedding", "index": index, "embedding": vector})
    answer: dict[str, Any] = {"object": "list", "data": data, "model": body["model"]}
    if not s.has("nousage"):
        tokens = sum(_tokens(item) for item in items)
        answer["usage"] = {"prompt_tokens": tokens, "total_tokens": tokens}
    return json_reply(200, answer)


def rerank(request: Request, s: Scenario) -> Reply:
    """``/v1/rerank``."""
    if s.error:
        return _error(s.error)
    body = request.json()
    documents = [d if isinstance(d, str) else d.get("text", "") for d in body["documents"]]
    query = set(str(body.get("query", "")).lower().split())
    scores = [len(query & set(d.lower().split())) / max(len(query), 1) for d in documents]
    order = sorted(range(len(documents)), key=lambda i: -scores[i])
    results = []
    for index in order[: body.get("top_n") or len(order)]:
        result: dict[str, Any] = {"index": index, "relevance_score": scores[index]}
        if body.get("return_documents"):
            result["document"] = {"text": documents[index]}
        results.append(result)
    answer: dict[str, Any] = {"id": "rerank-fake", "model": body["model"], "results": results}
    if not s.has("nousage"):
        answer["usage"] = {"total_tokens": _tokens(body.get("query", ""))
                           + sum(map(_tokens, documents))}
    return json_reply(200, answer)


def moderations(request: Request, s: Scenario) -> Reply:
    """``/v1/moderations`` (no usage, as OpenAI's)."""
    if s.error:
        return _error(s.error)
    body = request.json()
    results = [{
        "flagged": "kill" in str(text),
        "categories": {"violence": "kill" in str(text), "hate": False},
        "category_scores": {"violence": 0.9 if "kill" in str(text) else 0.01, "hate": 0.0},
    } for text in _items(body.get("input"))]
    return json_reply(200, {"id": "modr-fake", "model": body.get("model", ""),
                            "results": results})


def gemini_embeddings(request: Request, s: Scenario) -> Reply:
    """Gemini's ``:batchEmbedContents`` (floats only, no usage)."""
    if s.error:
        return gemini.error(s.error)
    vectors = []
    for index, one in enumerate(request.json()["requests"]):
        text = " ".join(part["text"] for part in one["content"]["parts"])
        size = one.get("outputDimensionality") or DEFAULT_DIMENSIONS
        vectors.append({"values": fake_vector(text, index, size)})
    return json_reply(200, {"embeddings": vectors})


def gemini_models(request: Request, s: Scenario) -> Reply:
    """Everything under ``/v1beta/models/``: embeddings here, generation in ``gemini``."""
    if request.path.endswith(":batchEmbedContents"):
        return gemini_embeddings(request, s)
    return gemini.answer(request, s)
