"""The Python floor: a bare Starlette + aiohttp pass-through, served like the gateway.

No auth, limits, routing or ledger: the body goes to ``BARE_UPSTREAM`` + the request path as
is, and the answer comes back as is (streams chunk by chunk, from ``iter_any()``). Whatever the
gateway costs above this is its own work; what this costs is the Python/ASGI floor.

``BARE_FALLBACKS`` (``first=second,...``) gives the floor of a fallback: a whole answer of 500
or more from a model named there is read and dropped, and the same body goes out again with
the model's name swapped in its bytes (no parsing: the least a fallback can do).

Run: ``BARE_UPSTREAM=http://127.0.0.1:9100 hypercorn 'bench.bare_proxy:create_app()'``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator

import aiohttp
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

_HOP = frozenset({"content-length", "transfer-encoding", "connection", "keep-alive"})


def _fallbacks(spec: str) -> list[tuple[bytes, bytes]]:
    """``first=second,...`` as the quoted names to look for and put in their place."""
    pairs = [entry.split("=", 1) for entry in spec.split(",") if "=" in entry]
    return [(f'"{first}"'.encode(), f'"{second}"'.encode()) for first, second in pairs]


def create_app() -> Starlette:
    upstream = os.environ.get("BARE_UPSTREAM", "http://127.0.0.1:9100").rstrip("/")
    fallbacks = _fallbacks(os.environ.get("BARE_FALLBACKS", ""))
    session: aiohttp.ClientSession | None = None

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        nonlocal session
        connector = aiohttp.TCPConnector(limit=4096, limit_per_host=1024, keepalive_timeout=60)
        session = aiohttp.ClientSession(
            connector=connector, timeout=aiohttp.ClientTimeout(total=None, sock_read=120)
        )
        try:
            yield
        finally:
            await session.close()

    async def proxy(request: Request) -> Response:
        assert session is not None
        body = await request.body()
        headers = {"Content-Type": "application/json"}
        if "authorization" in request.headers:
            headers["Authorization"] = request.headers["authorization"]
        url = upstream + request.url.path
        response = await session.post(url, data=body, headers=headers)
        if response.status >= 500 and fallbacks:
            for first, second in fallbacks:
                if first in body:
                    await response.read()
                    response.release()
                    body = body.replace(first, second, 1)
                    response = await session.post(url, data=body, headers=headers)
                    break
        out_headers = {k: v for k, v in response.headers.items() if k.lower() not in _HOP}
        if response.headers.get("content-type", "").startswith("text/event-stream"):

            async def relay() -> AsyncIterator[bytes]:
                try:
                    async for chunk in response.content.iter_any():
                        yield chunk
                finally:
                    response.close()

            return StreamingResponse(relay(), status_code=response.status, headers=out_headers)
        try:
            payload = await response.read()
        finally:
            response.release()
        return Response(payload, status_code=response.status, headers=out_headers)

    async def health(request: Request) -> Response:
        return Response(b'{"status":"ok"}', media_type="application/json")

    return Starlette(
        routes=[
            Route("/health", health, methods=["GET"]),
            Route("/v1/chat/completions", proxy, methods=["POST"]),
            Route("/v1/messages", proxy, methods=["POST"]),
        ],
        lifespan=lifespan,
    )
