"""The chat endpoints' request path: authenticate, decode, plan, dispatch, encode, settle.

``ChatEndpoint`` is a plain ASGI app, one per ingress dialect. It never waits on the database:
keys come from the cache, usage goes to the ledger's queue.

Streams follow the commit point of DESIGN.md: frames are held until the first piece of content,
and any failure before it moves on to the next target; response headers go out at commit and so
name the model that really served. A stream that has not committed after ``commit_timeout``
sends its headers and ``: keep-alive`` comments while it keeps waiting (fallback still allowed).
After commit an upstream failure ends the stream with an error frame in the caller's dialect.
A client that disconnects cancels the upstream request at once; partial usage is recorded.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import structlog

from adapters import canonical as c
from adapters.base import Adapter, Call, RawReply, StreamTranslator
from adapters.errors import ProviderError, ProviderTimeout
from gateway.auth import Principal, key_from_headers
from gateway.errors import (
    AllTargetsFailed,
    BodyTooLarge,
    GatewayError,
    ModelNotFound,
    from_provider_error,
)
from gateway.ingress import Ingress, Parsed, new_request_id
from gateway.ledger import UsageRow
from gateway.state import Gateway
from routers.catalog import ModelInfo
from routers.plan import Plan

Scope = dict[str, Any]
Receive = Any
Send = Any

_log = structlog.get_logger("gateway.proxy")
_KEEPALIVE = b": keep-alive\n\n"
_SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]
_JSON = (b"content-type", b"application/json")


class ClientDisconnected(Exception):
    """The client went away before the request was read."""


class Exchange:
    """Bookkeeping for one request, settled into a ledger row and a log line at the end."""

    __slots__ = (
        "attempts",
        "cache_hit",
        "created_at",
        "error_type",
        "estimated",
        "extra_headers",
        "fallback_level",
        "headers_sent",
        "model_requested",
        "principal",
        "request_id",
        "router",
        "served",
        "started",
        "status",
        "stream",
        "ttft",
        "usage",
    )

    def __init__(self, request_id: str) -> None:
        self.request_id = request_id
        self.started = time.perf_counter()
        self.created_at = time.time()
        self.principal: Principal | None = None
        self.model_requested = ""
        self.served: ModelInfo | None = None
        self.router: str | None = None
        self.stream = False
        self.usage: c.Usage | None = None
        self.status = 200
        self.error_type = ""
        self.attempts = 0
        self.fallback_level = 0
        self.ttft: float | None = None
        self.estimated = False
        self.headers_sent = False
        self.extra_headers: list[tuple[bytes, bytes]] = []
        self.cache_hit = False

    def response_headers(self, base: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
        headers = [*base, (b"x-request-id", self.request_id.encode())]
        if self.served is not None:
            served = self.served.id.encode()
            headers.append((b"x-resolved-model", served))
            headers.append((b"x-fallback-level", str(self.fallback_level).encode()))
            if self.fallback_level:
                headers.append((b"x-fallback-model", served))
        if self.router:
            headers.append((b"x-router", self.router.encode()))
        headers.extend(self.extra_headers)
        return headers


async def read_body(receive: Receive, limit: int, declared: int | None) -> bytes:
    """The whole request body, refusing more than ``limit`` bytes (declared or sent)."""
    if declared is not None and declared > limit:
        raise BodyTooLarge(f"Request body is {declared} bytes; the limit is {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnected
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(f"Request body is over the limit of {limit} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def send_error(send: Send, error: GatewayError, dialect: str, request_id: str) -> None:
    headers = [_JSON, (b"x-request-id", request_id.encode())]
    headers.extend((k.lower().encode(), v.encode("latin-1")) for k, v in error.headers.items())
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": error.body(dialect)})


def _safe_request_id(value: bytes) -> str | None:
    text = value.decode("latin-1")[:128]
    return text if text.isprintable() and text.isascii() and text.strip() else None


def all_failed(failures: list[tuple[ModelInfo, ProviderError]]) -> GatewayError:
    """The error for a plan whose every target failed, listing each attempt."""
    if len(failures) == 1:
        target, error = failures[0]
        return from_provider_error(error, target.id)
    attempts = "; ".join(f"{target.id}: {error}" for target, error in failures)
    return AllTargetsFailed(f"All {len(failures)} models failed ({attempts}); retry later")


class ChatEndpoint:
    """One chat endpoint (ASGI app) for one ingress dialect."""

    def __init__(self, gateway: Gateway, ingress: Ingress) -> None:
        self.gateway = gateway
        self.ingress = ingress

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        authorization = api_key = request_id = cache_directive = None
        declared: int | None = None
        extra: dict[str, str] = {}
        for name, value in scope["headers"]:
            if name == b"authorization":
                authorization = value
            elif name == b"x-api-key":
                api_key = value
            elif name == b"x-request-id":
                request_id = _safe_request_id(value)
            elif name == b"content-length":
                declared = int(value) if value.isdigit() else None
            elif name == b"anthropic-beta":
                extra["anthropic-beta"] = value.decode("latin-1")
            elif name == b"x-cache":
                cache_directive = value
        exchange = Exchange(request_id or new_request_id())
        responded = False
        try:
            gateway = self.gateway
            exchange.principal = await gateway.keys.authenticate(
                key_from_headers(authorization, api_key)
            )
            body = await read_body(receive, gateway.config.server.max_body_bytes, declared)
            parsed = self.ingress.parse(body)
            exchange.model_requested = parsed.model
            exchange.stream = parsed.stream
            plan = gateway.planner.plan(parsed.model)
            if plan is None:
                raise ModelNotFound(
                    f"Unknown model '{parsed.model}': GET /v1/models lists the models you can use",
                    param="model",
                )
            exchange.router = plan.router
            if parsed.stream:
                responded = True
                await self._stream(parsed, plan, exchange, extra, receive, send)
            elif gateway.cache is not None and gateway.cache.wanted(
                exchange.principal, cache_directive
            ):
                await gateway.cache.complete(
                    self, body, parsed, plan, exchange, extra, send, cache_directive
                )
            else:
                await self._complete(parsed, plan, exchange, extra, send)
        except GatewayError as error:
            exchange.status = error.status
            exchange.error_type = error.openai_type
            if exchange.headers_sent:
                frame = self.ingress.error_frame(error)
                await send({"type": "http.response.body", "body": frame, "more_body": False})
            else:
                await send_error(send, error, self.ingress.dialect, exchange.request_id)
        except ClientDisconnected:
            exchange.status = 499
            exchange.error_type = "client_disconnected"
        except Exception:
            _log.exception("request_failed", request_id=exchange.request_id)
            exchange.status = 500
            exchange.error_type = "internal_error"
            if not responded:
                internal = GatewayError(
                    f"Internal error; quote request id {exchange.request_id} to the operator"
                )
                await send_error(send, internal, self.ingress.dialect, exchange.request_id)
        finally:
            self._settle(exchange)

    # --- targets ---

    def _call_for(
        self, parsed: Parsed, target: ModelInfo, headers: dict[str, str]
    ) -> tuple[Adapter, Call]:
        adapter = self.gateway.adapters[target.provider]
        if adapter.dialect == self.ingress.dialect:
            call = Call(
                model=target.upstream, stream=parsed.stream, raw=parsed.raw(), headers=headers
            )
        else:
            call = Call(
                model=target.upstream,
                stream=parsed.stream,
                request=self.ingress.to_canonical(parsed),
                headers=headers,
            )
        return adapter, call

    # --- non-streamed ---

    async def _complete(
        self, parsed: Parsed, plan: Plan, exchange: Exchange, headers: dict[str, str], send: Send
    ) -> None:
        failures: list[tuple[ModelInfo, ProviderError]] = []
        for level, target in enumerate(plan.targets):
            adapter, call = self._call_for(parsed, target, headers)
            exchange.attempts = level + 1
            try:
                reply = await adapter.complete(call)
                if isinstance(reply, RawReply):
                    body, usage = self.ingress.passthrough_reply(reply.body, target.id)
                else:
                    body, usage = self.ingress.canonical_reply(reply, target.id), reply.usage
            except ProviderError as error:
                failures.append((target, error))
                if not error.retryable and not error.context_overflow:
                    raise from_provider_error(error, target.id) from error
                continue
            exchange.served = target
            exchange.fallback_level = level
            exchange.usage = usage
            exchange.ttft = time.perf_counter() - exchange.started
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": exchange.response_headers([_JSON]),
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        raise all_failed(failures)

    # --- streamed ---

    async def _stream(
        self,
        parsed: Parsed,
        plan: Plan,
        exchange: Exchange,
        headers: dict[str, str],
        receive: Receive,
        send: Send,
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        state = {"disconnected": False, "finished": False}

        async def watch_disconnect() -> None:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    if not state["finished"]:
                        state["disconnected"] = True
                        task.cancel()
                    return

        watcher = asyncio.create_task(watch_disconnect())
        self.gateway.open_streams += 1
        try:
            await self._stream_targets(parsed, plan, exchange, headers, send)
        except asyncio.CancelledError:
            if not state["disconnected"]:
                raise
            task.uncancel()
            exchange.status = 499
            exchange.error_type = "client_disconnected"
        finally:
            state["finished"] = True
            watcher.cancel()
            self.gateway.open_streams -= 1

    async def _stream_targets(
        self, parsed: Parsed, plan: Plan, exchange: Exchange, headers: dict[str, str], send: Send
    ) -> None:
        failures: list[tuple[ModelInfo, ProviderError]] = []
        for level, target in enumerate(plan.targets):
            adapter, call = self._call_for(parsed, target, headers)
            exchange.attempts = level + 1
            exchange.served, exchange.fallback_level = target, level
            if adapter.dialect == self.ingress.dialect:
                translator = self.ingress.passthrough_translator(parsed, target.id)
            else:
                translator = self.ingress.canonical_translator(
                    parsed, target.id, exchange.request_id
                )
            items = adapter.stream(call)
            try:
                held = await self._until_commit(items, translator, exchange, send)
            except ProviderError as error:
                await items.aclose()  # type: ignore[attr-defined]
                failures.append((target, error))
                if error.retryable or error.context_overflow:
                    continue
                raise from_provider_error(error, target.id) from error
            exchange.ttft = time.perf_counter() - exchange.started
            if not exchange.headers_sent:
                exchange.headers_sent = True
                await send(
                    {
                        "type": "http.response.start",
                        "status": 200,
                        "headers": exchange.response_headers(_SSE_HEADERS),
                    }
                )
            await self._relay(items, translator, held, exchange, send)
            return
        exchange.served = None
        raise all_failed(failures)

    async def _until_commit(
        self,
        items: AsyncIterator[bytes | c.StreamEvent],
        translator: StreamTranslator,
        exchange: Exchange,
        send: Send,
    ) -> list[bytes]:
        """Read until the first content (or the end); returns the frames held so far."""
        loop = asyncio.get_running_loop()
        config = self.gateway.config
        deadline = loop.time() + self.gateway.client.timeouts.first_byte
        commit_timeout = config.server.commit_timeout
        keepalive_at = loop.time() + max(
            commit_timeout - (time.perf_counter() - exchange.started), 0
        )
        held: list[bytes] = []
        while True:
            step = asyncio.ensure_future(anext(items))
            while True:
                timeout = max(min(deadline, keepalive_at) - loop.time(), 0)
                done, _ = await asyncio.wait((step,), timeout=timeout)
                if done:
                    break
                if loop.time() >= deadline:
                    step.cancel()
                    await asyncio.wait((step,))
                    raise ProviderTimeout("first_token")
                if not exchange.headers_sent:
                    exchange.headers_sent = True
                    await send(
                        {
                            "type": "http.response.start",
                            "status": 200,
                            "headers": exchange.response_headers(_SSE_HEADERS),
                        }
                    )
                await send({"type": "http.response.body", "body": _KEEPALIVE, "more_body": True})
                keepalive_at = (
                    loop.time() + min(commit_timeout, 5.0) if commit_timeout > 0 else deadline
                )
            try:
                item = step.result()
            except StopAsyncIteration:
                return held
            frame = translator.feed(item)
            if frame:
                held.append(frame)
            if translator.committed:
                return held

    async def _relay(
        self,
        items: AsyncIterator[bytes | c.StreamEvent],
        translator: StreamTranslator,
        held: list[bytes],
        exchange: Exchange,
        send: Send,
    ) -> None:
        """Send the held frames, then everything else the upstream streams, then the close."""
        if held:
            await send({"type": "http.response.body", "body": b"".join(held), "more_body": True})
        try:
            async for item in items:
                frame = translator.feed(item)
                if frame:
                    await send({"type": "http.response.body", "body": frame, "more_body": True})
        except ProviderError as failure:
            error = from_provider_error(failure, exchange.served.id if exchange.served else "")
            exchange.usage = translator.usage
            exchange.status = 502 if error.status < 500 else error.status
            exchange.error_type = error.openai_type
            await send(
                {
                    "type": "http.response.body",
                    "body": self.ingress.error_frame(error),
                    "more_body": False,
                }
            )
            return
        finally:
            exchange.usage = translator.usage
            await items.aclose()  # type: ignore[attr-defined]
        await send({"type": "http.response.body", "body": translator.close(), "more_body": False})

    # --- settle ---

    def _settle(self, exchange: Exchange) -> None:
        gateway = self.gateway
        latency_ms = (time.perf_counter() - exchange.started) * 1000
        ttft_ms = exchange.ttft * 1000 if exchange.ttft is not None else None
        usage = exchange.usage or c.Usage()
        served = exchange.served
        if served is not None and exchange.usage is None and exchange.status in (200, 499):
            exchange.estimated = True
        cost = (
            served.cost(
                usage.input_tokens,
                0 if exchange.cache_hit else usage.output_tokens,
                usage.cache_read_tokens,
                usage.cache_creation_tokens,
            )
            if served is not None
            else 0.0
        )
        principal = exchange.principal
        if principal is not None:
            gateway.ledger.record(
                UsageRow(
                    request_id=exchange.request_id,
                    created_at=exchange.created_at,
                    key_id=principal.key_id,
                    user=principal.user,
                    dialect=self.ingress.dialect,
                    model_requested=exchange.model_requested,
                    model_served=served.id if served else "",
                    provider=served.provider if served else "",
                    router=exchange.router or "",
                    stream=exchange.stream,
                    prompt_tokens=usage.input_tokens,
                    completion_tokens=usage.output_tokens,
                    cached_tokens=usage.cache_read_tokens,
                    cache_creation_tokens=usage.cache_creation_tokens,
                    reasoning_tokens=usage.reasoning_tokens,
                    cost_usd=cost,
                    latency_ms=latency_ms,
                    ttft_ms=ttft_ms,
                    status=exchange.status,
                    error_type=exchange.error_type,
                    attempts=exchange.attempts,
                    fallback_level=exchange.fallback_level,
                    estimated=exchange.estimated,
                    cache_hit=exchange.cache_hit,
                )
            )
        gateway.metrics.record(
            model=served.id if served else "",
            status=exchange.status,
            stream=exchange.stream,
            latency=latency_ms / 1000,
            ttft=exchange.ttft,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cached_tokens=usage.cache_read_tokens,
            cost=cost,
            failed_attempts=max(exchange.attempts - (exchange.status == 200), 0),
            fallback=exchange.fallback_level > 0 and served is not None,
            requested=exchange.model_requested if exchange.attempts else "",
        )
        gateway.log.info(
            "request",
            request_id=exchange.request_id,
            status=exchange.status,
            error_type=exchange.error_type or None,
            key_id=principal.key_id if principal else None,
            model=exchange.model_requested or None,
            served=served.id if served else None,
            router=exchange.router,
            stream=exchange.stream,
            prompt_tokens=usage.input_tokens,
            completion_tokens=usage.output_tokens,
            cached_tokens=usage.cache_read_tokens,
            cost_usd=round(cost, 8),
            latency_ms=round(latency_ms, 2),
            ttft_ms=round(ttft_ms, 2) if ttft_ms is not None else None,
            attempts=exchange.attempts,
        )
