"""The real PostgreSQL and Redis on this machine, for the scale-out tests.

Each test session gets its own database (``gw_test_<random>`` on the server of the ``test``
database, dropped at the end) and its own Redis key prefix, so parallel runs never collide.
If a service is stopped, it is started the way the README says.
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

PG_ADMIN_URL = "postgresql://127.0.0.1:5432/test"
REDIS_URL = "redis://127.0.0.1:6379/0"


def _psql(sql: str, database: str = "test") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["psql", "-h", "127.0.0.1", "-d", database, "-v", "ON_ERROR_STOP=1", "-qAtc", sql],
        capture_output=True, text=True, check=False, timeout=30,
    )


def _pg_version() -> str:
    versions = sorted(Path("/etc/postgresql").iterdir()) if Path("/etc/postgresql").exists() else []
    if not versions:
        pytest.skip("PostgreSQL is not installed on this machine (/etc/postgresql is empty)")
    return versions[-1].name


def pg_ctl(action: str) -> None:
    """``pg_ctlcluster <version> main <action>`` (start, stop, restart), fast shutdown."""
    args = ["pg_ctlcluster", "--skip-systemctl-redirect", _pg_version(), "main", action]
    if action in ("stop", "restart"):
        args += ["-m", "fast"]
    subprocess.run(args, capture_output=True, text=True, check=False, timeout=60)


def wait_postgres(timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _psql("SELECT 1").returncode == 0:
            return True
        time.sleep(0.2)
    return False


def postgres_up() -> bool:
    return _psql("SELECT 1").returncode == 0


def ensure_postgres() -> None:
    if shutil.which("psql") is None:
        pytest.skip("PostgreSQL is not installed on this machine (apt-get install postgresql)")
    if _psql("SELECT 1").returncode == 0:
        return
    pg_ctl("start")
    if not wait_postgres():
        pytest.fail("PostgreSQL is not running and pg_ctlcluster could not start it")


def redis_ping() -> bool:
    result = subprocess.run(
        ["redis-cli", "-h", "127.0.0.1", "-p", "6379", "ping"],
        capture_output=True, text=True, check=False, timeout=10,
    )
    return result.stdout.strip() == "PONG"


def start_redis() -> None:
    subprocess.run(
        ["redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "--port", "6379",
         "--save", "", "--appendonly", "no"],
        capture_output=True, check=False, timeout=30,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not redis_ping():
        time.sleep(0.1)


def stop_redis() -> None:
    subprocess.run(
        ["redis-cli", "-h", "127.0.0.1", "-p", "6379", "shutdown", "nosave"],
        capture_output=True, check=False, timeout=30,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and redis_ping():
        time.sleep(0.05)


def ensure_redis() -> None:
    if shutil.which("redis-server") is None or shutil.which("redis-cli") is None:
        pytest.skip("Redis is not installed on this machine (apt-get install redis-server)")
    if not redis_ping():
        start_redis()
    if not redis_ping():
        pytest.fail("Redis is not running and redis-server could not start it")


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A fresh, empty database for this session; dropped at the end."""
    ensure_postgres()
    name = "gw_test_" + secrets.token_hex(6)
    result = _psql(f"CREATE DATABASE {name}")
    assert result.returncode == 0, result.stderr
    yield f"postgresql://127.0.0.1:5432/{name}"
    ensure_postgres()
    _psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def pg_query(url: str, sql: str) -> list[list[str]]:
    """Rows of a query as lists of text (psql's unaligned output)."""
    result = _psql(sql, url.rsplit("/", 1)[-1])
    assert result.returncode == 0, result.stderr
    return [line.split("|") for line in result.stdout.splitlines() if line]


@pytest.fixture(scope="session")
def redis_prefix() -> Iterator[str]:
    """A Redis key prefix of this session's own; its keys are deleted at the end."""
    ensure_redis()
    prefix = f"gwtest:{secrets.token_hex(4)}:"
    yield prefix
    if redis_ping():
        import redis

        client = redis.Redis.from_url(REDIS_URL)
        for key in client.scan_iter(f"{prefix}*"):
            client.delete(key)
        client.close()
