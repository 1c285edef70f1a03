"""Image generation: OpenAI's ``POST /v1/images/generations``, MiniMax's
``POST /v1/image_generation``, and ``GET /files/{name}`` serving the images they name by URL.

Both answer ``n`` small PNGs, as URLs (on this fake) or base64 as asked. ``error<N>`` is the
dialect's error: OpenAI's HTTP status, MiniMax's HTTP 200 with ``base_resp.status_code`` N (as
MiniMax reports failures). ``filtered`` (MiniMax) succeeds with every image withheld. As the real
APIs do, ``gpt-image-*`` models answer base64 only (a 400 if ``response_format`` is sent), and
MiniMax refuses a request without ``Authorization: Bearer …`` with ``base_resp`` 1004.
"""

from __future__ import annotations

import base64
import time
from typing import Any

from adapters.mock.images import gradient_png
from bench.fake_upstream.scenario import Scenario
from bench.fake_upstream.wire import Probe, Reply, Request, body_reply, json_reply, origin

FILES = "/files/"


def fake_png(index: int) -> bytes:
    """The PNG the fake answers as image ``index``."""
    return gradient_png(f"fake-{index}".encode())


def fake_b64(index: int) -> str:
    """``fake_png(index)`` in base64."""
    return base64.b64encode(fake_png(index)).decode()


def openai(request: Request, s: Scenario) -> Reply:
    """``/v1/images/generations``."""
    if s.error:
        return json_reply(s.error, {"error": {"message": f"fake images error {s.error}",
                                              "type": "fake"}})
    body = request.json()
    n = int(body.get("n", 1))
    if request.probe.model.startswith("gpt-image"):
        if "response_format" in body:
            return json_reply(400, {"error": {
                "message": "Unknown parameter: 'response_format'.",
                "type": "invalid_request_error", "param": "response_format"}})
        usage = {"input_tokens": 10, "output_tokens": 100 * n, "total_tokens": 10 + 100 * n}
        return json_reply(200, {"created": int(time.time()), "output_format": "png",
                                "data": [{"b64_json": fake_b64(i)} for i in range(n)],
                                "usage": usage})
    if body.get("response_format") == "b64_json":
        data = [{"b64_json": fake_b64(i), "revised_prompt": body["prompt"]} for i in range(n)]
    else:
        data = [{"url": f"{origin(request)}{FILES}{i}.png", "revised_prompt": body["prompt"]}
                for i in range(n)]
    return json_reply(200, {"created": int(time.time()), "data": data})


def minimax(request: Request, s: Scenario) -> Reply:
    """``/v1/image_generation`` (MiniMax)."""
    if not request.headers.get(b"authorization", b"").startswith(b"Bearer "):
        return _minimax(None, 1004, "login fail: Please carry the API secret key")
    if s.error:
        return _minimax(None, s.error, "fake minimax failure")
    body = request.json()
    n = int(body.get("n", 1))
    if s.has("filtered"):
        return _minimax({"image_urls": []}, 0, "success", failed=n)
    if body.get("response_format") == "base64":
        return _minimax({"image_base64": [fake_b64(i) for i in range(n)]}, 0, "success")
    urls = [f"{origin(request)}{FILES}{i}.jpeg" for i in range(n)]
    return _minimax({"image_urls": urls}, 0, "success")


def _minimax(data: dict[str, Any] | None, code: int, message: str, failed: int = 0) -> Reply:
    made = len(next(iter(data.values()))) if data else 0
    return json_reply(200, {
        "id": "03ff3cd0820949eb8a410056b5f21d38",
        "data": data,
        "metadata": {"success_count": str(made), "failed_count": str(failed)},
        "base_resp": {"status_code": code, "status_msg": message},
    })


def file_probe(request: Request) -> Probe:
    """A file is asked for by path; it names no model."""
    return Probe()


def file(request: Request, s: Scenario) -> Reply:
    """``GET /files/{index}.{ext}``: that image's PNG."""
    stem = request.path[len(FILES):].split(".")[0]
    return body_reply(200, b"image/png", fake_png(int(stem) if stem.isdigit() else 0))
