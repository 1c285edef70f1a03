"""Slow clients, at the connection: a header deadline and a cap on connections per worker.

``[server] header_timeout`` bounds the time from a connection's first byte of a request (or
from its opening) to the end of that request's headers: a client that dribbles header lines is
disconnected after it. ``[server] max_connections`` caps the connections one worker holds: the
next one is answered 503 and closed. (A request body that stops arriving is answered 408 by
``gateway.lifecycle``, the same on every server.)

hypercorn and uvicorn have neither, so both are added to their connection classes (here for
hypercorn, in ``gateway.server_uvicorn`` for uvicorn); granian has a header deadline of its
own (``HTTP1Settings.header_read_timeout``), and its cap is the lifecycle's count of requests
in flight.
"""

from __future__ import annotations

import asyncio
from typing import Any

import hypercorn.asyncio.run as hypercorn_run
from hypercorn.asyncio.tcp_server import TCPServer
from hypercorn.events import Closed, RawData, Updated

from gateway.config import ServerConfig

_BUSY = (
    b'{"error":{"message":"The gateway has too many connections; retry shortly",'
    b'"type":"server_busy"}}'
)
BUSY_RESPONSE = (
    b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n"
    b"connection: close\r\nretry-after: 1\r\ncontent-length: " + str(len(_BUSY)).encode()
    + b"\r\n\r\n" + _BUSY
)


_SETTINGS: list[ServerConfig] = [ServerConfig()]  # this worker's, set by the install
_OPEN: set[Any] = set()  # this worker's connections


class HeaderDeadline:
    """A header deadline that costs no timer per request on a kept-alive connection.

    One timer, armed when a request begins (``_begin``) and none is armed, checks at its time
    whether the request still waiting for its headers began ``_timeout`` ago (then
    ``_too_slow``), and re-arms for that request's own deadline if not: about one timer per
    ``header_timeout`` rather than one armed and cancelled per request. ``_waiting`` is set
    False by the connection when a request's headers are complete."""

    loop: asyncio.AbstractEventLoop
    _deadline: asyncio.TimerHandle | None
    _waiting: bool
    _began: float
    _timeout: float

    def _begin(self) -> None:
        self._waiting = True
        self._began = now = self.loop.time()
        if self._deadline is None:
            self._deadline = self.loop.call_at(now + self._timeout, self._check)

    def _check(self) -> None:
        self._deadline = None
        if not self._waiting:
            return
        due = self._began + self._timeout
        if self.loop.time() >= due:
            self._too_slow()
        else:
            self._deadline = self.loop.call_at(due, self._check)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _too_slow(self) -> None:
        raise NotImplementedError


class GuardedTCPServer(HeaderDeadline, TCPServer):
    """A hypercorn connection with a header deadline (``HeaderDeadline``), refused with 503
    past the cap."""

    async def run(self) -> None:
        if len(_OPEN) >= _SETTINGS[0].max_connections:
            await _refuse(self.reader, self.writer)
            return
        _OPEN.add(self)
        self._deadline: asyncio.TimerHandle | None = None
        self._between = True
        self._waiting = False  # a request's headers have begun and are not complete
        self._began = 0.0
        self._timeout = _SETTINGS[0].header_timeout
        self._begin()
        try:
            await super().run()
        except asyncio.CancelledError:
            # Cut at the end of the grace period: end quietly, not as a cancelled task
            # (asyncio's stream callback prints a traceback for that).
            self.writer.transport.abort()
        finally:
            _OPEN.discard(self)
            self._disarm()

    def _too_slow(self) -> None:
        self.writer.transport.abort()

    async def protocol_send(self, event: Any) -> None:
        if isinstance(event, Updated):
            self._between = event.idle
            if not event.idle:
                self._waiting = False  # a request's headers are complete
        await super().protocol_send(event)
        if isinstance(event, Updated) and event.idle and self.reader.at_eof():
            await self.idle_task.stop()  # the client is gone: no keep-alive to wait for

    async def _read_data(self) -> None:
        while not self.reader.at_eof():
            try:
                data = await self.reader.read(65536)
            except (ConnectionError, OSError, TimeoutError):
                break
            if self._between and not self._waiting and data:
                self._begin()  # the next request has begun: its headers have a deadline
            await self.protocol.handle(RawData(data))
        await self.protocol.handle(Closed())
        if self._between:
            # The client hung up between requests: without this the connection (and its
            # place under the cap) is kept until the keep-alive timer ends, 75 s later.
            await self.idle_task.stop()



def install_hypercorn_guard(server: ServerConfig) -> None:
    """Make hypercorn's asyncio worker use ``GuardedTCPServer`` for every connection."""
    _SETTINGS[:] = [server]
    hypercorn_run.TCPServer = GuardedTCPServer  # type: ignore[attr-defined]


async def _refuse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Answer 503 and close, reading what the client sent first so it sees the answer."""
    try:
        writer.write(BUSY_RESPONSE)
        await asyncio.wait_for(writer.drain(), 1.0)
        await asyncio.wait_for(reader.read(65536), 0.2)
    except (OSError, TimeoutError, ConnectionError):
        pass
    finally:
        writer.close()
