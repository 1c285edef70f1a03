"""A small HTTP/1.1 client for provider calls: keep-alive pools, httptools parsing, nothing more.

aiohttp's client spent ~60-70 µs of Python a request here on top of the system calls (request
and response objects, tracing hooks, cookie and redirect machinery, a timer re-armed at every
chunk); a provider call needs none of that. This client writes a request with one ``write``,
parses the answer with httptools (the C parser uvicorn uses) and hands the body over as it
arrives (bench/README.md, "The upstream client").

- Connections are pooled per (host, port, TLS), most recently used first; an idle connection
  older than ``keepalive`` or closed by the server is dropped at checkout. A request is never
  sent twice: a connection lost before any answer may still have reached the provider.
- Deadlines: ``first_byte`` from the request's write to the status line, then ``idle`` between
  body reads. One timer per connection, moved forward lazily: when it fires early it re-arms,
  and an exchange that ends leaves it to lapse (a new one re-arms it only if it is due too
  late), so a call costs no timer of its own.
- Flow control: reading pauses above 256 KB of unread body and resumes below 64 KB.
- Closing an unfinished answer aborts the connection, which is what tells the provider the
  caller went away; a finished answer's connection goes back to the pool.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import zlib
from collections import deque
from collections.abc import Mapping
from typing import cast
from urllib.parse import urlsplit

import httptools
from multidict import CIMultiDict, CIMultiDictProxy

_HIGH_WATER = 256 * 1024
_LOW_WATER = 64 * 1024
_DNS_TTL = 300.0
_MAX_CACHED_URLS = 1024

Origin = tuple[str, int, bool]  # host, port, TLS


class UpstreamClosed(ConnectionError):
    """The connection ended before the answer did."""


class BadResponse(ConnectionError):
    """The provider's bytes are not HTTP/1.1."""


class _NoCallbacks:
    """The protocol of a parser that no connection uses."""


_DETACHED = httptools.HttpResponseParser(_NoCallbacks())


class Connection(asyncio.Protocol):
    """One pooled connection and the state of the exchange on it (one at a time)."""

    def __init__(self, pool: Pool, origin: Origin) -> None:
        self.pool = pool
        self.origin = origin
        self.loop = pool.loop
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.closed = False
        self.idle_since = 0.0
        self.active = False
        self.status = 0
        self.raw_headers: list[tuple[bytes, bytes]] = []
        self.headers_done = False
        self.done = False
        self.keep_alive = False
        self.error: BaseException | None = None
        self.received = False
        self.buffer: deque[bytes] = deque()
        self.buffered = 0
        self.paused = False
        self.decoder: zlib._Decompress | None = None
        self.waiter: asyncio.Future[None] | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.last = 0.0
        self.first_byte = 0.0
        self.idle = 0.0
        self.eof_ends_body = False

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses

    def data_received(self, data: bytes) -> None:
        if not self.active or self.done:  # bytes nobody asked for: the connection is unusable
            self.abort()
            return
        self.received = True
        self.last = self.loop.time()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(BadResponse(f"unparseable answer: {exc}"))
            self.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.active and not self.done:
            if self.headers_done and self.eof_ends_body and exc is None:
                self.on_message_complete()
            else:
                self._fail(UpstreamClosed("the provider closed the connection"
                                          + (f": {exc}" if exc else "")))
        self.pool.forget(self)
        # Nothing is parsed or sent any more: drop the cycles (parser and transport hold this
        # protocol), so an aborted connection is freed at once, not by a full collection.
        self.parser = _DETACHED
        self.transport = None

    # httptools callbacks

    def on_header(self, name: bytes, value: bytes) -> None:
        self.raw_headers.append((name, value))

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()
        self.headers_done = True
        self.eof_ends_body = True
        for name, value in self.raw_headers:
            lowered = name.lower()
            if lowered in (b"content-length", b"transfer-encoding"):
                self.eof_ends_body = False
            elif lowered == b"content-encoding" and value.strip().lower() in (b"gzip", b"deflate"):
                self.decoder = zlib.decompressobj(zlib.MAX_WBITS | 32)  # gzip or zlib
        self._wake()

    def on_body(self, body: bytes) -> None:
        if self.decoder is not None:
            try:
                body = self.decoder.decompress(body)
            except zlib.error as exc:
                self._fail(BadResponse(f"undecodable answer: {exc}"))
                self.abort()
                return
        if body:
            self.buffer.append(body)
            self.buffered += len(body)
            if self.buffered > _HIGH_WATER and not self.paused and self.transport is not None:
                # paused until readany takes some: read() resumes and takes it all
                self.paused = True
                self.transport.pause_reading()
            self._wake()

    def on_message_complete(self) -> None:
        self.done = True
        self.keep_alive = self.parser.should_keep_alive()
        self._wake()  # the timer lapses: see the module docstring

    # the exchange

    async def exchange(self, request: bytes, first_byte: float, idle: float) -> None:
        """Send ``request`` (head and body) and wait for the answer's status line and headers."""
        self.active = True
        self.first_byte, self.idle = first_byte, idle
        self.last = self.loop.time()
        timer = self.timer
        if timer is not None and timer.when() > self.last + first_byte:
            timer.cancel()  # the last exchange's, due after this one's first-byte deadline
            self.timer = None
        assert self.transport is not None
        self.transport.write(request)
        while not self.headers_done:
            await self._wait()

    async def readany(self) -> bytes:
        """What the body holds so far (waiting for some), or ``b""`` at its end."""
        while not self.buffer:
            if self.done:
                return b""
            await self._wait()
        buffer = self.buffer
        if len(buffer) == 1:
            data = buffer.popleft()
        else:
            data = b"".join(buffer)
            buffer.clear()
        self.buffered = 0
        if self.paused and self.buffered < _LOW_WATER and self.transport is not None:
            self.paused = False
            self.transport.resume_reading()
        return data

    async def read(self) -> bytes:
        """The whole body (it is all kept anyway: reading never pauses for it)."""
        while not self.done:
            if self.paused and self.transport is not None:
                self.paused = False
                self.transport.resume_reading()
            await self._wait()
        return self.take_body()

    def take_body(self) -> bytes:
        """The body of a finished answer (``done``), without a coroutine: the usual case,
        where it came in the same read as its head."""
        buffer = self.buffer
        data = buffer.popleft() if len(buffer) == 1 else b"".join(buffer)
        buffer.clear()
        self.buffered = 0
        return data

    def _wait(self) -> asyncio.Future[None]:
        if self.error is not None:
            raise self.error
        waiter = self.waiter = self.loop.create_future()
        if self.timer is None:
            self.timer = self.loop.call_at(self._deadline(), self._on_timer)
        return waiter

    def _deadline(self) -> float:
        return self.last + (self.idle if self.headers_done else self.first_byte)

    def _on_timer(self) -> None:
        self.timer = None
        if self.done or self.error is not None or self.waiter is None or self.waiter.done():
            return
        deadline = self._deadline()
        if self.loop.time() < deadline:
            self.timer = self.loop.call_at(deadline, self._on_timer)
            return
        self._fail(TimeoutError("no byte from the provider in time"))
        self.abort()

    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None:
            self.waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def _fail(self, error: BaseException) -> None:
        if self.error is None:
            self.error = error
        waiter = self.waiter
        if waiter is not None:
            self.waiter = None
            if not waiter.done():
                waiter.set_exception(error)

    def reusable(self) -> bool:
        return (self.done and self.keep_alive and self.error is None and not self.closed
                and not self.buffer)

    def reset(self) -> None:
        """Ready for the next exchange (the connection goes back to the pool)."""
        if self.paused and self.transport is not None:
            # A long answer can end while reading is paused for it (read() takes it whole
            # then): the next answer would never be read.
            self.paused = False
            self.transport.resume_reading()
        self.active = self.headers_done = self.done = self.received = False
        self.raw_headers = []
        self.status = self.buffered = 0
        self.decoder = None

    def abort(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if not self.closed and self.transport is not None:
            self.closed = True
            self.transport.abort()


class Pool:
    """Keep-alive connections per origin, bounded in all and per origin."""

    def __init__(self, limit: int, limit_per_origin: int, connect_timeout: float,
                 keepalive: float = 60.0) -> None:
        self.loop = asyncio.get_running_loop()
        self.limit = limit
        self.limit_per_origin = limit_per_origin
        self.connect_timeout = connect_timeout
        self.keepalive = keepalive
        self._tls: ssl.SSLContext | None = None
        self.idle: dict[Origin, list[Connection]] = {}
        self.open: dict[Origin, int] = {}
        self.total = 0
        self.counted: set[Connection] = set()
        self.waiters: deque[asyncio.Future[None]] = deque()
        self.addresses: dict[tuple[str, int], tuple[float, list[tuple[int, str]]]] = {}

    def tls(self) -> ssl.SSLContext:
        """The TLS context, made at the first https call (loading the CA store takes ~90 ms,
        which a plain-HTTP provider's first request need not wait for)."""
        if self._tls is None:
            self._tls = ssl.create_default_context()
        return self._tls

    def take_idle(self, origin: Origin) -> Connection | None:
        """An idle connection to ``origin`` still fit for use, if there is one."""
        idle = self.idle.get(origin)
        if not idle:
            return None
        now = self.loop.time()
        while idle:
            connection = idle.pop()
            if connection.closed or now - connection.idle_since > self.keepalive:
                connection.abort()
                continue
            return connection
        return None

    async def acquire(self, origin: Origin) -> Connection:
        """An idle connection to ``origin``, or a new one once the limits allow."""
        while True:
            connection = self.take_idle(origin)
            if connection is not None:
                return connection
            if self.total < self.limit and self.open.get(origin, 0) < self.limit_per_origin:
                break
            waiter = self.loop.create_future()
            self.waiters.append(waiter)
            await waiter
        connection = Connection(self, origin)
        self._count(connection)
        try:
            await self._connect(connection)
        except BaseException:
            self.forget(connection)
            raise
        return connection

    def release(self, connection: Connection) -> None:
        """The exchange is over: keep the connection for the next one, or close it."""
        if not connection.reusable():
            connection.abort()
            return
        connection.reset()
        connection.idle_since = self.loop.time()
        self.idle.setdefault(connection.origin, []).append(connection)
        self._wake_one()

    def forget(self, connection: Connection) -> None:
        """``connection`` is closed: it no longer counts against the limits."""
        if connection not in self.counted:
            return
        self.counted.discard(connection)
        self.total -= 1
        self.open[connection.origin] -= 1
        idle = self.idle.get(connection.origin)
        if idle and connection in idle:
            idle.remove(connection)
        self._wake_one()

    def close(self) -> None:
        for idle in self.idle.values():
            for connection in list(idle):
                connection.abort()
        self.idle.clear()

    def _count(self, connection: Connection) -> None:
        self.counted.add(connection)
        self.total += 1
        self.open[connection.origin] = self.open.get(connection.origin, 0) + 1

    def _wake_one(self) -> None:
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    async def _connect(self, connection: Connection) -> None:
        host, port, tls = connection.origin
        async with asyncio.timeout(self.connect_timeout):
            addresses = await self._resolve(host, port)
            error: OSError | None = None
            for family, address in addresses:
                try:
                    await self.loop.create_connection(
                        lambda: connection, address, port, family=family,
                        ssl=self.tls() if tls else None, server_hostname=host if tls else None,
                        ssl_handshake_timeout=self.connect_timeout if tls else None,
                    )
                    return
                except OSError as exc:
                    error = exc
            raise error or OSError(f"no address for {host}")

    async def _resolve(self, host: str, port: int) -> list[tuple[int, str]]:
        now = self.loop.time()
        cached = self.addresses.get((host, port))
        if cached is not None and cached[0] > now:
            return cached[1]
        infos = await self.loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        addresses = [(int(family), str(address[0])) for family, _, _, _, address in infos]
        self.addresses[(host, port)] = (now + _DNS_TTL, addresses)
        return addresses


class Target:
    """A URL as the pool and the request line need it (parsed once per URL)."""

    __slots__ = ("host_line", "origin", "path")

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        tls = parts.scheme == "https"
        port = parts.port or (443 if tls else 80)
        host = parts.hostname
        self.origin: Origin = (host, port, tls)
        self.path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        name = host.encode("idna").decode() if not host.isascii() else host
        if ":" in name:
            name = f"[{name}]"
        default = port == (443 if tls else 80)
        self.host_line = f"Host: {name}\r\n" if default else f"Host: {name}:{port}\r\n"


_targets: dict[str, Target] = {}


def target(url: str) -> Target:
    found = _targets.get(url)
    if found is None:
        if len(_targets) >= _MAX_CACHED_URLS:
            _targets.clear()
        found = _targets[url] = Target(url)
    return found


def encode_request(method: str, where: Target, body: bytes | None,
                   headers: Mapping[str, str]) -> bytes:
    """The request's bytes; a header name or value with a line break is refused."""
    lines = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    if lines.count("\n") != len(headers) or lines.count("\r") != len(headers):
        raise ValueError("a header name or value holds a line break")
    length = f"Content-Length: {len(body)}\r\n" if body is not None else ""
    head = f"{method} {where.path} HTTP/1.1\r\n{where.host_line}{length}{lines}\r\n"
    encoded = head.encode("latin-1")
    return encoded + body if body else encoded


def headers_of(raw: list[tuple[bytes, bytes]]) -> CIMultiDictProxy[str]:
    return CIMultiDictProxy(CIMultiDict(
        (name.decode("latin-1"), value.decode("latin-1")) for name, value in raw))
