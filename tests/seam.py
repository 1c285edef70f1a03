"""The in-process seam of the request pipeline: the real app (``create_app``) with one
provider's adapter replaced by a scripted fake, driven through httpx's ASGI transport. No
server is spawned and no port is opened; the store is SQLite in a temporary folder.

    async with pipeline(tmp_path) as seam:
        seam.adapter.script(Answer("hi"), ProviderHTTPError(500, "boom"))
        response = await seam.post("/v1/chat/completions", {...})
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2 as httpx
import msgspec

from adapters import canonical as c
from adapters.base import Call, RawReply
from adapters.errors import ProviderError
from gateway.accounts.keys import create_key
from gateway.app import create_app
from gateway.config import parse_config
from gateway.wiring import Gateway, build_gateway


@dataclass
class Answer:
    """A scripted answer: ``text`` in words, usage reported unless ``usage`` is False;
    ``broken`` ends a stream with that error after its text (past the commit point)."""

    text: str = "hello from the fake"
    input_tokens: int = 10
    usage: bool = True
    broken: ProviderError | None = None
    cached_tokens: int = 0

    def words(self) -> list[str]:
        words = self.text.split(" ")
        return [w + " " for w in words[:-1]] + words[-1:]

    def usage_value(self) -> c.Usage:
        return c.Usage(input_tokens=self.input_tokens, output_tokens=len(self.words()),
                       cache_read_tokens=self.cached_tokens)


Step = Answer | ProviderError


@dataclass
class ScriptedAdapter:
    """A provider adapter answering canonical requests from its script, one step per call
    (the last step repeats). ``calls`` records what it was asked."""

    dialect: str = "scripted"
    steps: deque[Step] = field(default_factory=deque)
    calls: list[Call] = field(default_factory=list)

    def script(self, *steps: Step) -> None:
        self.steps = deque(steps)

    def _next(self, call: Call) -> Answer:
        self.calls.append(call)
        step = self.steps.popleft() if len(self.steps) > 1 else self.steps[0]
        if isinstance(step, ProviderError):
            raise step
        return step

    async def complete(self, call: Call) -> RawReply | c.Response:
        answer = self._next(call)
        return c.Response(
            id="scripted-1", model=call.model,
            content=[c.TextBlock(text=answer.text)],
            usage=answer.usage_value() if answer.usage else c.Usage(),
        )

    async def stream(self, call: Call) -> AsyncIterator[bytes | c.StreamEvent]:
        answer = self._next(call)
        yield c.MessageStart(id="scripted-1", model=call.model)
        yield c.BlockStart(index=0, block=c.TextStart())
        for word in answer.words():
            yield c.BlockDelta(index=0, delta=c.TextDelta(text=word))
        if answer.broken is not None:
            raise answer.broken
        yield c.BlockStop(index=0)
        if answer.usage:
            yield c.UsageUpdate(usage=answer.usage_value())
        yield c.Finish(stop_reason="end_turn")


CONFIG = """
[storage]
url = "sqlite:///{tmp}/gateway.db"

[providers.scripted]
kind = "mock"

[providers.backup]
kind = "mock"

[[models]]
id = "scripted/main"
provider = "scripted"
upstream = "main"
input_price = 1.0
output_price = 2.0
cached_input_price = 0.5
fallbacks = ["scripted/backup"]

[[models]]
id = "scripted/backup"
provider = "backup"
upstream = "backup"
input_price = 3.0
output_price = 4.0
{extra}
"""


@dataclass
class Seam:
    """The app, its services, the scripted adapters and a key of ``tests@example.com``."""

    client: httpx.AsyncClient
    gateway: Gateway
    adapter: ScriptedAdapter
    backup: ScriptedAdapter
    key: str

    async def post(self, path: str, body: dict[str, Any], **headers: str) -> httpx.Response:
        return await self.client.post(
            path, content=msgspec.json.encode(body),
            headers={"authorization": f"Bearer {self.key}", **headers},
        )

    async def chat(self, stream: bool = False, **fields: Any) -> httpx.Response:
        body = {"model": "scripted/main", "stream": stream,
                "messages": [{"role": "user", "content": "hi"}], **fields}
        return await self.post("/v1/chat/completions", body)

    async def ledger_row(self, request_id: str) -> dict[str, Any]:
        """The request's ledger row, once its settlement (which may wait for the tokenizer to
        load) and the batch are written."""
        for _ in range(200):
            await self.gateway.ledger.flush()
            response = await self.client.get(
                f"/v1/usage/requests/{request_id}",
                headers={"authorization": f"Bearer {self.key}"},
            )
            if response.status_code == 200:
                row: dict[str, Any] = response.json()
                return row
            await asyncio.sleep(0.05)
        raise AssertionError(f"no ledger row for {request_id}")


@contextlib.asynccontextmanager
async def in_process(config_text: str) -> AsyncIterator[tuple[httpx.AsyncClient, Gateway]]:
    """The whole app for ``config_text``, started, behind an HTTP client from 127.0.0.1."""
    app = create_app(parse_config(config_text))
    gateway: Gateway = app.state.gateway
    await gateway.start()
    try:
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 5000))
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as http:
            yield http, gateway
    finally:
        await gateway.stop()


@contextlib.asynccontextmanager
async def pipeline(tmp: Path, extra: str = "", storage_url: str = "") -> AsyncIterator[Seam]:
    """A started gateway on ``tmp`` (see the module docstring); ``extra`` is more TOML,
    ``storage_url`` a database instead of SQLite in ``tmp``."""
    adapter, backup = ScriptedAdapter(steps=deque([Answer()])), ScriptedAdapter(
        steps=deque([Answer("backup answer")]))
    text = CONFIG.format(tmp=tmp, extra=extra)
    if storage_url:
        text = text.replace(f"sqlite:///{tmp}/gateway.db", storage_url)
    config = parse_config(text)
    gateway = build_gateway(config, adapters={"scripted": adapter, "backup": backup})
    app = create_app(gateway=gateway)
    await gateway.start()
    try:
        key, _ = await create_key(gateway.store, config.keys.prefix, name="seam",
                                  user="tests@example.com", tier="")
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            yield Seam(client, gateway, adapter, backup, key)
    finally:
        await gateway.stop()
