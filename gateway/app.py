"""The ASGI application: routes, lifespan, and the one error boundary of every route outside
the pipeline's endpoints: Starlette exception handlers that answer ``GatewayError`` in the
caller's dialect, a storage outage as 503, and anything unexpected as a JSON 500 (never
Starlette's plain-text one). Request bodies are depth-checked before any handler decodes
them (``gateway.json_depth``)."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import AsyncIterator, Awaitable
from typing import Any

import msgspec
import structlog
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
from gateway.errors import GatewayError, NotFound, ServiceUnavailable
from gateway.json_depth import DepthGuard
from gateway.logs import configure_logging
from gateway.metrics import metrics_endpoint
from gateway.openapi import openapi_routes
from gateway.pipeline.embeddings import EmbeddingsOperation
from gateway.pipeline.endpoint import Endpoint
from gateway.pipeline.images import ImagesOperation
from gateway.pipeline.scoring import ModerationOperation, RerankOperation
from gateway.platform.routes import platform_routes
from gateway.responses.routes import response_routes
from gateway.storage import StorageUnavailable
from gateway.video.routes import video_routes
from gateway.wiring import (
    Gateway,
    build_gateway,
    chat_endpoint,
    operation_endpoint,
    responses_endpoint,
)
from routers.catalog import Model

_log = structlog.get_logger("gateway.app")
# Middle-generation collections between two full ones (Python's default: 10; see lifespan).
FULL_COLLECTION_AFTER = 100


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
    if model.mode == "images":
        pricing["per_image"] = model.price_per_image
    elif model.mode == "video":
        pricing["per_second"] = model.price_per_second
        pricing["per_video"] = model.price_per_video
    return {
        "id": model.id,
        "object": "model",
        "created": 0,
        "owned_by": model.provider,
        "mode": model.mode,
        "context_length": model.context,
        "max_output_tokens": model.max_output,
        "capabilities": sorted(model.capabilities),
        "aliases": list(model.aliases),
        "pricing": pricing,
        "free": model.free,
        "credits": model.credits,
    }


def operation_routes(gateway: Gateway) -> list[Route]:
    """The endpoints of the operations beyond chat, each serving the models of its mode."""
    return [
        Route("/v1/embeddings", operation_endpoint(gateway, EmbeddingsOperation()),
              methods=["POST"]),
        Route("/v1/rerank", operation_endpoint(gateway, RerankOperation()), methods=["POST"]),
        Route("/v1/moderations", operation_endpoint(gateway, ModerationOperation()),
              methods=["POST"]),
        Route("/v1/images/generations", operation_endpoint(gateway, ImagesOperation()),
              methods=["POST"]),
    ]


def anthropic_routes(gateway: Gateway) -> list[Route]:
    """The Anthropic Messages endpoints, also under ``/anthropic`` for ``ANTHROPIC_BASE_URL``."""
    messages = chat_endpoint(gateway, ingress("anthropic"))
    count_tokens = count_tokens_endpoint(gateway)
    routes: list[Route] = []
    for prefix in ("", "/anthropic"):
        routes.append(Route(f"{prefix}/v1/messages", messages, methods=["POST"]))
        routes.append(Route(f"{prefix}/v1/messages/count_tokens", count_tokens, methods=["POST"]))
    return routes


class FastPaths:
    """The ASGI entry point: ``POST`` to a pipeline endpoint goes straight to its ``Endpoint``;
    everything else (other routes, methods, the lifespan) to the Starlette app behind it.

    ``Endpoint`` answers every error itself, so Starlette's middleware stack, exception
    wrappers and route matching would buy it nothing but their cost (bench/README.md,
    "Measurements behind the code"). Attributes such as ``state`` are the Starlette app's.
    """

    def __init__(self, app: Starlette, chat: dict[str, Endpoint]) -> None:
        self.app = app
        self.guarded = DepthGuard(app)
        self.chat = chat

    def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Awaitable[None]:
        # The app's own awaitable, returned: no frame of ours to resume at every step.
        if scope["type"] == "http" and scope["method"] == "POST" and not scope.get("root_path"):
            endpoint = self.chat.get(scope["path"])
            if endpoint is not None:
                return endpoint(scope, receive, send)
        return self.guarded(scope, receive, send)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.app, name)


def chat_paths(routes: list[Any]) -> dict[str, Endpoint]:
    """The ``POST`` routes served by a pipeline ``Endpoint``, by exact path."""
    return {
        route.path: route.app
        for route in routes
        if isinstance(route, Route) and isinstance(route.app, Endpoint)
        and route.methods and "POST" in route.methods and "{" not in route.path
    }


def service_routes(gateway: Gateway) -> tuple[list[Route], list[Route]]:
    """The health, readiness and metrics routes, and the model listing routes."""

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
        await authenticate(gateway, request)
        models = [model_entry(m) for m in gateway.catalog]
        return JSONResponse({"object": "list", "data": models + gateway.planner.listing()})

    async def get_model(request: Request) -> Response:
        await authenticate(gateway, request)
        model = gateway.catalog.get(request.path_params["model_id"])
        if model is None:
            raise NotFound(
                f"Unknown model '{request.path_params['model_id']}': "
                "GET /v1/models lists the models you can use"
            )
        return JSONResponse(model_entry(model))

    service = [
        Route("/health", health, methods=["GET"]),
        Route("/ready", ready, methods=["GET"]),
        Route(
            "/metrics",
            metrics_endpoint(gateway.metrics, gateway.config.server.metrics_token),
            methods=["GET"],
        ),
    ]
    return service, [
        Route("/v1/models", list_models, methods=["GET"]),
        Route("/v1/models/{model_id:path}", get_model, methods=["GET"]),
    ]


def create_app(config: GatewayConfig | None = None, gateway: Gateway | None = None) -> FastPaths:
    """The gateway as an ASGI app (``FastPaths`` in front of Starlette); ``config`` defaults
    to ``load_config()``, ``gateway`` to ``build_gateway(config)``."""
    config = gateway.config if gateway is not None else config or load_config()
    configure_logging(config.server.log_level)
    services = gateway or build_gateway(config)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await services.start()
        # What start-up built (modules, config, catalog) lives as long as the process: frozen
        # out of the collector's way, full collections stop pausing streams (bench/README.md).
        gc.collect()
        gc.freeze()
        # Open streams are long-lived too (~125 tracked objects each): a full collection at
        # 1,000 open streams pauses every stream ~70-90 ms, and by default one ran for every
        # ~560 streams opened. Full collections wait for 100 younger ones instead of 10.
        young, middle, _ = gc.get_threshold()
        gc.set_threshold(young, middle, FULL_COLLECTION_AFTER)
        try:
            yield
        finally:
            await services.stop()

    service, models = service_routes(services)
    chat = chat_endpoint(services, ingress("openai"))
    routes = [
        *service,
        Route("/v1/chat/completions", chat, methods=["POST"]),
        Route("/v1/responses", responses_endpoint(services), methods=["POST"]),
        *response_routes(services.responses, services.accounts),
        *operation_routes(services),
        models[0],
        *anthropic_routes(services),
        models[1],  # after /v1/messages/…: its path parameter takes slashes
        *account_routes(services),
        *dashboard_routes(),
        *platform_routes(services),
        *video_routes(services.video),
    ]
    routes += openapi_routes(routes)
    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers=EXCEPTION_HANDLERS)
    app.state.gateway = services
    return FastPaths(app, chat_paths(routes))


def _dialect(request: Request) -> str:
    return "anthropic" if "/messages" in request.url.path else "openai"


async def gateway_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, GatewayError)
    return error_response(exc, _dialect(request))


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    error = GatewayError(exc.detail)
    error.status = exc.status_code
    error.openai_type = "not_found_error" if exc.status_code == 404 else "invalid_request_error"
    error.anthropic_type = error.openai_type
    return error_response(error, _dialect(request))


async def storage_down(request: Request, exc: Exception) -> Response:
    error = ServiceUnavailable("The account store is unavailable; retry in a few seconds")
    return error_response(error, _dialect(request))


async def internal_error(request: Request, exc: Exception) -> Response:
    """Anything a route did not expect: logged with its traceback, answered as JSON."""
    _log.error("request_failed", path=request.url.path, exc_info=exc)
    error = GatewayError("Internal error; the operator's log has the details")
    return error_response(error, _dialect(request))


EXCEPTION_HANDLERS: dict[Any, Any] = {
    GatewayError: gateway_error,
    StorageUnavailable: storage_down,
    HTTPException: http_error,
    Exception: internal_error,  # Starlette's ServerErrorMiddleware: never its plain-text 500
}
