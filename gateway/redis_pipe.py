"""One pipelined Redis connection for the request path's scripts (admission's counters).

redis-py's asyncio client spends ~80 µs of CPU on each call here: a pool checkout under a lock
with a readiness check, observability hooks, an ``asyncio.wait_for`` task around the write and
the read, and RESP packing in Python. That was more than all the rest of admission. ``Pipe``
writes each command as soon as it is called on one long-lived connection and matches the
replies in order (Redis answers one connection's commands in the order sent), packed and parsed
by hiredis. Concurrent requests share the connection: no checkout, no lock, no task.

Errors are redis-py's, so ``RedisClient.call``'s failure policy applies unchanged:

- a lost connection fails the calls waiting on it with ``ConnectionError``; the next call
  connects again (``RedisClient`` retries a failed call once, as its redis-py client does);
- a call unanswered after ``timeout`` seconds fails with redis-py's ``TimeoutError``, and it
  closes the connection: the replies still due on it could no longer be matched to calls;
- an error reply is raised as ``ResponseError`` (``NoScriptError`` for NOSCRIPT).

Only plain TCP URLs (``redis://``, with a password and a database) take this path; TLS and
Unix sockets stay on redis-py (``Pipe.supports``).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Any

import hiredis
from redis.asyncio.connection import Connection
from redis.exceptions import ConnectionError, NoScriptError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeout


class _Protocol(asyncio.Protocol):
    """Feeds replies to the calls waiting on them, in order."""

    def __init__(self, pipe: Pipe) -> None:
        self.pipe = pipe
        self.reader = hiredis.Reader()
        self.transport: asyncio.BaseTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        reader, waiting = self.reader, self.pipe.waiting
        reader.feed(data)
        while (reply := reader.gets()) is not False:
            if not waiting:  # a reply nobody asked for: the stream is out of step
                self.pipe.close(ConnectionError("Unexpected reply from Redis"))
                return
            future = waiting.popleft()[0]
            if not future.done():  # its caller may have been cancelled
                future.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.pipe._transport is self.transport:  # not an older connection, already dropped
            self.pipe.close(ConnectionError(f"Connection to Redis lost: {exc or 'closed'}"))


class Pipe:
    """A pipelined connection to the Redis of ``kwargs`` (redis-py's connection arguments)."""

    def __init__(self, kwargs: dict[str, Any], timeout: float) -> None:
        self.host = str(kwargs.get("host", "localhost"))
        self.port = int(kwargs.get("port", 6379))
        self.setup = [
            command for command in (
                ("AUTH", *((kwargs["username"],) if kwargs.get("username") else ()),
                 kwargs["password"]) if kwargs.get("password") else None,
                ("SELECT", kwargs["db"]) if kwargs.get("db") else None,
            ) if command
        ]
        self.timeout = timeout
        self.waiting: deque[tuple[asyncio.Future[Any], float]] = deque()
        self._transport: asyncio.Transport | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._out: list[bytes] = []  # commands to write at the end of this loop turn
        self._connecting: asyncio.Future[None] | None = None
        self._watchdog: asyncio.TimerHandle | None = None

    @staticmethod
    def supports(pool_kwargs: dict[str, Any], connection_class: type) -> bool:
        """Whether a redis-py pool's connections can be replaced by a ``Pipe``."""
        return connection_class is Connection and "host" in pool_kwargs

    async def call(self, *args: Any) -> Any:
        """Send one command and answer its reply (an error reply raised)."""
        if self._transport is None or self._loop is not asyncio.get_running_loop():
            await self._connect()
        return await self._send(hiredis.pack_command(args))

    async def _send(self, packed: bytes) -> Any:
        transport = self._transport
        if transport is None or transport.is_closing():
            raise ConnectionError("Connection to Redis lost")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self.waiting.append((future, time.monotonic()))
        # Commands of one turn of the event loop leave in one write (one system call).
        if not self._out:
            loop.call_soon(self._flush)
        self._out.append(packed)
        if self._watchdog is None:
            self._watchdog = loop.call_later(self.timeout, self._check)
        reply = await future
        if isinstance(reply, hiredis.ReplyError):
            message = str(reply)
            raise NoScriptError(message) if message.startswith("NOSCRIPT") else ResponseError(
                message
            )
        return reply

    def _flush(self) -> None:
        out, self._out = self._out, []
        if out and self._transport is not None:
            self._transport.write(b"".join(out))

    async def _connect(self) -> None:
        if self._connecting is None:
            self._connecting = asyncio.ensure_future(self._open())
        connecting = self._connecting
        try:
            await asyncio.shield(connecting)
        finally:
            if connecting.done():
                self._connecting = None

    async def _open(self) -> None:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # first use, or a new event loop (tests): start afresh
            self._transport, self.waiting, self._watchdog, self._loop = None, deque(), None, loop
            self._out = []
        try:
            transport, _ = await asyncio.wait_for(
                loop.create_connection(lambda: _Protocol(self), self.host, self.port),
                self.timeout,
            )
        except (OSError, TimeoutError) as exc:
            raise ConnectionError(f"Cannot connect to Redis at {self.host}:{self.port}: "
                                  f"{exc or type(exc).__name__}") from exc
        self._transport = transport
        try:
            for command in self.setup:
                await self._send(hiredis.pack_command(command))
        except ResponseError:
            self.close(ConnectionError("Redis refused the connection's setup"))
            raise

    def _check(self) -> None:
        """The watchdog: fail everything when the oldest call has waited ``timeout``."""
        self._watchdog = None
        if not self.waiting:
            return
        due = self.waiting[0][1] + self.timeout
        if due <= time.monotonic():
            self.close(RedisTimeout("Timeout reading from Redis"))
        else:
            self._watchdog = asyncio.get_running_loop().call_later(
                due - time.monotonic(), self._check
            )

    def close(self, error: Exception | None = None) -> None:
        """Drop the connection; every call waiting on it fails with ``error``."""
        transport, self._transport = self._transport, None
        if transport is not None:
            transport.abort()
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        waiting, self.waiting, self._out = self.waiting, deque(), []
        for future, _ in waiting:
            if not future.done():
                future.set_exception(error or ConnectionError("Connection to Redis closed"))
