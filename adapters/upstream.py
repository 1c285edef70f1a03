"""The one connection pool of a process, its timeouts and the mapping of transport errors.

Every adapter sends through ``UpstreamClient``: it owns the pool (``adapters.http1``, sized for
thousands of concurrent streams), applies connect, first-byte and idle-between-chunks timeouts,
and turns transport errors into ``adapters.errors`` at this one boundary.
"""

from __future__ import annotations

import asyncio

# Imported here, at start-up: connecting resolves the host name in an executor thread, and the
# first resolution imports this codec lazily; a granian worker was seen deadlocked on that
# import's module lock (the event loop's thread waiting on it in the first connect).
import encodings.idna  # noqa: F401
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

import msgspec

from adapters.base import Call, ProviderSettings
from adapters.canonical import StreamEvent
from adapters.errors import (
    ProviderConnectionError,
    ProviderError,
    ProviderHTTPError,
    ProviderTimeout,
)
from adapters.http1 import Connection, Pool, encode_request, headers_of, target
from adapters.sse import SSEFramer, event_data


@dataclass(frozen=True, slots=True)
class Timeouts:
    connect: float = 10.0
    first_byte: float = 120.0
    idle: float = 120.0


def _retry_after(raw_headers: list[tuple[bytes, bytes]]) -> float | None:
    """``Retry-After-Ms`` (OpenAI's), else ``Retry-After`` in seconds, from the raw headers:
    a failed call builds no header mapping."""
    found: dict[bytes, bytes] = {}
    for name, value in raw_headers:
        lowered = name.lower()
        if lowered in (b"retry-after-ms", b"retry-after") and value.strip():
            found.setdefault(lowered, value)
    for name, scale in ((b"retry-after-ms", 1000.0), (b"retry-after", 1.0)):
        if name in found:
            try:
                return float(found[name]) / scale
            except ValueError:
                continue
    return None


def error_message(body: bytes) -> str:
    """The human message inside a provider's error body, whatever its dialect."""
    try:
        parsed = msgspec.json.decode(body)
    except msgspec.DecodeError:
        return body.decode("utf-8", "replace").strip()[:500] or "no error message"
    if isinstance(parsed, list) and parsed:
        parsed = parsed[0]
    if isinstance(parsed, dict):
        status = parsed.get("base_resp")  # MiniMax's convention
        if isinstance(status, dict) and isinstance(status.get("status_msg"), str):
            return f"{status['status_msg']} ({status.get('status_code')})"
        error = parsed.get("error", parsed)
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return str(error["message"])
        if isinstance(error, str):
            return error
    return body.decode("utf-8", "replace").strip()[:500]


class UpstreamResponse:
    """An open answer: its status, headers and body, with idle timeouts and losses mapped.

    ``content.readany()`` reads the body as it arrives (``relay_sse`` does); ``close()`` gives
    a finished answer's connection back to the pool and aborts an unfinished one, which is
    what cancels the provider's work when the caller went away."""

    __slots__ = ("_pool", "content", "status")

    def __init__(self, pool: Pool, connection: Connection) -> None:
        self._pool: Pool | None = pool
        self.content = connection
        self.status = connection.status

    @property
    def headers(self) -> Mapping[str, str]:
        return headers_of(self.content.raw_headers)

    async def read(self) -> bytes:
        try:
            return await self.content.read()
        except TimeoutError as exc:
            raise ProviderTimeout("idle") from exc
        except OSError as exc:
            raise ProviderConnectionError(f"connection lost: {exc}") from exc

    async def chunks(self) -> AsyncIterator[bytes]:
        content = self.content
        try:
            while chunk := await content.readany():
                yield chunk
        except TimeoutError as exc:
            raise ProviderTimeout("idle") from exc
        except OSError as exc:
            raise ProviderConnectionError(f"connection lost mid-answer: {exc}") from exc

    def close(self) -> None:
        pool = self._pool
        if pool is not None:  # once: the connection may serve another answer after this
            self._pool = None
            pool.release(self.content)


class UpstreamClient:
    """Sends requests to providers over one shared, process-wide connection pool."""

    def __init__(
        self,
        timeouts: Timeouts,
        max_connections: int = 4096,
        max_connections_per_host: int = 1024,
    ) -> None:
        self.timeouts = timeouts
        self._max_connections = max_connections
        self._max_per_host = max_connections_per_host
        self._pool: Pool | None = None

    def pool(self) -> Pool:
        if self._pool is None:
            self._pool = Pool(self._max_connections, self._max_per_host, self.timeouts.connect)
        return self._pool

    async def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    async def fetch(self, url: str, body: bytes, headers: Mapping[str, str]) -> bytes:
        """POST and read the whole answer (error statuses raise ProviderHTTPError)."""
        response = await self.send("POST", url, body, headers)
        try:
            if response.content.done:
                return response.content.take_body()
            return await response.read()
        finally:
            response.close()

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> UpstreamResponse:
        """POST and wait for the status line; error statuses raise ProviderHTTPError."""
        return await self.send("POST", url, body, headers)

    async def get(self, url: str, headers: Mapping[str, str]) -> UpstreamResponse:
        """GET and wait for the status line; error statuses raise ProviderHTTPError."""
        return await self.send("GET", url, None, headers)

    async def get_json(self, url: str, headers: Mapping[str, str]) -> bytes:
        """GET and read the whole answer (error statuses raise ProviderHTTPError)."""
        response = await self.get(url, headers)
        try:
            return await response.read()
        finally:
            response.close()

    async def send(
        self, method: str, url: str, body: bytes | None, headers: Mapping[str, str]
    ) -> UpstreamResponse:
        """One request, waiting for the status line; error statuses raise ProviderHTTPError."""
        try:
            where = target(url)
            request = encode_request(method, where, body, headers)
        except (ValueError, UnicodeError) as exc:
            raise ProviderConnectionError(f"cannot send to {url}: {exc}") from exc
        pool = self.pool()
        connection = pool.take_idle(where.origin) or await self._connect(pool, where.origin, url)
        # A request is never sent twice: a connection lost without an answer may still have
        # reached the provider.
        try:
            await connection.exchange(request, self.timeouts.first_byte, self.timeouts.idle)
        except TimeoutError as exc:
            connection.abort()
            raise ProviderTimeout("first_byte") from exc
        except OSError as exc:
            connection.abort()
            raise ProviderConnectionError(f"request to {url} failed: {exc}") from exc
        except BaseException:
            connection.abort()
            raise
        response = UpstreamResponse(pool, connection)
        if response.status >= 400:
            retry_after = _retry_after(connection.raw_headers)  # before close reuses them
            try:
                payload = connection.take_body() if connection.done else await connection.read()
            except OSError:
                payload = b""
            finally:
                response.close()
            raise ProviderHTTPError(response.status, error_message(payload), retry_after)
        return response

    @staticmethod
    async def _connect(pool: Pool, origin: tuple[str, int, bool], url: str) -> Connection:
        """A connection from ``pool`` once one is free (a new one, when none is idle)."""
        try:
            return await pool.acquire(origin)
        except TimeoutError as exc:
            raise ProviderTimeout("connect") from exc
        except OSError as exc:
            raise ProviderConnectionError(f"cannot reach {url}: {exc}") from exc


class ChunkDecoder(Protocol):
    """A dialect's SSE ``data`` payloads -> canonical events (see each dialect module)."""

    def feed(self, data: bytes) -> list[StreamEvent]: ...

    def close(self) -> list[StreamEvent]: ...


Opening = Callable[[], Awaitable[UpstreamResponse]]


async def relay_sse(
    opening: Opening, first_byte: float, decoder: ChunkDecoder | None
) -> AsyncIterator[bytes | StreamEvent]:
    """An upstream SSE body as raw events (``decoder`` None: pass-through) or canonical events.

    ``opening`` sends the request (called at the first item, like an adapter's own generator
    would). Frames are cut by ``SSEFramer`` from whatever chunks arrive; the first chunk must
    come within ``first_byte`` seconds. The response is closed however the iteration ends,
    which is what cancels the upstream request when a client goes away. The body is read
    here, without a generator of chunks in between: each item resumes one frame less.
    """
    response = await opening()
    content = response.content
    framer = SSEFramer()
    limit = asyncio.timeout(first_byte)
    try:
        async with limit:
            chunk = await content.readany()
        while chunk:
            for event in framer.feed(chunk):
                if decoder is None:
                    yield event
                elif (data := event_data(event)) is not None:
                    for item in decoder.feed(data):
                        yield item
            chunk = await content.readany()
        for event in framer.flush():
            if decoder is None:
                yield event
            elif (data := event_data(event)) is not None:
                for item in decoder.feed(data):
                    yield item
        if decoder is not None:
            for item in decoder.close():
                yield item
    except TimeoutError as exc:
        raise ProviderTimeout("first_byte" if limit.expired() else "idle") from exc
    except OSError as exc:
        raise ProviderConnectionError(f"connection lost mid-answer: {exc}") from exc
    finally:
        response.close()


__all__ = [
    "ProviderError",
    "Timeouts",
    "UpstreamClient",
    "UpstreamResponse",
    "error_message",
    "relay_sse",
]


class JSONProvider:
    """What JSON-over-HTTP providers share: their settings, the process's upstream client and
    the headers of a call (JSON, the provider's configured headers, then the key: the caller's
    own if it has one, else the operator's, as ``key_prefix + key`` under ``key_header``)."""

    key_header = "Authorization"
    key_prefix = "Bearer "

    def __init__(self, settings: ProviderSettings, client: UpstreamClient) -> None:
        self.settings = settings
        self.client = client

    def _headers(self, call: Call) -> dict[str, str]:
        return self.key_headers(call.api_key)

    def key_headers(self, api_key: str | None) -> dict[str, str]:
        """The headers of a call on ``api_key`` (the caller's own), else the operator's key."""
        headers = {"Content-Type": "application/json", **self.settings.headers}
        key = api_key or self.settings.api_key
        if key:
            headers[self.key_header] = self.key_prefix + key
        return headers
