"""The fake upstream's HTTP/1.1 server: a raw asyncio protocol, a few microseconds a request.

It parses requests itself (keep-alive, pipelining, ``Content-Length`` bodies), finds the route,
reads the scenario from the model name and plays the reply: whole answers in one write, streams
paced with ``loop.call_later`` timers rather than a coroutine per stream. Replies that do not
depend on the body (``tok<N>`` scenarios) are built once and cached.

An ``Observer`` (the tests' ``FakeUpstream``) may watch: it records each request and may hand
it to a handler of its own (``Exchange``). Without one (the bench) nothing is recorded.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import msgspec

from bench.fake_upstream import (
    anthropic_messages,
    gemini,
    images,
    openai_chat,
    openai_responses,
    operations,
    videos,
)
from bench.fake_upstream.scenario import Scenario, parse_scenario
from bench.fake_upstream.wire import LAST_CHUNK, SSE_HEAD, Probe, Reply, Request, chunk, json_reply

Answer = Callable[[Request, Scenario], Reply]


@dataclass(frozen=True, slots=True)
class Route:
    """A dialect's endpoint: ``answer`` builds the reply; ``probe`` reads the model and
    streaming from the request (from the JSON body unless told otherwise); ``hit`` counts the
    request in ``FakeUpstream.hits``."""

    answer: Answer
    probe: Callable[[Request], Probe] = Request.probe_body
    hit: bool = True


# Every endpoint the fake answers, by method and exact path; then by method and path prefix
# (the rest of the path names the model or the file).
ROUTES: dict[str, Route] = {
    "POST /v1/chat/completions": Route(openai_chat.answer),
    "POST /v1/responses": Route(openai_responses.answer),
    "POST /v1/messages": Route(anthropic_messages.answer),
    "POST /v1/messages/count_tokens": Route(anthropic_messages.count_tokens, hit=False),
    "POST /v1/images/generations": Route(images.openai),
    "POST /v1/image_generation": Route(images.minimax),
    "POST /v1/embeddings": Route(operations.embeddings),
    "POST /v1/rerank": Route(operations.rerank),
    "POST /v1/moderations": Route(operations.moderations),
    "POST /v1/videos": Route(videos.openai_create),
    "POST /v1/video_generation": Route(videos.minimax_create),
    "GET /v1/query/video_generation": Route(videos.minimax_query, videos.minimax_probe, hit=False),
    "GET /v1/files/retrieve": Route(videos.minimax_file, images.file_probe, hit=False),
}
PREFIX_ROUTES: dict[str, Route] = {
    "POST " + gemini.PREFIX: Route(operations.gemini_models, gemini.probe),
    "GET " + images.FILES: Route(images.file, images.file_probe, hit=False),
    "GET " + videos.OPENAI: Route(videos.openai_job, videos.openai_probe, hit=False),
    "GET " + videos.DOWNLOAD: Route(videos.download, images.file_probe, hit=False),
}


def find_route(method: str, path: str) -> Route | None:
    """The route answering ``method path``, if any."""
    key = f"{method} {path}"
    route = ROUTES.get(key)
    if route is None:
        for prefix, candidate in PREFIX_ROUTES.items():
            if key.startswith(prefix):
                return candidate
    return route


_replies: dict[tuple[Route, Probe, Scenario], Reply] = {}


def reply_for(route: Route, request: Request, scenario: Scenario) -> Reply:
    """The reply to ``request``; cached when the scenario does not depend on the body."""
    if not scenario.cacheable:
        return route.answer(request, scenario)
    key = (route, request.probe, scenario)
    reply = _replies.get(key)
    if reply is None:
        reply = route.answer(request, scenario)
        if len(_replies) < 4096:
            _replies[key] = reply
    return reply


class Observer(Protocol):
    """What watches a served fake (the tests' ``FakeUpstream``)."""

    def received(self, route: Route, request: Request) -> Handler | None:
        """Record ``request``; return a handler to answer it instead of its scenario."""

    def abandoned(self, model: str) -> None:
        """The client left while the answer for ``model`` was under way."""

    def closed(self, connection: FakeUpstreamProtocol) -> None:
        """``connection`` is gone."""


Handler = Callable[["Exchange"], Awaitable[None]]

_HEALTH = json_reply(200, {"status": "ok"}).head
_NOT_FOUND = json_reply(404, {"error": {"message": "no such route", "type": "not_found"}}).head
_BAD = json_reply(400, {"error": {"message": "bad request", "type": "invalid_request_error"}}).head


class FakeUpstreamProtocol(asyncio.Protocol):
    """One connection: parse requests one after another, answer each in turn."""

    __slots__ = ("_body_needed", "_buffer", "_busy", "_head", "_loop", "_model", "_observer",
                 "_task", "_transport", "_waiter")

    def __init__(self, observer: Observer | None = None) -> None:
        self._buffer = b""
        self._busy = False  # an answer is under way; later requests wait in the buffer
        self._head: tuple[bytes, dict[bytes, bytes]] | None = None
        self._body_needed = 0
        self._transport: asyncio.Transport | None = None
        self._loop = asyncio.get_running_loop()
        self._observer = observer
        self._model = ""
        self._task: asyncio.Task[None] | None = None
        self._waiter: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        if self._observer is not None:
            self._observer.closed(self)
            if self._busy:
                self._observer.abandoned(self._model)
        if self._task is not None:
            self._task.cancel()
        self._end_play()

    def data_received(self, data: bytes) -> None:
        self._buffer = self._buffer + data if self._buffer else data
        if not self._busy:
            self._process()

    def _process(self) -> None:
        while self._transport is not None and not self._busy:
            if self._head is None:
                end = self._buffer.find(b"\r\n\r\n")
                if end < 0:
                    return
                lines = self._buffer[:end].split(b"\r\n")
                self._buffer = self._buffer[end + 4 :]
                headers: dict[bytes, bytes] = {}
                for line in lines[1:]:
                    name, _, value = line.partition(b":")
                    headers[name.strip().lower()] = value.strip()
                self._head = (lines[0], headers)
                self._body_needed = int(headers.get(b"content-length", b"0") or 0)
            if len(self._buffer) < self._body_needed:
                return
            body = self._buffer[: self._body_needed]
            self._buffer = self._buffer[self._body_needed :]
            request_line, headers = self._head
            self._head = None
            self._answer(request_line, headers, body)

    def _answer(self, request_line: bytes, headers: dict[bytes, bytes], body: bytes) -> None:
        transport = self._transport
        assert transport is not None
        method, _, rest = request_line.partition(b" ")
        request = Request(rest.partition(b" ")[0].decode("latin-1"), headers, body)
        if method == b"GET" and request.path == "/health":
            transport.write(_HEALTH)
            return
        route = find_route(method.decode("latin-1"), request.path)
        if route is None:
            transport.write(_NOT_FOUND)
            return
        try:
            request.probe = route.probe(request)
        except (msgspec.DecodeError, msgspec.ValidationError, ValueError):
            transport.write(_BAD)
            return
        self._model = request.probe.model
        if self._observer is not None:
            handler = self._observer.received(route, request)
            if handler is not None:
                self._busy = True
                self._task = self._loop.create_task(self._handle(handler, route, request))
                return
        self.play(route, request)

    def play(self, route: Route, request: Request) -> None:
        """Answer ``request`` as its model name's scenario says."""
        transport = self._transport
        assert transport is not None
        fake_headers = {k: v for k, v in request.headers.items() if k.startswith(b"x-fake-")}
        scenario = parse_scenario(request.probe.model, fake_headers)
        if scenario.flags and scenario.has("reset"):
            transport.abort()
            return
        if scenario.flags and scenario.has("stall"):
            self._busy = True
            return  # nothing at all; the connection stays busy until the client leaves
        reply = reply_for(route, request, scenario)
        if reply.writes is None and not scenario.ttft_ms:
            transport.write(reply.head)  # the common case: one write, the connection free again
            if self._waiter is not None:
                self._waiter.set_result(None)
            return
        self._busy = True
        if reply.writes is None:
            self._loop.call_later(scenario.ttft_ms / 1000, self._write_last, reply.head)
            return
        transport.write(reply.head)
        if scenario.flags and scenario.has("hang"):
            return  # headers only; the connection stays busy until the client leaves
        gap = scenario.gap_ms / 1000
        if scenario.ttft_ms:
            self._loop.call_later(scenario.ttft_ms / 1000, self._stream, reply, 0, gap)
        else:
            self._stream(reply, 0, gap)

    def _write_last(self, data: bytes) -> None:
        if self._transport is not None:
            self._transport.write(data)
            self._end_play()

    def _stream(self, reply: Reply, index: int, gap: float) -> None:
        transport = self._transport
        writes = reply.writes
        if transport is None or writes is None:
            return
        if gap <= 0:
            transport.write(b"".join(writes[index:]) if index else b"".join(writes))
            index = len(writes)
        else:
            transport.write(writes[index])
            index += 1
        if index < len(writes):
            self._loop.call_later(gap, self._stream, reply, index, gap)
        elif reply.cut:
            self._busy = False  # the fake ends it, not the client
            transport.close()
        else:
            self._end_play()

    def _end_play(self) -> None:
        """A played answer is over: wake the handler waiting on it, or take the next request."""
        if self._waiter is not None:
            if not self._waiter.done():
                self._waiter.set_result(None)
            return
        self._busy = False
        if self._buffer and self._transport is not None:
            self._process()

    async def _handle(self, handler: Handler, route: Route, request: Request) -> None:
        exchange = Exchange(self, route, request)
        try:
            await handler(exchange)
            exchange.finish()
        except (ConnectionResetError, asyncio.CancelledError):
            return  # the client left
        finally:
            self._task = None
            self._waiter = None
        self._busy = False
        if self._buffer and self._transport is not None:
            self._process()

    async def play_and_wait(self, route: Route, request: Request) -> None:
        """``play``, for a handler: returns once the answer is over."""
        self._waiter = self._loop.create_future()
        self.play(route, request)
        await self._waiter
        self._waiter = None
        self._busy = True  # still the handler's until it returns

    def abort(self) -> None:
        """Drop the connection at once."""
        if self._transport is not None:
            self._transport.abort()

    def write(self, data: bytes) -> None:
        """Write ``data`` for a handler; the client having left raises ``ConnectionResetError``."""
        if self._transport is None:
            raise ConnectionResetError("the client left")
        self._transport.write(data)


class Exchange:
    """A test handler's view of one request, and its ways to answer it (a whole JSON answer,
    or a stream it writes itself; a stream left open is ended when the handler returns)."""

    def __init__(self, protocol: FakeUpstreamProtocol, route: Route, request: Request) -> None:
        self._protocol = protocol
        self._route = route
        self.request = request
        self._streaming = False

    @property
    def body(self) -> dict[str, Any]:
        """The request's JSON body."""
        return self.request.json()

    def json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        """Answer ``payload`` as JSON with ``status``."""
        self._protocol.write(json_reply(status, payload, headers).head)

    def open_stream(self) -> None:
        """Send an SSE stream's status line and headers."""
        self._protocol.write(SSE_HEAD)
        self._streaming = True

    def send(self, data: bytes) -> None:
        """Send ``data`` (one or more SSE frames) as a chunk of the open stream."""
        self._protocol.write(chunk(data))

    def finish(self) -> None:
        """End the open stream's body, if one is open."""
        if self._streaming and self._protocol._transport is not None:
            self._protocol.write(LAST_CHUNK)
        self._streaming = False

    async def answer(self, model: str) -> None:
        """Answer as the built-in scenario of ``model`` would, and wait until it is done."""
        self.request.probe = msgspec.structs.replace(self.request.probe, model=model)
        await self._protocol.play_and_wait(self._route, self.request)


async def serve(host: str, port: int, *, observer: Observer | None = None,
                backlog: int = 4096) -> asyncio.Server:
    """Start serving on ``host:port`` (0: a free port) in the running loop."""
    loop = asyncio.get_running_loop()
    return await loop.create_server(lambda: FakeUpstreamProtocol(observer), host, port,
                                    backlog=backlog, reuse_address=True)
