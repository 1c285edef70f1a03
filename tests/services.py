"""Throwaway PostgreSQL and Redis servers for the tests; the machine's own are never touched.

Each test session starts, on first use, its own ``redis-server`` and its own PostgreSQL cluster
(``initdb`` + ``pg_ctl``, run as the unprivileged ``postgres`` user when the tests run as root),
on free ports and in temporary directories, and stops and deletes them at the end. Tests that
simulate an outage stop and start these instances (``stop_redis``, ``pg_ctl("stop")``), so the
Redis and PostgreSQL of the machine keep their processes, data and settings.

``machine_fingerprint`` describes the machine's own services (process ids and settings), so
the session can check that the suite left them exactly as it found them.
"""

from __future__ import annotations

import atexit
import os
import random
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest


def _unused_port() -> int:
    """A free port below the ephemeral range, so no client socket takes it between restarts."""
    for _ in range(200):
        port = random.randint(20000, 30000)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port between 20000 and 30000")


REDIS_PORT = _unused_port()
PG_PORT = _unused_port()
REDIS_URL = f"redis://127.0.0.1:{REDIS_PORT}/0"
PG_ADMIN_URL = f"postgresql://postgres@127.0.0.1:{PG_PORT}/test"

_state: dict[str, Path | subprocess.Popen[bytes] | None] = {"redis": None}
_dirs: dict[str, Path] = {}


def _tempdir(name: str, owner: str | None = None) -> Path:
    """A temporary directory, created once per session (and owned by ``owner`` if given)."""
    if name not in _dirs:
        path = Path(tempfile.mkdtemp(prefix=f"gateway-test-{name}-"))
        if owner:
            shutil.chown(path, owner, owner)
        _dirs[name] = path
    return _dirs[name]


# --- Redis ---


def redis_ping() -> bool:
    result = subprocess.run(
        ["redis-cli", "-h", "127.0.0.1", "-p", str(REDIS_PORT), "ping"],
        capture_output=True, text=True, check=False, timeout=10,
    )
    return result.stdout.strip() == "PONG"


def start_redis() -> None:
    """Start this session's Redis (no persistence, 127.0.0.1 only) and wait until it answers."""
    running = _state["redis"]
    if isinstance(running, subprocess.Popen) and running.poll() is None:
        return
    directory = _tempdir("redis")
    _state["redis"] = subprocess.Popen(
        ["redis-server", "--port", str(REDIS_PORT), "--bind", "127.0.0.1", "--dir", str(directory),
         "--save", "", "--appendonly", "no", "--daemonize", "no"],
        stdout=(directory / "redis.log").open("ab"), stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not redis_ping():
        time.sleep(0.05)


def stop_redis() -> None:
    """Stop this session's Redis (an outage, for the tests that need one)."""
    running = _state["redis"]
    if isinstance(running, subprocess.Popen) and running.poll() is None:
        running.terminate()
        running.wait(20)


def ensure_redis() -> None:
    if shutil.which("redis-server") is None or shutil.which("redis-cli") is None:
        pytest.skip("Redis is not installed on this machine (apt-get install redis-server)")
    start_redis()
    if not redis_ping():
        log = _tempdir("redis") / "redis.log"
        pytest.fail(f"the tests' own redis-server did not start:\n{log.read_text()[-2000:]}")


# --- PostgreSQL ---


def _pg_bin(name: str) -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"),
                   key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0)
    if found:
        return found[-1]
    on_path = shutil.which(name)
    if on_path is None:
        pytest.skip(f"PostgreSQL is not installed on this machine (no {name}; "
                    "apt-get install postgresql)")
    return Path(on_path)


def _as_pg_user(args: list[str]) -> list[str]:
    """``initdb`` and ``postgres`` refuse to run as root: run them as ``postgres`` then."""
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


def _pg_dir() -> Path:
    return _tempdir("postgres", "postgres" if os.geteuid() == 0 else None)


def _pg_ctl_args(action: str) -> list[str]:
    base = _pg_dir()
    args = [str(_pg_bin("pg_ctl")), action, "-D", str(base / "data"), "-w", "-t", "60",
            "-l", str(base / "postgres.log")]
    if action in ("start", "restart"):
        args += ["-o", f"-p {PG_PORT} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off "
                       "-c full_page_writes=off -c synchronous_commit=off"]
    if action in ("stop", "restart"):
        args += ["-m", "fast"]
    return _as_pg_user(args)


def _initdb() -> None:
    base = _pg_dir()
    if (base / "data" / "PG_VERSION").exists():
        return
    result = subprocess.run(
        _as_pg_user([str(_pg_bin("initdb")), "-D", str(base / "data"), "-U", "postgres",
                     "-A", "trust", "-E", "UTF8", "--no-sync"]),
        capture_output=True, text=True, check=False, timeout=120,
    )
    if result.returncode != 0:
        pytest.fail(f"initdb failed for the tests' own PostgreSQL:\n{result.stderr}")


def pg_ctl(action: str) -> None:
    """``pg_ctl <action>`` (start, stop, restart; fast shutdown) on this session's cluster."""
    _initdb()
    subprocess.run(_pg_ctl_args(action), capture_output=True, text=True, check=False, timeout=90)


def _psql(sql: str, database: str = "test") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["psql", "-h", "127.0.0.1", "-p", str(PG_PORT), "-U", "postgres", "-d", database,
         "-v", "ON_ERROR_STOP=1", "-qAtc", sql],
        capture_output=True, text=True, check=False, timeout=30,
    )


def wait_postgres(timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if postgres_up():
            return True
        time.sleep(0.2)
    return False


def postgres_up() -> bool:
    return _psql("SELECT 1", "postgres").returncode == 0


def ensure_postgres() -> None:
    """This session's PostgreSQL is running, with a database ``test``."""
    if shutil.which("psql") is None:
        pytest.skip("PostgreSQL is not installed on this machine (apt-get install postgresql)")
    if postgres_up():
        return
    pg_ctl("start")
    if not wait_postgres():
        log = _pg_dir() / "postgres.log"
        text = log.read_text()[-2000:] if log.exists() else ""
        pytest.fail(f"the tests' own PostgreSQL did not start:\n{text}")
    if _psql("SELECT 1").returncode != 0:
        created = _psql("CREATE DATABASE test", "postgres")
        assert created.returncode == 0, created.stderr


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A fresh, empty database for this session; dropped at the end."""
    ensure_postgres()
    name = "gw_test_" + secrets.token_hex(6)
    result = _psql(f"CREATE DATABASE {name}")
    assert result.returncode == 0, result.stderr
    yield f"postgresql://postgres@127.0.0.1:{PG_PORT}/{name}"
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


def stop_all() -> None:
    """Stop this session's servers and delete their directories (at exit)."""
    stop_redis()
    if "postgres" in _dirs and (_dirs["postgres"] / "data" / "postmaster.pid").exists():
        subprocess.run(_pg_ctl_args("stop"), capture_output=True, check=False, timeout=90)
    for path in _dirs.values():
        shutil.rmtree(path, ignore_errors=True)
    _dirs.clear()


atexit.register(stop_all)


# --- the machine's own services, only looked at ---


def machine_fingerprint() -> dict[str, object]:
    """Process ids and settings of the machine's Redis (6379) and PostgreSQL (5432), read-only.

    A service that is not running reads as ``None``; a restart changes the process id (Redis)
    or the start time (PostgreSQL), a reconfiguration changes the settings.
    """
    redis_info = subprocess.run(
        ["redis-cli", "-h", "127.0.0.1", "-p", "6379", "--raw", "info", "server"],
        capture_output=True, text=True, check=False, timeout=10,
    ) if shutil.which("redis-cli") else None
    redis: object = None
    if redis_info is not None and "process_id:" in redis_info.stdout:
        fields = dict(line.split(":", 1) for line in redis_info.stdout.splitlines() if ":" in line)
        config = subprocess.run(
            ["redis-cli", "-h", "127.0.0.1", "-p", "6379", "--raw", "config", "get", "*"],
            capture_output=True, text=True, check=False, timeout=10,
        ).stdout.splitlines()
        redis = {"pid": fields.get("process_id", "").strip(),
                 "config": dict(zip(config[::2], config[1::2], strict=False))}
    postgres: object = None
    if shutil.which("psql"):
        result = subprocess.run(
            ["psql", "-h", "127.0.0.1", "-p", "5432", "-d", "test", "-qAtc",
             "SELECT pg_postmaster_start_time(), string_agg(name || '=' || setting, ',' "
             "ORDER BY name) FROM pg_settings"],
            capture_output=True, text=True, check=False, timeout=30,
        )
        postgres = result.stdout.strip() if result.returncode == 0 else None
    return {"redis": redis, "postgres": postgres}
