"""Fake upstream providers served over real HTTP on loopback, in a thread of their own.

``FakeUpstream`` speaks OpenAI's chat-completions dialect at ``/v1/chat/completions``. What it
does is chosen by the upstream model name, so a gateway config can point catalog models at
failure modes without per-test scripting:

=================  ===========================================================================
model              behaviour
=================  ===========================================================================
(anything else)    answers ``fake: <last user text>``, streamed word by word when asked
``error-<code>``   answers that HTTP status (``error-429`` adds ``Retry-After: 1``)
``context-400``    a 400 saying the context length was exceeded
``stall``          waits 30 s before answering anything
``stall-stream``   sends headers, then waits 30 s before the first chunk
``reset``          drops the connection without answering
``cut``            streams two content chunks, then drops the connection
``malformed``      streams one good chunk, then a chunk that is not JSON
``slow``           streams a word every 50 ms (``slow-<ms>`` for another pace)
``big``            one 200 KB content delta
``tools``          answers with two parallel tool calls
``reasoning``      streams ``reasoning_content`` before the text
=================  ===========================================================================

The bodies and SSE frames come from ``bench/fake_wire.py``, which the bench's fake upstream
builds its replies with too. Every request is recorded (``requests``: path, headers, JSON body),
hits are counted per model (``hits``), and a stream the client abandoned mid-way is counted in
``cancelled``.
``handlers`` lets a test replace the behaviour of one model with its own aiohttp handler.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from bench import fake_wire as wire

Handler = Callable[[web.Request, dict[str, Any]], Awaitable[web.StreamResponse]]


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


def _last_user_text(body: dict[str, Any]) -> str:
    for message in reversed(body.get("messages", [])):
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):
                return " ".join(p.get("text", "") for p in content if p.get("type") == "text")
    return ""


sse = wire.sse_data


@dataclass
class FakeUpstream:
    """An OpenAI-dialect upstream on 127.0.0.1; ``url`` is its base URL (``…/v1``)."""

    requests: list[Recorded] = field(default_factory=list)
    hits: Counter[str] = field(default_factory=Counter)
    cancelled: Counter[str] = field(default_factory=Counter)
    handlers: dict[str, Handler] = field(default_factory=dict)
    port: int = 0
    _loop: asyncio.AbstractEventLoop | None = None
    _runner: web.AppRunner | None = None
    _thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FakeUpstream:
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            loop.run_until_complete(self._start())
            ready.set()
            loop.run_forever()

        self._thread = threading.Thread(target=run, daemon=True, name="fake-upstream")
        self._thread.start()
        ready.wait(10)
        return self

    async def _start(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        self.add_routes(app)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    def add_routes(self, app: web.Application) -> None:
        """Subclasses for other dialects add their own routes here."""
        app.router.add_post("/v1/chat/completions", self._chat)

    def stop(self) -> None:
        if self._loop is None:
            return
        future = asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop)
        try:
            future.result(5)
        except TimeoutError:
            future.cancel()
        self._loop.call_soon_threadsafe(self._loop.stop)

    async def _shutdown(self) -> None:
        assert self._runner is not None
        # A handler still stalling on purpose must not hold the session up.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._runner.cleanup(), 2)
        current = asyncio.current_task()
        pending = [task for task in asyncio.all_tasks() if task is not current]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    def reset(self) -> None:
        self.requests.clear()
        self.hits.clear()
        self.cancelled.clear()
        self.handlers.clear()

    def bodies(self, model: str | None = None) -> list[dict[str, Any]]:
        return [r.body for r in self.requests if model is None or r.body.get("model") == model]

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(0.02)
        return predicate()

    # --- OpenAI dialect ---

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        model = str(body.get("model", ""))
        self.requests.append(Recorded(request.path, dict(request.headers), body))
        self.hits[model] += 1
        if model in self.handlers:
            return await self.handlers[model](request, body)
        return await self.openai_behaviour(request, body, model)

    async def openai_behaviour(
        self, request: web.Request, body: dict[str, Any], model: str
    ) -> web.StreamResponse:
        if model.startswith("error-"):
            status = int(model.split("-")[1])
            headers = {"Retry-After": "1"} if status == 429 else {}
            return web.json_response(
                {"error": {"message": f"fake upstream error {status}", "type": "fake"}},
                status=status,
                headers=headers,
            )
        if model == "context-400":
            return web.json_response(
                {
                    "error": {
                        "message": "This model's maximum context length is 8192 tokens.",
                        "type": "invalid_request_error",
                        "code": "context_length_exceeded",
                    }
                },
                status=400,
            )
        if model == "stall":
            await asyncio.sleep(30)
        if model == "reset":
            assert request.transport is not None
            request.transport.abort()
            return web.Response()
        text = f"fake: {_last_user_text(body)}"
        if model == "big":
            text = "x" * 200_000
        usage = {
            "prompt_tokens": 10,
            "completion_tokens": len(text.split()),
            "total_tokens": 10 + len(text.split()),
            "prompt_tokens_details": {"cached_tokens": 4},
            "completion_tokens_details": {"reasoning_tokens": 0},
        }
        if not body.get("stream"):
            message: dict[str, Any] = {"role": "assistant", "content": text}
            finish = "stop"
            if model == "tools":
                message = {"role": "assistant", "content": None, "tool_calls": self._tool_calls()}
                finish = "tool_calls"
            if model == "reasoning":
                message["reasoning_content"] = "thinking it over"
            completion = wire.openai_completion(
                model + "-2025", message, usage, finish=finish, created=int(time.time())
            )
            return web.json_response(completion)
        return await self._stream(request, body, model, text, usage)

    @staticmethod
    def _tool_calls() -> list[dict[str, Any]]:
        return [
            {
                "id": "call_a",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
            },
            {
                "id": "call_b",
                "type": "function",
                "function": {"name": "get_time", "arguments": '{"tz": "CET"}'},
            },
        ]

    async def _stream(
        self,
        request: web.Request,
        body: dict[str, Any],
        model: str,
        text: str,
        usage: dict[str, Any],
    ) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        deltas, words, finish = self._stream_deltas(model, text)
        include_usage = (body.get("stream_options") or {}).get("include_usage")
        frames = wire.openai_stream(
            model + "-2025", deltas, usage if include_usage else None, finish=finish
        )
        first_word = len(deltas) - words
        delay = 0.0
        if model.startswith("slow"):
            delay = int(model.split("-")[1]) / 1000 if "-" in model else 0.05
        try:
            if model == "stall-stream":
                await asyncio.sleep(30)
            for number, frame in enumerate(frames):
                word = number - first_word
                if 0 <= word < words:
                    if model == "cut" and word == 2:
                        assert request.transport is not None
                        request.transport.abort()
                        return response
                    if model == "malformed" and word == 1:
                        await response.write(b"data: {not json\n\n")
                        continue
                    if delay:
                        await asyncio.sleep(delay)
                await response.write(frame)
        except (ConnectionResetError, asyncio.CancelledError):
            self.cancelled[model] += 1
            raise
        return response

    def _stream_deltas(self, model: str, text: str) -> tuple[list[dict[str, Any]], int, str]:
        """The deltas of a stream, how many of them (at the end) are the text's words, and the
        finish reason."""
        deltas: list[dict[str, Any]] = [{"role": "assistant", "content": ""}]
        if model == "tools":
            for index, call in enumerate(self._tool_calls()):
                first = {
                    "index": index,
                    "id": call["id"],
                    "type": "function",
                    "function": {"name": call["function"]["name"], "arguments": ""},
                }
                deltas.append({"tool_calls": [first]})
                arguments = call["function"]["arguments"]
                for part in (arguments[:5], arguments[5:]):
                    deltas.append(
                        {"tool_calls": [{"index": index, "function": {"arguments": part}}]}
                    )
            return deltas, 0, "tool_calls"
        if model == "reasoning":
            deltas.extend({"reasoning_content": word} for word in ("thinking ", "it ", "over"))
        words = [text] if model == "big" else [w + " " for w in text.split(" ")]
        words[-1] = words[-1].rstrip(" ")
        deltas.extend({"content": word} for word in words)
        return deltas, len(words), "stop"
