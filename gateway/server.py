"""Serving the app with hypercorn on uvloop, in one process or several workers.

SIGTERM (or SIGINT) stops accepting connections, gives in-flight requests and streams up to
``server.graceful_timeout`` seconds to finish, then runs the app's shutdown, which flushes the
usage ledger, and the process exits 0.

With several workers this module supervises them itself rather than through ``hypercorn.run``:
hypercorn's supervisor terminates the remaining workers as soon as the first one exits, which
kills a worker in the middle of flushing its ledger. Here every worker is given its graceful
shutdown, and a worker that dies while the server is running is replaced.
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


def serve(config: GatewayConfig, config_path: str | None, workers: int) -> int:
    """Run until told to stop; returns the exit code."""
    if config_path:
        os.environ["GATEWAY_CONFIG"] = os.path.abspath(config_path)
    if workers <= 1:
        hconfig = hypercorn_config(config, 0)  # hypercorn's "0 workers": in this very process
        return run(hconfig)
    if not os.environ.get("GATEWAY_METRICS_DIR"):
        # Workers publish metric snapshots here so /metrics adds up all of them.
        metrics_dir = tempfile.mkdtemp(prefix="gateway-metrics-")
        os.environ["GATEWAY_METRICS_DIR"] = metrics_dir
        try:
            return supervise(hypercorn_config(config, workers), workers)
        finally:
            shutil.rmtree(metrics_dir, ignore_errors=True)
    return supervise(hypercorn_config(config, workers), workers)
