"""A gateway as a new user gets it from ``make run``: the default ``config/gateway.toml``, a
fresh data folder, no provider key, and the key printed on first start.

The checkout is mirrored into a temporary folder (``config/`` copied, ``.venv`` linked), so a
command from the docs run there (``.venv/bin/gateway keys list``) finds the same database as the
server, and nothing is written into the real checkout.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx2 as httpx

from tests.conftest import ROOT, free_port, launch, stop_tree

FIRST_KEY = re.compile(r"^\s+(\S+)\s*$", re.MULTILINE)


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment without any provider key, as on a machine that has none."""
    env = {k: v for k, v in os.environ.items()
           if not k.endswith("_API_KEY") and not k.startswith("GATEWAY_")}
    return {**env, **(extra or {})}


class FreshGateway:
    """``gateway serve`` on the default config in a mirror of the checkout, on a free port."""

    def __init__(self, tmp: Path, env: dict[str, str] | None = None) -> None:
        self.home = tmp
        shutil.copytree(ROOT / "config", tmp / "config")
        (tmp / ".venv").symlink_to(sys.prefix)  # the virtualenv running these tests
        self.port = free_port()
        self.env = clean_env({"GATEWAY_CONFIG": str(tmp / "config" / "gateway.toml"),
                              **(env or {})})
        self.log_path = tmp / "server.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.key = ""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FreshGateway:
        log = self.log_path.open("ab")
        self.process = launch(
            [str(self.home / ".venv" / "bin" / "gateway"), "serve", "--port", str(self.port)],
            stdout=log, stderr=subprocess.STDOUT, env=self.env, cwd=self.home,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gateway exited early:\n{self.logs()}")
            try:
                if httpx.get(f"{self.url}/health", timeout=0.5).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.05)
        else:
            raise RuntimeError(f"gateway did not become healthy:\n{self.logs()}")
        keys = [k for k in FIRST_KEY.findall(self.logs()) if k.startswith("gw-")]
        assert keys, f"no first-start key printed:\n{self.logs()}"
        self.key = keys[0]
        return self

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> int:
        return stop_tree(self.process, 20) if self.process is not None else 0
