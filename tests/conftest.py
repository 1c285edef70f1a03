"""Shared fixtures: the fake upstream (every dialect, ``bench/fake_upstream/``) and the real
gateway server in a subprocess."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from bench.fake_upstream import FakeUpstream
from tests.services import machine_fingerprint

ROOT = Path(__file__).resolve().parent.parent
GATEWAY = str(Path(sys.executable).parent / "gateway")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test is ``unit`` or ``e2e`` (``pytestmark`` at the top of its module); one that
    says neither counts as ``e2e``, so ``-m unit`` never runs a server by surprise."""
    for item in items:
        if item.get_closest_marker("unit") is None and item.get_closest_marker("e2e") is None:
            item.add_marker(pytest.mark.e2e)


_MACHINE: dict[str, object] = {}


def pytest_sessionstart(session: pytest.Session) -> None:
    """Note the machine's Redis and PostgreSQL as found (see ``pytest_sessionfinish``)."""
    _MACHINE.update(machine_fingerprint())


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run if the machine's Redis or PostgreSQL was restarted or reconfigured."""
    after = machine_fingerprint()
    changed = [name for name in after if after[name] != _MACHINE.get(name)]
    if changed:
        print(f"\nFAILED: the machine's {' and '.join(changed)} changed during the tests "
              "(restarted, stopped or reconfigured): tests must use tests/services.py's own "
              "instances")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def launch(args: Sequence[str], **popen: Any) -> subprocess.Popen[Any]:
    """A server process leading its own process group, so ``end_tree`` reaches its workers
    (granian's, uvicorn's, hypercorn's) even once the process itself has gone."""
    return subprocess.Popen(args, start_new_session=True, **popen)


def end_tree(process: subprocess.Popen[Any]) -> None:
    """SIGKILL whatever is left of a server started by ``launch``: itself and every worker."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def stop_tree(process: subprocess.Popen[Any], timeout: float) -> int:
    """SIGTERM a server started by ``launch`` and wait for its exit code; past ``timeout``, or
    for workers left behind, ``end_tree``."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout)
    code = process.poll()
    end_tree(process)
    return process.returncode if code is None else code


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


FAKE_MODELS = """
[[models]]
id = "fake/ok"
provider = "fake"
upstream = "ok"
aliases = ["fake-ok"]
input_price = 1.0
output_price = 2.0
cached_input_price = 0.5
capabilities = ["tools", "vision", "reasoning"]
"""


def fake_config(tmp: Path, upstream_url: str, extra: str = "", models: str = FAKE_MODELS) -> str:
    """A gateway config: SQLite in ``tmp``, the mock, and a provider ``fake`` at the fake upstream.

    Every upstream model name of the fake is also servable as ``fake/<name>``.
    """
    return f"""
[server]
max_body_bytes = 1048576
graceful_timeout = 5.0
commit_timeout = 10.0

[storage]
url = "sqlite:///{tmp}/gateway.db"
ledger_flush_interval = 0.1

[upstream]
connect_timeout = 2.0
first_byte_timeout = 3.0
idle_timeout = 3.0

[providers.mock]
kind = "mock"

[providers.fake]
kind = "openai"
base_url = "{upstream_url}"
api_key = "sk-fake-upstream-secret"
allow_any_model = true
# Unlisted fake models are priced at $0 on purpose (without a price they would be refused).
default_input_price = 0.0
default_output_price = 0.0

[[models]]
id = "mock/echo"
provider = "mock"
upstream = "echo"
aliases = ["echo"]

[[models]]
id = "mock/lorem"
provider = "mock"
upstream = "lorem"
input_price = 0.1
output_price = 0.4
{models}
{"" if "[tiers." in extra else UNLIMITED_TIER}
{extra}
"""


# The tests' keys make many requests: without [tiers], the built-in tiers would limit them.
# A limit too high to reach, rather than none, so serve has no unlimited tier to warn about.
UNLIMITED_TIER = """
[tiers.free]
description = "the tests' keys: limits they never reach"
requests_per_minute = 1000000
"""


class GatewayProcess:
    """``gateway serve`` on a free port, with a key created through the CLI."""

    def __init__(self, tmp: Path, config_text: str, env: dict[str, str] | None = None) -> None:
        self.tmp = tmp
        self.config_path = tmp / "gateway.toml"
        self.config_path.write_text(config_text)
        self.port = free_port()
        self.env = {**os.environ, **(env or {})}
        self.log_path = tmp / "gateway.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.key = ""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [GATEWAY, *args, "--config", str(self.config_path)],
            capture_output=True,
            text=True,
            env=self.env,
            cwd=self.tmp,
            check=False,
        )

    def create_key(self, *args: str) -> str:
        result = self.cli("keys", "create", *args)
        assert result.returncode == 0, result.stderr
        return result.stdout.strip().splitlines()[-1]

    def start(
        self, workers: int = 1, server: str | None = None, timeout: float = 20
    ) -> GatewayProcess:
        """``gateway serve`` (on ``server``, or the default one) until ``/health`` answers; one
        that does not within ``timeout`` seconds is ended, with its workers."""
        self.key = self.key or self.create_key("--name", "tests", "--user", "tests@example.com")
        chosen = ["--server", server] if server else []
        self.process = launch(
            [GATEWAY, "serve", "--config", str(self.config_path), "--port", str(self.port),
             "--workers", str(workers), *chosen],
            stdout=self.log_path.open("ab"), stderr=subprocess.STDOUT, env=self.env, cwd=self.tmp,
        )
        try:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and self.process.poll() is None:
                try:
                    if httpx.get(f"{self.url}/health", timeout=0.5).status_code == 200:
                        return self
                except httpx.HTTPError:
                    time.sleep(0.05)
            exited = self.process.poll() is not None
            raise RuntimeError(
                f"gateway {'exited early' if exited else 'did not become healthy'}:\n{self.logs()}"
            )
        except BaseException:  # not healthy, or the run interrupted: nothing is left running
            end_tree(self.process)
            raise

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, timeout: float = 15) -> int:
        return stop_tree(self.process, timeout) if self.process is not None else 0

    def headers(self, key: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {key or self.key}"}

    def usage_rows(self) -> list[dict[str, object]]:
        import sqlite3

        with sqlite3.connect(self.tmp / "gateway.db") as db:
            db.row_factory = sqlite3.Row
            return [dict(row) for row in db.execute("SELECT * FROM usage ORDER BY created_at")]

    def usage_row(self, request_id: str, timeout: float = 5.0) -> dict[str, Any]:
        """The usage row of ``request_id``, once the ledger has written it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            rows = [r for r in self.usage_rows() if r["request_id"] == request_id]
            if rows:
                return rows[0]
            time.sleep(0.05)
        raise AssertionError(f"no usage row for {request_id}")


@pytest.fixture(scope="session")
def upstream() -> Iterator[FakeUpstream]:
    fake = FakeUpstream().start()
    yield fake
    fake.stop()


@pytest.fixture(scope="session")
def gateway(
    tmp_path_factory: pytest.TempPathFactory, upstream: FakeUpstream
) -> Iterator[GatewayProcess]:
    """One gateway for the session, in front of the mock and the fake upstream (OpenAI)."""
    tmp = tmp_path_factory.mktemp("gateway")
    process = GatewayProcess(tmp, fake_config(tmp, upstream.url)).start()
    yield process
    process.stop()


DIALECT_PROVIDERS = """
[providers.fakeanthropic]
kind = "anthropic"
base_url = "{origin}"
api_key = "sk-ant-fake-upstream-secret"
allow_any_model = true
default_input_price = 0.0
default_output_price = 0.0

[providers.fakegemini]
kind = "gemini"
base_url = "{origin}"
api_key = "gemini-fake-upstream-secret"
allow_any_model = true
default_input_price = 0.0
default_output_price = 0.0
"""


IMAGE_PROVIDERS = """
[providers.fakeminimax]
kind = "minimax"
base_url = "{origin}"
api_key = "minimax-fake-upstream-secret"
"""


@pytest.fixture(scope="session")
def dialect_gateway(
    tmp_path_factory: pytest.TempPathFactory, upstream: FakeUpstream
) -> Iterator[GatewayProcess]:
    """A gateway whose providers ``fake`` (OpenAI), ``fakeanthropic`` and ``fakegemini`` all
    point at ``upstream``; any ``<provider>/<upstream model>`` name is servable."""
    process = dialect_process(tmp_path_factory.mktemp("dialect-gateway"), upstream)
    yield process.start()
    process.stop()


def dialect_process(tmp: Path, upstream: FakeUpstream, models: str = FAKE_MODELS) -> GatewayProcess:
    """A gateway (not started) like ``dialect_gateway``'s, with the catalog ``models``."""
    extra = DIALECT_PROVIDERS.format(origin=upstream.origin)
    return GatewayProcess(tmp, fake_config(tmp, upstream.url, extra=extra, models=models))


@pytest.fixture
def fake(upstream: FakeUpstream) -> Iterator[FakeUpstream]:
    """The session's fake upstream, with its records cleared for this test."""
    upstream.reset()
    yield upstream
    upstream.reset()
