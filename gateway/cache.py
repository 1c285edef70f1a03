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
from typing import Any, Protocol

import msgspec
import structlog

from adapters import canonical as c
from gateway.accounts.keys import Principal
from gateway.config import CacheConfig, ConfigError, GatewayConfig
from gateway.metrics import Metrics
from gateway.pipeline.dispatch import Complete
from gateway.pipeline.outcome import Admitted, Outcome
from gateway.redis_client import RedisClient, RedisUnavailable
from routers.catalog import Catalog

log = structlog.get_logger("gateway.cache")

_IGNORED_FIELDS = ("stream", "stream_options", "user", "metadata")
_HIT = (b"x-cache", b"HIT")
_MISS = (b"x-cache", b"MISS")
_body_decoder = msgspec.json.Decoder(dict[str, Any])
_sorted_encoder = msgspec.json.Encoder(order="sorted")


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
    """Decides, looks up, stores; ``decorate`` wraps the pipeline's whole-answer function."""

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

    def decorate(self, complete: Complete, dialect: str, catalog: Catalog,
                 metrics: Metrics) -> Complete:
        """``complete`` (admitted request -> whole answer) answered from the cache when it
        takes part in it: a hit is an ``Outcome`` like any other, priced at settle."""

        async def cached(admitted: Admitted) -> Outcome:
            directive = admitted.cache_directive
            facts = admitted.facts
            if not self.wanted(facts.principal, directive):
                return await complete(admitted)
            known = catalog.get(facts.model)
            key = self.key(dialect, known.id if known is not None else facts.model,
                           facts.principal, facts.body)
            refresh = directive is not None and directive.strip().lower() == b"refresh"
            usable = True
            if not refresh:
                try:
                    hit = await self._lookup(key, catalog, facts.started)
                except RedisUnavailable:
                    hit, usable = None, False
                if hit is not None:
                    metrics.inc("gateway_cache_total", ("hit",))
                    return hit
            metrics.inc("gateway_cache_total", ("miss",))
            outcome = await complete(admitted)
            outcome = msgspec.structs.replace(outcome, headers=(*outcome.headers, _MISS))
            if usable and outcome.error is None and outcome.served is not None:
                await self._store(key, outcome)
            return outcome

        return cached

    async def _lookup(self, key: str, catalog: Catalog, started: float) -> Outcome | None:
        raw = await self.backend.get(key)
        if raw is None:
            return None
        answer = _entry_decoder.decode(raw)
        served = catalog.get(answer.served)
        if served is None:
            return None
        usage = c.Usage(
            input_tokens=answer.input_tokens,
            output_tokens=answer.output_tokens,
            cache_read_tokens=answer.input_tokens,
            reasoning_tokens=answer.reasoning_tokens,
        )
        age = str(int(time.time() - answer.stored_at)).encode()
        return Outcome(served=served, usage=usage, ttft=time.perf_counter() - started,
                       body=answer.body, cache_hit=True, headers=(_HIT, (b"age", age)))

    async def _store(self, key: str, outcome: Outcome) -> None:
        if outcome.served is None or len(outcome.body) > self.config.max_entry_bytes:
            return
        usage = outcome.usage or c.Usage()
        entry = CachedAnswer(
            served=outcome.served.id,
            body=outcome.body,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            reasoning_tokens=usage.reasoning_tokens,
            stored_at=time.time(),
        )
        try:
            await self.backend.set(key, _entry_encoder.encode(entry), self.config.ttl)
        except RedisUnavailable:
            pass
        except Exception as exc:  # the answer is still good: never fail the request here
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
