"""The web dashboard at ``/app/``: static pages over the account API, served by the gateway.

The pages are plain ES modules and hand-written CSS under ``static/`` (no bundler, no library,
nothing fetched from another host), read into memory once when the routes are built. Every
answer carries a strict Content-Security-Policy: scripts, styles, images and API calls come
from this origin only, nothing inline runs, and no other site may frame the pages.

The pages hold the session token from ``/v1/auth/login`` in ``sessionStorage`` and send it as a
Bearer header; no cookie is involved, so another site cannot make the browser act for the user
(no CSRF). The operator's admin key is held in memory only. See docs/dashboard.md.
"""

from __future__ import annotations

import hashlib
import mimetypes
from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.errors import NotFound

STATIC = Path(__file__).parent / "static"

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)

SECURITY_HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "cross-origin-opener-policy": "same-origin",
}

_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
          ".html": "text/html; charset=utf-8", ".svg": "image/svg+xml", ".png": "image/png"}


class Asset:
    """One file of the dashboard, in memory, with its type and validator."""

    __slots__ = ("body", "etag", "media_type")

    def __init__(self, body: bytes, media_type: str) -> None:
        self.body = body
        self.media_type = media_type
        self.etag = '"' + hashlib.sha256(body).hexdigest()[:20] + '"'


def load_assets(root: Path = STATIC) -> dict[str, Asset]:
    """Every file under ``root``, by its path relative to it (``js/main.js``)."""
    assets: dict[str, Asset] = {}
    for path in sorted(root.rglob("*")):
        if path.is_file():
            media = _TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0]
            assets[path.relative_to(root).as_posix()] = Asset(
                path.read_bytes(), media or "application/octet-stream")
    return assets


def dashboard_routes(root: Path = STATIC) -> list[Route]:
    """``/app`` and ``/app/{path}``: the pages, to add to the app's routes."""
    assets = load_assets(root)

    async def serve(request: Request) -> Response:
        name = request.path_params.get("path") or "index.html"
        asset = assets.get(name)
        if asset is None:
            error = NotFound(f"No page '/app/{name}': the dashboard starts at /app/")
            return Response(error.body("openai"), error.status, headers=SECURITY_HEADERS,
                            media_type="application/json")
        headers = {**SECURITY_HEADERS, "etag": asset.etag, "cache-control": "no-cache"}
        if request.headers.get("if-none-match") == asset.etag:
            return Response(status_code=304, headers=headers)
        return Response(asset.body, headers=headers, media_type=asset.media_type)

    return [
        Route("/app", serve, methods=["GET", "HEAD"]),  # the page's URLs are absolute
        Route("/app/{path:path}", serve, methods=["GET", "HEAD"]),
    ]
