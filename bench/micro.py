"""The gateway's own CPU per request, in process: no server, no network, no load generator.

    python -m bench.micro [--requests 20000] [--stream] [--concurrency 1] [--responses]
                          [--fallback [--benched]] [--prompt-kb N] [--scaleout] [--uvloop]

The app of ``gateway.app.create_app`` (the bench's configuration: every tier limit on, 64
users, SQLite ledger) is called as ASGI, one request after another (or ``--concurrency`` at
a time), built with a stub upstream client (``build_gateway(config, client=…)``) that
answers the bench's 16-token reply (or its 64-chunk stream) from memory. ``--responses`` sends
the same request to ``/v1/responses`` instead (translated to chat completions and back);
``--fallback`` asks for a model whose first deployment answers 500 (as the bench's fallback
row), so the figure less the plain one is what a failed attempt costs the gateway, and
``--benched`` keeps the gateway's default health settings (three failures in a row bench the
first model for 30 s), as in production, where the failed call is made only until then;
``--prompt-kb`` puts a conversation of that many KB before the question (what a coding agent
sends: the cost of the body's size). What
is left is what the gateway adds on top of an ASGI server and aiohttp, measured with
``time.process_time`` and steady to a few percent even on a shared machine: use it to compare
changes to the hot path, A against B. It does not see what the gateway makes the server and
aiohttp do (response headers, the upstream request's timeouts), nor the machine's system-call
costs: the bench does. ``--scaleout`` runs the same on PostgreSQL and Redis (the scale-out
row's configuration, on ``bench/scaleout.py``'s throwaway instances): their round trips'
system calls are then in the figure; ``--uvloop`` runs on uvloop, as the servers do.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import msgspec

from adapters.errors import ProviderHTTPError
from adapters.upstream import error_message
from bench import scaleout
from bench.fake_upstream import openai_chat, wire
from bench.targets import _GATEWAY_FALLBACK, _GATEWAY_MODEL, _GATEWAY_TOML, SCENARIOS

USERS = 64
_REPLY = msgspec.json.encode(openai_chat.completion(
    "bench-tok16", {"role": "assistant", "content": "tok " * 16},
    {"prompt_tokens": 12, "completion_tokens": 16, "total_tokens": 28}, reply_id="chatcmpl-bench",
))


_NEVER_BENCHED = "allowed_fails = 1000000000\n"  # bench/targets.py's, for the fallback row
_ERROR = msgspec.json.encode({"error": {"message": "fake upstream error 500", "type": "fake"}})


def _chunk(delta: dict[str, Any] | None, **extra: Any) -> bytes:
    chunk = openai_chat.chunk("bench-tok64-gap20", delta, reply_id="chatcmpl-bench", **extra)
    return wire.sse_data(chunk)


# The frames of bench-tok64-gap20 as the gateway sees them (no finish frame, as when measured
# first; keep it so figures stay comparable).
_STREAM = [
    _chunk({"role": "assistant", "content": ""}),
    *[_chunk({"content": "tok "}) for _ in range(64)],
    _chunk(None, usage={"prompt_tokens": 12, "completion_tokens": 64, "total_tokens": 76}),
    wire.DONE,
]


class _Content:
    """The body as ``adapters.upstream.relay_sse`` reads it (aiohttp's ``readany``)."""

    def __init__(self) -> None:
        self.chunks = iter(_STREAM)

    async def readany(self) -> bytes:
        return next(self.chunks, b"")


class _Response:
    status = 200
    headers: Mapping[str, str] = {}

    def __init__(self) -> None:
        self.content = _Content()

    async def read(self) -> bytes:
        return _REPLY

    def close(self) -> None:
        return None


class StubClient:
    """Stands in for ``adapters.upstream.UpstreamClient``: answers from memory."""

    def __init__(self, timeouts: Any) -> None:
        self.timeouts = timeouts

    async def close(self) -> None:
        return None

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> _Response:
        return _Response()

    async def fetch(self, url: str, body: bytes, headers: Mapping[str, str]) -> bytes:
        # The model leads the bench's body; a search of all of a 200 KB body would cost more
        # than the gateway's own work on it.
        if b"error500" in body[:64]:  # the upstream client's own exception for a 500
            raise ProviderHTTPError(500, error_message(_ERROR), None)
        return _REPLY


async def _keys(config_path: Path) -> list[str]:
    from gateway.accounts.keys import create_key
    from gateway.config import load_config
    from gateway.storage import open_store

    config = load_config(str(config_path))
    store = await open_store(config.database_url)
    try:
        return [
            (await create_key(store, config.keys.prefix, name=f"bench-{i}",
                              user=f"bench{i}@example.com", tier="bench"))[0]
            for i in range(USERS)
        ]
    finally:
        await store.close()


def _conversation(kb: int) -> list[dict[str, str]]:
    """A conversation of about ``kb`` KB, in turns of ~2 KB: a coding agent's context."""
    turn = " ".join(f"line {i}: def handler(request): return request.json()" for i in range(36))
    roles = ("user", "assistant")
    return [{"role": roles[i % 2], "content": turn} for i in range(max(kb // 2, 1))]


def _request(model: str, stream: bool, responses: bool, prompt_kb: int = 0) -> tuple[str, bytes]:
    """The path and body of the bench's request, in chat completions or the Responses API;
    ``prompt_kb`` puts a conversation of that size before the question."""
    history = _conversation(prompt_kb) if prompt_kb else []
    if responses:
        return "/v1/responses", msgspec.json.encode({
            "model": model, "stream": stream, "max_output_tokens": 64,
            "instructions": "You are a benchmark.", "input": "Say something short."})
    return "/v1/chat/completions", msgspec.json.encode({
        "model": model, "stream": stream, "max_tokens": 64,
        "messages": [{"role": "system", "content": "You are a benchmark."}, *history,
                     {"role": "user", "content": "Say something short."}]})


async def measure(requests: int, stream: bool, concurrency: int = 1,
                  responses: bool = False, database: str = "", fallback: bool = False,
                  prompt_kb: int = 0, benched: bool = False) -> float:
    from adapters.upstream import Timeouts
    from gateway.app import create_app
    from gateway.config import load_config
    from gateway.wiring import build_gateway

    workdir = Path(tempfile.mkdtemp(prefix="gateway-micro-"))
    config_path = workdir / "gateway.toml"
    models = "".join(_GATEWAY_MODEL.format(scenario=s) for s in SCENARIOS) + _GATEWAY_FALLBACK
    text = _GATEWAY_TOML.format(port=0, dir=workdir, upstream="http://127.0.0.1:9",
                                models=models)
    if benched:  # the default: three failures in a row bench a deployment
        assert _NEVER_BENCHED in text, "the bench's configuration changed"
        text = text.replace(_NEVER_BENCHED, "")
    if database:  # PostgreSQL and Redis (bench/scaleout.py)
        text = scaleout.scaleout_config(text, f"sqlite:///{workdir}/gateway.db", database)
    config_path.write_text(text)
    keys = await _keys(config_path)
    config = load_config(str(config_path))
    upstream = config.upstream
    stub = StubClient(Timeouts(connect=upstream.connect_timeout,
                               first_byte=upstream.first_byte_timeout,
                               idle=upstream.idle_timeout))
    gateway = build_gateway(config, client=stub)  # type: ignore[arg-type]
    app = create_app(gateway=gateway)
    await gateway.start()
    model = "bench/bench-tok64-gap20" if stream else "bench/bench-tok16"
    if fallback:
        model = "bench/bench-error500-tok16"
    path, body = _request(model, stream, responses, prompt_kb)
    scopes = [{
        "type": "http", "http_version": "1.1", "method": "POST", "scheme": "http",
        "path": path, "raw_path": path.encode(),
        "query_string": b"", "root_path": "", "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8000),
        "headers": [(b"host", b"127.0.0.1:8000"), (b"content-type", b"application/json"),
                    (b"authorization", f"Bearer {key}".encode()),
                    (b"content-length", str(len(body)).encode())],
    } for key in keys]
    statuses: dict[int, int] = {}
    request_message = {"type": "http.request", "body": body, "more_body": False}
    never = asyncio.get_running_loop().create_future()

    async def one(scope: dict[str, Any]) -> None:
        received = False

        async def receive() -> dict[str, Any]:
            nonlocal received
            if not received:
                received = True
                return request_message
            await never  # the client stays connected
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                statuses[message["status"]] = statuses.get(message["status"], 0) + 1

        await app(scope, receive, send)

    async def worker(first: int) -> None:
        for i in range(first, requests, concurrency):
            await one(scopes[i % USERS])

    for i in range(min(requests, 500)):  # warm-up
        await one(scopes[i % USERS])
    statuses.clear()
    collections = [0.0, 0.0]

    def timed(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            collections[1] = time.perf_counter()
        else:
            collections[0] += time.perf_counter() - collections[1]

    gc.callbacks.append(timed)
    started = time.process_time()
    await asyncio.gather(*(worker(first) for first in range(concurrency)))
    spent = time.process_time() - started
    gc.callbacks.remove(timed)
    print(f"garbage collection: {collections[0] / requests * 1e6:.1f} µs a request",
          file=sys.stderr)
    await gateway.stop()
    shutil.rmtree(workdir, ignore_errors=True)
    if set(statuses) != {200}:
        raise SystemExit(f"unexpected statuses: {statuses}")
    return spent / requests * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--stream", action="store_true")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--responses", action="store_true", help="POST /v1/responses")
    parser.add_argument("--fallback", action="store_true", help="first model answers 500")
    parser.add_argument("--benched", action="store_true",
                        help="with --fallback: default health settings (the first model benched)")
    parser.add_argument("--prompt-kb", type=int, default=0,
                        help="a conversation of this many KB before the question (chat only)")
    parser.add_argument("--scaleout", action="store_true", help="PostgreSQL and Redis")
    parser.add_argument("--uvloop", action="store_true", help="on uvloop (as the servers)")
    args = parser.parse_args()
    database = ""
    if args.scaleout:
        scaleout.start_services()
        database = scaleout.create_database()
    sys.stdout = open(os.devnull, "w")  # the gateway's JSON log lines  # noqa: SIM115
    run = measure(args.requests, args.stream, args.concurrency, args.responses, database,
                  args.fallback, args.prompt_kb, args.benched)
    try:
        if args.uvloop:
            import uvloop

            cost = uvloop.run(run)
        else:
            cost = asyncio.run(run)
    finally:
        if database:
            scaleout.drop_database(database)
    kind = "streamed (64 chunks)" if args.stream else "non-streamed"
    kind += " /v1/responses" if args.responses else ""
    kind += " fallback" if args.fallback else ""
    kind += " (first model benched)" if args.fallback and args.benched else ""
    kind += f" ({args.prompt_kb} KB prompt)" if args.prompt_kb else ""
    kind += " (PostgreSQL and Redis)" if args.scaleout else ""
    print(f"gateway's own CPU per {kind} request: {cost:.1f} µs", file=sys.stderr)


if __name__ == "__main__":
    main()
