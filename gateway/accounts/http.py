"""What every account route shares: JSON in and out, one error boundary, who is calling and
from where, and the permission each route needs.

Errors use the OpenAI error shape of ``gateway.errors``. The client address is the socket
peer, unless that peer is one of ``[server] trusted_proxies``: then it is the last address in
``X-Forwarded-For`` that is not a trusted proxy (a client can write anything at the start of
that header, but not what the proxies append).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from gateway.accounts.keys import Principal, key_from_headers
from gateway.accounts.services import AccountServices
from gateway.config import GatewayConfig
from gateway.errors import BadRequest, GatewayError, PermissionDenied, ServiceUnavailable
from gateway.storage import StorageUnavailable
from routers.catalog import Catalog
from routers.plan import Planner

Handler = Callable[[Request], Awaitable[Response]]
MAX_POLICY_INT = 1_000_000_000  # limits above this are typos; the column is a 32-bit INTEGER


class GatewayView(Protocol):
    """What the account routes need of the gateway (``gateway.wiring.Gateway``)."""

    @property
    def config(self) -> GatewayConfig: ...

    @property
    def catalog(self) -> Catalog: ...

    @property
    def planner(self) -> Planner: ...

    @property
    def accounts(self) -> AccountServices: ...

    @property
    def adapters(self) -> Any: ...


def json_response(content: Any, status: int = 200) -> Response:
    return Response(msgspec.json.encode(content), status, media_type="application/json")


def guard(handler: Callable[[Request], Awaitable[Any]]) -> Handler:
    """The error boundary: a GatewayError becomes its JSON body, a store failure a 503."""

    async def endpoint(request: Request) -> Response:
        try:
            try:
                result = await handler(request)
            except StorageUnavailable as exc:
                raise ServiceUnavailable(
                    "The account store is unavailable; retry in a few seconds"
                ) from exc
        except GatewayError as error:
            return Response(error.body("openai"), error.status, headers=error.headers,
                            media_type="application/json")
        return result if isinstance(result, Response) else json_response(result)

    return endpoint


async def read_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw:
        return {}
    try:
        body = msgspec.json.decode(raw)
    except msgspec.DecodeError as exc:
        raise BadRequest("The body is not valid JSON") from exc
    except RecursionError as exc:  # msgspec recurses once per nesting level
        raise BadRequest("The body is nested too deeply") from exc
    if not isinstance(body, dict):
        raise BadRequest("The body must be a JSON object")
    return body


def bounded_int(body: dict[str, Any], name: str, maximum: int = MAX_POLICY_INT) -> int:
    """A non-negative integer field (0 when absent), at most ``maximum``."""
    value = body.get(name, 0) or 0
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= maximum:
        raise BadRequest(
            f"'{name}' must be an integer from 0 to {maximum:,}".replace(",", "_"), param=name
        )
    return value


def query_int(request: Request, name: str, default: str, most: int) -> int:
    """A query parameter from 1 to ``most``."""
    raw = request.query_params.get(name, default)
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= most:  # int("²") fails
        raise BadRequest(f"'{name}' must be between 1 and {most}", param=name)
    return int(raw)


def bearer(request: Request) -> str | None:
    headers = request.headers
    return key_from_headers(
        headers.get("authorization", "").encode("latin-1") or None,
        headers.get("x-api-key", "").encode("latin-1") or None,
    )


async def caller(
    services: AccountServices, request: Request, *, manage: bool = False,
    allow_blocked: bool = False,
) -> Principal:
    """Who calls; 403 unless the key may ``manage`` when asked, or if the account is blocked
    (unless ``allow_blocked``: the account owner looking at their own status)."""
    who = await services.keys.authenticate(bearer(request), allow_blocked=allow_blocked)
    if manage and not who.can_manage:
        raise PermissionDenied(
            "This key has the 'inference' permission only: use a key with 'manage', or the "
            "session token from login",
            code="permission_denied",
        )
    return who


def client_address(request: Request, trusted_proxies: Sequence[str]) -> str:
    """The caller's address, believing ``X-Forwarded-For`` only from trusted proxies."""
    peer = request.client.host if request.client else ""
    if not trusted_proxies or not _trusted(peer, trusted_proxies):
        return peer
    forwarded = [hop.strip() for hop in request.headers.get("x-forwarded-for", "").split(",")]
    for hop in reversed([hop for hop in forwarded if hop]):
        if not _trusted(hop, trusted_proxies):
            return hop
    return peer


def _trusted(address: str, trusted_proxies: Sequence[str]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in ipaddress.ip_network(net, strict=False) for net in trusted_proxies)
