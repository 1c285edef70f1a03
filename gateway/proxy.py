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
import math
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

import msgspec
import structlog
from msgspec import UNSET

from adapters import canonical as c
from adapters.base import Adapter, Call, RawReply, StreamTranslator, speaks
from adapters.client import Ingress, Parsed
from adapters.errors import InvalidRequest, ProviderError, ProviderHTTPError, ProviderTimeout
from adapters.overlay import apply_to_canonical
from gateway.accounts.keys import Principal, key_from_headers
from gateway.admission import AccountHeaders, Ticket
from gateway.errors import (
    AllTargetsFailed,
    BadRequest,
    BodyTooLarge,
    GatewayError,
    ModelNotFound,
    RateLimited,
    ServiceUnavailable,
    UpstreamTimeout,
    from_invalid_request,
    from_provider_error,
    from_routing_refusal,
)
from gateway.ingress import new_request_id
from gateway.ledger import UsageRow
from gateway.state import Gateway
from gateway.unpriced import drop_unpriced
from gateway.usage_estimate import (
    BYOK_KEYS,
    SentBodies,
    estimate_usage,
    load_tokenizer,
    max_tokens_of,
    tokenizer_loaded,
)
from routers.attempts import Attempts
from routers.catalog import Deployment
from routers.plan import Plan
from routers.refusals import RoutingRefused

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
        "sent",
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
        self.served: Deployment | None = None
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
        self.sent: SentBodies | None = None  # the answer, kept only while no usage is known

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


def all_failed(attempts: Attempts) -> GatewayError:
    """The most telling error for a plan whose every target failed, listing each attempt."""
    failures = attempts.failures
    retry_in = 0
    if attempts.benched:
        retry_in = max(1, math.ceil(min(attempts.benched.values()) - time.monotonic()))
    tried = {target.id for target, _ in failures}
    resting = ", ".join(name for name in attempts.benched if name not in tried)
    if not failures:
        if resting and set(attempts.benched) <= attempts.limited:
            return RateLimited(
                f"Every model for this request is rate-limited by its provider ({resting}); "
                f"retry in {retry_in} s",
                headers={"Retry-After": str(retry_in)},
            )
        if resting:
            return ServiceUnavailable(
                f"Every model for this request is resting after failures or rate limits "
                f"({resting}); retry in {retry_in} s",
                headers={"Retry-After": str(retry_in)},
            )
        return AllTargetsFailed("No model of this request could be tried; retry later")
    if len(failures) == 1 and not resting:
        target, error = failures[0]
        return from_provider_error(error, target.id)
    listing = "; ".join(f"{target.id}: {_describe(error)}" for target, error in failures)
    if resting:
        listing += f"; resting, not tried: {resting}"
    errors = [error for _, error in failures]
    hints = [e.retry_after for e in errors if isinstance(e, ProviderHTTPError) and e.retry_after]
    seconds = math.ceil(min(hints)) if hints else retry_in
    headers = {"Retry-After": str(max(1, seconds))} if seconds else {}
    count = f"{len(failures)} attempt{'s' if len(failures) > 1 else ''}"
    if all(isinstance(e, ProviderHTTPError) and e.status == 429 for e in errors):
        return RateLimited(
            f"Every model is rate-limited ({listing}); retry in {max(1, seconds)} s",
            headers=headers,
        )
    if all(e.context_overflow for e in errors):
        return BadRequest(
            f"The prompt is too long for every model tried ({listing}); shorten it or name a "
            "model with a larger context",
            param="messages",
            code="context_length_exceeded",
        )
    if all(isinstance(e, ProviderTimeout) for e in errors):
        return UpstreamTimeout(f"All {count} timed out ({listing}); retry later", headers=headers)
    return AllTargetsFailed(f"All {count} failed ({listing}); retry later", headers=headers)


def _describe(error: ProviderError) -> str:
    """One failed attempt for an error message; a refusal of our credentials is not quoted,
    since providers echo part of the key in it."""
    if isinstance(error, ProviderHTTPError) and error.status in (401, 403):
        return f"HTTP {error.status}: the provider refused the gateway's credentials"
    return str(error)


class _Bodies:
    """What one request sends upstream, prepared once however many targets it tries: the
    caller's body (routing keys stripped, overlay applied; read-only, so no fallback sees
    another's changes) or its canonical form."""

    __slots__ = ("canonical", "ingress", "overlay", "parsed", "raw")

    def __init__(self, parsed: Parsed, ingress: Ingress, plan: Plan) -> None:
        self.parsed = parsed
        self.ingress = ingress
        self.overlay = plan.overlay
        self.raw: Mapping[str, Any] | None = None
        self.canonical: c.Request | None = None

    def raw_body(self) -> Mapping[str, Any]:
        if self.raw is None:
            self.raw = self.ingress.passthrough_body(self.parsed, self.overlay)
        return self.raw

    def canonical_request(self) -> c.Request:
        if self.canonical is None:
            request = self.ingress.to_canonical(self.parsed)
            if self.overlay is not None:
                request = apply_to_canonical(request, self.overlay)
            self.canonical = request
        return self.canonical


def fit_to_model(request: c.Request, target: Deployment) -> c.Request:
    """A translated request trimmed to what ``target`` takes: no more output tokens than its
    ``max_output`` (Claude Code asks 32000 of every model), and no reasoning controls for a
    listed model without the ``reasoning`` capability (gpt-4o refuses ``reasoning_effort``)."""
    changes: dict[str, Any] = {}
    if request.max_tokens is not UNSET and request.max_tokens > target.max_output > 0:
        changes["max_tokens"] = target.max_output
    if request.reasoning is not UNSET and target.listed and "reasoning" not in target.capabilities:
        changes["reasoning"] = UNSET
    return msgspec.structs.replace(request, **changes) if changes else request


class _KeepAlive:
    """The response headers and ``: keep-alive`` comments of a stream that has not committed
    after ``commit_timeout``: a task started by a timer, only for such streams."""

    __slots__ = ("exchange", "interval", "send", "sending", "stopped", "task")

    def __init__(self, exchange: Exchange, send: Send, commit_timeout: float) -> None:
        self.exchange = exchange
        self.send = send
        self.interval = min(commit_timeout, 5.0)
        self.task: asyncio.Task[None] | None = None
        self.sending = False
        self.stopped = False

    def start(self) -> None:
        if not self.stopped:
            self.task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        exchange = self.exchange
        while not self.stopped:
            self.sending = True
            if not exchange.headers_sent:
                exchange.headers_sent = True
                await self.send(
                    {
                        "type": "http.response.start",
                        "status": 200,
                        "headers": exchange.response_headers(_SSE_HEADERS),
                    }
                )
            await self.send({"type": "http.response.body", "body": _KEEPALIVE, "more_body": True})
            self.sending = False
            if self.interval <= 0:  # commit_timeout 0: headers at once, then wait quietly
                return
            await asyncio.sleep(self.interval)

    async def stop(self) -> None:
        """Stop the comments; a send under way finishes first (sends must not interleave)."""
        self.stopped = True
        task = self.task
        if task is None:
            return
        if not self.sending:
            task.cancel()
        await asyncio.wait((task,))
        if not task.cancelled() and task.exception() is not None:
            raise task.exception()  # type: ignore[misc]


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
        ticket: Ticket | None = None
        body = b""
        try:
            gateway = self.gateway
            exchange.principal = await gateway.keys.authenticate(
                key_from_headers(authorization, api_key)
            )
            body = await read_body(receive, gateway.config.server.max_body_bytes, declared)
            try:
                parsed = self.ingress.parse(body)
            except InvalidRequest as invalid:
                raise from_invalid_request(invalid) from invalid
            exchange.model_requested = parsed.model
            exchange.stream = parsed.stream
            plan = self._plan(parsed)
            if plan is None:
                raise ModelNotFound(
                    f"Unknown model '{parsed.model}': GET /v1/models lists the models you can use",
                    param="model",
                )
            exchange.router = plan.router
            ticket = await gateway.accounts.admission.admit(
                exchange.principal, plan.targets[0], len(body), max_tokens_of(parsed, plan.overlay)
            )
            drop_unpriced(plan, ticket.byok)
            BYOK_KEYS.set(ticket.byok or None)
            source = "byok" if plan.targets[0].provider in ticket.byok else "pool"
            exchange.extra_headers = AccountHeaders(ticket, source, exchange)
            if plan.persona:
                exchange.extra_headers.append((b"x-persona", plan.persona.encode()))
            if parsed.stream:
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
                for name, value in exchange.extra_headers:
                    error.headers.setdefault(name.decode(), value.decode("latin-1"))
                await send_error(send, error, self.ingress.dialect, exchange.request_id)
        except ClientDisconnected:
            exchange.status = 499
            exchange.error_type = "client_disconnected"
        except Exception:
            _log.exception("request_failed", request_id=exchange.request_id)
            exchange.status = 500
            exchange.error_type = "internal_error"
            if not exchange.headers_sent:
                internal = GatewayError(
                    f"Internal error; quote request id {exchange.request_id} to the operator"
                )
                await send_error(send, internal, self.ingress.dialect, exchange.request_id)
        finally:
            self._settle(exchange, ticket, body)

    # --- targets ---

    def _plan(self, parsed: Parsed) -> Plan | None:
        """The routers' plan for this request (see routers/plan.py)."""
        ingress = self.ingress

        def features() -> Any:
            return parsed.features(lambda: ingress.to_canonical(parsed))

        try:
            return self.gateway.planner.plan(parsed.model, features, parsed.chain)
        except RoutingRefused as refusal:
            raise from_routing_refusal(refusal) from refusal

    def _attempts(self, plan: Plan) -> Attempts:
        return Attempts(plan, self.gateway.planner.health, self.gateway.retry_policy)

    def _call_for(
        self, bodies: _Bodies, target: Deployment, headers: dict[str, str]
    ) -> tuple[Adapter, Call]:
        adapter = self.gateway.adapters[target.provider]
        stream = bodies.parsed.stream
        if speaks(adapter, self.ingress.dialect):
            call = Call(model=target.upstream, stream=stream, raw=bodies.raw_body(),
                        headers=headers)
        else:
            request = fit_to_model(bodies.canonical_request(), target)
            call = Call(
                model=target.upstream,
                stream=stream,
                request=request,
                headers=headers,
            )
        byok = BYOK_KEYS.get()
        if byok:
            call.api_key = byok.get(target.provider)
        return adapter, call

    # --- non-streamed ---

    async def _complete(
        self, parsed: Parsed, plan: Plan, exchange: Exchange, headers: dict[str, str], send: Send
    ) -> None:
        attempts = self._attempts(plan)
        bodies = _Bodies(parsed, self.ingress, plan)
        while (step := await attempts.next()) is not None:
            target, level = step
            adapter, call = self._call_for(bodies, target, headers)
            attempts.begin(target)
            exchange.attempts = attempts.count
            try:
                reply = await adapter.complete(call)
                if isinstance(reply, RawReply):
                    body, usage = self.ingress.passthrough_reply(reply.body, target.id)
                else:
                    body, usage = self.ingress.canonical_reply(reply, target.id), reply.usage
            except ProviderError as error:
                if not attempts.failed(target, error):
                    raise from_provider_error(error, target.id) from error
                continue
            finally:
                attempts.end(target)
            attempts.succeeded(target)
            exchange.served = target
            exchange.fallback_level = level
            exchange.usage = usage
            if usage is None:  # counted with the tokenizer at settle
                exchange.sent = SentBodies()
                exchange.sent.record(body)
            exchange.ttft = time.perf_counter() - exchange.started
            exchange.headers_sent = True
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": exchange.response_headers([_JSON]),
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        raise all_failed(attempts)

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
        state = {"disconnected": False, "finished": False, "shutdown": False}

        async def watch_disconnect() -> None:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    if not state["finished"]:
                        state["disconnected"] = True
                        state["shutdown"] = message.get("reason") == "shutdown"
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
            exchange.status = 499  # the server's shutdown cut it (gateway.lifecycle), or the client
            exchange.error_type = "shutdown" if state["shutdown"] else "client_disconnected"
        finally:
            state["finished"] = True
            watcher.cancel()
            self.gateway.open_streams -= 1

    async def _stream_targets(
        self, parsed: Parsed, plan: Plan, exchange: Exchange, headers: dict[str, str], send: Send
    ) -> None:
        attempts = self._attempts(plan)
        bodies = _Bodies(parsed, self.ingress, plan)
        while (step := await attempts.next()) is not None:
            target, level = step
            adapter, call = self._call_for(bodies, target, headers)
            exchange.served, exchange.fallback_level = target, level
            if speaks(adapter, self.ingress.dialect):
                translator = self.ingress.passthrough_translator(parsed, target.id)
            else:
                translator = self.ingress.canonical_translator(
                    parsed, target.id, exchange.request_id
                )
            items = adapter.stream(call)
            attempts.begin(target)
            exchange.attempts = attempts.count
            try:
                try:
                    held = await self._until_commit(items, translator, exchange, send)
                except ProviderError as error:
                    await items.aclose()  # type: ignore[attr-defined]
                    if attempts.failed(target, error):
                        continue
                    raise from_provider_error(error, target.id) from error
                attempts.succeeded(target)
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
                await self._relay(items, translator, held, exchange, send, attempts)
                return
            finally:
                attempts.end(target)
        exchange.served = None
        raise all_failed(attempts)

    async def _until_commit(
        self,
        items: AsyncIterator[bytes | c.StreamEvent],
        translator: StreamTranslator,
        exchange: Exchange,
        send: Send,
    ) -> list[bytes]:
        """Read until the first content (or the end); returns the frames held so far.

        The items are awaited directly (no task per item): a timer starts the keep-alive task
        once ``commit_timeout`` has passed with nothing to commit, and ``timeout_at`` ends the
        wait at the first-token deadline."""
        loop = asyncio.get_running_loop()
        config = self.gateway.config
        deadline = loop.time() + self.gateway.client.timeouts.first_byte
        commit_timeout = config.server.commit_timeout
        keepalive_at = loop.time() + max(
            commit_timeout - (time.perf_counter() - exchange.started), 0
        )
        keepalive = _KeepAlive(exchange, send, commit_timeout)
        timer = loop.call_at(keepalive_at, keepalive.start) if keepalive_at < deadline else None
        held: list[bytes] = []
        limit = asyncio.timeout_at(deadline)
        try:
            async with limit:
                while True:
                    try:
                        item = await anext(items)
                    except StopAsyncIteration:
                        return held
                    frame = translator.feed(item)
                    if frame:
                        held.append(frame)
                    if translator.committed:
                        return held
        except TimeoutError:
            if limit.expired():
                raise ProviderTimeout("first_token") from None
            raise
        finally:
            if timer is not None:
                timer.cancel()
            await keepalive.stop()

    async def _relay(
        self,
        items: AsyncIterator[bytes | c.StreamEvent],
        translator: StreamTranslator,
        held: list[bytes],
        exchange: Exchange,
        send: Send,
        attempts: Attempts | None = None,
    ) -> None:
        """Send the held frames, then everything else the upstream streams, then the close.

        While the upstream has reported no usage the frames sent are kept (``exchange.sent``)
        to count the answer with the tokenizer if it never does."""
        sent = exchange.sent = SentBodies()
        if held:
            frame = b"".join(held)
            if translator.usage is None:
                sent.record(frame)
            await send({"type": "http.response.body", "body": frame, "more_body": True})
        try:
            async for item in items:
                frame = translator.feed(item)
                if frame:
                    if translator.usage is None:
                        sent.record(frame)
                    elif sent.size:
                        sent.clear()
                    await send({"type": "http.response.body", "body": frame, "more_body": True})
        except ProviderError as failure:
            if attempts is not None and exchange.served is not None:
                attempts.broke(exchange.served, failure)
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

    async def _settle_later(self, exchange: Exchange, ticket: Ticket | None, body: bytes) -> None:
        await load_tokenizer()
        self._settle(exchange, ticket, body)

    def _settle(
        self,
        exchange: Exchange,
        ticket: Ticket | None = None,
        body: bytes = b"",
    ) -> None:
        gateway = self.gateway
        latency_ms = (time.perf_counter() - exchange.started) * 1000
        ttft_ms = exchange.ttft * 1000 if exchange.ttft is not None else None
        served = exchange.served
        if (
            served is not None
            and exchange.usage is None
            and (exchange.status in (200, 499) or exchange.ttft is not None)
        ):
            # No usage from the upstream (cut stream, disconnect): count with the tokenizer,
            # once it is loaded (in a thread; see gateway/usage_estimate.py).
            if not tokenizer_loaded():
                gateway.ledger.defer(self._settle_later(exchange, ticket, body))
                return
            exchange.estimated = True
            exchange.usage = estimate_usage(self.ingress, body, exchange.sent)
            exchange.sent = None
        usage = exchange.usage or c.Usage()
        cost = (
            served.cost(
                usage.input_tokens,
                0 if exchange.cache_hit else usage.output_tokens,
                usage.cache_read_tokens,
            )
            if served is not None
            else 0.0
        )
        if ticket is not None:
            gateway.accounts.admission.settle(ticket, served, exchange.usage, cost)
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
