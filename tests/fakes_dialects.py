"""Fake Anthropic and Gemini upstreams over loopback HTTP, and a gateway in front of all three
dialects.

``DialectUpstream`` is a ``FakeUpstream`` (so it still speaks OpenAI at ``/v1/chat/completions``)
that also answers Anthropic's ``/v1/messages`` and Gemini's
``/v1beta/models/{model}:generateContent`` / ``:streamGenerateContent?alt=sse``. As with the
OpenAI fake, the upstream model name picks the behaviour:

=================  ===========================================================================
model              behaviour (both dialects)
=================  ===========================================================================
(anything else)    answers ``fake: <last user text>``, streamed word by word when asked
``tools``          calls get_weather(city=Paris) and get_time(tz=CET) in parallel; once the
                   last user turn holds tool results, answers ``results: <their texts>``
``thinking``       a thinking block (signed) before the text
``error-<code>``   answers that HTTP status in the dialect's error shape
``overloaded``     (Anthropic, streamed) one text delta, then an ``overloaded_error`` event
``truncated``      (streamed) the body ends cleanly before the stream's end (no
                   ``message_stop``; no Gemini finish reason)
=================  ===========================================================================

Usage always reports cache reads (Anthropic also cache writes), so tests can check they survive.
Gemini's function calls carry ``GEMINI_SIGNATURE``, which has the ``+``, ``/`` and ``=`` of real
base64 signatures.

The fixtures ``dialects`` and ``dialect_gateway`` are session-scoped: modules import them.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp import web

from bench import fake_wire as wire
from tests.conftest import GatewayProcess, fake_config
from tests.fakes import FakeUpstream, Recorded

ANTHROPIC_SIGNATURE = "EqQBCkYIARgCKkBzaWduYXR1cmUtb2YtYW50aHJvcGlj"
GEMINI_SIGNATURE = "CiQB+/z9Q2lnbmF0dXJlLW9mLWdlbWluaQ=="
ANTHROPIC_USAGE = {
    "input_tokens": 10,
    "cache_read_input_tokens": 20,
    "cache_creation_input_tokens": 5,
}


def _last_user_text(messages: list[dict[str, Any]]) -> str:
    for message in reversed(messages):
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            return " ".join(b.get("text", "") for b in content if b.get("type") == "text")
    return ""


def _tool_results(content: Any) -> list[str]:
    if not isinstance(content, list):
        return []
    texts = []
    for block in content:
        if block.get("type") != "tool_result":
            continue
        inner = block.get("content")
        text = inner if isinstance(inner, str) else "".join(b.get("text", "") for b in inner or [])
        texts.append(("ERROR " if block.get("is_error") else "") + text)
    return texts


class DialectUpstream(FakeUpstream):
    """OpenAI, Anthropic and Gemini fakes on one loopback port."""

    ANTHROPIC_SIGNATURE = ANTHROPIC_SIGNATURE
    GEMINI_SIGNATURE = GEMINI_SIGNATURE

    def add_routes(self, app: web.Application) -> None:
        super().add_routes(app)
        app.router.add_post("/v1/messages", self._messages)
        app.router.add_post("/v1/messages/count_tokens", self._count_tokens)
        app.router.add_post("/v1beta/models/{target}", self._gemini)

    async def openai_behaviour(
        self, request: web.Request, body: dict[str, Any], model: str
    ) -> web.StreamResponse:
        """As the OpenAI fake, except that ``tools`` answers its tool results in text."""
        messages = body.get("messages", [])
        results = []
        for message in reversed(messages):
            if message.get("role") != "tool":
                break
            results.insert(0, str(message.get("content")))
        if model == "tools" and results:
            text = "results: " + " | ".join(results)
            if body.get("stream"):
                usage = {
                    "prompt_tokens": 10,
                    "completion_tokens": 3,
                    "total_tokens": 13,
                    "prompt_tokens_details": {"cached_tokens": 4},
                }
                return await self._stream(request, body, "tools-results", text, usage)
            message = {"role": "assistant", "content": text}
            usage = {"prompt_tokens": 10, "completion_tokens": 3, "total_tokens": 13}
            return web.json_response(wire.openai_completion("tools-2025", message, usage))
        return await super().openai_behaviour(request, body, model)

    # --- Anthropic ---

    async def _messages(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        model = str(body.get("model", ""))
        self.requests.append(Recorded(request.path, dict(request.headers), body))
        self.hits[model] += 1
        if model.startswith("error-"):
            status = int(model.split("-")[1])
            kind = {429: "rate_limit_error", 400: "invalid_request_error"}.get(status, "api_error")
            error = {"type": kind, "message": f"fake anthropic error {status}"}
            return web.json_response({"type": "error", "error": error}, status=status)
        blocks = self._anthropic_blocks(model, body)
        stop = "tool_use" if any(b["type"] == "tool_use" for b in blocks) else "end_turn"
        words = sum(len(b.get("text", "").split()) for b in blocks) or 1
        model_version = model + "-20250929"
        if not body.get("stream"):
            usage = {**ANTHROPIC_USAGE, "output_tokens": words}
            message = wire.anthropic_message(model_version, blocks, usage, stop=stop)
            return web.json_response(message)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        usage = {**ANTHROPIC_USAGE, "output_tokens": 1}
        await response.write(wire.anthropic_start(model_version, usage))
        for index, block in enumerate(blocks):
            await self._anthropic_block(response, index, block, model)
            if model == "overloaded":
                error = {"type": "overloaded_error", "message": "Overloaded"}
                await response.write(wire.sse_event("error", {"type": "error", "error": error}))
                return response
            if model == "truncated":
                return response  # a clean end of the body, but no message_stop
        for event in wire.anthropic_end(stop, words):
            await response.write(event)
        return response

    async def _count_tokens(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append(Recorded(request.path, dict(request.headers), body))
        if str(body.get("model", "")).startswith("error-"):
            error = {"type": "api_error", "message": "fake count error"}
            return web.json_response({"type": "error", "error": error}, status=500)
        return web.json_response({"input_tokens": 4242})

    @staticmethod
    def _anthropic_blocks(model: str, body: dict[str, Any]) -> list[dict[str, Any]]:
        messages = body.get("messages", [])
        results = _tool_results(messages[-1].get("content")) if messages else []
        if model == "tools" and not results:
            return [
                {
                    "type": "tool_use",
                    "id": "toolu_a",
                    "name": "get_weather",
                    "input": {"city": "Paris"},
                },
                {"type": "tool_use", "id": "toolu_b", "name": "get_time", "input": {"tz": "CET"}},
            ]
        text = (
            f"results: {' | '.join(results)}" if results else f"fake: {_last_user_text(messages)}"
        )
        blocks: list[dict[str, Any]] = []
        if model == "thinking":
            blocks.append(
                {"type": "thinking", "thinking": "let me think", "signature": ANTHROPIC_SIGNATURE}
            )
        blocks.append({"type": "text", "text": text})
        return blocks

    @staticmethod
    async def _anthropic_block(
        response: web.StreamResponse, index: int, block: dict[str, Any], model: str
    ) -> None:
        kind = block["type"]
        empty = {
            "text": {"type": "text", "text": ""},
            "thinking": {"type": "thinking", "thinking": "", "signature": ""},
            "tool_use": {**block, "input": {}},
        }[kind]
        await response.write(wire.anthropic_block_start(index, empty))
        if index == 0:
            await response.write(wire.sse_event("ping", {"type": "ping"}))
        deltas: list[dict[str, Any]] = []
        if kind == "text":
            words = block["text"].split(" ")
            deltas = [
                {"type": "text_delta", "text": w if i == 0 else " " + w}
                for i, w in enumerate(words)
            ]
        elif kind == "thinking":
            deltas = [
                {"type": "thinking_delta", "thinking": block["thinking"]},
                {"type": "signature_delta", "signature": block["signature"]},
            ]
        else:
            arguments = json.dumps(block["input"])
            deltas = [
                {"type": "input_json_delta", "partial_json": ""},
                {"type": "input_json_delta", "partial_json": arguments[:6]},
                {"type": "input_json_delta", "partial_json": arguments[6:]},
            ]
        for delta in deltas:
            await response.write(wire.anthropic_block_delta(index, delta))
        await response.write(wire.anthropic_block_stop(index))

    # --- Gemini ---

    async def _gemini(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        model, _, action = request.match_info["target"].partition(":")
        self.requests.append(Recorded(request.path_qs, dict(request.headers), body))
        self.hits[model] += 1
        if model.startswith("error-"):
            status = int(model.split("-")[1])
            error = {"code": status, "message": f"fake gemini error {status}", "status": "ERR"}
            return web.json_response({"error": error}, status=status)
        parts = self._gemini_parts(model, body)
        text_words = sum(len(p.get("text", "").split()) for p in parts if not p.get("thought"))
        usage = {
            "promptTokenCount": 30,
            "candidatesTokenCount": text_words,
            "totalTokenCount": 30 + text_words,
            "cachedContentTokenCount": 12,
        }
        if model == "thinking":
            usage["thoughtsTokenCount"] = 7
        finish = "STOP"
        if action == "generateContent":
            candidate = {"content": {"role": "model", "parts": parts}, "finishReason": finish}
            return web.json_response(
                {
                    "candidates": [candidate],
                    "usageMetadata": usage,
                    "modelVersion": model + "-001",
                    "responseId": "gem-fake",
                }
            )
        assert request.query.get("alt") == "sse", "streams must ask for alt=sse"
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        pieces: list[dict[str, Any]] = []
        for part in parts:
            if "text" in part and not part.get("thought"):
                words = part["text"].split(" ")
                pieces.extend({"text": w if i == 0 else " " + w} for i, w in enumerate(words))
            else:
                pieces.append(part)
        for number, piece in enumerate(pieces):
            chunk: dict[str, Any] = {
                "candidates": [{"content": {"role": "model", "parts": [piece]}}],
                "modelVersion": model + "-001",
                "responseId": "gem-fake",
                "usageMetadata": {"promptTokenCount": 30},
            }
            if number == len(pieces) - 1:
                if model == "truncated":
                    break  # ends cleanly, but without the chunk holding the finish reason
                chunk["candidates"][0]["finishReason"] = finish
                chunk["usageMetadata"] = usage
            await response.write(b"data: " + json.dumps(chunk).encode() + b"\r\n\r\n")
            await asyncio.sleep(0)
        return response

    @staticmethod
    def _gemini_parts(model: str, body: dict[str, Any]) -> list[dict[str, Any]]:
        contents = body.get("contents", [])
        last = contents[-1]["parts"] if contents else []
        responses = [p["functionResponse"] for p in last if "functionResponse" in p]
        if model == "tools" and not responses:
            return [
                {
                    "functionCall": {"name": "get_weather", "args": {"city": "Paris"}},
                    "thoughtSignature": GEMINI_SIGNATURE,
                },
                {"functionCall": {"name": "get_time", "args": {"tz": "CET"}}},
            ]
        if responses:
            texts = [f"{r['name']}={json.dumps(r['response'], sort_keys=True)}" for r in responses]
            text = "results: " + " | ".join(texts)
        else:
            text = "fake: " + " ".join(p.get("text", "") for p in last if "text" in p)
        parts: list[dict[str, Any]] = []
        if model == "thinking":
            parts.append({"text": "pondering", "thought": True})
        parts.append({"text": text})
        return parts


DIALECT_PROVIDERS = """
[providers.fakeanthropic]
kind = "anthropic"
base_url = "{origin}"
api_key = "sk-ant-fake-upstream-secret"
allow_any_model = true
default_input_price = 0.0
default_output_price = 0.0

[providers.fakegemini]
kind = "gemini"
base_url = "{origin}"
api_key = "gemini-fake-upstream-secret"
allow_any_model = true
default_input_price = 0.0
default_output_price = 0.0
"""


@pytest.fixture(scope="session")
def dialects() -> Iterator[DialectUpstream]:
    fake = DialectUpstream().start()
    yield fake
    fake.stop()


@pytest.fixture(scope="session")
def dialect_gateway(
    tmp_path_factory: pytest.TempPathFactory, dialects: DialectUpstream
) -> Iterator[GatewayProcess]:
    """A gateway whose providers ``fake`` (OpenAI), ``fakeanthropic`` and ``fakegemini`` all
    point at ``dialects``; any ``<provider>/<upstream model>`` name is servable."""
    tmp = tmp_path_factory.mktemp("dialect-gateway")
    extra = DIALECT_PROVIDERS.format(origin=dialects.origin)
    process = GatewayProcess(tmp, fake_config(tmp, dialects.url, extra=extra)).start()
    yield process
    process.stop()


@pytest.fixture
def fakes(dialects: DialectUpstream) -> Iterator[DialectUpstream]:
    """The session's dialect fakes, records cleared for this test."""
    dialects.reset()
    yield dialects
    dialects.reset()
