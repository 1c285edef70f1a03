"""Serving the app on uvloop, in one process or several workers, with a choice of ASGI server.

``uvicorn`` (the default, with httptools: the cheapest per request and per stream chunk and the
only one to hold 1,000 streams), ``hypercorn`` (for HTTP/2) or ``granian`` (Rust HTTP, asyncio
loop); ``bench/README.md`` measures them and says which to use when. On each of them:

- The port is bound before the banner is printed; a busy port is one line and exit code 2.
- The app runs inside ``gateway.lifecycle.Lifecycle``: the first SIGTERM or SIGINT prints
  ``shutting down: N open streams, waiting up to T s`` and stops taking requests, streams get
  ``server.graceful_timeout`` seconds, then are cut (status 499, ``shutdown``), the ledger is
  flushed and the process exits 0; a second signal flushes and exits at once. Each server is
  given a little longer than the grace period, so the cut is always the gateway's own.
- Slow clients are bounded (``gateway.guard``): a header deadline, a request-body idle timeout
  and a cap on connections per worker, all in ``[server]``.

With several hypercorn workers this module supervises them itself rather than through
``hypercorn.run``: hypercorn's supervisor terminates the remaining workers as soon as the first
one exits, which kills a worker in the middle of flushing its ledger. Here every worker is
given its graceful shutdown, and a worker that dies while the server is running is replaced.
"""

from __future__ import annotations

import asyncio
import errno
import math
import multiprocessing
import os
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess
from typing import Any

from hypercorn.config import Config as HypercornConfig
from hypercorn.config import Sockets

from gateway.config import GatewayConfig, load_config
from gateway.lifecycle import SERVER_GRACE, Lifecycle, on_signal, set_current

_STOP_GRACE = 6.0  # seconds past graceful_timeout before a worker that has not exited is killed


def make_app() -> Lifecycle:
    """The gateway app inside its ``Lifecycle`` (the ASGI factory every server loads)."""
    from gateway.app import create_app

    config = load_config()
    server = config.server
    app = Lifecycle(create_app(config), server)  # type: ignore[arg-type]
    set_current(app)
    return app


# --- binding ---


class PortBusy(Exception):
    """The configured port is taken by another process."""


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (as the servers would make it)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        if error.errno == errno.EADDRINUSE:
            raise PortBusy from error
        raise
    sock.listen(4096)
    sock.set_inheritable(True)
    return sock


def _banner(config: GatewayConfig, workers: int) -> None:
    host, port = config.server.host, config.server.port
    print(f"Gateway listening on http://{host}:{port} with {max(workers, 1)} worker(s)", flush=True)


def _banner_when_listening(config: GatewayConfig, workers: int) -> None:
    """Print the banner once the port accepts connections (for a server that binds itself)."""
    host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(config.server.host, config.server.host)

    def poll() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                socket.create_connection((host, config.server.port), timeout=0.5).close()
            except OSError:
                time.sleep(0.05)
                continue
            _banner(config, workers)
            return

    threading.Thread(target=poll, daemon=True).start()


# --- hypercorn ---


def hypercorn_config(config: GatewayConfig, workers: int, sock: socket.socket) -> HypercornConfig:
    hconfig = HypercornConfig()
    hconfig.bind = [f"fd://{sock.detach()}"]  # hypercorn owns (and closes) it from now on
    hconfig.worker_class = "uvloop"
    hconfig.workers = workers
    hconfig.graceful_timeout = config.server.graceful_timeout + SERVER_GRACE
    hconfig.keep_alive_timeout = 75
    hconfig.backlog = 4096
    hconfig.accesslog = None
    hconfig.errorlog = "-"
    hconfig.loglevel = "WARNING"
    return hconfig


async def _hypercorn_main(hconfig: HypercornConfig, sockets: Sockets | None, stop: Any) -> None:
    """One hypercorn worker on this loop; ``stop()`` returns when it is to shut down."""
    from hypercorn.asyncio.run import worker_serve
    from hypercorn.utils import wrap_app

    from gateway.guard import install_hypercorn_guard

    app = make_app()
    install_hypercorn_guard(load_config().server)

    async def trigger() -> None:
        await stop()
        app.begin_shutdown()

    wrapped = wrap_app(app, hconfig.wsgi_max_body_size, "asgi")  # type: ignore[arg-type]
    await worker_serve(wrapped, hconfig, sockets=sockets, shutdown_trigger=trigger)


def _run_uvloop(main: Any) -> None:
    import uvloop

    uvloop.run(main)


def serve_hypercorn_here(hconfig: HypercornConfig) -> int:
    """hypercorn in this very process: the signals are handled here."""

    async def main() -> None:
        loop = asyncio.get_running_loop()
        stopping = asyncio.Event()

        def signalled() -> None:
            on_signal(force=stopping.is_set())
            stopping.set()

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, signalled)
        await _hypercorn_main(hconfig, None, stopping.wait)

    _run_uvloop(main())
    return 0


def _hypercorn_worker(hconfig: HypercornConfig, sockets: Sockets, shutdown: Any) -> None:
    for sig in (signal.SIGUSR1, signal.SIGUSR2):  # until the app listens for them
        signal.signal(sig, signal.SIG_IGN)
    async def stop() -> None:
        while not shutdown.is_set():
            await asyncio.sleep(0.1)

    _run_uvloop(_hypercorn_main(hconfig, sockets, stop))


def _spawn(context: Any, hconfig: HypercornConfig, sockets: Sockets, shutdown: Any) -> BaseProcess:
    process: BaseProcess = context.Process(
        target=_hypercorn_worker, args=(hconfig, sockets, shutdown)
    )
    process.start()
    return process


def supervise(hconfig: HypercornConfig, workers: int) -> int:
    """Run ``workers`` processes on shared sockets until SIGTERM/SIGINT, then drain them all."""
    context = multiprocessing.get_context("spawn")
    shutdown = context.Event()
    sockets = hconfig.create_sockets()
    # Workers ignore the signals (they inherit this): the supervisor passes them on, so a
    # signal sent to the whole process group cannot end one before it has flushed.
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
    processes = [_spawn(context, hconfig, sockets, shutdown) for _ in range(workers)]

    def stop(*_: object) -> None:
        for process in processes:
            if process.pid and process.exitcode is None:
                os.kill(process.pid, signal.SIGUSR2 if shutdown.is_set() else signal.SIGUSR1)
        shutdown.set()

    for sig in previous:
        signal.signal(sig, stop)
    while not shutdown.is_set():
        wait([p.sentinel for p in processes], timeout=0.5)
        for index, process in enumerate(processes):
            if process.exitcode is not None and not shutdown.is_set():
                print(
                    f"gateway: worker {process.pid} exited with {process.exitcode}; restarting",
                    file=sys.stderr,
                )
                processes[index] = _spawn(context, hconfig, sockets, shutdown)
    exit_code = 0
    deadline = time.monotonic() + hconfig.graceful_timeout + _STOP_GRACE
    for process in processes:
        process.join(max(deadline - time.monotonic(), 0.1))
        if process.exitcode is None:
            process.kill()
            process.join()
            exit_code = 1
        elif process.exitcode != 0:
            exit_code = process.exitcode
    for sock in [*sockets.secure_sockets, *sockets.insecure_sockets]:
        sock.close()
    return exit_code


# --- granian ---


def serve_granian(config: GatewayConfig, workers: int) -> int:
    from granian.constants import Interfaces, Loops
    from granian.http import HTTP1Settings
    from granian.log import LogLevels
    from granian.server import Server

    class GatewayGranian(Server):  # type: ignore[misc,valid-type]
        """granian, passing the signals on to its workers' ``Lifecycle`` (SIGUSR1, SIGUSR2)."""

        def signal_handler_interrupt(self, *args: Any, **kwargs: Any) -> None:
            again = signal.SIGUSR2 if self.interrupt_signal else signal.SIGUSR1
            for worker in self.wrks:
                if worker.inner.pid and worker.inner.exitcode is None:
                    os.kill(worker.inner.pid, again)
            super().signal_handler_interrupt(*args, **kwargs)

    _banner_when_listening(config, workers)
    GatewayGranian(
        "gateway.server:make_app",
        factory=True,
        address=config.server.host,
        port=config.server.port,
        interface=Interfaces.ASGI,
        workers=max(workers, 1),
        loop=Loops.uvloop,
        backlog=4096,
        http1_settings=HTTP1Settings(header_read_timeout=int(config.server.header_timeout * 1000)),
        log_level=LogLevels.warning,
        log_access=False,
        workers_kill_timeout=math.ceil(config.server.graceful_timeout + _STOP_GRACE),
    ).serve()
    return 0


# --- entry point ---


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def _port_busy(config: GatewayConfig) -> int:
    host, port = config.server.host, config.server.port
    print(
        f"gateway: port {port} on {host} is already in use: stop what is listening there "
        f"(ss -ltnp 'sport = :{port}') or choose another port with --port",
        file=sys.stderr,
    )
    return 2


def serve(
    config: GatewayConfig, config_path: str | None, workers: int, server: str = "uvicorn"
) -> int:
    """Bind, print the banner, run until told to stop; returns the exit code."""
    if config_path:
        os.environ["GATEWAY_CONFIG"] = os.path.abspath(config_path)
    if server == "granian" and not _has(server):
        print(
            "gateway: --server granian is not installed; install the 'servers' extra "
            "(pip install 'llm-gateway[servers]') or use --server hypercorn",
            file=sys.stderr,
        )
        return 2
    try:
        sock = bind(config.server.host, config.server.port)
    except PortBusy:
        return _port_busy(config)
    if workers > 1 and not config.runtime.metrics_dir:
        # Workers meet here (gateway.metrics) so /metrics adds up all of them, on every server.
        metrics_dir = tempfile.mkdtemp(prefix="gateway-metrics-")
        os.environ["GATEWAY_METRICS_DIR"] = metrics_dir
        try:
            return _serve_on(config, workers, server, sock)
        finally:
            shutil.rmtree(metrics_dir, ignore_errors=True)
    return _serve_on(config, workers, server, sock)


def _serve_on(config: GatewayConfig, workers: int, server: str, sock: socket.socket) -> int:
    if server == "granian":
        sock.close()  # granian binds by itself: the banner waits until it listens
        return serve_granian(config, workers)
    _banner(config, workers)
    if server == "uvicorn":
        from gateway.server_uvicorn import serve_uvicorn

        return serve_uvicorn(config, workers, sock)
    if workers <= 1:
        return serve_hypercorn_here(hypercorn_config(config, 0, sock))
    return supervise(hypercorn_config(config, workers, sock), workers)
