"""Serving the app on uvloop, in one process or several workers, with a choice of ASGI server.

``hypercorn`` (the default), ``uvicorn`` (with httptools) or ``granian`` (Rust HTTP, asyncio
loop); ``bench/README.md`` measures them and says which to use when. Each of them:

SIGTERM (or SIGINT) stops accepting connections, gives in-flight requests and streams up to
``server.graceful_timeout`` seconds to finish, then runs the app's shutdown, which flushes the
usage ledger, and the process exits 0.

With several hypercorn workers this module supervises them itself rather than through
``hypercorn.run``: hypercorn's supervisor terminates the remaining workers as soon as the first
one exits, which kills a worker in the middle of flushing its ledger. Here every worker is
given its graceful shutdown, and a worker that dies while the server is running is replaced.
(uvicorn's and granian's own supervisors stop each worker with its graceful shutdown.)
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import signal
import sys
import tempfile
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess
from typing import Any

from hypercorn.asyncio.run import uvloop_worker
from hypercorn.config import Config as HypercornConfig
from hypercorn.config import Sockets
from hypercorn.run import run

from gateway.config import GatewayConfig

APP_PATH = "gateway.app:create_app()"
APP_FACTORY = "gateway.app:create_app"
SERVERS = ("hypercorn", "uvicorn", "granian")
_STOP_GRACE = 30.0  # seconds past graceful_timeout a worker gets to flush before it is killed


def hypercorn_config(config: GatewayConfig, workers: int) -> HypercornConfig:
    hconfig = HypercornConfig()
    hconfig.application_path = APP_PATH
    hconfig.bind = [f"{config.server.host}:{config.server.port}"]
    hconfig.worker_class = "uvloop"
    hconfig.workers = workers
    hconfig.graceful_timeout = config.server.graceful_timeout
    hconfig.keep_alive_timeout = 75
    hconfig.backlog = 4096
    hconfig.accesslog = None
    hconfig.errorlog = "-"
    hconfig.loglevel = "WARNING"
    return hconfig


def _spawn(
    context: Any, hconfig: HypercornConfig, sockets: Sockets, shutdown: Any
) -> BaseProcess:
    process: BaseProcess = context.Process(
        target=uvloop_worker,
        kwargs={"config": hconfig, "sockets": sockets, "shutdown_event": shutdown},
    )
    process.start()
    return process


def supervise(hconfig: HypercornConfig, workers: int) -> int:
    """Run ``workers`` processes on shared sockets until SIGTERM/SIGINT, then drain them all."""
    context = multiprocessing.get_context("spawn")
    shutdown = context.Event()
    sockets = hconfig.create_sockets()
    # Workers ignore the signals (they inherit this): only the shutdown event stops them, so a
    # signal sent to the whole process group cannot kill one before it has flushed.
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
    processes = [_spawn(context, hconfig, sockets, shutdown) for _ in range(workers)]

    def stop(*_: object) -> None:
        shutdown.set()

    for sig in previous:
        signal.signal(sig, stop)
    exit_code = 0
    while not shutdown.is_set():
        wait([p.sentinel for p in processes], timeout=0.5)
        for index, process in enumerate(processes):
            if process.exitcode is not None and not shutdown.is_set():
                print(
                    f"gateway: worker {process.pid} exited with {process.exitcode}; restarting",
                    file=sys.stderr,
                )
                signal.signal(signal.SIGTERM, signal.SIG_IGN)
                signal.signal(signal.SIGINT, signal.SIG_IGN)
                processes[index] = _spawn(context, hconfig, sockets, shutdown)
                signal.signal(signal.SIGTERM, stop)
                signal.signal(signal.SIGINT, stop)
    for process in processes:
        process.join(hconfig.graceful_timeout + _STOP_GRACE)
        if process.exitcode is None:
            process.kill()
            process.join()
            exit_code = 1
        elif process.exitcode != 0:
            exit_code = process.exitcode
    for sock in [*sockets.secure_sockets, *sockets.insecure_sockets]:
        sock.close()
    return exit_code


def _exit_cleanly(signum: int, frame: object) -> None:
    raise SystemExit(0)


def serve_uvicorn(config: GatewayConfig, workers: int) -> int:
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
    if workers > 1 and not config.runtime.metrics_dir:
        # Workers meet here (gateway.metrics) so /metrics adds up all of them, on every server.
        metrics_dir = tempfile.mkdtemp(prefix="gateway-metrics-")
        os.environ["GATEWAY_METRICS_DIR"] = metrics_dir
        try:
            return _serve_with(config, workers, server)
        finally:
            shutil.rmtree(metrics_dir, ignore_errors=True)
    return _serve_with(config, workers, server)


def _serve_with(config: GatewayConfig, workers: int, server: str) -> int:
    if server == "uvicorn":
        return serve_uvicorn(config, workers)
    if server == "granian":
        return serve_granian(config, workers)
    if workers <= 1:
        hconfig = hypercorn_config(config, 0)  # hypercorn's "0 workers": in this very process
        return run(hconfig)
    return supervise(hypercorn_config(config, workers), workers)
