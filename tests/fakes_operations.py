"""Fake upstreams of the operations beside chat, over real HTTP on loopback: OpenAI's
``/v1/embeddings`` and ``/v1/moderations``, the Cohere/Jina ``/v1/rerank`` that vLLM serves,
and Gemini's ``batchEmbedContents``, on one port (``OperationsUpstream``; chat completions are
there too, from ``FakeUpstream``).

Behaviour by upstream model name, as in tests/fakes.py: ``error-<code>`` answers that status;
``no-usage`` leaves usage out of the answer. Embeddings are deterministic: input ``i`` of text
``t`` is ``[len(t), i, 0.5, …]`` cut or padded to ``dimensions`` (8 unless asked), so a test
can tell inputs apart and see the dimensions asked for; ``encoding_format: base64`` is packed
as OpenAI does (little-endian float32). Token counts are words (a token array: its length).
"""

from __future__ import annotations

import base64
import struct
import time
from pathlib import Path
from typing import Any

from aiohttp import web

from tests.conftest import GatewayProcess, fake_config
from tests.fakes import FakeUpstream, Recorded

DEFAULT_DIMENSIONS = 8


def fake_vector(text: str, index: int, dimensions: int) -> list[float]:
    base = [float(len(text)), float(index)]
    return (base + [0.5] * dimensions)[:dimensions]


def _tokens(item: Any) -> int:
    return len(item) if isinstance(item, list) else len(str(item).split())


def _items(value: Any) -> list[Any]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value and all(isinstance(v, int) for v in value):
        return [value]
    return list(value or [])


class OperationsUpstream(FakeUpstream):
    """OpenAI embeddings, rerank, moderations and Gemini embeddings (see the module
    docstring), recorded in ``requests`` and counted in ``hits`` like the chat fakes."""

    def add_routes(self, app: web.Application) -> None:
        super().add_routes(app)
        app.router.add_post("/v1/embeddings", self._embeddings)
        app.router.add_post("/v1/rerank", self._rerank)
        app.router.add_post("/v1/moderations", self._moderations)
        app.router.add_post("/v1beta/models/{target}", self._gemini)

    async def _take(self, request: web.Request) -> tuple[dict[str, Any], web.Response | None]:
        body = await request.json()
        model = str(body.get("model", ""))
        self.requests.append(Recorded(request.path, dict(request.headers), body))
        self.hits[model] += 1
        if model.startswith("error-"):
            status = int(model.split("-")[1])
            error = {"message": f"fake error {status}", "type": "server_error"}
            return body, web.json_response({"error": error}, status=status)
        return body, None

    async def _embeddings(self, request: web.Request) -> web.Response:
        body, refused = await self._take(request)
        if refused is not None:
            return refused
        items = _items(body.get("input"))
        dimensions = int(body.get("dimensions") or DEFAULT_DIMENSIONS)
        data = []
        for index, item in enumerate(items):
            vector = fake_vector(item if isinstance(item, str) else "x" * len(item), index,
                                 dimensions)
            embedding: Any = vector
            if body.get("encoding_format") == "base64":
                embedding = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
            data.append({"object": "embedding", "index": index, "embedding": embedding})
        answer: dict[str, Any] = {"object": "list", "data": data, "model": body["model"]}
        if body["model"] != "no-usage":
            tokens = sum(_tokens(item) for item in items)
            answer["usage"] = {"prompt_tokens": tokens, "total_tokens": tokens}
        return web.json_response(answer)

    async def _rerank(self, request: web.Request) -> web.Response:
        body, refused = await self._take(request)
        if refused is not None:
            return refused
        documents = [d if isinstance(d, str) else d.get("text", "")
                     for d in body.get("documents", [])]
        query = set(str(body.get("query", "")).lower().split())
        scores = [len(query & set(d.lower().split())) / max(len(query), 1) for d in documents]
        order = sorted(range(len(documents)), key=lambda i: -scores[i])
        results = []
        for index in order[: body.get("top_n") or len(order)]:
            result: dict[str, Any] = {"index": index, "relevance_score": scores[index]}
            if body.get("return_documents"):
                result["document"] = {"text": documents[index]}
            results.append(result)
        answer: dict[str, Any] = {"id": "rerank-fake", "model": body["model"],
                                  "results": results}
        if body["model"] != "no-usage":
            tokens = _tokens(body.get("query", "")) + sum(map(_tokens, documents))
            answer["usage"] = {"total_tokens": tokens}
        return web.json_response(answer)

    async def _moderations(self, request: web.Request) -> web.Response:
        body, refused = await self._take(request)
        if refused is not None:
            return refused
        texts = _items(body.get("input"))
        results = [{
            "flagged": "kill" in str(text),
            "categories": {"violence": "kill" in str(text), "hate": False},
            "category_scores": {"violence": 0.9 if "kill" in str(text) else 0.01, "hate": 0.0},
        } for text in texts]
        return web.json_response({"id": "modr-fake", "model": body.get("model", ""),
                                  "results": results})

    async def _gemini(self, request: web.Request) -> web.Response:
        body = await request.json()
        model, _, action = request.match_info["target"].partition(":")
        self.requests.append(Recorded(request.path_qs, dict(request.headers), body))
        self.hits[model] += 1
        if model.startswith("error-"):
            status = int(model.split("-")[1])
            error = {"code": status, "message": f"fake gemini error {status}", "status": "ERR"}
            return web.json_response({"error": error}, status=status)
        if action != "batchEmbedContents":
            return web.json_response({"error": {"code": 404, "message": action}}, status=404)
        embeddings = []
        for index, one in enumerate(body["requests"]):
            text = " ".join(part["text"] for part in one["content"]["parts"])
            size = one.get("outputDimensionality") or DEFAULT_DIMENSIONS
            embeddings.append({"values": fake_vector(text, index, size)})
        return web.json_response({"embeddings": embeddings})


OPERATION_PROVIDERS = """
[providers.fakegemini]
kind = "gemini"
base_url = "{origin}"
api_key = "gemini-fake-upstream-secret"
allow_any_model = true
default_input_price = 0.0
default_output_price = 0.0
"""


def operations_gateway(tmp: Path, fake: OperationsUpstream, models: str) -> GatewayProcess:
    """A started gateway whose ``fake`` (openai) and ``fakegemini`` providers point at
    ``fake``, with the catalog ``models``."""
    extra = OPERATION_PROVIDERS.format(origin=fake.origin)
    return GatewayProcess(tmp, fake_config(tmp, fake.url, extra=extra, models=models)).start()


def row_for(gateway: GatewayProcess, request_id: str) -> dict[str, Any]:
    """The usage row of ``request_id``, once the ledger has written it."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        rows = [r for r in gateway.usage_rows() if r["request_id"] == request_id]
        if rows:
            return rows[0]
        time.sleep(0.05)
    raise AssertionError(f"no usage row for {request_id}")
