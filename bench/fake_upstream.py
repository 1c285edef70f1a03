"""A fast fake LLM upstream for benchmarks: OpenAI and Anthropic dialects, streamed and not.

It is a raw asyncio protocol on uvloop with its own minimal HTTP/1.1 parsing (keep-alive,
Content-Length bodies), so it costs a few microseconds per request and never is the bottleneck
of what it measures. Replies are built once per scenario and cached; streams are paced with
``loop.call_later`` timers, not a coroutine per stream.

The behaviour of each request is chosen by its model name (the one field every proxy passes
on), made of ``-``-separated words, or by ``x-fake-*`` request headers (the model name wins):

    tok64      64 content tokens (default 16)          header x-fake-tokens
    gap20      20 ms between streamed tokens (default 0) header x-fake-gap-ms
    ttft100    100 ms before the first token (default 0) header x-fake-ttft-ms
    fail500    answer with that HTTP error status       header x-fake-fail: 500
    fail429    429 with ``retry-after: 1``
    stall      send headers, then nothing (a stream that never commits)
    cut        stream half the tokens, then close the connection without the end

So ``bench-tok64-gap20`` streams 64 tokens 20 ms apart. ``POST /v1/chat/completions`` speaks
OpenAI; ``POST /v1/messages`` speaks Anthropic. ``GET /health`` answers 200.

Run: ``python -m bench.fake_upstream --port 9100``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
from dataclasses import dataclass
from typing import Any

import msgspec

from bench import fake_wire as wire


class _Probe(msgspec.Struct):
    model: str = "bench"
    stream: bool = False


_probe = msgspec.json.Decoder(_Probe)
_encode = msgspec.json.encode
_TOKEN = "tok "
_CREATED = 1700000000
_OPENAI_ID = "chatcmpl-bench"
_ANTHROPIC_ID = "msg_bench"


@dataclass(frozen=True, slots=True)
class Scenario:
    tokens: int = 16
    gap_ms: float = 0.0
    ttft_ms: float = 0.0
    fail: int = 0
    stall: bool = False
    cut: bool = False


def parse_scenario(model: str, headers: dict[bytes, bytes]) -> Scenario:
    """The behaviour named by the model name's words, over the x-fake-* headers."""
    values: dict[str, Any] = {}
    if headers:
        for key, field in (
            (b"x-fake-tokens", "tokens"),
            (b"x-fake-gap-ms", "gap_ms"),
            (b"x-fake-ttft-ms", "ttft_ms"),
            (b"x-fake-fail", "fail"),
        ):
            raw = headers.get(key)
            if raw is not None:
                values[field] = int(raw) if field in ("tokens", "fail") else float(raw)
    for word in model.rsplit("/", 1)[-1].split("-"):
        for prefix, field in (("tok", "tokens"), ("gap", "gap_ms"), ("ttft", "ttft_ms")):
            if word.startswith(prefix) and word[len(prefix) :].isdigit():
                values[field] = int(word[len(prefix) :])
        if word.startswith("fail") and word[4:].isdigit():
            values["fail"] = int(word[4:])
        elif word == "stall":
            values["stall"] = True
        elif word == "cut":
            values["cut"] = True
    return Scenario(**values)


# --- replies, built once per (dialect, scenario, stream) ------------------------------------


def _chunk(data: bytes) -> bytes:
    """One HTTP/1.1 chunk of a chunked body."""
    return b"%x\r\n%s\r\n" % (len(data), data)


_LAST_CHUNK = b"0\r\n\r\n"
_SSE_HEAD = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n"
    b"transfer-encoding: chunked\r\n\r\n"
)


def _json_reply(status: int, body: bytes, extra: bytes = b"") -> bytes:
    reason = {200: b"OK", 429: b"Too Many Requests"}.get(status, b"Error")
    return (
        b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n%s\r\n%s"
        % (status, reason, len(body), extra, body)
    )


def _openai_complete(model: str, s: Scenario) -> bytes:
    message = {"role": "assistant", "content": _TOKEN * s.tokens}
    body = wire.openai_completion(model, message, _openai_usage(s), created=_CREATED,
                                  reply_id=_OPENAI_ID)
    return _json_reply(200, _encode(body))


def _openai_usage(s: Scenario) -> dict[str, int]:
    return {"prompt_tokens": 8, "completion_tokens": s.tokens, "total_tokens": 8 + s.tokens}


def _openai_frames(model: str, s: Scenario) -> list[bytes]:
    """Every SSE frame of one stream as HTTP chunks, one write each: the role chunk with token 1,
    a chunk per further token, then the finish, usage and ``[DONE]`` frames together."""
    deltas = [{"role": "assistant", "content": _TOKEN}]
    deltas.extend({"content": _TOKEN} for _ in range(s.tokens - 1))
    sse = wire.openai_stream(model, deltas, _openai_usage(s), created=_CREATED,
                             reply_id=_OPENAI_ID)
    frames = [_chunk(frame) for frame in sse[: s.tokens]]
    frames.append(b"".join(_chunk(frame) for frame in sse[s.tokens :]) + _LAST_CHUNK)
    return frames


def _anthropic_complete(model: str, s: Scenario) -> bytes:
    content = [{"type": "text", "text": _TOKEN * s.tokens}]
    usage = {"input_tokens": 8, "output_tokens": s.tokens}
    return _json_reply(200, _encode(wire.anthropic_message(model, content, usage,
                                                           reply_id=_ANTHROPIC_ID)))


def _anthropic_frames(model: str, s: Scenario) -> list[bytes]:
    start = wire.anthropic_start(model, {"input_tokens": 8, "output_tokens": 1},
                                 reply_id=_ANTHROPIC_ID)
    block = wire.anthropic_block_start(0, {"type": "text", "text": ""})
    delta = _chunk(wire.anthropic_block_delta(0, {"type": "text_delta", "text": _TOKEN}))
    frames = [_chunk(start) + _chunk(block) + delta]
    frames.extend(delta for _ in range(s.tokens - 1))
    end = [wire.anthropic_block_stop(0), *wire.anthropic_end("end_turn", s.tokens)]
    frames.append(b"".join(map(_chunk, end)) + _LAST_CHUNK)
    return frames


def _error(s: Scenario, anthropic: bool) -> bytes:
    message = f"fake upstream failure {s.fail}"
    if anthropic:
        body = _encode({"type": "error", "error": {"type": "api_error", "message": message}})
    else:
        body = _encode({"error": {"message": message, "type": "server_error", "code": s.fail}})
    return _json_reply(s.fail, body, b"retry-after: 1\r\n" if s.fail == 429 else b"")


_cache: dict[tuple[bool, str, bool, Scenario], Any] = {}


def reply_for(anthropic: bool, model: str, stream: bool, s: Scenario) -> Any:
    """bytes for a whole reply, or the list of stream frames; cached."""
    key = (anthropic, model, stream, s)
    reply = _cache.get(key)
    if reply is None:
        if s.fail:
            reply = _error(s, anthropic)
        elif stream:
            reply = (_anthropic_frames if anthropic else _openai_frames)(model, s)
        else:
            reply = (_anthropic_complete if anthropic else _openai_complete)(model, s)
        if len(_cache) < 4096:
            _cache[key] = reply
    return reply


# --- the HTTP/1.1 protocol ------------------------------------------------------------------

_HEALTH = _json_reply(200, b'{"status":"ok"}')
_NOT_FOUND = _json_reply(404, b'{"error":{"message":"no such route","type":"not_found"}}')
_BAD = _json_reply(400, b'{"error":{"message":"bad request","type":"invalid_request_error"}}')


class FakeUpstreamProtocol(asyncio.Protocol):
    """One connection: parse requests one after another, answer each from the cache."""

    __slots__ = ("_body_needed", "_buffer", "_busy", "_head", "_loop", "_transport")

    def __init__(self) -> None:
        self._buffer = b""
        self._busy = False  # a stream is being written; later requests wait in the buffer
        self._head: tuple[bytes, dict[bytes, bytes]] | None = None
        self._body_needed = 0
        self._transport: asyncio.Transport | None = None
        self._loop = asyncio.get_running_loop()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None

    def data_received(self, data: bytes) -> None:
        self._buffer = self._buffer + data if self._buffer else data
        if not self._busy:
            self._process()

    def _process(self) -> None:
        while self._transport is not None and not self._busy:
            if self._head is None:
                end = self._buffer.find(b"\r\n\r\n")
                if end < 0:
                    return
                lines = self._buffer[:end].split(b"\r\n")
                self._buffer = self._buffer[end + 4 :]
                headers: dict[bytes, bytes] = {}
                for line in lines[1:]:
                    name, _, value = line.partition(b":")
                    headers[name.strip().lower()] = value.strip()
                self._head = (lines[0], headers)
                self._body_needed = int(headers.get(b"content-length", b"0") or 0)
            if len(self._buffer) < self._body_needed:
                return
            body = self._buffer[: self._body_needed]
            self._buffer = self._buffer[self._body_needed :]
            request_line, headers = self._head
            self._head = None
            self._answer(request_line, headers, body)

    def _answer(self, request_line: bytes, headers: dict[bytes, bytes], body: bytes) -> None:
        transport = self._transport
        assert transport is not None
        method, _, rest = request_line.partition(b" ")
        path = rest.partition(b" ")[0].partition(b"?")[0]
        if method == b"GET" and path == b"/health":
            transport.write(_HEALTH)
            return
        anthropic = path.endswith(b"/messages")
        if method != b"POST" or not (anthropic or path.endswith(b"/chat/completions")):
            transport.write(_NOT_FOUND)
            return
        try:
            probe = _probe.decode(body)
        except (msgspec.DecodeError, msgspec.ValidationError):
            transport.write(_BAD)
            return
        fake_headers = {k: v for k, v in headers.items() if k.startswith(b"x-fake-")}
        scenario = parse_scenario(probe.model, fake_headers)
        reply = reply_for(anthropic, probe.model, probe.stream, scenario)
        if isinstance(reply, bytes) and not scenario.ttft_ms:
            transport.write(reply)
            return
        self._busy = True
        if isinstance(reply, bytes):
            self._loop.call_later(scenario.ttft_ms / 1000, self._write_last, reply)
            return
        transport.write(_SSE_HEAD)
        if scenario.stall:
            return  # headers only; the connection stays busy until the client leaves
        frames: list[bytes] = reply
        if scenario.cut:
            frames = frames[: max(len(frames) // 2, 1)]
        self._loop.call_later(scenario.ttft_ms / 1000, self._stream, frames, 0, scenario)

    def _write_last(self, data: bytes) -> None:
        if self._transport is not None:
            self._transport.write(data)
            self._done()

    def _stream(self, frames: list[bytes], index: int, scenario: Scenario) -> None:
        transport = self._transport
        if transport is None:
            return
        gap = scenario.gap_ms / 1000
        if gap <= 0:
            transport.write(b"".join(frames[index:]))
            index = len(frames)
        else:
            transport.write(frames[index])
            index += 1
        if index < len(frames):
            self._loop.call_later(gap, self._stream, frames, index, scenario)
        elif scenario.cut:
            transport.close()
        else:
            self._done()

    def _done(self) -> None:
        self._busy = False
        if self._buffer:
            self._process()


async def serve(host: str, port: int, ready: asyncio.Event | None = None) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        FakeUpstreamProtocol, host, port, backlog=4096, reuse_address=True
    )
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"fake upstream on http://{host}:{port} (pid {os.getpid()})", flush=True)
    if ready is not None:
        ready.set()
    async with server:
        await stop.wait()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9100)
    args = parser.parse_args(argv)
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover - uvloop is a gateway dependency
        pass
    asyncio.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
