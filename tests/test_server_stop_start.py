"""Start-up and shutdown on every server: banner after bind, busy port, drain, cut, second signal.

Each test runs ``gateway serve --server <name>`` for hypercorn (the default), uvicorn and
granian, and drives it with raw sockets where a slow client is the point.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import httpx2 as httpx
import pytest

from bench.fake_upstream import FakeUpstream
from tests.conftest import (
    GATEWAY,
    GatewayProcess,
    end_tree,
    fake_config,
    free_port,
    launch,
    stop_tree,
)

pytestmark = pytest.mark.e2e

SERVERS = ["hypercorn", "uvicorn", "granian"]
GRACE = 2.0


def start(
    tmp: Path, upstream: FakeUpstream, server: str, grace: float = GRACE, extra: str = "",
    workers: int = 1,
) -> GatewayProcess:
    """``gateway serve --server <server>`` on a free port, healthy."""
    if server != "hypercorn":
        pytest.importorskip(server)
    config = fake_config(tmp, upstream.url).replace(
        "graceful_timeout = 5.0", f"graceful_timeout = {grace}\n{extra}"
    )
    gateway = GatewayProcess(tmp, config)
    gateway.key = gateway.create_key("--name", "stop", "--user", "stop@example.com")
    return gateway.start(workers, server=server, timeout=30)


def open_stream(
    gateway: GatewayProcess, model: str, request_id: str, **body: object
) -> socket.socket:
    """A raw connection with a streamed chat request sent, and a small receive buffer."""
    import json

    payload = json.dumps({
        "model": model, "stream": True, "messages": [{"role": "user", "content": "go on"}],
        **body,
    }).encode()
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(30)  # a server that never answers fails the test instead of hanging it
    sock.connect(("127.0.0.1", gateway.port))
    sock.sendall(
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\n"
        + f"Authorization: Bearer {gateway.key}\r\nx-request-id: {request_id}\r\n".encode()
        + f"Content-Length: {len(payload)}\r\n\r\n".encode() + payload
    )
    first = sock.recv(2048)
    assert first.startswith(b"HTTP/1.1 200"), first
    return sock


def read_slowly(sock: socket.socket, stop: threading.Event) -> None:
    """Read 2 KB a second, like ``curl --limit-rate 2k``, until the server closes."""
    sock.settimeout(1.0)
    while not stop.is_set():
        try:
            if not sock.recv(2048):
                return
        except TimeoutError:
            continue
        except OSError:
            return
        time.sleep(1.0)


def row(gateway: GatewayProcess, request_id: str) -> dict[str, object]:
    rows = [r for r in gateway.usage_rows() if r["request_id"] == request_id]
    assert len(rows) == 1, gateway.usage_rows()
    return rows[0]


@pytest.mark.parametrize(("server", "workers"), [
    ("hypercorn", 1), ("uvicorn", 1), ("granian", 1), ("hypercorn", 2),
])
def test_sigterm_cuts_a_slowly_read_stream_after_the_grace_period_and_exits_0(
    tmp_path: Path, upstream: FakeUpstream, server: str, workers: int
) -> None:
    gateway = start(tmp_path, upstream, server, workers=workers)
    # About 1.5 MB of prose: far more than the socket buffers hold at 2 KB a second.
    sock = open_stream(gateway, "mock/lorem", "slow-reader", max_tokens=200000)
    stop = threading.Event()
    reader = threading.Thread(target=read_slowly, args=(sock, stop), daemon=True)
    reader.start()
    try:
        time.sleep(0.5)
        assert gateway.process is not None
        gateway.process.send_signal(signal.SIGTERM)
        code = gateway.process.wait(GRACE + 5)
    finally:
        stop.set()
        sock.close()
        end_tree(gateway.process)  # what overstayed (the wait above has failed the test)
    logs = gateway.logs()
    assert code == 0, logs
    assert f"shutting down: 1 open streams, waiting up to {GRACE:g} s" in logs  # its worker
    plain = "\n".join(line for line in logs.splitlines() if not line.startswith("{"))
    assert "traceback" not in plain.lower() and "error" not in plain.lower(), logs
    assert '"level":"error"' not in logs, logs
    cut = row(gateway, "slow-reader")
    assert (cut["status"], cut["error_type"]) == (499, "shutdown")
    # What was sent before the cut is billed.
    assert isinstance(cut["completion_tokens"], int) and cut["completion_tokens"] > 0
    assert isinstance(cut["cost_usd"], float) and cut["cost_usd"] > 0


@pytest.mark.parametrize("server", SERVERS)
def test_a_second_signal_flushes_and_exits_at_once(
    tmp_path: Path, upstream: FakeUpstream, server: str
) -> None:
    gateway = start(tmp_path, upstream, server, grace=120.0)
    words = " ".join(["w"] * 200)  # 200 words at 100 ms: 20 s, far less than the grace period
    sock = open_stream(gateway, "fake/gap100", "second-signal",
                       messages=[{"role": "user", "content": words}])
    try:
        assert gateway.process is not None
        gateway.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 10
        while "shutting down" not in gateway.logs() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "shutting down: 1 open streams, waiting up to 120 s" in gateway.logs()
        with pytest.raises(subprocess.TimeoutExpired):
            gateway.process.wait(1.0)  # still draining
        gateway.process.send_signal(signal.SIGTERM)
        code = gateway.process.wait(5)
    finally:
        sock.close()
        end_tree(gateway.process)
    logs = gateway.logs()
    assert code == 0, logs
    assert "Traceback" not in logs, logs
    cut = row(gateway, "second-signal")
    assert (cut["status"], cut["error_type"]) == (499, "shutdown")
    assert isinstance(cut["completion_tokens"], int) and cut["completion_tokens"] > 0


@pytest.mark.parametrize("server", SERVERS)
def test_the_banner_comes_after_the_port_is_bound(
    tmp_path: Path, upstream: FakeUpstream, server: str
) -> None:
    if server != "hypercorn":
        pytest.importorskip(server)
    config = tmp_path / "gateway.toml"
    config.write_text(fake_config(tmp_path, upstream.url))
    subprocess.run([GATEWAY, "keys", "create", "--config", str(config)], check=True,
                   capture_output=True)
    port = free_port()
    process = launch(
        [GATEWAY, "serve", "--config", str(config), "--port", str(port), "--server", server],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("Gateway listening on"), line
        # At once, no retry: the port is already taking connections.
        assert httpx.get(f"http://127.0.0.1:{port}/health", timeout=10).status_code == 200
    finally:
        assert stop_tree(process, 15) == 0


@pytest.mark.parametrize("server", SERVERS)
def test_a_busy_port_is_one_line_and_exit_code_2(
    tmp_path: Path, upstream: FakeUpstream, server: str
) -> None:
    if server != "hypercorn":
        pytest.importorskip(server)
    config = tmp_path / "gateway.toml"
    config.write_text(fake_config(tmp_path, upstream.url))
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run(
            [GATEWAY, "serve", "--config", str(config), "--port", str(port), "--server", server],
            capture_output=True, text=True, timeout=30,
        )
    assert result.returncode == 2
    assert "listening" not in result.stdout.lower()
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and f"port {port}" in lines[0] and "--port" in lines[0], lines
