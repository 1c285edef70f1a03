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


class GuardedHttpTools(HeaderDeadline, HttpToolsProtocol):
    """uvicorn's httptools connection, closed when a request's headers take longer than
    ``server.header_timeout`` (``HeaderDeadline``: no timer per request), and answered 503
    past ``server.max_connections``."""

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
