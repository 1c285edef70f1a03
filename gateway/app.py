"""The ASGI application: routes, lifespan, and the JSON error shape for everything outside the
chat endpoints."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import AsyncIterator
from typing import Any

import msgspec
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from adapters.registry import ingress
from gateway.accounts.keys import Principal, key_from_headers
from gateway.accounts.routes import account_routes
from gateway.config import GatewayConfig, load_config
from gateway.count_tokens import count_tokens_endpoint
from gateway.dashboard import dashboard_routes
from gateway.errors import GatewayError, NotFound
from gateway.logs import configure_logging
from gateway.metrics import metrics_endpoint
from gateway.openapi import openapi_routes
from gateway.proxy import ChatEndpoint
from gateway.state import Gateway
from routers.catalog import Model


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return msgspec.json.encode(content)


def error_response(error: GatewayError, dialect: str = "openai") -> Response:
    return Response(
        error.body(dialect),
        status_code=error.status,
        headers=error.headers,
        media_type="application/json",
    )


async def authenticate(gateway: Gateway, request: Request) -> Principal:
    headers = request.headers
    key = key_from_headers(
        headers.get("authorization", "").encode("latin-1") or None,
        headers.get("x-api-key", "").encode("latin-1") or None,
    )
    return await gateway.keys.authenticate(key)


def model_entry(model: Model) -> dict[str, Any]:
    pricing: dict[str, Any] = {
        "input": model.input_price,
        "output": model.output_price,
        "unit": "USD per 1M tokens",
    }
    if model.cached_input_price is not None:
        pricing["cached_input"] = model.cached_input_price
    return {
        "id": model.id,
        "object": "model",
        "created": 0,
        "owned_by": model.provider,
        "context_length": model.context,
        "max_output_tokens": model.max_output,
        "capabilities": sorted(model.capabilities),
        "aliases": list(model.aliases),
        "pricing": pricing,
        "free": model.free,
        "credits": model.credits,
    }


def anthropic_routes(gateway: Gateway) -> list[Route]:
    """The Anthropic Messages endpoints, also under ``/anthropic`` for ``ANTHROPIC_BASE_URL``."""
    messages = ChatEndpoint(gateway, ingress("anthropic"))
    count_tokens = count_tokens_endpoint(gateway)
    routes: list[Route] = []
    for prefix in ("", "/anthropic"):
        routes.append(Route(f"{prefix}/v1/messages", messages, methods=["POST"]))
        routes.append(Route(f"{prefix}/v1/messages/count_tokens", count_tokens, methods=["POST"]))
    return routes


class FastPaths:
    """The ASGI entry point: ``POST`` to a chat endpoint goes straight to its ``ChatEndpoint``;
    everything else (other routes, methods, the lifespan) to the Starlette app behind it.

    ``ChatEndpoint`` answers every error itself, so Starlette's middleware stack, exception
    wrappers and route matching (~20 µs a request) bought it nothing. Attributes such as
    ``state`` are the Starlette app's.
    """

    def __init__(self, app: Starlette, chat: dict[str, ChatEndpoint]) -> None:
        self.app = app
        self.chat = chat

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and not scope.get("root_path"):
            endpoint = self.chat.get(scope["path"])
            if endpoint is not None:
                await endpoint(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.app, name)


def chat_paths(routes: list[Any]) -> dict[str, ChatEndpoint]:
    """The ``POST`` routes served by a ``ChatEndpoint``, by exact path."""
    return {
        route.path: route.app
        for route in routes
        if isinstance(route, Route) and isinstance(route.app, ChatEndpoint)
        and route.methods and "POST" in route.methods and "{" not in route.path
    }


def create_app(config: GatewayConfig | None = None) -> FastPaths:
    """The gateway as an ASGI app (``FastPaths`` in front of Starlette); ``config`` defaults
    to ``load_config()``."""
    config = config or load_config()
    configure_logging(config.server.log_level)
    gateway = Gateway(config)

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def ready(request: Request) -> Response:
        checks = await gateway.ready()
        ok = all(value == "ok" for value in checks.values())
        return JSONResponse(
            {"status": "ready" if ok else "unavailable", "checks": checks},
            status_code=200 if ok else 503,
        )

    async def list_models(request: Request) -> Response:
        try:
            await authenticate(gateway, request)
        except GatewayError as error:
            return error_response(error)
        models = [model_entry(m) for m in gateway.catalog]
        return JSONResponse({"object": "list", "data": models + gateway.planner.listing()})

    async def get_model(request: Request) -> Response:
        try:
            await authenticate(gateway, request)
            model = gateway.catalog.get(request.path_params["model_id"])
            if model is None:
                raise NotFound(
                    f"Unknown model '{request.path_params['model_id']}': "
                    "GET /v1/models lists the models you can use"
                )
        except GatewayError as error:
            return error_response(error)
        return JSONResponse(model_entry(model))

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        error = GatewayError(exc.detail)
        error.status = exc.status_code
        error.openai_type = "not_found_error" if exc.status_code == 404 else "invalid_request_error"
        error.anthropic_type = error.openai_type
        dialect = "anthropic" if "/messages" in request.url.path else "openai"
        return error_response(error, dialect)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await gateway.start()
        # What start-up built (modules, config, catalog: ~60,000 objects) lives as long as the
        # process: frozen out of the collector's way, a full collection takes ~0 ms, not ~15.
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            await gateway.stop()

    routes = [
        Route("/health", health, methods=["GET"]),
        Route("/ready", ready, methods=["GET"]),
        Route(
            "/metrics",
            metrics_endpoint(gateway.metrics, gateway.config.server.metrics_token),
            methods=["GET"],
        ),
        Route("/v1/chat/completions", ChatEndpoint(gateway, ingress("openai")), methods=["POST"]),
        Route("/v1/responses", ChatEndpoint(gateway, ingress("responses")), methods=["POST"]),
        Route("/v1/models", list_models, methods=["GET"]),
        *anthropic_routes(gateway),
        Route("/v1/models/{model_id:path}", get_model, methods=["GET"]),
        *account_routes(gateway),
        *dashboard_routes(),
    ]
    routes += openapi_routes(routes)
    app = Starlette(
        routes=routes, lifespan=lifespan, exception_handlers={HTTPException: http_error}
    )
    app.state.gateway = gateway
    return FastPaths(app, chat_paths(routes))
