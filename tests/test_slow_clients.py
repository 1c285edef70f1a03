"""Slow clients on every server, with raw sockets: header deadline, body timeout, caps, 413."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.fake_upstream import FakeUpstream
from tests.conftest import GatewayProcess
from tests.test_server_stop_start import SERVERS, open_stream, start

pytestmark = pytest.mark.e2e

DEADLINES = "header_timeout = 1.0\nbody_timeout = 1.0\n"


@pytest.fixture
def stopping() -> Iterator[list[GatewayProcess]]:
    started: list[GatewayProcess] = []
    yield started
    for gateway in started:
        gateway.stop()


@pytest.fixture(scope="module", params=SERVERS)
def guarded(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
    upstream: FakeUpstream,
) -> Iterator[GatewayProcess]:
    """One gateway per server with 1 s header and body deadlines, for the module's tests."""
    gateway = start(tmp_path_factory.mktemp(request.param), upstream, request.param,
                    extra=DEADLINES)
    yield gateway
    gateway.stop()


def connect(gateway: GatewayProcess) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", gateway.port), timeout=10)
    return sock


def closed_within(sock: socket.socket, seconds: float, dribble: bytes = b"") -> bool:
    """Whether the server closes ``sock`` within ``seconds`` (sending ``dribble`` meanwhile)."""
    deadline = time.monotonic() + seconds
    sock.settimeout(0.3)
    while time.monotonic() < deadline:
        try:
            if dribble:
                sock.sendall(dribble)
            if not sock.recv(65536):
                return True
        except TimeoutError:
            continue
        except OSError:
            return True
    return False


def status_of(sock: socket.socket) -> bytes:
    sock.settimeout(10)
    return sock.recv(65536).split(b"\r\n", 1)[0]


def health(gateway: GatewayProcess) -> bytes:
    with connect(gateway) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: gw\r\n\r\n")
        return status_of(sock)


def test_clients_dribbling_headers_are_disconnected_at_the_header_deadline(
    guarded: GatewayProcess,
) -> None:
    gateway = guarded
    dribblers = [connect(gateway) for _ in range(100)]
    for sock in dribblers:
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\n")
    try:
        # A header line every 0.3 s, for ever: each is cut at the 1 s deadline, not held.
        assert all(closed_within(sock, 8, b"X-Slow: 1\r\n") for sock in dribblers)
    finally:
        for sock in dribblers:
            sock.close()
    assert health(gateway) .startswith(b"HTTP/1.1 200")


def test_a_request_body_that_stops_arriving_gets_408(guarded: GatewayProcess) -> None:
    gateway = guarded
    with connect(gateway) as sock:
        sock.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\n"
            + f"Authorization: Bearer {gateway.key}\r\nContent-Length: 100\r\n\r\n".encode()
            + b'{"model": '
        )
        assert status_of(sock).startswith(b"HTTP/1.1 408")
        assert closed_within(sock, 5)


@pytest.mark.parametrize("server", SERVERS)
def test_connections_past_the_cap_get_503(
    tmp_path: Path, upstream: FakeUpstream, server: str, stopping: list[GatewayProcess]
) -> None:
    gateway = start(tmp_path, upstream, server, extra="max_connections = 3\n")
    stopping.append(gateway)
    words = " ".join(["w"] * 40)  # 40 words at 200 ms: each stream holds its connection 8 s
    streams: list[socket.socket] = []
    while len(streams) < 3:  # a connection of the health checks may still be closing
        try:
            streams.append(open_stream(gateway, "fake/gap200", f"cap-{len(streams)}",
                                       messages=[{"role": "user", "content": words}]))
        except AssertionError:
            time.sleep(0.2)
    try:
        assert health(gateway).startswith(b"HTTP/1.1 503")
    finally:
        for sock in streams:
            sock.close()
    deadline = time.monotonic() + 10
    while health(gateway).startswith(b"HTTP/1.1 503") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert health(gateway) .startswith(b"HTTP/1.1 200")


def test_a_refused_upload_closes_its_connection_after_the_413(guarded: GatewayProcess) -> None:
    gateway = guarded
    with connect(gateway) as sock:
        sock.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\n"
            + f"Authorization: Bearer {gateway.key}\r\n".encode()
            + f"Content-Length: {64 * 1024 * 1024}\r\n\r\n".encode() + b"x" * 65536
        )
        assert status_of(sock).startswith(b"HTTP/1.1 413")
        # The client goes on uploading; the server does not read the 64 MB: it hangs up.
        assert closed_within(sock, 5, b"x" * 65536)


def test_the_slow_client_settings_are_checked() -> None:
    from gateway.config import ConfigError, parse_config

    assert parse_config("").server.header_timeout == 10.0
    assert parse_config("").server.body_timeout == 30.0
    for bad in ("header_timeout = 0", "body_timeout = -1", "max_connections = 0"):
        with pytest.raises(ConfigError, match=bad.split()[0]):
            parse_config(f"[server]\n{bad}\n")
