"""``FakeUpstream``: the fake served in a thread of the test process, watched.

It records every request (``requests``: target, headers, JSON body), counts hits per model
(``hits``) and answers the client leaving mid-answer (``cancelled``). ``handlers`` lets a test
answer one model name with its own coroutine over an ``Exchange`` instead of a scenario.
``videos`` are its video jobs, each with its create body and its polls, overlapping polls and
downloads counted.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from multidict import CIMultiDict

from bench.fake_upstream import anthropic_messages, gemini
from bench.fake_upstream.server import FakeUpstreamProtocol, Handler, Route
from bench.fake_upstream.videos import Job, jobs_of
from bench.fake_upstream.wire import Request


@dataclass
class Recorded:
    """One request as the fake received it; ``headers`` are case-insensitive, ``raw`` is the
    body's bytes."""

    path: str
    headers: CIMultiDict[str]
    body: dict[str, Any]
    raw: bytes = b""


@dataclass
class FakeUpstream:
    """Every dialect's fake on one port of 127.0.0.1; ``url`` is its OpenAI base (``…/v1``),
    ``origin`` the Anthropic and Gemini base."""

    ANTHROPIC_SIGNATURE = anthropic_messages.SIGNATURE
    GEMINI_SIGNATURE = gemini.SIGNATURE

    requests: list[Recorded] = field(default_factory=list)
    hits: Counter[str] = field(default_factory=Counter)
    cancelled: Counter[str] = field(default_factory=Counter)
    handlers: dict[str, Handler] = field(default_factory=dict)
    port: int = 0
    _loop: asyncio.AbstractEventLoop | None = None
    _server: asyncio.Server | None = None
    _connections: set[FakeUpstreamProtocol] = field(default_factory=set)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def videos(self) -> dict[str, Job]:
        """The video jobs created on this fake, by upstream job id."""
        return jobs_of(self.origin)

    def start(self) -> FakeUpstream:
        """Serve on a free port, in a daemon thread with its own event loop."""
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            self._server = loop.run_until_complete(loop.create_server(
                self._connect, "127.0.0.1", 0, reuse_address=True))
            self.port = self._server.sockets[0].getsockname()[1]
            self.videos.clear()  # a port used before: not its jobs
            ready.set()
            loop.run_forever()

        threading.Thread(target=run, daemon=True, name="fake-upstream").start()
        ready.wait(10)
        return self

    def stop(self) -> None:
        """Close every connection (answers still stalling on purpose too) and the loop."""
        if self._loop is None:
            return
        future = asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop)
        try:
            future.result(5)
        except TimeoutError:
            future.cancel()
        self._loop.call_soon_threadsafe(self._loop.stop)

    async def _shutdown(self) -> None:
        assert self._server is not None
        self._server.close()
        for connection in list(self._connections):
            connection.abort()
        current = asyncio.current_task()
        pending = [task for task in asyncio.all_tasks() if task is not current]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    def reset(self) -> None:
        """Forget the records, counts and handlers."""
        self.requests.clear()
        self.hits.clear()
        self.cancelled.clear()
        self.handlers.clear()

    def bodies(self, model: str | None = None) -> list[dict[str, Any]]:
        """The JSON bodies received (for ``model`` alone, if given)."""
        return [r.body for r in self.requests if model is None or r.body.get("model") == model]

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
        """Poll ``predicate`` until it holds or ``timeout`` passes; its last value."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(0.02)
        return predicate()

    # --- the server's Observer ---

    def _connect(self) -> FakeUpstreamProtocol:
        connection = FakeUpstreamProtocol(self)
        self._connections.add(connection)
        return connection

    def closed(self, connection: FakeUpstreamProtocol) -> None:
        self._connections.discard(connection)

    def received(self, route: Route, request: Request) -> Handler | None:
        headers = CIMultiDict((k.decode("latin-1"), v.decode("latin-1"))
                              for k, v in request.headers.items())
        self.requests.append(Recorded(request.target, headers, request.json(), bytes(request.body)))
        model = request.probe.model
        if route.hit:
            self.hits[model] += 1
        return self.handlers.get(model)

    def abandoned(self, model: str) -> None:
        self.cancelled[model] += 1
