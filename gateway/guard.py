"""Slow clients, at the connection: a header deadline and a cap on connections per worker.

``[server] header_timeout`` bounds the time from a connection's first byte of a request (or
from its opening) to the end of that request's headers: a client that dribbles header lines is
disconnected after it. ``[server] max_connections`` caps the connections one worker holds: the
next one is answered 503 and closed. (A request body that stops arriving is answered 408 by
``gateway.lifecycle``, the same on every server.)

hypercorn and uvicorn have neither, so both are added here to their connection classes;
granian has a header deadline of its own (``HTTP1Settings.header_read_timeout``), and its cap
is the lifecycle's count of requests in flight.
"""

from __future__ import annotations

import asyncio
from typing import Any

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


def install_hypercorn_guard(server: ServerConfig) -> None:
    """Make hypercorn's asyncio worker use ``GuardedTCPServer`` for every connection."""
    import hypercorn.asyncio.run as hypercorn_run
    from hypercorn.asyncio.tcp_server import TCPServer
    from hypercorn.events import Closed, RawData, Updated

    header_timeout, cap = server.header_timeout, server.max_connections
    open_connections: set[Any] = set()

    class GuardedTCPServer(TCPServer):
        """A hypercorn connection with a header deadline, refused with 503 past the cap."""

        async def run(self) -> None:
            if len(open_connections) >= cap:
                await _refuse(self.reader, self.writer)
                return
            open_connections.add(self)
            self._deadline: asyncio.TimerHandle | None = None
            self._between = True
            self._arm()
            try:
                await super().run()
            except asyncio.CancelledError:
                # Cut at the end of the grace period: end quietly, not as a cancelled task
                # (asyncio's stream callback prints a traceback for that).
                self.writer.transport.abort()
            finally:
                open_connections.discard(self)
                self._disarm()

        def _arm(self) -> None:
            self._deadline = self.loop.call_later(header_timeout, self._headers_too_slow)

        def _disarm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def _headers_too_slow(self) -> None:
            self._deadline = None
            self.writer.transport.abort()

        async def protocol_send(self, event: Any) -> None:
            if isinstance(event, Updated):
                self._between = event.idle
                if not event.idle:
                    self._disarm()  # a request's headers are complete
            await super().protocol_send(event)
            if isinstance(event, Updated) and event.idle and self.reader.at_eof():
                await self.idle_task.stop()  # the client is gone: no keep-alive to wait for

        async def _read_data(self) -> None:
            while not self.reader.at_eof():
                try:
                    data = await self.reader.read(65536)
                except (ConnectionError, OSError, TimeoutError):
                    break
                if self._between and self._deadline is None and data:
                    self._arm()  # the next request has begun: its headers have a deadline
                await self.protocol.handle(RawData(data))
            await self.protocol.handle(Closed())
            if self._between:
                # The client hung up between requests: without this the connection (and its
                # place under the cap) is kept until the keep-alive timer ends, 75 s later.
                await self.idle_task.stop()

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


def uvicorn_protocol(server: ServerConfig) -> Any:
    """uvicorn's httptools connection with a header deadline and a connection cap ("h11"
    without httptools, which has neither)."""
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:
        return "h11"
    header_timeout, cap = server.header_timeout, server.max_connections

    class GuardedHttpTools(HttpToolsProtocol):
        """Closed when a request's headers take longer than ``header_timeout``; 503 past
        ``max_connections``."""

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            self._deadline: asyncio.TimerHandle | None = None
            self._between = True
            if len(self.connections) >= cap:
                transport.write(BUSY_RESPONSE)
                transport.close()
                self.transport, self.parser = transport, None  # type: ignore[assignment]
                return
            super().connection_made(transport)
            self._arm()

        def _arm(self) -> None:
            self._deadline = self.loop.call_later(header_timeout, self._headers_too_slow)

        def _headers_too_slow(self) -> None:
            self._deadline = None
            self.transport.abort()

        def data_received(self, data: bytes) -> None:
            if self.parser is None:
                return
            if self._between and self._deadline is None:
                self._arm()
            super().data_received(data)

        def on_headers_complete(self) -> None:
            self._between = False
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None
            super().on_headers_complete()

        def on_response_complete(self) -> None:
            self._between = True
            super().on_response_complete()

        def connection_lost(self, exc: Exception | None) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
            if self in self.connections or self.parser is not None:
                super().connection_lost(exc)

    return GuardedHttpTools
