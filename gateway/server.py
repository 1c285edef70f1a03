"""Serving the app with hypercorn on uvloop, in one process or several workers.

SIGTERM (or SIGINT) stops accepting connections, gives in-flight requests and streams up to
``server.graceful_timeout`` seconds to finish, then runs the app's shutdown, which flushes the
usage ledger, and the process exits 0.
"""

from __future__ import annotations

import os

from hypercorn.config import Config as HypercornConfig
from hypercorn.run import run

from gateway.config import GatewayConfig

APP_PATH = "gateway.app:create_app()"


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


def serve(config: GatewayConfig, config_path: str | None, workers: int) -> int:
    """Run until told to stop; returns the exit code."""
    if config_path:
        os.environ["GATEWAY_CONFIG"] = os.path.abspath(config_path)
    return run(hypercorn_config(config, workers))
