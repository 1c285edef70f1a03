"""The response cache: answer a repeated request from a stored answer, without the upstream.

**What is cached.** Non-streamed chat answers with status 200. Streamed requests are never
served from the cache nor stored (re-encoding a stored answer as a faithful stream in every
dialect is not worth it); they pass through untouched and carry no ``X-Cache`` header.

**Who opts in** (``[cache] mode``):

- ``"off"`` (default): no cache, no per-request cost.
- ``"opt-in"``: a request is cached when it sends ``X-Cache: use`` or its key is listed in
  ``cache.keys`` (by key id or key name).
- ``"on"``: every non-streamed request, unless it sends ``X-Cache: bypass``.

``X-Cache: refresh`` skips the lookup and stores the fresh answer (to replace a stale one).
Answers to cached requests carry ``X-Cache: HIT`` or ``X-Cache: MISS``.

**The match is exact** on the normalised request: the ingress dialect, the model (aliases
resolved to the catalog id), and the JSON body with keys sorted and the fields that do not
change the answer removed (``stream``, ``stream_options``, ``user``, ``metadata``). Answers are
shared within ``cache.scope``: the key, the user (default) or everybody. Entries live
``cache.ttl`` seconds, in this process (``backend = "memory"``, bounded by ``max_entries``) or
in Redis (``backend = "redis"``, shared by every worker and instance, under
``limits.redis_prefix``).

**Billing.** A hit is recorded in the ledger with ``cache_hit = 1``, the stored token counts,
all prompt tokens counted as cached, and the cost of the prompt at the model's cached input
price (its input price when it has none); completion tokens are not charged, since nothing was
generated.

**Redis down.** ``limits.redis_failure = "open"``: the request goes upstream (``X-Cache:
MISS``) and nothing is stored; ``"closed"``: a request that asked for the cache gets 503.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol

import msgspec
import structlog

from adapters import canonical as c
from gateway.config import CacheConfig, ConfigError, GatewayConfig
from gateway.redis_client import RedisClient, RedisUnavailable

if TYPE_CHECKING:
    from adapters.client import Parsed
    from gateway.accounts.keys import Principal
    from gateway.proxy import ChatEndpoint, Exchange
    from routers.plan import Plan

log = structlog.get_logger("gateway.cache")

_IGNORED_FIELDS = ("stream", "stream_options", "user", "metadata")
_JSON = (b"content-type", b"application/json")
_HIT = (b"x-cache", b"HIT")
_MISS = (b"x-cache", b"MISS")
_body_decoder = msgspec.json.Decoder(dict[str, Any])
_sorted_encoder = msgspec.json.Encoder(order="sorted")

Send = Callable[[dict[str, Any]], Awaitable[None]]


class CachedAnswer(msgspec.Struct, array_like=True):
    """One stored answer: the response body as sent, and what it was billed for."""

    served: str
    body: bytes
    input_tokens: int
    output_tokens: int
    reasoning_tokens: int
    stored_at: float


_entry_encoder = msgspec.msgpack.Encoder()
_entry_decoder = msgspec.msgpack.Decoder(CachedAnswer)


class Backend(Protocol):
    async def get(self, key: str) -> bytes | None: ...

    async def set(self, key: str, value: bytes, ttl: float) -> None: ...


class MemoryBackend:
    """Per-process LRU-by-insertion with expiry."""

    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()

    async def get(self, key: str) -> bytes | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[0] <= time.monotonic():
            del self._entries[key]
            return None
        return entry[1]

    async def set(self, key: str, value: bytes, ttl: float) -> None:
        self._entries.pop(key, None)
        self._entries[key] = (time.monotonic() + ttl, value)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)


class RedisBackend:
    """Entries under ``<prefix>cache:<hash>`` with Redis' own expiry."""

    def __init__(self, shared: RedisClient) -> None:
        self.shared = shared

    async def get(self, key: str) -> bytes | None:
        client = self.shared.client
        name = self.shared.key("cache:" + key)
        value = await self.shared.call(lambda: client.get(name), "response cache")
        return value if isinstance(value, bytes) else None

    async def set(self, key: str, value: bytes, ttl: float) -> None:
        client = self.shared.client
        name = self.shared.key("cache:" + key)
        await self.shared.call(
            lambda: client.set(name, value, px=max(int(ttl * 1000), 1)), "response cache"
        )


class ResponseCache:
    """Decides, looks up, stores; ``complete`` wraps ``ChatEndpoint._complete``."""

    def __init__(self, config: CacheConfig, backend: Backend) -> None:
        self.config = config
        self.backend = backend
        self.always = config.mode == "on"
        self.keys = frozenset(config.keys)

    def wanted(self, principal: Principal | None, directive: bytes | None) -> bool:
        """Whether this (non-streamed) request takes part in the cache."""
        if directive is not None:
            directive = directive.strip().lower()
            if directive in (b"bypass", b"no", b"off"):
                return False
            if directive in (b"use", b"refresh"):
                return True
        if self.always:
            return True
        if principal is None:
            return False
        return principal.key_id in self.keys or (
            bool(principal.key_name) and principal.key_name in self.keys
        )

    def key(self, dialect: str, model: str, principal: Principal | None, body: bytes) -> str:
        request = _body_decoder.decode(body)
        for name in _IGNORED_FIELDS:
            request.pop(name, None)
        request["model"] = model
        scope = self.config.scope
        who = ""
        if principal is not None and scope != "global":
            who = principal.key_id if scope == "key" else principal.user or principal.key_id
        digest = hashlib.sha256()
        digest.update(f"{dialect}\0{who}\0".encode())
        digest.update(_sorted_encoder.encode(request))
        return digest.hexdigest()

    async def complete(
        self,
        endpoint: ChatEndpoint,
        body: bytes,
        parsed: Parsed,
        plan: Plan,
        exchange: Exchange,
        headers: dict[str, str],
        send: Send,
        directive: bytes | None,
    ) -> None:
        gateway = endpoint.gateway
        metrics = gateway.metrics
        known = gateway.catalog.get(parsed.model)
        key = self.key(
            endpoint.ingress.dialect,
            known.id if known is not None else parsed.model,
            exchange.principal,
            body,
        )
        refresh = directive is not None and directive.strip().lower() == b"refresh"
        usable = True
        if not refresh:
            try:
                raw = await self.backend.get(key)
            except RedisUnavailable:
                raw, usable = None, False
            answer = _entry_decoder.decode(raw) if raw is not None else None
            served = gateway.catalog.get(answer.served) if answer is not None else None
            if answer is not None and served is not None:
                metrics.inc("gateway_cache_total", ("hit",))
                exchange.served = served
                exchange.cache_hit = True
                exchange.attempts = 0
                exchange.usage = c.Usage(
                    input_tokens=answer.input_tokens,
                    output_tokens=answer.output_tokens,
                    cache_read_tokens=answer.input_tokens,
                    reasoning_tokens=answer.reasoning_tokens,
                )
                exchange.ttft = time.perf_counter() - exchange.started
                exchange.extra_headers.append(_HIT)
                hit_headers = exchange.response_headers([_JSON])
                hit_headers.append((b"age", str(int(time.time() - answer.stored_at)).encode()))
                exchange.headers_sent = True
                await send({"type": "http.response.start", "status": 200, "headers": hit_headers})
                await send({"type": "http.response.body", "body": answer.body})
                return
        metrics.inc("gateway_cache_total", ("miss",))
        exchange.extra_headers.append(_MISS)
        captured: list[bytes] = []
        status = [0]

        async def capture(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            elif message["type"] == "http.response.body":
                captured.append(message.get("body", b""))
            await send(message)

        await endpoint._complete(parsed, plan, exchange, headers, capture)
        answer_body = b"".join(captured)
        if (
            not usable
            or status[0] != 200
            or exchange.served is None
            or len(answer_body) > self.config.max_entry_bytes
        ):
            return
        usage = exchange.usage or c.Usage()
        entry = CachedAnswer(
            served=exchange.served.id,
            body=answer_body,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            reasoning_tokens=usage.reasoning_tokens,
            stored_at=time.time(),
        )
        try:
            await self.backend.set(key, _entry_encoder.encode(entry), self.config.ttl)
        except RedisUnavailable:
            pass
        except Exception as exc:  # the answer is already sent: never fail the request here
            log.warning("cache_store_failed", error=str(exc))


def build_cache(config: GatewayConfig, shared: RedisClient | None) -> ResponseCache | None:
    cache = config.cache
    if cache.mode == "off":
        return None
    if cache.backend == "redis":
        if shared is None:
            raise ConfigError('cache.backend: "redis" needs limits.storage = "redis://…"')
        return ResponseCache(cache, RedisBackend(shared))
    return ResponseCache(cache, MemoryBackend(cache.max_entries))
