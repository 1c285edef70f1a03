"""Load generators: wrk for non-streamed requests, an aiohttp client for streams.

``run_wrk`` drives one target at one concurrency for a bounded time with a Lua body and reads
the totals and latency percentiles a Lua ``done`` hook prints as JSON. ``run_streams`` opens
``n`` streams at once and records, per stream, the time to first content, every gap between
two received chunks after it, and whether the stream completed (saw its end marker).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

_WRK_LUA = """
wrk.method = "POST"
wrk.body = %(body)s
wrk.headers["Content-Type"] = "application/json"
local keys = {%(keys)s}
local turn = 0
request = function()
  turn = turn %% #keys + 1
  wrk.headers["Authorization"] = "Bearer " .. keys[turn]
  return wrk.format()
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%%d,"duration_us":%%d,"socket_errors":%%d,"status_errors":%%d,' ..
    '"p50_us":%%d,"p90_us":%%d,"p99_us":%%d,"mean_us":%%f}\\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.mean))
end
"""


def _lua_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass
class WrkResult:
    requests: int
    seconds: float
    socket_errors: int
    status_errors: int
    p50_ms: float
    p90_ms: float
    p99_ms: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def chat_body(model: str, stream: bool = False) -> str:
    body: dict[str, object] = {
        "model": model,
        "messages": [
            {"role": "system", "content": "You are a terse assistant."},
            {"role": "user", "content": "Say hello in sixteen tokens, please."},
        ],
        "max_tokens": 64,
    }
    if stream:
        body["stream"] = True
    return json.dumps(body, separators=(",", ":"))


def run_wrk(
    url: str,
    model: str,
    auth: str | list[str],
    connections: int,
    seconds: float,
    workdir: Path,
    cpus: str = "1",
    threads: int = 1,
    path: str = "/v1/chat/completions",
    body: str | None = None,
) -> WrkResult:
    """One bounded wrk run pinned to ``cpus``; raises if wrk fails.

    With several keys (``auth`` a list) requests take them in turn, so per-user limits see
    the load of many users, not one user at thousands of requests per second. ``body``
    (default: the bench's chat request for ``model``) is sent to ``path``.
    """
    keys = [auth] if isinstance(auth, str) else auth
    body = chat_body(model) if body is None else body
    script = workdir / f"wrk-{abs(hash((model, path, body, *keys))) % 10**8}.lua"
    script.write_text(
        _WRK_LUA % {"body": _lua_string(body),
                    "keys": ", ".join(_lua_string(k) for k in keys)}
    )
    command = [
        "taskset", "-c", cpus, "wrk", "-t", str(max(1, min(threads, connections))),
        "-c", str(connections), "-d", f"{max(1, round(seconds))}s", "--timeout", "10s",
        "-s", str(script),
        url + path,
    ]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=seconds + 30, check=False
    )
    for line in done.stdout.splitlines():
        if line.startswith("WRKJSON "):
            data = json.loads(line[8:])
            return WrkResult(
                requests=data["requests"],
                seconds=data["duration_us"] / 1e6,
                socket_errors=data["socket_errors"],
                status_errors=data["status_errors"],
                p50_ms=data["p50_us"] / 1000,
                p90_ms=data["p90_us"] / 1000,
                p99_ms=data["p99_us"] / 1000,
            )
    raise RuntimeError(f"wrk gave no result: {done.stdout[-500:]} {done.stderr[-500:]}")


# --- streams ---------------------------------------------------------------------------------


@dataclass
class StreamResult:
    """One stream as the client saw it."""

    ttft: float | None = None  # seconds from sending to the first content
    gaps: list[float] = field(default_factory=list)  # seconds between chunks after the first
    late: list[float] = field(default_factory=list)  # perf_counter() at the end of each gap > LATE
    completed: bool = False
    status: int = 0
    error: str = ""


@dataclass
class StreamsRun:
    n: int
    results: list[StreamResult]
    peak_open: int
    rss_samples: list[tuple[int, int]]  # (streams open at the client, RSS bytes of the target)
    seconds: float
    started: float = 0.0  # perf_counter() at the start (CLOCK_MONOTONIC: any process's clock)

    @property
    def completed(self) -> int:
        return sum(r.completed for r in self.results)

    @property
    def ttfts(self) -> list[float]:
        return [r.ttft for r in self.results if r.ttft is not None]

    @property
    def gaps(self) -> list[float]:
        return [gap for r in self.results for gap in r.gaps]

    @property
    def max_gap(self) -> float:
        return max(self.gaps, default=0.0)

    def late_bursts(self, window: float = 0.05) -> list[tuple[float, int]]:
        """Gaps over ``LATE`` grouped by when they ended: (end, streams), the most first.

        One pause of the server ends a gap in every stream that had a chunk due during it, all
        within a few ms; a slow stream of its own ends gaps one at a time.
        """
        ends = sorted(t for r in self.results for t in r.late)
        bursts: list[tuple[float, int]] = []
        for end in ends:
            if bursts and end - bursts[-1][0] <= window:
                bursts[-1] = (bursts[-1][0], bursts[-1][1] + 1)
            else:
                bursts.append((end, 1))
        return sorted(bursts, key=lambda b: -b[1])


LATE = 0.150  # seconds: a gap this long is recorded with its time (``StreamsRun.late_bursts``)
_CONTENT_MARKERS = (b'"content":"', b'"content": "', b"text_delta")


class _StreamProtocol(asyncio.Protocol):
    """One streamed request over its own connection, timing every chunk as it arrives.

    A raw protocol rather than aiohttp: at 1,000 streams of 50 chunks/s the client's own
    per-chunk cost decides whether gaps are the target's or the client's; this one only takes
    a timestamp per ``data_received``.
    """

    def __init__(self, request: bytes, result: StreamResult, opened: Callable[[int], None],
                 started: float) -> None:
        self.request = request
        self.result = result
        self.opened = opened
        self.started = started
        self.head = b""
        self.in_body = False
        self.last = 0.0
        self.tail = b""
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None
        self.counted = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        transport.write(self.request)  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter()
        result = self.result
        if not self.in_body:
            self.head += data
            end = self.head.find(b"\r\n\r\n")
            if end < 0:
                return
            status_line = self.head[: self.head.find(b"\r\n")]
            parts = status_line.split(b" ", 2)
            result.status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
            data = self.head[end + 4 :]
            self.in_body = True
            if result.status != 200:
                result.error = f"status {result.status}"
                self._finish()
                return
            self.opened(1)
            self.counted = True
            if not data:
                return
        if result.ttft is None:
            if any(marker in data for marker in _CONTENT_MARKERS):
                result.ttft = now - self.started
                self.last = now
        else:
            gap = now - self.last
            result.gaps.append(gap)
            if gap > LATE:
                result.late.append(now)
            self.last = now
        self.tail = (self.tail + data)[-96:]
        # The end of a chunked body after the stream's own end marker.
        if self.tail.endswith(b"0\r\n\r\n") and self._saw_end():
            result.completed = True
            self._finish()

    def _saw_end(self) -> bool:
        return b"[DONE]" in self.tail or b"message_stop" in self.tail

    def _finish(self) -> None:
        if self.transport is not None:
            self.transport.close()
        if not self.done.done():
            self.done.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.counted:
            self.opened(-1)
            self.counted = False
        if not self.result.completed and not self.result.error:
            if self.in_body and self._saw_end():  # a body delimited by closing
                self.result.completed = True
            else:
                self.result.error = "connection closed early"
        if not self.done.done():
            self.done.set_result(None)


def _stream_requests(host: str, port: str, model: str, auth: str | list[str]) -> list[bytes]:
    """One ready-to-send streamed request per key."""
    body = chat_body(model, stream=True).encode()
    return [
        (
            f"POST /v1/chat/completions HTTP/1.1\r\nHost: {host}:{port}\r\n"
            f"Content-Type: application/json\r\nAuthorization: Bearer {key}\r\n"
            f"Accept: text/event-stream\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode() + body
        for key in ([auth] if isinstance(auth, str) else auth)
    ]


async def _one_stream(host: str, port: int, request: bytes, result: StreamResult,
                      opened: Callable[[int], None], timeout: float) -> None:
    loop = asyncio.get_running_loop()
    started = time.perf_counter()
    protocol: _StreamProtocol | None = None
    try:
        async with asyncio.timeout(timeout):
            _, protocol = await loop.create_connection(
                lambda: _StreamProtocol(request, result, opened, started), host, port
            )
            await protocol.done
    except TimeoutError:
        result.error = "timeout"
    except OSError as exc:
        result.error = type(exc).__name__
    finally:
        if protocol is not None and protocol.transport is not None:
            protocol.transport.close()


async def run_streams(
    url: str,
    model: str,
    auth: str | list[str],
    n: int,
    timeout: float = 60.0,
    rss: Callable[[], int] | None = None,
    ramp_seconds: float = 0.0,
) -> StreamsRun:
    """``n`` concurrent streams (started over ``ramp_seconds``), RSS sampled every 50 ms."""
    host, _, port_text = url.removeprefix("http://").rstrip("/").partition(":")
    requests = _stream_requests(host, port_text, model, auth)
    results = [StreamResult() for _ in range(n)]
    open_now = 0
    peak = 0
    samples: list[tuple[int, int]] = []

    def opened(delta: int) -> None:
        nonlocal open_now, peak
        open_now += delta
        peak = max(peak, open_now)

    started = time.perf_counter()
    tasks = []
    for i, result in enumerate(results):
        if ramp_seconds and i:
            # Start on schedule (not after fixed sleeps, which drift when the loop is busy).
            delay = started + ramp_seconds * i / n - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
        tasks.append(
            asyncio.create_task(
                _one_stream(host, int(port_text), requests[i % len(requests)], result, opened,
                            timeout)
            )
        )
        if rss is not None and i % 50 == 0:
            samples.append((open_now, rss()))
    pending = set(tasks)
    while pending:
        _, pending = await asyncio.wait(pending, timeout=0.05)
        if rss is not None:
            samples.append((open_now, rss()))
    return StreamsRun(n, results, peak, samples, time.perf_counter() - started, started)


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0..100) by nearest rank; 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


async def hold_streams(
    url: str,
    model: str,
    auth: str | list[str],
    n: int,
    rss: Callable[[], int],
    steps: int = 4,
    rate: float = 250.0,
    step_timeout: float = 15.0,
    hold_seconds: float = 1.0,
) -> StreamsRun:
    """Open ``n`` long streams in ``steps`` steps, sampling RSS once each step is all open.

    Streams start at ``rate`` per second; after a step's streams have all received their
    first content (or ``step_timeout``), RSS is sampled; after the last step the streams are
    held ``hold_seconds`` more, then the client closes them all. Every gap between chunks is
    recorded throughout; a stream counts as completed if it was open and healthy when closed.
    """
    host, _, port_text = url.removeprefix("http://").rstrip("/").partition(":")
    requests = _stream_requests(host, port_text, model, auth)
    loop = asyncio.get_running_loop()
    results = [StreamResult() for _ in range(n)]
    protocols: list[_StreamProtocol] = []
    open_now = 0
    peak = 0

    def opened(delta: int) -> None:
        nonlocal open_now, peak
        open_now += delta
        peak = max(peak, open_now)

    async def start(result: StreamResult, request: bytes) -> None:
        started = time.perf_counter()
        try:
            _, protocol = await loop.create_connection(
                lambda: _StreamProtocol(request, result, opened, started), host, int(port_text)
            )
            protocols.append(protocol)
        except OSError as exc:
            result.error = type(exc).__name__

    samples: list[tuple[int, int]] = [(0, rss())]
    started = time.perf_counter()
    tasks: list[asyncio.Task[None]] = []
    for step in range(1, steps + 1):
        goal = n * step // steps
        step_start = time.perf_counter()
        first = len(tasks)
        for i in range(first, goal):
            # On schedule from the step's start (``len(tasks)`` grows in this loop: measured
            # from it, every step's streams went out in one burst, not at ``rate``).
            delay = step_start + (i - first) / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(start(results[i], requests[i % len(requests)])))
        deadline = time.perf_counter() + step_timeout
        while time.perf_counter() < deadline:
            if sum(r.ttft is not None or bool(r.error) for r in results[:goal]) >= goal:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.2)
        samples.append((open_now, rss()))
    await asyncio.sleep(hold_seconds)
    healthy = [r.ttft is not None and not r.error and not r.completed for r in results]
    for protocol in protocols:
        if protocol.transport is not None:
            protocol.transport.close()
    await asyncio.gather(*tasks, return_exceptions=True)
    await asyncio.sleep(0.1)
    for result, ok in zip(results, healthy, strict=True):
        result.completed = ok
        if ok:
            result.error = ""
    return StreamsRun(n, results, peak, samples, time.perf_counter() - started, started)
