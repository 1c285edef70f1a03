"""The servers a benchmark run compares, each started as a child process pinned to one core.

Every target answers ``POST /v1/chat/completions`` in front of the same fake upstream:

- ``direct``   a second fake upstream, measured on its own (what no proxy costs)
- ``nginx``    ``proxy_pass`` to the fake upstream (the floor of any proxy)
- ``bare-*``   ``bench.bare_proxy`` (Starlette + aiohttp, nothing else) on an ASGI server
- ``gateway-*`` ``gateway serve --server *`` with auth, routing and the usage ledger on
- ``litellm``  LiteLLM's proxy at a pinned version, from its own virtualenv, no database

``model(scenario)`` is the name the target must be sent to reach that fake-upstream scenario;
``pids()`` are the processes whose CPU time and memory count against the target.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import aiohttp  # noqa: F401  (imported so a missing dependency fails before any server starts)

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
VENV_BIN = Path(sys.executable).parent
LITELLM_VERSION = "1.100.5"  # 1.107.0 was reported compromised: never that one
LITELLM_VENV = BENCH / ".venv-litellm"

SERVER_CPUS = "0"  # the target under test
LOAD_CPUS = "1"  # wrk, the stream client, the shared fake upstream

# Scenarios of the fake upstream used by the run (see bench/fake_upstream/scenario.py).
SCENARIOS = ("bench-tok16", "bench-tok64-gap20", "bench-tok600-gap100", "bench-tok64-gap2")


_handed_out: set[int] = set()


def free_port() -> int:
    """A free loopback port never handed out before in this run.

    The kernel may give the same ephemeral port to two probes in a row; two targets on one
    port means one dies at bind while the other answers its health checks.
    """
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port not in _handed_out:
            _handed_out.add(port)
            return port


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(children.get(current, []))
    return tree


_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: list[int]) -> float:
    """utime + stime of these processes, in seconds."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / _TICK


def rss_bytes(pids: list[int]) -> int:
    """Resident memory of these processes (VmRSS summed)."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as handle:
                for line in handle:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
                        break
        except OSError:
            continue
    return total


class Target:
    """One server under test."""

    cpus = SERVER_CPUS  # the cores the server may use (taskset list)

    name = ""
    kind = ""  # direct | nginx | bare | gateway | litellm
    startup_timeout = 30.0

    def __init__(self, workdir: Path, upstream_url: str) -> None:
        self.workdir = workdir / self.name
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.upstream_url = upstream_url
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.key = "bench-no-auth"
        self.keys: list[str] = [self.key]  # the load takes them in turn
        self._pids: list[int] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def model(self, scenario: str) -> str:
        return scenario

    def command(self) -> list[str]:
        raise NotImplementedError

    def env(self) -> dict[str, str]:
        return dict(os.environ)

    def prepare(self) -> None:
        """Write configuration files, create keys: anything before the server starts."""

    def start(self) -> None:
        self.prepare()
        log = (self.workdir / "server.log").open("ab")
        self.process = subprocess.Popen(
            ["taskset", "-c", self.cpus, *self.command()],
            stdout=log, stderr=subprocess.STDOUT, env=self.env(), cwd=self.workdir,
            start_new_session=True,
        )

    def wait_ready(self) -> None:
        import urllib.request

        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited at startup; see {self.workdir}/server.log")
            try:
                with urllib.request.urlopen(self.url + self.health_path, timeout=1) as response:
                    if response.status < 500:
                        time.sleep(0.3)  # a server that lost its port exits right after bind
                        if self.process.poll() is not None:
                            raise RuntimeError(
                                f"{self.name} exited at startup; see {self.workdir}/server.log"
                            )
                        self._pids = process_tree(self.process.pid)
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} not ready after {self.startup_timeout}s")

    health_path = "/health"

    def pids(self) -> list[int]:
        assert self.process is not None
        # Refresh: servers with workers may replace them.
        self._pids = process_tree(self.process.pid)
        return self._pids

    def cleanup(self) -> None:
        """After ``stop`` and the ledger's count: remove what ``prepare`` made outside workdir."""

    def stop(self, timeout: float = 15.0) -> int | None:
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else None
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            return self.process.wait(5)


class Direct(Target):
    name = "direct"
    kind = "direct"

    def command(self) -> list[str]:
        return [sys.executable, "-m", "bench.fake_upstream", "--port", str(self.port)]

    def env(self) -> dict[str, str]:
        return {**os.environ, "PYTHONPATH": str(ROOT)}


_NGINX_CONF = """
worker_processes 1;
daemon off;
master_process on;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
worker_rlimit_nofile 20000;
events {{ worker_connections 16384; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    upstream fake {{ server {upstream}; keepalive 512; }}
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        location = /health {{ return 200 '{{"status":"ok"}}'; }}
        location / {{
            proxy_pass http://fake;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
            proxy_read_timeout 120s;
        }}
    }}
}}
"""


class Nginx(Target):
    name = "nginx"
    kind = "nginx"

    def prepare(self) -> None:
        self.workdir.chmod(0o777)
        upstream = self.upstream_url.removeprefix("http://").rstrip("/")
        (self.workdir / "nginx.conf").write_text(
            _NGINX_CONF.format(dir=self.workdir, upstream=upstream, port=self.port)
        )

    def command(self) -> list[str]:
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        return [nginx, "-c", str(self.workdir / "nginx.conf"), "-p", str(self.workdir)]


def _asgi_command(server: str, app: str, port: int, factory: bool) -> list[str]:
    """The command that serves ``app`` (``module:callable``) on ``server`` like the gateway."""
    if server == "hypercorn":
        return [str(VENV_BIN / "hypercorn"), "--worker-class", "uvloop", "--bind",
                f"127.0.0.1:{port}", "--backlog", "4096", "--log-level", "WARNING",
                f"{app}()" if factory else app]
    if server == "uvicorn":
        return [str(VENV_BIN / "uvicorn"), *(["--factory"] if factory else []), "--loop",
                "uvloop", "--http", "httptools", "--host", "127.0.0.1", "--port", str(port),
                "--backlog", "4096", "--no-access-log", "--log-level", "warning", app]
    if server == "granian":
        return [str(VENV_BIN / "granian"), "--interface", "asgi",
                *(["--factory"] if factory else []), "--loop", "uvloop", "--host", "127.0.0.1",
                "--port", str(port), "--backlog", "4096", "--log-level", "warning", app]
    raise ValueError(server)


# The fallback row's two models, for the bare pass-through's floor of a fallback.
BARE_FALLBACKS = "bench-error500-tok16=bench-tok16"


class Bare(Target):
    kind = "bare"

    def __init__(self, workdir: Path, upstream_url: str, server: str = "hypercorn") -> None:
        self.server = server
        self.name = f"bare-{server}"
        super().__init__(workdir, upstream_url)

    def command(self) -> list[str]:
        return _asgi_command(self.server, "bench.bare_proxy:create_app", self.port, factory=True)

    def env(self) -> dict[str, str]:
        return {**os.environ, "PYTHONPATH": str(ROOT), "BARE_UPSTREAM": self.upstream_url,
                "BARE_FALLBACKS": BARE_FALLBACKS}


_GATEWAY_TOML = """
[server]
host = "127.0.0.1"
port = {port}
graceful_timeout = 10.0
log_level = "info"

[storage]
url = "sqlite:///{dir}/gateway.db"
ledger_flush_interval = 0.5

[limits]
storage = "memory://"

# Every limit on and counted, none ever reached: the bench measures the checks, not refusals.
# The load comes from USERS users in turn, so per-user windows hold what a busy user's would.
[tiers.bench]
requests_per_minute = 20000
requests_per_day = 1000000000
tokens_per_day = 1000000000000
tokens_per_month = 10000000000000
credits_per_day = 1000000000

[accounts]
default_tier = "bench"
operator_tier = "bench"

# A failing first model is tried by every request of the fallback row (never benched).
[routing]
allowed_fails = 1000000000

[upstream]
connect_timeout = 5.0
first_byte_timeout = 60.0
idle_timeout = 60.0

[providers.fake]
kind = "openai"
base_url = "{upstream}/v1"
api_key = "sk-bench-upstream"
allow_any_model = true
{models}
"""

# The surfaces' rows (bench/surfaces.py): a fallback whose first model answers 500.
_GATEWAY_FALLBACK = """
[[models]]
id = "bench/bench-error500-tok16"
provider = "fake"
upstream = "bench-error500-tok16"
input_price = 0.15
output_price = 0.60
fallbacks = ["bench/bench-tok16"]
"""

# An embeddings model, where the gateway has modes (``mode`` in [[models]]).
_GATEWAY_EMBEDDINGS = """
[[models]]
id = "bench/bench-embed"
provider = "fake"
upstream = "bench-embed"
mode = "embeddings"
input_price = 0.02
"""


def has_embeddings() -> bool:
    """Whether this checkout's gateway serves ``/v1/embeddings`` (models with a ``mode``)."""
    from gateway.config.schema import ModelConfig

    return "mode" in ModelConfig.__struct_fields__


def gateway_models() -> str:
    """The [[models]] of every bench gateway: the scenarios, the fallback, embeddings."""
    models = "".join(_GATEWAY_MODEL.format(scenario=s) for s in SCENARIOS)
    return models + _GATEWAY_FALLBACK + (_GATEWAY_EMBEDDINGS if has_embeddings() else "")


_GATEWAY_MODEL = """
[[models]]
id = "bench/{scenario}"
provider = "fake"
upstream = "{scenario}"
input_price = 0.15
output_price = 0.60
"""


USERS = 64  # distinct users (one key each) the load spreads over


async def _more_keys(config_path: Path, count: int) -> list[str]:
    """``count`` keys of distinct users in the bench tier, as ``gateway keys create`` makes."""
    from gateway.accounts.keys import create_key
    from gateway.config import load_config
    from gateway.storage import open_store

    config = load_config(str(config_path))
    store = await open_store(config.database_url)
    try:
        return [
            (await create_key(store, config.keys.prefix, name=f"bench-{i}",
                              user=f"bench{i}@example.com", tier="bench"))[0]
            for i in range(1, count + 1)
        ]
    finally:
        await store.close()


class Gateway(Target):
    kind = "gateway"
    suffix = ""  # of the name, for a variant of the configuration (bench/scaleout.py)

    def __init__(
        self, workdir: Path, upstream_url: str, server: str = "hypercorn", workers: int = 1,
        shared: bool = False,
    ) -> None:
        self.server = server
        self.workers = workers
        # Several workers only help with several cores: both, shared with the load. ``shared``
        # puts one worker there too, as goal 6's base: the same cores and neighbours as the
        # workers, so the ratio sees what the workers cost each other and nothing else.
        self.shared = shared or workers > 1
        self.name = f"gateway-{server}" + (f"-{workers}w" if self.shared else "") + self.suffix
        if self.shared:
            self.cpus = f"{SERVER_CPUS},{LOAD_CPUS}"
        super().__init__(workdir, upstream_url)
        self.config_path = self.workdir / "gateway.toml"
        self.db_path = self.workdir / "gateway.db"

    def model(self, scenario: str) -> str:
        return f"bench/{scenario}"

    def prepare(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.db_path.unlink()
        self.config_path.write_text(self.config_text())
        created = subprocess.run(
            [str(VENV_BIN / "gateway"), "keys", "create", "--config", str(self.config_path),
             "--name", "bench", "--user", "bench@example.com", "--tier", "bench"],
            capture_output=True, text=True, check=True, cwd=self.workdir,
        )
        self.key = created.stdout.strip().splitlines()[-1]
        self.keys = [self.key, *asyncio.run(_more_keys(self.config_path, USERS - 1))]

    def config_text(self) -> str:
        return _GATEWAY_TOML.format(port=self.port, dir=self.workdir, upstream=self.upstream_url,
                                    models=gateway_models())

    def command(self) -> list[str]:
        return [str(VENV_BIN / "gateway"), "serve", "--config", str(self.config_path),
                "--port", str(self.port), "--server", self.server,
                "--workers", str(self.workers)]

    def ledger_rows(self) -> tuple[int, int]:
        """(rows, rows with status 200) in the usage ledger; call after ``stop``."""
        with contextlib.closing(sqlite3.connect(self.db_path)) as db:
            rows = db.execute("SELECT count(*), sum(status = 200) FROM usage").fetchone()
        return int(rows[0] or 0), int(rows[1] or 0)


_LITELLM_YAML = """
model_list:
{models}
litellm_settings:
  telemetry: false
  drop_params: true
  set_verbose: false
  json_logs: false
general_settings:
  disable_spend_logs: true
"""

_LITELLM_MODEL = """  - model_name: "{scenario}"
    litellm_params:
      model: "openai/{scenario}"
      api_base: "{upstream}/v1"
      api_key: "sk-bench-upstream"
"""


class LiteLLM(Target):
    name = "litellm"
    kind = "litellm"
    startup_timeout = 120.0
    health_path = "/health/liveliness"

    def prepare(self) -> None:
        models = "".join(
            _LITELLM_MODEL.format(scenario=s, upstream=self.upstream_url) for s in SCENARIOS
        )
        (self.workdir / "litellm.yaml").write_text(_LITELLM_YAML.format(models=models))

    def command(self) -> list[str]:
        return [str(LITELLM_VENV / "bin" / "litellm"), "--config",
                str(self.workdir / "litellm.yaml"), "--host", "127.0.0.1", "--port",
                str(self.port), "--num_workers", "1"]

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "VIRTUAL_ENV")}
        env.update(LITELLM_LOG="ERROR", LITELLM_TELEMETRY="False", DISABLE_ADMIN_UI="True",
                   PATH=f"{LITELLM_VENV / 'bin'}:{env.get('PATH', '')}")
        env.pop("PYTHONPATH", None)
        return env


def litellm_installed() -> bool:
    return (LITELLM_VENV / "bin" / "litellm").exists()


def install_litellm() -> None:
    """LiteLLM's proxy at the pinned version in its own virtualenv (once)."""
    if litellm_installed():
        return
    subprocess.run([sys.executable, "-m", "venv", str(LITELLM_VENV)], check=True)
    subprocess.run(
        [str(LITELLM_VENV / "bin" / "pip"), "install", "-q", f"litellm[proxy]=={LITELLM_VERSION}"],
        check=True,
    )
