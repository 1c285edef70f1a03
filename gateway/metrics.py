"""Prometheus metrics at ``GET /metrics``, counted with plain dicts on the request path.

Why not ``prometheus_client``: each of its ``inc``/``observe`` calls takes a lock and walks
label dicts, and its multi-process mode writes mmap files per metric. Here a request costs one
``record`` call: about ten dict updates and a ``bisect`` per histogram, no locks (one event
loop per process), no allocation beyond the label tuples.

With ``gateway serve --workers N`` every worker is a process of its own and a scrape reaches one
of them at random, so the numbers are **aggregated**: each worker writes a snapshot of its
counters to ``$GATEWAY_METRICS_DIR/<pid>.json`` every ``EXPORT_INTERVAL`` seconds (the CLI
creates the directory when N > 1), and ``/metrics`` sums its own live counters with the
snapshots of its living siblings. Other workers' figures can lag by up to that interval; a
worker that exits takes its counts with it (counters may go down: Prometheus' ``rate`` treats
that as a reset). With one worker the figures are live.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from bisect import bisect_left
from pathlib import Path

import msgspec

EXPORT_INTERVAL = 2.0
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
                   120.0, 300.0)
TTFT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

# name -> (type, help, label names)
SPEC: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "gateway_requests_total": (
        "counter", "Chat requests answered, by served model, HTTP status and kind",
        ("model", "status", "kind"),
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
    "gateway_redis_up": ("gauge", "1 if Redis answered the last command (when configured)", ()),
}

Labels = tuple[str, ...]
_INF = 'le="+Inf"'


class Snapshot(msgspec.Struct):
    counters: list[tuple[str, list[str], float]]
    histograms: list[tuple[str, list[str], list[float]]]


class Metrics:
    """This process's counters and histograms."""

    def __init__(self) -> None:
        self.counters: dict[tuple[str, Labels], float] = {}
        # histogram -> per-bucket counts (non-cumulative), then +Inf count, then sum
        self.histograms: dict[tuple[str, Labels], list[float]] = {}
        self.gauges: dict[str, float] = {}
        self._task: asyncio.Task[None] | None = None
        self.directory: Path | None = None

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
        """One settled request (called from ``ChatEndpoint._settle``)."""
        kind = "stream" if stream else "complete"
        self.inc("gateway_requests_total", (model, str(status), kind))
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
            self.inc("gateway_upstream_errors_total", (requested,), failed_attempts)
        if fallback:
            self.inc("gateway_fallbacks_total", (model,))

    # --- across workers ---

    def snapshot(self) -> Snapshot:
        counters = [(n, list(labels), v) for (n, labels), v in self.counters.items()]
        counters += [(n, [], v) for n, v in self.gauges.items()]
        return Snapshot(
            counters=counters,
            histograms=[(n, list(labels), v) for (n, labels), v in self.histograms.items()],
        )

    def start_export(self, directory: str) -> None:
        """Write snapshots for sibling workers to read (``--workers N``)."""
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._task = asyncio.create_task(self._export_loop(), name="metrics-export")

    async def _export_loop(self) -> None:
        while True:
            await asyncio.sleep(EXPORT_INTERVAL)
            self.export()

    def export(self) -> None:
        if self.directory is None:
            return
        path = self.directory / f"{os.getpid()}.json"
        tmp = path.with_suffix(".tmp")
        with contextlib.suppress(OSError):
            tmp.write_bytes(msgspec.json.encode(self.snapshot()))
            tmp.replace(path)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self.directory is not None:
            with contextlib.suppress(OSError):
                (self.directory / f"{os.getpid()}.json").unlink()

    def _siblings(self) -> list[Snapshot]:
        if self.directory is None:
            return []
        snapshots = []
        me = os.getpid()
        for path in self.directory.glob("*.json"):
            pid = int(path.stem) if path.stem.isdigit() else 0
            if pid == me or not _alive(pid):
                continue
            with contextlib.suppress(OSError, msgspec.DecodeError):
                snapshots.append(msgspec.json.decode(path.read_bytes(), type=Snapshot))
        return snapshots

    def render(self) -> bytes:
        """The Prometheus text exposition of this process plus its sibling workers."""
        counters: dict[tuple[str, Labels], float] = dict(self.counters)
        for name, value in self.gauges.items():
            counters[(name, ())] = value
        histograms = {key: list(v) for key, v in self.histograms.items()}
        for snap in self._siblings():
            for name, names, value in snap.counters:
                key = (name, tuple(names))
                counters[key] = counters.get(key, 0.0) + value
            for name, names, values in snap.histograms:
                key = (name, tuple(names))
                mine = histograms.get(key)
                if mine is None or len(mine) != len(values):
                    histograms[key] = list(values)
                else:
                    histograms[key] = [a + b for a, b in zip(mine, values, strict=True)]
        lines: list[str] = []
        for name, (kind, help_text, label_names) in SPEC.items():
            lines.append(f"# HELP {name} {help_text}")
            lines.append(f"# TYPE {name} {kind}")
            if kind == "histogram":
                buckets = (
                    TTFT_BUCKETS if name == "gateway_time_to_first_token_seconds"
                    else LATENCY_BUCKETS
                )
                for (metric, labels), values in sorted(histograms.items()):
                    if metric != name:
                        continue
                    base = _labels(label_names, labels)
                    cumulative = 0.0
                    for bound, count in zip(buckets, values, strict=False):
                        cumulative += count
                        le = 'le="' + format(bound, "g") + '"'
                        lines.append(f"{name}_bucket{_with(base, le)} {cumulative:g}")
                    cumulative += values[len(buckets)]
                    lines.append(f"{name}_bucket{_with(base, _INF)} {cumulative:g}")
                    lines.append(f"{name}_count{_wrap(base)} {cumulative:g}")
                    lines.append(f"{name}_sum{_wrap(base)} {values[-1]!r}")
                continue
            for (metric, labels), value in sorted(counters.items()):
                if metric == name:
                    lines.append(f"{name}{_wrap(_labels(label_names, labels))} {value!r}")
        lines.append("")
        return "\n".join(lines).encode()


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(names: tuple[str, ...], values: Labels) -> str:
    return ",".join(f'{n}="{_escape(v)}"' for n, v in zip(names, values, strict=False))


def _with(base: str, extra: str) -> str:
    return "{" + (f"{base},{extra}" if base else extra) + "}"


def _wrap(base: str) -> str:
    return "{" + base + "}" if base else ""


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
