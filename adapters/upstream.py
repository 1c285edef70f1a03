"""The one aiohttp session of a process, its timeouts and the mapping of transport errors.

Every adapter sends through ``UpstreamClient``: it owns the connection pool (sized for thousands
of concurrent streams), applies connect, first-byte and idle-between-chunks timeouts, and turns
aiohttp's exceptions into ``adapters.errors`` at this one boundary.
"""

from __future__ import annotations

import asyncio

# Imported here, at start-up: connecting resolves the host name in an executor thread, and the
# first resolution imports this codec lazily; a granian worker was seen deadlocked on that
# import's module lock (the event loop's thread waiting on it in aiohttp's connect).
import encodings.idna  # noqa: F401
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

import aiohttp

from adapters.base import Call, ProviderSettings
from adapters.canonical import StreamEvent
from adapters.errors import (
    ProviderConnectionError,
    ProviderError,
    ProviderHTTPError,
    ProviderTimeout,
)
from adapters.sse import SSEFramer, event_data


@dataclass(frozen=True, slots=True)
class Timeouts:
    connect: float = 10.0
    first_byte: float = 120.0
    idle: float = 120.0


def _retry_after(headers: Mapping[str, str]) -> float | None:
    value = headers.get("retry-after-ms")
    if value:
        try:
            return float(value) / 1000
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value:
        try:
            return float(value)
        except ValueError:
            return None
    return None


def error_message(body: bytes) -> str:
    """The human message inside a provider's error body, whatever its dialect."""
    import msgspec

    text = body.decode("utf-8", "replace").strip()
    try:
        parsed = msgspec.json.decode(body)
    except msgspec.DecodeError:
        return text[:500] or "no error message"
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
    return text[:500]


class UpstreamResponse:
    """An open response: its status, headers and a chunk iterator with idle timeouts mapped."""

    __slots__ = ("_response", "content", "headers", "status")

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response
        self.content = response.content
        self.status = response.status
        self.headers = response.headers

    async def read(self) -> bytes:
        try:
            return await self._response.read()
        except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
            raise ProviderTimeout("idle") from exc
        except aiohttp.ClientError as exc:
            raise ProviderConnectionError(f"connection lost: {exc}") from exc

    async def chunks(self) -> AsyncIterator[bytes]:
        content = self._response.content
        try:
            while True:
                chunk = await content.readany()
                if not chunk:
                    return
                yield chunk
        except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
            raise ProviderTimeout("idle") from exc
        except aiohttp.ClientError as exc:
            raise ProviderConnectionError(f"connection lost mid-answer: {exc}") from exc

    def close(self) -> None:
        self._response.close()


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
        self._session: aiohttp.ClientSession | None = None

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                limit=self._max_connections,
                limit_per_host=self._max_per_host,
                ttl_dns_cache=300,
                keepalive_timeout=60,
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(
                    total=None,
                    connect=self.timeouts.connect,
                    sock_read=self.timeouts.idle,
                ),
                auto_decompress=True,
                skip_auto_headers=("User-Agent",),
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()

    async def fetch(self, url: str, body: bytes, headers: Mapping[str, str]) -> bytes:
        """POST and read the whole answer (error statuses raise ProviderHTTPError)."""
        response = await self.post(url, body, headers)
        try:
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
            async with asyncio.timeout(self.timeouts.first_byte):
                response = await self.session().request(method, url, data=body,
                                                        headers=headers)
        except TimeoutError as exc:
            raise ProviderTimeout("first_byte") from exc
        except aiohttp.ServerTimeoutError as exc:
            raise ProviderTimeout("first_byte") from exc
        except (aiohttp.ClientConnectorError, aiohttp.ServerDisconnectedError) as exc:
            raise ProviderConnectionError(f"cannot reach {url}: {exc}") from exc
        except aiohttp.ClientError as exc:
            raise ProviderConnectionError(f"request to {url} failed: {exc}") from exc
        if response.status >= 400:
            try:
                payload = await response.read()
            except aiohttp.ClientError:
                payload = b""
            finally:
                response.release()
            raise ProviderHTTPError(
                response.status, error_message(payload), _retry_after(response.headers)
            )
        return UpstreamResponse(response)


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
    except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
        raise ProviderTimeout("first_byte" if limit.expired() else "idle") from exc
    except aiohttp.ClientError as exc:
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
