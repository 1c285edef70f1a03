"""``gateway serve`` (uvicorn, the default server): httptools, its signals handled by ``Lifecycle``.

In a module of its own so that ``--server hypercorn|granian`` never imports uvicorn, and because
its multi-process supervisor pickles the worker's class by reference.
"""

from __future__ import annotations

import asyncio
import functools
import math
import signal
import socket
import time
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.supervisors import multiprocess

from gateway.config import GatewayConfig, ServerConfig, load_config
from gateway.guard import BUSY_RESPONSE, HeaderDeadline
from gateway.lifecycle import EXIT_AFTER_CUT, SERVER_GRACE, on_signal

_SAME_SIGNAL = 1.0  # seconds within which a second signal is the first one passed on


@functools.cache
def _server_settings() -> ServerConfig:
    return load_config().server  # the worker's own copy (GATEWAY_CONFIG names the file)


class HeadWithBody:
    """A connection's transport whose response head goes out with the response's first body
    bytes, in one ``write``.

    uvicorn writes a head as soon as the app starts its response, then each body message: two
    system calls and two TCP segments for every whole answer, where one will do. A held head
    goes out with the next write, or at the end of the event loop's turn if none comes in it
    (a stream whose first bytes are not ready yet): never later. Bytes keep their order."""

    __slots__ = ("_held", "_loop", "_transport", "hold_next")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: bytes | None = None
        self.hold_next = False  # set when a request's headers are complete: its head is next

    def write(self, data: bytes) -> None:
        held = self._held
        if held is not None:
            self._held = None
            if len(data) < _JOIN_BELOW:
                self._transport.write(held + data)
            else:  # not copied: one writev
                self._transport.writelines((held, data))
            return
        if self.hold_next:
            self.hold_next = False
            self._held = data
            self._loop.call_soon(self.flush)
            return
        self._transport.write(data)

    def flush(self) -> None:
        held = self._held
        if held is not None:
            self._held = None
            if not self._transport.is_closing():
                self._transport.write(held)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def abort(self) -> None:
        self._held = None
        self._transport.abort()

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


_JOIN_BELOW = 64 * 1024  # a larger body is sent beside its head, not copied onto it


class GuardedHttpTools(HeaderDeadline, HttpToolsProtocol):
    """uvicorn's httptools connection, closed when a request's headers take longer than
    ``server.header_timeout`` (``HeaderDeadline``: no timer per request), and answered 503
    past ``server.max_connections``; a response's head goes out with its body
    (``HeadWithBody``)."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._deadline: asyncio.TimerHandle | None = None
        self._between = True
        self._waiting = False  # a request's headers have begun and are not complete
        self._began = 0.0
        self._timeout = _server_settings().header_timeout
        if len(self.connections) >= _server_settings().max_connections:
            transport.write(BUSY_RESPONSE)
            transport.close()
            self.transport, self.parser = transport, None  # type: ignore[assignment]
            return
        super().connection_made(transport)
        self.transport = self._out = HeadWithBody(transport, self.loop)  # type: ignore[assignment]
        self._begin()

    def _too_slow(self) -> None:
        self.transport.abort()

    def data_received(self, data: bytes) -> None:
        if self.parser is None:
            return
        if self._between and not self._waiting:
            self._begin()  # the next request has begun: its headers have a deadline
        super().data_received(data)

    def on_headers_complete(self) -> None:
        self._between = self._waiting = False
        self._out.hold_next = True
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        self._between = True
        super().on_response_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if self.parser is not None:
            super().connection_lost(exc)


class GatewayUvicorn(uvicorn.Server):
    """uvicorn, with the first signal draining through ``Lifecycle`` and the second ending it."""

    _first_signal = 0.0

    def handle_exit(self, sig: int, frame: Any) -> None:
        now = time.monotonic()
        if self.should_exit:
            # Ctrl-C reaches a worker twice: from the terminal, then from its supervisor.
            if now - self._first_signal > _SAME_SIGNAL:
                on_signal(force=True)
            return
        self._first_signal = now
        on_signal(force=False)
        super().handle_exit(sig, frame)


class GatewayWorker(multiprocess.Process):
    """A uvicorn worker process running ``GatewayUvicorn``."""

    @property
    def server(self) -> uvicorn.Server:
        if self._server is None:
            self._server = GatewayUvicorn(config=self.config)
        return self._server


def _exit_cleanly(signum: int, frame: object) -> None:
    raise SystemExit(0)


def serve_uvicorn(config: GatewayConfig, workers: int, sock: socket.socket) -> int:
    """Serve on ``sock`` until SIGTERM or SIGINT; returns the exit code."""
    # uvicorn drains and runs the lifespan shutdown on SIGTERM, then re-raises the signal with
    # the handler it found: this one, so the process exits 0 like under the other servers.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _exit_cleanly)
    uconfig = uvicorn.Config(
        "gateway.server:make_app",
        factory=True,
        host=config.server.host,
        port=config.server.port,
        workers=max(workers, 1),
        loop="uvloop",
        http=GuardedHttpTools,
        lifespan="on",
        # uvicorn would cancel, and complain of, connections still flushing to slow readers:
        # the lifecycle exits before that (its cut comes at graceful_timeout).
        timeout_graceful_shutdown=math.ceil(
            config.server.graceful_timeout + EXIT_AFTER_CUT + SERVER_GRACE
        ),
        timeout_keep_alive=75,
        backlog=4096,
        # The client address is the socket peer unless it is one of server.trusted_proxies
        # (gateway/accounts/http.py), as on the other servers: uvicorn's own X-Forwarded-For
        # rewrite (trusting 127.0.0.1) would let a local client name any address, and costs a
        # frame on every step of every request.
        proxy_headers=False,
        access_log=False,
        log_level="warning",
    )
    if workers > 1:
        multiprocess.Process = GatewayWorker  # type: ignore[misc]
        multiprocess.Multiprocess(uconfig, sockets=[sock]).run()
    else:
        GatewayUvicorn(uconfig).run(sockets=[sock])
    return 0
