"""Prometheus metrics at ``GET /metrics``: plain dict counters on the request path, exposed
through a ``prometheus_client`` collector.

The request path costs one ``record`` call: about ten dict updates and a ``bisect`` per
histogram, with no locks (one event loop per process). ``prometheus_client``'s own metric
objects take a lock and walk label dicts on every ``inc``; here it only renders.

Labels are bounded: a served or requested model that is not in the catalog, or a router or
persona name, is labelled ``<provider>/other`` (``other`` without a provider), so callers'
made-up names cannot grow the label sets.

With ``gateway serve --workers N`` every worker is a process and a scrape reaches one of them;
each worker listens on a Unix socket in ``runtime.metrics_dir`` and the one scraped asks every
sibling for its figures at that moment, so every worker's counters and live gauges are current.
Counters and histograms are summed over the workers; gauges by their meaning: streams in flight
and pending rows are summed, ``gateway_redis_up`` is the lowest (1 only if every worker reaches
Redis). A worker that exits takes its counts with it (counters may go down: Prometheus'
``rate`` treats that as a reset).

Rendering runs in a thread and concurrent scrapes share one render, so a scrape never holds the
event loop for longer than it takes to copy the counters.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import os
from bisect import bisect_left
from collections.abc import Awaitable, Callable, Iterable, Iterator
from pathlib import Path

import msgspec
from prometheus_client.exposition import generate_latest
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response

from gateway.config import GatewayConfig
from gateway.errors import AuthenticationFailed

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
                   120.0, 300.0)
TTFT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
SIBLING_TIMEOUT = 1.0  # seconds a scrape waits for a sibling worker's figures

# name -> (kind, help, label names). Gauges: "gauge" is summed over workers, "gauge_min" takes
# the lowest (a 0/1 health flag).
SPEC: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "gateway_requests_total": (
        "counter",
        "Requests answered, by served model, operation (chat, responses, embeddings…), "
        "HTTP status and kind",
        ("model", "operation", "status", "kind"),
    ),
    "gateway_request_duration_seconds": (
        "histogram", "Time from request to last byte", ("model", "kind"),
    ),
    "gateway_time_to_first_token_seconds": (
        "histogram", "Time from request to the first content of a streamed answer", ("model",),
    ),
    "gateway_tokens_total": ("counter", "Tokens billed, by model and type", ("model", "type")),
    "gateway_cost_usd_total": ("counter", "Cost billed in USD, by model", ("model",)),
    "gateway_upstream_errors_total": (
        "counter", "Upstream attempts that failed, by the model first asked for", ("model",),
    ),
    "gateway_fallbacks_total": (
        "counter", "Requests served by a fallback target, by the model that served", ("model",),
    ),
    "gateway_cache_total": ("counter", "Response cache lookups, by result", ("result",)),
    "gateway_open_streams": ("gauge", "Streams in flight", ()),
    "gateway_ledger_pending_rows": ("gauge", "Usage rows waiting to be written", ()),
    "gateway_ledger_dropped_rows_total": (
        "counter", "Usage rows dropped because the buffer was full", (),
    ),
    "gateway_redis_up": (
        "gauge_min", "1 if Redis answered the last command, on every worker (when configured)", (),
    ),
}
_BUCKETS = {
    "gateway_request_duration_seconds": LATENCY_BUCKETS,
    "gateway_time_to_first_token_seconds": TTFT_BUCKETS,
}

Labels = tuple[str, ...]
LiveFigures = Callable[[], dict[str, float]]


class Snapshot(msgspec.Struct, array_like=True):
    """One worker's figures at one moment (what a sibling sends over its socket)."""

    counters: list[tuple[str, list[str], float]]
    # per-bucket counts (not cumulative), then the +Inf count, then the sum
    histograms: list[tuple[str, list[str], list[float]]]
    # live figures read at snapshot time: gauges, and counters kept elsewhere
    live: dict[str, float]


_SNAPSHOT = msgspec.json.Decoder(Snapshot)


class Metrics:
    """This process's counters and histograms, and its link to sibling workers."""

    def __init__(
        self,
        models: Iterable[str] = (),
        providers: Iterable[str] = (),
        live: LiveFigures | None = None,
    ) -> None:
        self.counters: dict[tuple[str, Labels], float] = {}
        self.histograms: dict[tuple[str, Labels], list[float]] = {}
        self._models = frozenset(models)
        self._providers = frozenset(providers)
        self._live = live or dict
        self._server: asyncio.AbstractServer | None = None
        self._socket: Path | None = None
        self._directory: Path | None = None
        self._render: asyncio.Future[bytes] | None = None

    @classmethod
    def for_config(cls, config: GatewayConfig, live: LiveFigures | None = None) -> Metrics:
        """Metrics whose ``model`` labels are the names ``config`` knows."""
        names: set[str] = set(config.routers) | set(config.personas)
        for model in config.models:
            names.add(model.id)
            names.update(model.aliases)
        names.update(f"{p}/{r}" for p in config.routing.router_prefixes for r in config.routers)
        return cls(names, config.providers, live)

    def label(self, model: str) -> str:
        """``model`` if the configuration names it, else ``<provider>/other`` (or ``other``)."""
        if model in self._models or not model:
            return model
        provider, _, rest = model.partition("/")
        return f"{provider}/other" if rest and provider in self._providers else "other"

    def inc(self, name: str, labels: Labels, value: float = 1.0) -> None:
        key = (name, labels)
        self.counters[key] = self.counters.get(key, 0.0) + value

    def observe(
        self, name: str, labels: Labels, value: float, buckets: tuple[float, ...]
    ) -> None:
        key = (name, labels)
        counts = self.histograms.get(key)
        if counts is None:
            counts = self.histograms[key] = [0.0] * (len(buckets) + 2)
        counts[bisect_left(buckets, value)] += 1
        counts[-1] += value

    def record(
        self,
        *,
        model: str,
        operation: str = "chat",
        status: int,
        stream: bool,
        latency: float,
        ttft: float | None,
        input_tokens: int,
        output_tokens: int,
        cached_tokens: int,
        cost: float,
        failed_attempts: int,
        fallback: bool,
        requested: str,
    ) -> None:
        """One settled request."""
        kind = "stream" if stream else "complete"
        if model not in self._models:
            model = self.label(model)
        self.inc("gateway_requests_total", (model, operation, str(status), kind))
        self.observe("gateway_request_duration_seconds", (model, kind), latency, LATENCY_BUCKETS)
        if stream and ttft is not None:
            self.observe("gateway_time_to_first_token_seconds", (model,), ttft, TTFT_BUCKETS)
        if input_tokens:
            self.inc("gateway_tokens_total", (model, "input"), input_tokens)
        if output_tokens:
            self.inc("gateway_tokens_total", (model, "output"), output_tokens)
        if cached_tokens:
            self.inc("gateway_tokens_total", (model, "cached_input"), cached_tokens)
        if cost:
            self.inc("gateway_cost_usd_total", (model,), cost)
        if failed_attempts:
            self.inc("gateway_upstream_errors_total", (self.label(requested),), failed_attempts)
        if fallback:
            self.inc("gateway_fallbacks_total", (model,))

    def snapshot(self) -> Snapshot:
        """This worker's figures now (on the event loop: a copy, no rendering)."""
        return Snapshot(
            counters=[(n, list(labels), v) for (n, labels), v in self.counters.items()],
            histograms=[(n, list(labels), list(v)) for (n, labels), v in self.histograms.items()],
            live=self._live(),
        )

    # --- across workers ---

    async def share(self, directory: str) -> None:
        """Answer sibling workers' scrapes on a socket in ``directory`` (``--workers N``)."""
        self._directory = Path(directory)
        self._directory.mkdir(parents=True, exist_ok=True)
        self._socket = self._directory / f"{os.getpid()}-{os.urandom(3).hex()}.sock"
        self._server = await asyncio.start_unix_server(self._answer, path=str(self._socket))

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            writer.write(msgspec.json.encode(self.snapshot()))
            await writer.drain()
        writer.close()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        if self._socket is not None:
            with contextlib.suppress(OSError):
                self._socket.unlink()

    async def _siblings(self) -> list[Snapshot]:
        if self._directory is None:
            return []
        paths = [p for p in self._directory.glob("*.sock") if p != self._socket]
        found = await asyncio.gather(*(_ask(path) for path in paths))
        return [snapshot for snapshot in found if snapshot is not None]

    async def exposition(self) -> bytes:
        """The Prometheus text of this worker and its siblings; concurrent scrapes share it."""
        if self._render is None or self._render.done():
            self._render = asyncio.ensure_future(self._exposition())
        return await asyncio.shield(self._render)

    async def _exposition(self) -> bytes:
        snapshots = [self.snapshot(), *await self._siblings()]
        return await asyncio.to_thread(render, snapshots)


async def _ask(path: Path) -> Snapshot | None:
    """A sibling's snapshot; None if it is gone (its socket is then removed) or too slow."""
    try:
        async with asyncio.timeout(SIBLING_TIMEOUT):
            reader, writer = await asyncio.open_unix_connection(str(path))
            data = await reader.read()
            writer.close()
        return _SNAPSHOT.decode(data)
    except (ConnectionRefusedError, FileNotFoundError):
        with contextlib.suppress(OSError):
            path.unlink()
    except (OSError, TimeoutError, msgspec.DecodeError):
        pass
    return None


class SnapshotCollector(Collector):
    """A ``prometheus_client`` collector over workers' snapshots, merged by metric kind."""

    def __init__(self, snapshots: list[Snapshot]) -> None:
        self.counters: dict[tuple[str, Labels], float] = {}
        self.histograms: dict[tuple[str, Labels], list[float]] = {}
        self.gauges: dict[str, float] = {}
        for snap in snapshots:
            for name, labels, value in snap.counters:
                key = (name, tuple(labels))
                self.counters[key] = self.counters.get(key, 0.0) + value
            for name, labels, values in snap.histograms:
                key = (name, tuple(labels))
                mine = self.histograms.get(key)
                if mine is None or len(mine) != len(values):
                    self.histograms[key] = list(values)
                else:
                    self.histograms[key] = [a + b for a, b in zip(mine, values, strict=True)]
            for name, value in snap.live.items():
                merge = min if SPEC.get(name, ("",))[0] == "gauge_min" else _add
                self.gauges[name] = merge(self.gauges[name], value) if name in self.gauges \
                    else value

    def collect(self) -> Iterator[Metric]:
        for name, (kind, help_text, label_names) in SPEC.items():
            if kind == "histogram":
                yield self._histogram(name, help_text, label_names)
                continue
            if not label_names:
                if name not in self.gauges:
                    continue
                family: Metric = (
                    CounterMetricFamily(name, help_text, value=self.gauges[name])
                    if kind == "counter"
                    else GaugeMetricFamily(name, help_text, value=self.gauges[name])
                )
                yield family
                continue
            counter = CounterMetricFamily(name, help_text, labels=label_names)
            for (metric, labels), value in sorted(self.counters.items()):
                if metric == name:
                    counter.add_metric(labels, value)
            yield counter

    def _histogram(
        self, name: str, help_text: str, label_names: tuple[str, ...]
    ) -> HistogramMetricFamily:
        family = HistogramMetricFamily(name, help_text, labels=label_names)
        bounds = _BUCKETS[name]
        for (metric, labels), values in sorted(self.histograms.items()):
            if metric != name:
                continue
            cumulative = 0.0
            buckets: list[tuple[str, float]] = []
            for bound, count in zip(bounds, values, strict=False):
                cumulative += count
                buckets.append((format(bound, "g"), cumulative))
            buckets.append(("+Inf", cumulative + values[len(bounds)]))
            family.add_metric(labels, buckets, values[-1])
        return family


def _add(a: float, b: float) -> float:
    return a + b


def render(snapshots: list[Snapshot]) -> bytes:
    """The Prometheus text exposition of the merged ``snapshots``."""
    return generate_latest(SnapshotCollector(snapshots))


def metrics_endpoint(
    metrics: Metrics, token: str
) -> Callable[[Request], Awaitable[Response]]:
    """``GET /metrics``; with ``server.metrics_token`` set, only for ``Bearer <token>``."""
    expected = f"Bearer {token}".encode()

    async def endpoint(request: Request) -> Response:
        if token:
            given = request.headers.get("authorization", "").encode("latin-1")
            if not hmac.compare_digest(given, expected):
                error = AuthenticationFailed(
                    "GET /metrics needs 'Authorization: Bearer <server.metrics_token>'"
                )
                return Response(error.body("openai"), status_code=401,
                                media_type="application/json")
        return Response(await metrics.exposition(), media_type=CONTENT_TYPE)

    return endpoint
