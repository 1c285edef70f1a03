"""The webhook routes, at both ``/v1/webhooks`` (the seeds' path) and
``/v1/webhook_endpoints`` (OpenAI's shapes): one resource, a user's own, managed with a
``manage`` key or a session."""

from __future__ import annotations

import secrets
import time
from typing import Any, Protocol

from starlette.requests import Request
from starlette.routing import Route

from gateway.accounts.http import GatewayView, caller, guard, query_int, read_body
from gateway.errors import BadRequest, PermissionDenied
from gateway.platform.service import Platform
from gateway.platform.webhooks import EVENT_TYPES, event_body, event_catalog

PREFIXES = ("/v1/webhooks", "/v1/webhook_endpoints")


class WebhooksView(GatewayView, Protocol):
    @property
    def platform(self) -> Platform: ...


def sample_data(event_type: str) -> dict[str, Any]:
    """The ``data`` of a test event: the shape of the real one, with sample values."""
    samples: dict[str, dict[str, Any]] = {
        "key.created": {"key_id": "key_test", "name": "sample", "permissions": ["inference"]},
        "key.revoked": {"key_id": "key_test"},
        "limit.reached": {"key_id": "key_test", "limit": "requests_per_minute",
                          "window_resets_at": int(time.time()) + 60},
        "balance.low": {"balance_usd": 0.5, "threshold_usd": 1.0},
        "account.blocked": {"email": "user@example.com"},
    }
    return {"test": True, **samples.get(event_type, {"id": "sample"})}


async def send_test(platform: Platform, user: str, endpoint_id: str,
                    body: dict[str, Any]) -> dict[str, Any]:
    """A sample event of ``body["event_type"]`` delivered now to one of ``user``'s endpoints."""
    event_type = body.get("event_type", "key.created")
    if event_type not in EVENT_TYPES:
        raise BadRequest(f"'event_type' must be one of {', '.join(EVENT_TYPES)}",
                         param="event_type")
    endpoint = await platform.webhooks.row(user, endpoint_id)
    event_id = "evt_test_" + secrets.token_hex(8)
    payload = event_body(event_id, event_type, sample_data(event_type), time.time())
    attempt = await platform.deliverer.test(endpoint, event_type, payload,
                                            "msg_test_" + secrets.token_hex(8))
    return {"object": "webhook_endpoint.test", "status_code": attempt.status_code or None,
            "success": attempt.success, "webhook_endpoint_id": endpoint.id,
            "event_type": event_type, "error": attempt.error or None,
            "duration_ms": round(attempt.duration_ms, 1)}


async def event_types(request: Request) -> Any:
    """The event types an endpoint may subscribe to; public, as docs/platform.md lists them."""
    return event_catalog()


def webhook_routes(gateway: WebhooksView) -> list[Route]:
    """Every webhook route under both prefixes."""

    async def owner(request: Request) -> str:
        who = await caller(gateway.accounts, request, manage=True)
        if not who.user:
            raise PermissionDenied("This key belongs to no user, so it has no webhooks")
        return who.user

    def endpoint_id(request: Request) -> str:
        return str(request.path_params["endpoint_id"])

    async def listing(request: Request) -> Any:
        user = await owner(request)
        return {"object": "list", "data": await gateway.platform.webhooks.list(user)}

    async def create(request: Request) -> Any:
        user = await owner(request)
        return await gateway.platform.webhooks.create(user, await read_body(request))

    async def retrieve(request: Request) -> Any:
        return await gateway.platform.webhooks.get(await owner(request), endpoint_id(request))

    async def modify(request: Request) -> Any:
        user = await owner(request)
        return await gateway.platform.webhooks.update(user, endpoint_id(request),
                                                      await read_body(request))

    async def remove(request: Request) -> Any:
        return await gateway.platform.webhooks.delete(await owner(request), endpoint_id(request))

    async def rotate(request: Request) -> Any:
        return await gateway.platform.webhooks.rotate(await owner(request), endpoint_id(request))

    async def deliveries(request: Request) -> Any:
        user = await owner(request)
        limit = query_int(request, "limit", "50", 500)
        return await gateway.platform.webhooks.deliveries(user, endpoint_id(request), limit)

    async def test(request: Request) -> Any:
        user = await owner(request)
        return await send_test(gateway.platform, user, endpoint_id(request),
                               await read_body(request))

    # before "/{endpoint_id}", which would take "event_types" for an id
    routes = [Route(PREFIXES[0] + "/event_types", guard(event_types), methods=["GET"])]
    for prefix in PREFIXES:
        one = prefix + "/{endpoint_id}"
        routes += [
            Route(prefix, guard(listing), methods=["GET"]),
            Route(prefix, guard(create), methods=["POST"]),
            Route(one, guard(retrieve), methods=["GET"]),
            Route(one, guard(modify), methods=["POST"]),
            Route(one, guard(remove), methods=["DELETE"]),
            Route(one + "/rotate_secret", guard(rotate), methods=["POST"]),
            Route(one + "/test", guard(test), methods=["POST"]),
            Route(one + "/deliveries", guard(deliveries), methods=["GET"]),
        ]
    return routes
