"""Fake image upstreams over loopback HTTP: OpenAI's images API and MiniMax's image API.

``ImagesUpstream`` is a ``FakeUpstream`` (it still speaks chat completions) that also answers
``POST /v1/images/generations`` (OpenAI) and ``POST /v1/image_generation`` (MiniMax), and serves
the images it names by URL at ``GET /files/{name}``. The upstream model name picks the
behaviour:

=================  ===========================================================================
model              behaviour
=================  ===========================================================================
(anything else)    ``n`` small PNGs, as URLs or base64 as asked
``gpt-image-*``    (OpenAI) base64 only, and a 400 if ``response_format`` is sent, as OpenAI
``error-<code>``   (OpenAI) answers that HTTP status
``code-<n>``       (MiniMax) HTTP 200 with ``base_resp.status_code`` n
``filtered``       (MiniMax) success, but every image withheld (``success_count`` 0)
=================  ===========================================================================

MiniMax answers without ``Authorization: Bearer …`` get ``base_resp`` 1004, as MiniMax does.
"""

from __future__ import annotations

import base64
import time
from typing import Any

from aiohttp import web

from adapters.mock.images import gradient_png
from tests.fakes import FakeUpstream, Recorded


def fake_png(index: int) -> bytes:
    return gradient_png(f"fake-{index}".encode())


def fake_b64(index: int) -> str:
    return base64.b64encode(fake_png(index)).decode()


class ImagesUpstream(FakeUpstream):
    """OpenAI and MiniMax image fakes on one loopback port (see the module docstring)."""

    def add_routes(self, app: web.Application) -> None:
        super().add_routes(app)
        app.router.add_post("/v1/images/generations", self._openai_images)
        app.router.add_post("/v1/image_generation", self._minimax_images)
        app.router.add_get("/files/{name}", self._file)

    async def _record(self, request: web.Request) -> tuple[dict[str, Any], str]:
        body = await request.json()
        model = str(body.get("model", ""))
        self.requests.append(Recorded(request.path, dict(request.headers), body))
        self.hits[model] += 1
        return body, model

    async def _openai_images(self, request: web.Request) -> web.StreamResponse:
        body, model = await self._record(request)
        if model in self.handlers:
            return await self.handlers[model](request, body)
        if model.startswith("error-"):
            status = int(model.split("-")[1])
            error = {"message": f"fake images error {status}", "type": "fake"}
            return web.json_response({"error": error}, status=status)
        n = int(body.get("n", 1))
        if model.startswith("gpt-image"):
            if "response_format" in body:
                error = {"message": "Unknown parameter: 'response_format'.",
                         "type": "invalid_request_error", "param": "response_format"}
                return web.json_response({"error": error}, status=400)
            data = [{"b64_json": fake_b64(i)} for i in range(n)]
            usage = {"input_tokens": 10, "output_tokens": 100 * n, "total_tokens": 10 + 100 * n}
            return web.json_response({"created": int(time.time()), "data": data, "usage": usage,
                                      "output_format": "png"})
        if body.get("response_format") == "b64_json":
            data = [{"b64_json": fake_b64(i), "revised_prompt": body["prompt"]} for i in range(n)]
        else:
            data = [{"url": f"{self.origin}/files/{i}.png", "revised_prompt": body["prompt"]}
                    for i in range(n)]
        return web.json_response({"created": int(time.time()), "data": data})

    async def _minimax_images(self, request: web.Request) -> web.StreamResponse:
        body, model = await self._record(request)
        if model in self.handlers:
            return await self.handlers[model](request, body)
        if not request.headers.get("Authorization", "").startswith("Bearer "):
            return self._minimax(None, 1004, "login fail: Please carry the API secret key")
        if model.startswith("code-"):
            return self._minimax(None, int(model.split("-")[1]), "fake minimax failure")
        n = int(body.get("n", 1))
        if model == "filtered":
            return self._minimax({"image_urls": []}, 0, "success", failed=n)
        if body.get("response_format") == "base64":
            return self._minimax({"image_base64": [fake_b64(i) for i in range(n)]}, 0, "success")
        urls = [f"{self.origin}/files/{i}.jpeg" for i in range(n)]
        return self._minimax({"image_urls": urls}, 0, "success")

    @staticmethod
    def _minimax(data: dict[str, Any] | None, code: int, message: str,
                 failed: int = 0) -> web.Response:
        made = len(next(iter(data.values()))) if data else 0
        return web.json_response({
            "id": "03ff3cd0820949eb8a410056b5f21d38",
            "data": data,
            "metadata": {"success_count": str(made), "failed_count": str(failed)},
            "base_resp": {"status_code": code, "status_msg": message},
        })

    async def _file(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        index = int(name.split(".")[0]) if name.split(".")[0].isdigit() else 0
        return web.Response(body=fake_png(index), content_type="image/png")


IMAGE_PROVIDERS = """
[providers.fakeminimax]
kind = "minimax"
base_url = "{origin}"
api_key = "minimax-fake-upstream-secret"
"""
