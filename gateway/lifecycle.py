"""Graceful shutdown and slow request bodies, as an ASGI wrapper that every server runs.

The servers (``gateway.server``) call ``Lifecycle.begin_shutdown`` on the first SIGTERM or
SIGINT and ``Lifecycle.force`` on the second; the rest happens here, the same on each server:

- ``begin_shutdown`` prints ``shutting down: N open streams, waiting up to T s``; requests that
  still arrive (on kept-alive connections) get 503 and ``Connection: close``.
- After ``server.graceful_timeout`` seconds every request still open is cut: its ``receive``
  answers ``{"type": "http.disconnect", "reason": "shutdown"}``, so the chat endpoint stops the
  stream, bills what was sent and records status 499 with ``error_type`` ``shutdown``.
- ``EXIT_AFTER_CUT`` seconds later, if the server has not finished by itself (a client that
  reads slowly keeps its connection flushing for minutes), the app's lifespan shutdown is run
  here, which flushes the ledger, and the process exits 0.
- ``force`` (the second signal) cuts at once, flushes and exits.

Past ``server.max_connections`` requests in flight, a request is answered 503 (the servers
cap their connections at the same number, ``gateway.guard``). A request body that sends nothing
for ``server.body_timeout`` seconds is answered 408, and a response sent before the whole body
was read (a 413, or an error found before reading) closes its connection, so an unwanted upload
is not drained.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import signal
import sys
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, NoReturn

from gateway.config import ServerConfig

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Message, Receive, Send], Awaitable[None]]

EXIT_AFTER_CUT = 2.5  # seconds past the cut to flush and exit if the server has not
SERVER_GRACE = 1.0  # the server's own grace period is this much longer than the gateway's
_SWEEP_EVERY = 1.0  # seconds between checks of idle request bodies
SHUTDOWN_DISCONNECT: Message = {"type": "http.disconnect", "reason": "shutdown"}
_CLOSE = (b"connection", b"close")


class _Open:
    """One request in flight: its task, how far its body has been read, and the ``receive``
    and ``send`` the app gets (methods, not closures built for each request)."""

    __slots__ = ("body_done", "cut", "last_read", "listener", "loop", "receive", "send",
                 "task", "timed_out")

    def __init__(
        self, task: asyncio.Task[Any] | None, loop: asyncio.AbstractEventLoop,
        cut: asyncio.Future[None] | None, receive: Receive, send: Send,
    ) -> None:
        self.task = task
        self.loop = loop
        self.cut = cut
        self.receive = receive
        self.send = send
        self.last_read = loop.time()
        self.body_done = False
        self.timed_out = False
        self.listener: asyncio.Task[Any] | None = None  # waiting for a disconnect

    async def read(self) -> Message:
        if self.body_done:  # only a disconnect is left to come, or the shutdown's cut
            return await self._listen()
        message = await self.receive()
        self.last_read = self.loop.time()
        if not message.get("more_body", False):
            self.body_done = True
        return message

    async def _listen(self) -> Message:
        cut = self.cut
        if cut is not None and cut.done():
            return SHUTDOWN_DISCONNECT
        self.listener = asyncio.current_task()
        try:
            return await self.receive()
        except asyncio.CancelledError:
            if cut is None or not cut.done() or self.listener is None:
                raise
            self.listener.uncancel()  # cut: what the listener hears is a disconnect
            return SHUTDOWN_DISCONNECT
        finally:
            self.listener = None

    async def answer(self, message: Message) -> None:
        """``send``, closing the connection if the answer starts before the body was read."""
        if message["type"] == "http.response.start" and not self.body_done:
            message = {**message, "headers": [*message.get("headers", ()), _CLOSE]}
        await self.send(message)


class Lifecycle:
    """The app, wrapped: shutdown in three steps (drain, cut, exit) and request-body timeouts."""

    def __init__(self, app: App, server: ServerConfig) -> None:
        self.app = app
        self.max_body_bytes = server.max_body_bytes
        self.graceful_timeout = server.graceful_timeout
        self.body_timeout = server.body_timeout
        self.max_open = server.max_connections
        self.open: set[_Open] = set()
        self.draining = False
        self.loop: asyncio.AbstractEventLoop | None = None
        self._cut: asyncio.Future[None] | None = None
        self._inbox: asyncio.Queue[Message] | None = None
        self._stopped = asyncio.Event()
        self._self_stop = False
        self._tasks: set[asyncio.Task[None]] = set()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.app, name)

    async def __call__(self, scope: Message, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.draining or len(self.open) >= self.max_open:
            await self._other(scope, receive, send)
            return
        # A request, served from this frame (no coroutine of ours between the server and the
        # app: every step of a stream resumes each frame of the chain).
        cut = self._cut
        entry = _Open(asyncio.current_task(), self.loop or asyncio.get_running_loop(), cut,
                      receive, send)
        self.open.add(entry)
        try:
            # Only a body that may be refused unread needs its answer watched (a send wrapped
            # for every chunk of a stream would cost more than the rest of this wrapper).
            await self.app(scope, entry.read, entry.answer if self._may_refuse(scope) else send)
        except asyncio.CancelledError:
            if not entry.timed_out or entry.task is None:
                raise
            entry.task.uncancel()
            await _answer(send, 408, b'{"error":{"message":"The request body stopped '
                          b'arriving","type":"invalid_request_error"}}')
        finally:
            self.open.discard(entry)
        if cut is not None and cut.done():
            # Cut by the shutdown: end the response, so the server has nothing to complain of.
            with contextlib.suppress(Exception):
                await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _other(self, scope: Message, receive: Receive, send: Send) -> None:
        """The lifespan, other scope types, and requests refused while draining or full."""
        if scope["type"] == "lifespan":
            await self._lifespan(scope, receive, send)
        elif scope["type"] != "http":
            await self.app(scope, receive, send)
        elif self.draining:
            await _answer(send, 503, b'{"error":{"message":"The gateway is shutting down",'
                          b'"type":"server_busy"}}')
        else:
            await _answer(send, 503, b'{"error":{"message":"The gateway has too many requests '
                          b'in flight; retry shortly","type":"server_busy"}}')

    # --- requests ---

    def _may_refuse(self, scope: Message) -> bool:
        """Whether the body may be refused before it is read: too long, or of unknown length."""
        for name, value in scope["headers"]:
            if name == b"content-length":
                return not value.isdigit() or int(value) > self.max_body_bytes
        return scope["method"] not in ("GET", "HEAD", "DELETE", "OPTIONS")

    def _sweep(self) -> None:
        """Answer 408 to requests whose body sent nothing for ``body_timeout`` seconds."""
        assert self.loop is not None
        limit = self.loop.time() - self.body_timeout
        for entry in list(self.open):
            if not entry.body_done and entry.last_read < limit and not entry.timed_out:
                entry.timed_out = True
                if entry.task is not None:
                    entry.task.cancel()

    async def _sweeper(self) -> None:
        while True:
            await asyncio.sleep(_SWEEP_EVERY)
            self._sweep()

    # --- shutdown ---

    def begin_shutdown(self) -> None:
        """The first signal: stop taking requests, cut what is left after the grace period."""
        if self.draining or self.loop is None:
            return
        self.draining = True
        # One write, so the lines of several workers sharing the terminal do not interleave.
        sys.stderr.write(
            f"shutting down: {len(self.open)} open streams, "
            f"waiting up to {self.graceful_timeout:g} s\n"
        )
        sys.stderr.flush()
        self._spawn(self._cut_later(self.graceful_timeout))

    def force(self) -> None:
        """The second signal: cut every request now, flush and exit."""
        self.draining = True
        self._spawn(self._cut_later(0.0))

    def _spawn(self, coroutine: Awaitable[None]) -> None:
        assert self.loop is not None
        task: asyncio.Task[None] = self.loop.create_task(coroutine)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _cut_later(self, delay: float) -> None:
        await asyncio.sleep(delay)
        if self._cut is not None and not self._cut.done():
            self._cut.set_result(None)
            for entry in list(self.open):
                if entry.listener is not None:
                    entry.listener.cancel()
        # Give cut streams a moment to record their rows, then flush and leave if still here.
        deadline = asyncio.get_running_loop().time() + (EXIT_AFTER_CUT if delay else 0.3)
        while self.open and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
        if delay:
            await asyncio.sleep(max(0.0, deadline - asyncio.get_running_loop().time()))
        await self._exit()

    async def _exit(self) -> None:
        """Run the app's lifespan shutdown (flushing the ledger) unless it ran, then exit 0."""
        if self._inbox is not None and not self._stopped.is_set():
            self._self_stop = True  # the server did not ask: it is not told either
            self._inbox.put_nowait({"type": "lifespan.shutdown"})
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stopped.wait(), 4.0)
        leave(0)

    # --- lifespan ---

    async def _lifespan(self, scope: Message, receive: Receive, send: Send) -> None:
        self.loop = loop = asyncio.get_running_loop()
        self._cut = loop.create_future()
        inbox: asyncio.Queue[Message] = asyncio.Queue()
        self._inbox = inbox

        async def relay() -> None:
            while True:
                message = await receive()
                inbox.put_nowait(message)
                if message["type"] == "lifespan.shutdown":
                    return

        async def reply(message: Message) -> None:
            kind = message["type"]
            if kind == "lifespan.startup.complete":
                self._spawn(self._sweeper())
                # How a supervisor passes the signals on to its workers.
                loop.add_signal_handler(signal.SIGUSR1, self.begin_shutdown)
                loop.add_signal_handler(signal.SIGUSR2, self.force)
            elif kind.startswith("lifespan.shutdown"):
                self._stopped.set()
                if self._self_stop:
                    return
            await send(message)

        relaying = self.loop.create_task(relay())
        try:
            await self.app(scope, inbox.get, reply)
        finally:
            relaying.cancel()
            for task in list(self._tasks):
                if task is not asyncio.current_task():
                    task.cancel()


async def _answer(send: Send, status: int, body: bytes) -> None:
    await send({
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", b"application/json"), _CLOSE,
                    (b"content-length", str(len(body)).encode())],
    })
    await send({"type": "http.response.body", "body": body})


def leave(code: int) -> NoReturn:
    """Exit now, once everything is flushed: the exit handlers run, the interpreter's teardown
    does not (seconds of CPU on a loaded machine, for a process that has nothing left to do)."""
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


_current: list[Lifecycle] = []  # this process's app, for the servers' signal handlers


def set_current(app: Lifecycle) -> None:
    """Make ``app`` the one this process's signal handlers (``on_signal``) act on."""
    _current[:] = [app]


def on_signal(force: bool) -> None:
    """A signal arrived (in the loop's thread or a signal handler): drain, or end now."""
    for app in _current:
        if app.loop is not None:
            app.loop.call_soon_threadsafe(app.force if force else app.begin_shutdown)
