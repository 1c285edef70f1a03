"""Serving the app on uvloop, in one process or several workers, with a choice of ASGI server.

``hypercorn`` (the default), ``uvicorn`` (with httptools) or ``granian`` (Rust HTTP, asyncio
loop); ``bench/README.md`` measures them and says which to use when. Each of them:

SIGTERM (or SIGINT) stops accepting connections, gives in-flight requests and streams up to
``server.graceful_timeout`` seconds to finish, then runs the app's shutdown, which flushes the
usage ledger, and the process exits 0.
"""

from __future__ import annotations

import os
import sys

from hypercorn.config import Config as HypercornConfig
from hypercorn.run import run

from gateway.config import GatewayConfig

APP_PATH = "gateway.app:create_app()"
APP_FACTORY = "gateway.app:create_app"
SERVERS = ("hypercorn", "uvicorn", "granian")


def hypercorn_config(config: GatewayConfig, workers: int) -> HypercornConfig:
    hconfig = HypercornConfig()
    hconfig.application_path = APP_PATH
    hconfig.bind = [f"{config.server.host}:{config.server.port}"]
    hconfig.worker_class = "uvloop"
    # hypercorn runs "0 workers" in this very process; N > 1 spawns N processes sharing sockets.
    hconfig.workers = 0 if workers <= 1 else workers
    hconfig.graceful_timeout = config.server.graceful_timeout
    hconfig.keep_alive_timeout = 75
    hconfig.backlog = 4096
    hconfig.accesslog = None
    hconfig.errorlog = "-"
    hconfig.loglevel = "WARNING"
    return hconfig


def _exit_cleanly(signum: int, frame: object) -> None:
    raise SystemExit(0)


def serve_uvicorn(config: GatewayConfig, workers: int) -> int:
    import signal

    import uvicorn

    # uvicorn drains and runs the lifespan shutdown on SIGTERM, then re-raises the signal with
    # the handler it found: this one, so the process exits 0 like under the other servers.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _exit_cleanly)
    uvicorn.run(
        APP_FACTORY,
        factory=True,
        host=config.server.host,
        port=config.server.port,
        workers=max(workers, 1),
        loop="uvloop",
        http="httptools" if _has("httptools") else "h11",
        lifespan="on",
        timeout_graceful_shutdown=int(max(config.server.graceful_timeout, 1)),
        timeout_keep_alive=75,
        backlog=4096,
        access_log=False,
        log_level="warning",
    )
    return 0


def serve_granian(config: GatewayConfig, workers: int) -> int:
    from granian.constants import Interfaces, Loops
    from granian.log import LogLevels
    from granian.server import Server

    Server(
        APP_FACTORY,
        factory=True,
        address=config.server.host,
        port=config.server.port,
        interface=Interfaces.ASGI,
        workers=max(workers, 1),
        loop=Loops.uvloop,
        backlog=4096,
        log_level=LogLevels.warning,
        log_access=False,
        workers_kill_timeout=int(max(config.server.graceful_timeout, 1)),
    ).serve()
    return 0


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def serve(
    config: GatewayConfig, config_path: str | None, workers: int, server: str = "hypercorn"
) -> int:
    """Run until told to stop; returns the exit code."""
    if config_path:
        os.environ["GATEWAY_CONFIG"] = os.path.abspath(config_path)
    if server in ("uvicorn", "granian") and not _has(server):
        print(
            f"gateway: --server {server} is not installed; install the 'servers' extra "
            "(pip install 'llm-gateway[servers]') or use --server hypercorn",
            file=sys.stderr,
        )
        return 2
    if server == "uvicorn":
        return serve_uvicorn(config, workers)
    if server == "granian":
        return serve_granian(config, workers)
    return run(hypercorn_config(config, workers))
