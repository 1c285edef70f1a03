"""The routes that serve the document and the page, with their security headers."""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from gateway.openapi.build import build_spec
from gateway.openapi.operations import OPERATIONS

# Only this origin's own script, style and fetches; nothing inline, no frames, no forms.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}
_ASSETS = {"docs.js": "text/javascript", "docs.css": "text/css"}


def _asset(name: str) -> bytes:
    return resources.files("gateway.openapi").joinpath("static", name).read_bytes()


def openapi_routes(routes: Sequence[BaseRoute]) -> list[Route]:
    """``/openapi.json``, ``/docs`` and its assets, describing ``routes`` plus themselves.

    The document is built at the first request, when ``routes`` holds the whole app.
    """
    built: list[bytes] = []

    async def document(request: Request) -> Response:
        if not built:
            built.append(msgspec.json.encode(build_spec(routes, OPERATIONS)))
        return Response(built[0], media_type="application/json",
                        headers={"Access-Control-Allow-Origin": "*"})

    page = _asset("docs.html")

    async def docs(request: Request) -> Response:
        return Response(page, media_type="text/html; charset=utf-8", headers=PAGE_HEADERS)

    def asset_route(name: str, media_type: str) -> Route:
        body = _asset(name)

        async def serve(request: Request) -> Response:
            return Response(body, media_type=media_type, headers=PAGE_HEADERS)

        return Route(f"/docs/{name}", serve, methods=["GET"], include_in_schema=False)

    own: list[Any] = [
        Route("/openapi.json", document, methods=["GET"]),
        Route("/docs", docs, methods=["GET"]),
        *(asset_route(name, kind) for name, kind in _ASSETS.items()),
    ]
    return own
