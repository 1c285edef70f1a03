"""``gateway serve --server uvicorn``: uvicorn (httptools), its signals handled by ``Lifecycle``.

In a module of its own because uvicorn is optional (the ``servers`` extra), and because its
multi-process supervisor pickles the worker's class by reference.
"""

from __future__ import annotations

import math
import signal
import socket
from typing import Any

import uvicorn
from uvicorn.supervisors import multiprocess

from gateway.config import GatewayConfig
from gateway.guard import uvicorn_protocol
from gateway.server import SERVER_GRACE, on_signal


class GatewayUvicorn(uvicorn.Server):
    """uvicorn, with the first signal draining through ``Lifecycle`` and the second ending it."""

    def handle_exit(self, sig: int, frame: Any) -> None:
        if self.should_exit:
            on_signal(force=True)
            return
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
        http=uvicorn_protocol(config.server),
        lifespan="on",
        timeout_graceful_shutdown=math.ceil(config.server.graceful_timeout + SERVER_GRACE),
        timeout_keep_alive=75,
        backlog=4096,
        access_log=False,
        log_level="warning",
    )
    if workers > 1:
        multiprocess.Process = GatewayWorker  # type: ignore[misc]
        multiprocess.Multiprocess(uconfig, sockets=[sock]).run()
    else:
        GatewayUvicorn(uconfig).run(sockets=[sock])
    return 0
