"""The provider-side HTTP/1.1 client (adapters.http1 behind UpstreamClient), against scripted
servers on loopback: keep-alive reuse, limits, timeouts, odd but valid answers, refusals."""

from __future__ import annotations

import asyncio
import gc
import gzip
import ssl
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from adapters.errors import ProviderConnectionError, ProviderHTTPError, ProviderTimeout
from adapters.upstream import Timeouts, UpstreamClient

pytestmark = pytest.mark.unit

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class Scripted:
    """A server whose every connection runs ``handler``; it counts connections and requests."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.requests: list[bytes] = []
        self.closed = asyncio.Event()

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await self.handler(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self.closed.set()
            writer.close()

    async def request(self, reader: asyncio.StreamReader) -> bytes:
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        body = await reader.readexactly(length)
        self.requests.append(head + body)
        return body


@pytest.fixture
async def scripted() -> AsyncIterator[Callable[[Handler], Awaitable[tuple[Scripted, str]]]]:
    servers: list[asyncio.Server] = []

    async def start(handler: Handler) -> tuple[Scripted, str]:
        script = Scripted(handler)
        server = await asyncio.start_server(script.serve, "127.0.0.1", 0)
        servers.append(server)
        port = server.sockets[0].getsockname()[1]
        return script, f"http://127.0.0.1:{port}/v1/x"

    yield start
    for server in servers:
        server.close()


def answer(body: bytes, *headers: str, status: str = "200 OK") -> bytes:
    lines = "".join(f"{h}\r\n" for h in headers)
    return (f"HTTP/1.1 {status}\r\nContent-Length: {len(body)}\r\n{lines}\r\n").encode() + body


async def test_one_connection_serves_requests_one_after_another(scripted) -> None:  # type: ignore[no-untyped-def]
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            body = await script.request(reader)
            writer.write(answer(body.upper()))

    script, url = await scripted(echo)
    client = UpstreamClient(Timeouts())
    try:
        replies = [await client.fetch(url, f"call {n}".encode(), {"X-A": "1"}) for n in range(5)]
    finally:
        await client.close()
    assert replies == [f"CALL {n}".encode() for n in range(5)]
    assert script.connections == 1
    assert script.requests[0].startswith(b"POST /v1/x HTTP/1.1\r\nHost: 127.0.0.1:")
    assert b"\r\nX-A: 1\r\n" in script.requests[0]


async def test_the_per_host_limit_queues_requests_instead_of_failing(scripted) -> None:  # type: ignore[no-untyped-def]
    async def slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            body = await script.request(reader)
            await asyncio.sleep(0.02)
            writer.write(answer(body))

    script, url = await scripted(slow)
    client = UpstreamClient(Timeouts(), max_connections_per_host=2)
    try:
        replies = await asyncio.gather(*(client.fetch(url, b"%d" % n, {}) for n in range(6)))
    finally:
        await client.close()
    assert sorted(replies) == [b"%d" % n for n in range(6)]
    assert script.connections == 2


async def test_a_connection_the_server_closed_while_idle_is_replaced(scripted) -> None:  # type: ignore[no-untyped-def]
    async def once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        body = await script.request(reader)
        writer.write(answer(body))
        await writer.drain()  # then close: the server's keep-alive ended

    script, url = await scripted(once)
    client = UpstreamClient(Timeouts())
    try:
        assert await client.fetch(url, b"first", {}) == b"first"
        await script.closed.wait()
        await asyncio.sleep(0.05)
        assert await client.fetch(url, b"second", {}) == b"second"
    finally:
        await client.close()
    assert script.connections == 2


async def test_gzip_chunked_and_close_delimited_bodies_are_read_whole(scripted) -> None:  # type: ignore[no-untyped-def]
    big = b"x" * 700_000  # past the read buffer's high-water mark: reading pauses and resumes

    async def varied(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            body = await script.request(reader)
            if body == b"gzip":
                writer.write(answer(gzip.compress(b"unzipped"), "Content-Encoding: gzip"))
            elif body == b"chunked":
                writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                             b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
            else:
                writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + big)
                await writer.drain()
                return

    script, url = await scripted(varied)
    client = UpstreamClient(Timeouts())
    try:
        assert await client.fetch(url, b"gzip", {}) == b"unzipped"
        assert await client.fetch(url, b"chunked", {}) == b"abcde"
        assert await client.fetch(url, b"until-close", {}) == big
    finally:
        await client.close()


async def test_a_long_answer_leaves_its_connection_ready_for_the_next(scripted) -> None:  # type: ignore[no-untyped-def]
    long = b"y" * 700_000  # past the high-water mark: reading pauses while it arrives

    async def server(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            body = await script.request(reader)
            writer.write(answer(long if body == b"long" else body))

    script, url = await scripted(server)
    client = UpstreamClient(Timeouts(first_byte=2, idle=2))
    try:
        for _ in range(3):
            assert await client.fetch(url, b"long", {}) == long
            assert await client.fetch(url, b"short", {}) == b"short"
    finally:
        await client.close()
    assert script.connections == 1


async def test_timeouts_name_their_phase(scripted) -> None:  # type: ignore[no-untyped-def]
    async def stalls(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        body = await script.request(reader)
        if body == b"head":
            await asyncio.sleep(5)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n")
        await asyncio.sleep(5)

    script, url = await scripted(stalls)
    client = UpstreamClient(Timeouts(first_byte=0.2, idle=0.2))
    try:
        with pytest.raises(ProviderTimeout) as first:
            await client.post(url, b"head", {})
        response = await client.post(url, b"body", {})
        assert [await response.content.readany()] == [b"abc"]
        with pytest.raises(ProviderTimeout) as idle:
            await response.read()
        response.close()
    finally:
        await client.close()
    assert (first.value.phase, idle.value.phase) == ("first_byte", "idle")


async def test_a_reused_connection_keeps_each_calls_own_first_byte_deadline(scripted) -> None:  # type: ignore[no-untyped-def]
    async def paced(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            body = await script.request(reader)
            if body == b"late":
                await asyncio.sleep(0.2)
            elif body == b"never":
                await asyncio.sleep(5)
            writer.write(answer(body))

    script, url = await scripted(paced)
    loop = asyncio.get_running_loop()
    client = UpstreamClient(Timeouts(first_byte=0.3, idle=0.3))
    try:
        assert await client.fetch(url, b"now", {}) == b"now"
        await asyncio.sleep(0.2)
        # The last call's deadline passes while this one waits: not this one's.
        assert await client.fetch(url, b"late", {}) == b"late"
        client.timeouts = Timeouts(first_byte=30.0, idle=30.0)
        await asyncio.sleep(0.35)  # the short deadline has passed: the next call arms its own
        assert await client.fetch(url, b"now", {}) == b"now"
        client.timeouts = Timeouts(first_byte=0.2, idle=0.2)
        started = loop.time()
        with pytest.raises(ProviderTimeout) as late:
            await client.fetch(url, b"never", {})  # the last call's 30 s are not this one's
        assert loop.time() - started < 2
    finally:
        await client.close()
    assert late.value.phase == "first_byte"
    assert script.connections == 1


async def test_closing_an_unfinished_answer_ends_the_connection(scripted) -> None:  # type: ignore[no-untyped-def]
    async def streams(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await script.request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n")
        await writer.drain()
        assert await reader.read() == b""  # the caller left: the provider sees the end

    script, url = await scripted(streams)
    client = UpstreamClient(Timeouts())
    try:
        response = await client.post(url, b"", {})
        assert await response.content.readany() == b"abc"
        response.close()
        await asyncio.wait_for(script.closed.wait(), 2)
    finally:
        await client.close()


async def test_an_aborted_connection_is_freed_without_the_cycle_collector(scripted) -> None:  # type: ignore[no-untyped-def]
    # Every client that leaves mid-stream aborts one: left in reference cycles (parser and
    # transport hold the protocol), each waited for a full collection (bench/README.md).
    async def streams(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await script.request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n")
        await writer.drain()
        await reader.read()

    script, url = await scripted(streams)
    client = UpstreamClient(Timeouts())
    gc.disable()
    try:
        response = await client.post(url, b"", {})
        assert await response.content.readany() == b"abc"
        connection = weakref.ref(response.content)
        response.close()
        await asyncio.wait_for(script.closed.wait(), 2)
        await asyncio.sleep(0.05)  # connection_lost
        del response
        assert connection() is None
    finally:
        gc.enable()
        await client.close()


async def test_error_statuses_and_refusals_reach_the_caller_mapped(scripted) -> None:  # type: ignore[no-untyped-def]
    async def limited(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await script.request(reader)
            writer.write(answer(b'{"error":{"message":"slow down"}}', "Retry-After: 7",
                                status="429 Too Many Requests"))

    script, url = await scripted(limited)
    client = UpstreamClient(Timeouts(connect=1))
    try:
        with pytest.raises(ProviderHTTPError) as limited_error:
            await client.fetch(url, b"{}", {})
        with pytest.raises(ProviderConnectionError):  # a header smuggling a second header
            await client.fetch(url, b"{}", {"Authorization": "Bearer k\r\nX-Evil: 1"})
        with pytest.raises(ProviderConnectionError):  # nothing listens there
            await client.fetch("http://127.0.0.1:9/v1/x", b"{}", {})
    finally:
        await client.close()
    error = limited_error.value
    assert (error.status, error.message, error.retry_after) == (429, "slow down", 7.0)
    assert len(script.requests) == 1  # the refused header never left the gateway


def _self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for ``localhost`` and 127.0.0.1, and its key."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([
            x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


async def test_https_providers_are_verified_against_the_ca_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cert, key = _self_signed(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
        body = await reader.readexactly(length)
        writer.write(answer(b"tls:" + body))
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(echo, "127.0.0.1", 0, ssl=context)
    port = server.sockets[0].getsockname()[1]
    try:
        untrusted = UpstreamClient(Timeouts(connect=2))
        with pytest.raises(ProviderConnectionError):  # not in the CA store: refused
            await untrusted.fetch(f"https://localhost:{port}/v1/x", b"hi", {})
        await untrusted.close()
        monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # what an operator's private CA does
        trusted = UpstreamClient(Timeouts(connect=2))
        try:
            assert await trusted.fetch(f"https://localhost:{port}/v1/x", b"hi", {}) == b"tls:hi"
        finally:
            await trusted.close()
    finally:
        server.close()
