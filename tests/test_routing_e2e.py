"""Routing end to end: fallback chains, failures on command, cool-downs, named routers, personas.

One gateway for the module, in front of the fake OpenAI upstream. Models that fail are given
names of their own per test (through ``fake.handlers`` or tagged scenario names such as
``error-500-a``: ``bench/fake_upstream/scenario.py``), so
the health one test leaves behind (a benched deployment) cannot leak into another.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx2 as httpx
import openai
import pytest

from bench.fake_upstream import Exchange, FakeUpstream
from bench.fake_upstream import sse_data as sse
from tests.conftest import FAKE_MODELS, GatewayProcess, fake_config

pytestmark = pytest.mark.e2e

MODELS = FAKE_MODELS + """
[[models]]
id = "t/text"
provider = "fake"
upstream = "ok-text"
capabilities = ["tools"]

[[models]]
id = "t/notools"
provider = "fake"
upstream = "ok-notools"
capabilities = []

[[models]]
id = "t/vision"
provider = "fake"
upstream = "ok-vision"
capabilities = ["vision", "tools"]

[[models]]
id = "t/long"
provider = "fake"
upstream = "ok-long"
context = 1000000

[[models]]
id = "t/coder"
provider = "fake"
upstream = "ok-coder"

[[models]]
id = "t/default"
provider = "fake"
upstream = "ok-default"

[[models]]
id = "t/small"
provider = "fake"
upstream = "context-400"
context = 8192

[[models]]
id = "t/mid"
provider = "fake"
upstream = "ok-mid"
context = 8192

[[models]]
id = "t/big"
provider = "fake"
upstream = "ok-big"
context = 200000

[[models]]
id = "t/free-a"
provider = "fake"
upstream = "free-limited"
free = true

[[models]]
id = "t/free-b"
provider = "fake"
upstream = "free-b"
free = true

[[models]]
id = "t/free-c"
provider = "fake"
upstream = "free-c"
free = true

[[models]]
id = "t/primary"
provider = "fake"
upstream = "cool-500"
fallbacks = ["t/backup"]

[[models]]
id = "t/backup"
provider = "fake"
upstream = "backup-ok"

[[models]]
id = "t/multi"
provider = "fake"
upstream = "dep-bad"
deployments = [{ provider = "fake2", upstream = "dep-good" }]
"""

EXTRA = """
[providers.fake2]
kind = "openai"
base_url = "{url}"
api_key = "sk-second-key"

[routing]
retries = 1
backoff_base = 0.05
backoff_max = 0.2
max_retry_wait = 2.0
allowed_fails = 2
cooldown = 60

[routers.auto]
kind = "auto"
models = ["t/default"]

[[routers.auto.rules]]
when = "images"
models = ["t/text", "t/vision"]

[[routers.auto.rules]]
when = "tools"
models = ["t/notools", "t/text"]

[[routers.auto.rules]]
when = "long_context"
min_prompt_tokens = 2000
models = ["t/long"]

[[routers.auto.rules]]
when = "code"
models = ["t/coder"]

[routers.free]
kind = "free"
models = ["t/free-a", "t/free-b", "t/free-c"]

[routers.ocr]
kind = "ocr"
models = ["t/text", "t/vision"]

[personas.p-coder]
target = "fake/ok"
system = "PERSONA PROMPT"
temperature = 0.3
max_tokens = 100

[personas.p-lorem]
target = "mock/lorem"
max_tokens = 5

[personas.p-auto]
target = "auto"
system = "AUTO PERSONA"
"""

IMAGE = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
HELLO = [{"role": "user", "content": "hello there"}]


@pytest.fixture(scope="module")
def gw(
    tmp_path_factory: pytest.TempPathFactory, upstream: FakeUpstream
) -> Iterator[GatewayProcess]:
    tmp = tmp_path_factory.mktemp("routing")
    text = fake_config(tmp, upstream.url, EXTRA.format(url=upstream.url), MODELS)
    text = text.replace("first_byte_timeout = 3.0", "first_byte_timeout = 1.0")
    process = GatewayProcess(tmp, text).start()
    yield process
    process.stop()


def sdk(gw: GatewayProcess) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gw.url}/v1", api_key=gw.key, max_retries=0)


def post(gw: GatewayProcess, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(f"{gw.url}/v1/chat/completions", json=body, headers=gw.headers(),
                      timeout=30)


def stream_post(gw: GatewayProcess, body: dict[str, Any]) -> tuple[httpx.Response, str]:
    with httpx.stream("POST", f"{gw.url}/v1/chat/completions", json={**body, "stream": True},
                      headers=gw.headers(), timeout=30) as response:
        return response, response.read().decode()


def chain(*models: str, **extra: Any) -> dict[str, Any]:
    return {"model": models[0], "models": list(models), "route": "fallback",
            "messages": HELLO, **extra}


def stalls_after_role(fake: FakeUpstream, name: str) -> None:
    """Upstream ``name`` sends the stream's role chunk, then stalls for 5 s (past the gateway's
    1 s first-token timeout)."""

    async def handler(exchange: Exchange) -> None:
        exchange.open_stream()
        exchange.send(sse({"id": "x", "object": "chat.completion.chunk", "created": 1,
                           "model": name, "choices": [{"index": 0, "delta": {
                               "role": "assistant", "content": ""}, "finish_reason": None}]}))
        await asyncio.sleep(5)

    fake.handlers[name] = handler


def frames(text: str) -> list[dict[str, Any]]:
    """The JSON frames of an SSE body."""
    return [json.loads(line[6:]) for line in text.splitlines() if line.startswith("data: {")]


def content_of(text: str) -> str:
    return "".join(f["choices"][0]["delta"].get("content") or ""
                   for f in frames(text) if f.get("choices"))


def row(gw: GatewayProcess, request_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        for found in gw.usage_rows():
            if found["request_id"] == request_id:
                return found
        time.sleep(0.05)
    raise AssertionError(f"no ledger row for {request_id}")


# --- fallback on each failure mode ------------------------------------------------------------


def test_500_moves_on_and_reports_the_fallback(gw: GatewayProcess, fake: FakeUpstream) -> None:
    response = post(gw, chain("fake/error-500-a", "fake/ok"))
    assert response.status_code == 200, response.text
    assert response.json()["model"] == "fake/ok"
    assert response.headers["x-resolved-model"] == "fake/ok"
    assert response.headers["x-fallback-level"] == "1"
    assert response.headers["x-fallback-model"] == "fake/ok"
    assert fake.hits["error-500-a"] == 1 and fake.hits["ok"] == 1
    ledger = row(gw, response.headers["x-request-id"])
    assert (ledger["attempts"], ledger["fallback_level"], ledger["model_served"]) == (
        2, 1, "fake/ok")


def test_429_moves_on_in_a_stream_and_headers_name_the_server(
    gw: GatewayProcess, fake: FakeUpstream
) -> None:
    response, text = stream_post(gw, chain("fake/error-429-b", "fake/ok"))
    assert response.status_code == 200
    assert response.headers["x-resolved-model"] == "fake/ok"
    assert response.headers["x-fallback-level"] == "1"
    assert {chunk["model"] for chunk in frames(text)} == {"fake/ok"}
    assert content_of(text) == "fake: hello there"


def test_a_single_model_429_is_retried_after_its_retry_after(
    gw: GatewayProcess, fake: FakeUpstream
) -> None:
    async def limited_once(exchange: Exchange) -> None:
        if fake.hits["once-429"] == 1:
            exchange.json(429, {"error": {"message": "slow down"}}, {"Retry-After": "0.3"})
        else:
            await exchange.answer("ok")

    fake.handlers["once-429"] = limited_once
    answer = sdk(gw).chat.completions.with_raw_response.create(
        model="fake/once-429", messages=HELLO)
    assert answer.parse().choices[0].message.content == "fake: hello there"
    assert fake.hits["once-429"] == 2
    assert answer.headers["x-fallback-level"] == "0"


def test_a_long_retry_after_goes_back_to_the_caller(
    gw: GatewayProcess, fake: FakeUpstream
) -> None:
    async def limited(exchange: Exchange) -> None:
        exchange.json(429, {"error": {"message": "quota"}}, {"Retry-After": "60"})

    fake.handlers["long-429"] = limited
    response = post(gw, {"model": "fake/long-429", "messages": HELLO})
    assert response.status_code == 429
    assert response.headers["retry-after"] == "60"
    assert fake.hits["long-429"] == 1
    # Benched now: the next request does not reach the upstream at all.
    again = post(gw, {"model": "fake/long-429", "messages": HELLO})
    assert again.status_code == 429
    assert 55 <= int(again.headers["retry-after"]) <= 60
    assert "rate-limited" in again.json()["error"]["message"]
    assert fake.hits["long-429"] == 1


def test_a_stall_before_the_answer_moves_on(gw: GatewayProcess, fake: FakeUpstream) -> None:
    response = post(gw, chain("fake/stall-a", "fake/ok"))
    assert response.status_code == 200
    assert response.headers["x-resolved-model"] == "fake/ok"


def test_a_stall_before_the_first_token_moves_on_in_a_stream(
    gw: GatewayProcess, fake: FakeUpstream
) -> None:
    stalls_after_role(fake, "stall-c")  # first_token timeout in the commit loop
    response, text = stream_post(gw, chain("fake/hang-b", "fake/stall-c", "fake/ok"))
    assert response.status_code == 200
    assert response.headers["x-fallback-level"] == "2"
    assert content_of(text) == "fake: hello there"
    assert fake.hits["hang-b"] == 1 and fake.hits["stall-c"] == 1


def test_a_reset_connection_moves_on(gw: GatewayProcess, fake: FakeUpstream) -> None:
    response, _ = stream_post(gw, chain("fake/reset-a", "fake/ok"))
    assert response.status_code == 200
    assert response.headers["x-resolved-model"] == "fake/ok"
    assert fake.hits["reset-a"] == 1


def test_a_stream_cut_after_commit_ends_with_an_error_frame(
    gw: GatewayProcess, fake: FakeUpstream
) -> None:
    body = chain("fake/cut-a", "fake/ok")
    body["messages"] = [{"role": "user", "content": "one two three four"}]
    response, text = stream_post(gw, body)
    assert response.status_code == 200
    assert response.headers["x-resolved-model"] == "fake/cut-a"
    assert "error" in frames(text)[-1]
    assert content_of(text) == "fake: one "  # what came before the cut, nothing spliced after
    assert fake.hits["ok"] == 0


def test_a_malformed_chunk(gw: GatewayProcess, fake: FakeUpstream) -> None:
    response, text = stream_post(gw, chain("fake/malformed-a", "fake/ok"))
    assert "error" in frames(text)[-1]  # after commit: an error frame, no splice
    assert fake.hits["ok"] == 0

    async def garbage_first(exchange: Exchange) -> None:
        exchange.open_stream()
        exchange.send(b"data: {not json\n\n")

    fake.handlers["malformed-early"] = garbage_first
    response, text = stream_post(gw, chain("fake/malformed-early", "fake/ok"))
    assert response.headers["x-resolved-model"] == "fake/ok"  # before commit: moves on
    assert fake.hits["ok"] == 1 and "error" not in text


# --- chains -----------------------------------------------------------------------------------


def test_a_five_model_chain_is_served_by_its_last_model(
    gw: GatewayProcess, fake: FakeUpstream
) -> None:
    answer = sdk(gw).chat.completions.with_raw_response.create(
        model="fake/error-500-five",
        messages=HELLO,
        extra_body={"models": ["fake/error-500-five", "fake/error-502-five", "fake/reset-five",
                               "fake/error-429-five", "fake/ok"], "route": "fallback"},
    )
    assert answer.parse().model == "fake/ok"
    assert answer.headers["x-fallback-level"] == "4"
    assert answer.headers["x-fallback-model"] == "fake/ok"
    assert row(gw, answer.headers["x-request-id"])["attempts"] == 5
    sent = fake.bodies("ok")[0]
    assert "models" not in sent and "route" not in sent and "extra_body" not in sent


def test_a_six_model_chain_is_refused(gw: GatewayProcess, fake: FakeUpstream) -> None:
    models = [f"fake/ok-{i}" for i in range(6)]
    with pytest.raises(openai.BadRequestError) as caught:
        sdk(gw).chat.completions.create(
            model=models[0], messages=HELLO, extra_body={"models": models, "route": "fallback"}
        )
    assert caught.value.status_code == 400
    assert "at most 5" in caught.value.message
    assert not fake.requests


def test_the_chain_inside_extra_body_is_read_too(gw: GatewayProcess, fake: FakeUpstream) -> None:
    response = post(gw, {"model": "fake/error-503-x", "messages": HELLO, "extra_body": {
        "models": ["fake/error-503-x", "fake/ok"], "route": "fallback", "seed": 7}})
    assert response.headers["x-resolved-model"] == "fake/ok"
    sent = fake.bodies("ok")[0]
    assert sent["seed"] == 7 and "extra_body" not in sent and "models" not in sent


def test_unknown_models_and_bad_routes(gw: GatewayProcess, fake: FakeUpstream) -> None:
    response = post(gw, chain("fake/ok", "nope/nothing"))
    assert response.status_code == 404 and response.json()["error"]["param"] == "models[1]"
    response = post(gw, chain("fake/ok", route="cheapest"))
    assert response.status_code == 400 and response.json()["error"]["param"] == "route"
    assert not fake.requests


def test_other_4xx_errors_do_not_move_on(gw: GatewayProcess, fake: FakeUpstream) -> None:
    response = post(gw, chain("fake/error-400-a", "fake/ok"))
    assert response.status_code == 400
    assert fake.hits["ok"] == 0


def test_a_context_error_moves_to_a_larger_context(
    gw: GatewayProcess, fake: FakeUpstream
) -> None:
    response = post(gw, chain("t/small", "t/mid", "t/big"))
    assert response.headers["x-resolved-model"] == "t/big"
    assert response.headers["x-fallback-level"] == "2"
    assert fake.hits["context-400"] == 1 and fake.hits["ok-mid"] == 0


def test_when_every_model_fails_each_attempt_is_listed(
    gw: GatewayProcess, fake: FakeUpstream
) -> None:
    response = post(gw, chain("fake/error-500-all", "fake/error-503-all"))
    assert response.status_code == 502
    message = response.json()["error"]["message"]
    assert "fake/error-500-all" in message and "fake/error-503-all" in message
    assert "HTTP 500" in message and "HTTP 503" in message
    assert "sk-" not in message
    async def refuses_key(exchange: Exchange) -> None:
        exchange.json(401, {"error": {"message": "Incorrect API key provided: sk-fa***et"}})

    fake.handlers["bad-key"] = refuses_key
    response = post(gw, chain("fake/bad-key", "fake/error-500-all3"))
    assert response.status_code == 502  # a 401 is the gateway's key, not the caller's: moved on
    assert "refused the gateway's credentials" in response.json()["error"]["message"]
    assert "sk-" not in response.text and fake.hits["error-500-all3"] >= 1
    response, _ = stream_post(gw, chain("fake/error-429-all", "fake/error-429-all2"))
    assert response.status_code == 429 and "retry-after" in response.headers


# --- plans that know capabilities -------------------------------------------------------------


def test_models_that_cannot_serve_are_dropped_before_any_call(
    gw: GatewayProcess, fake: FakeUpstream
) -> None:
    message = {"role": "user", "content": [{"type": "text", "text": "what is this"}, IMAGE]}
    response = post(gw, {"model": "t/text", "models": ["t/text", "t/vision"],
                         "route": "fallback", "messages": [message]})
    assert response.headers["x-resolved-model"] == "t/vision"
    assert fake.hits["ok-text"] == 0
    tools = [{"type": "function", "function": {"name": "f", "parameters": {}}}]
    response = post(gw, {**chain("t/notools", "fake/ok"), "tools": tools})
    assert response.headers["x-resolved-model"] == "fake/ok"
    assert fake.hits["ok-notools"] == 0
    response = post(gw, {**chain("t/notools", "t/text"), "messages": [message]})
    assert response.status_code == 400
    error = response.json()["error"]["message"]
    assert "t/notools does not accept images" in error and "t/text does not" in error


def test_configured_fallbacks_and_cooldown_by_hit_counts(
    gw: GatewayProcess, fake: FakeUpstream
) -> None:
    async def down(exchange: Exchange) -> None:
        exchange.json(500, {"error": {"message": "down"}})

    fake.handlers["cool-500"] = down
    for _ in range(5):
        response = post(gw, {"model": "t/primary", "messages": HELLO})
        assert response.headers["x-resolved-model"] == "t/backup"
        assert response.headers["x-fallback-level"] == "1"
    # allowed_fails = 2: two failures bench it, and the next three requests skip it.
    assert fake.hits["cool-500"] == 2
    assert fake.hits["backup-ok"] == 5
    # Asked for alone (its fallback has no say in a chain of one), it is resting: 503.
    alone = post(gw, {"model": "t/primary", "models": ["t/primary"], "route": "fallback",
                      "messages": HELLO})
    assert alone.status_code == 503 and 55 <= int(alone.headers["retry-after"]) <= 60
    assert fake.hits["cool-500"] == 2


def test_deployments_share_a_model_and_a_failing_one_is_benched(
    gw: GatewayProcess, fake: FakeUpstream
) -> None:
    async def down(exchange: Exchange) -> None:
        exchange.json(502, {"error": {"message": "down"}})

    fake.handlers["dep-bad"] = down
    for _ in range(8):
        response = post(gw, {"model": "t/multi", "messages": HELLO})
        assert response.headers["x-resolved-model"] == "t/multi"
        assert response.headers["x-fallback-level"] == "0"
    assert fake.hits["dep-good"] == 8
    assert fake.hits["dep-bad"] <= 2
    keys = {r.headers["Authorization"] for r in fake.requests if r.body["model"] == "dep-good"}
    assert keys == {"Bearer sk-second-key"}


# --- named routers ----------------------------------------------------------------------------


def test_auto_routes_each_kind_of_request(gw: GatewayProcess, fake: FakeUpstream) -> None:
    def served(messages: list[dict[str, Any]], **extra: Any) -> str:
        response = post(gw, {"model": "auto", "messages": messages, **extra})
        assert response.headers["x-router"] == "auto", response.text
        return response.headers["x-resolved-model"]

    image = [{"role": "user", "content": [{"type": "text", "text": "read"}, IMAGE]}]
    tools = [{"type": "function", "function": {"name": "f", "parameters": {}}}]
    code = "Fix this python function:\n```python\ndef f(x):\n    return x +\n```"
    assert served(image) == "t/vision"  # t/text comes first but cannot see
    assert served(HELLO, tools=tools) == "t/text"  # t/notools comes first but has no tools
    assert served([{"role": "user", "content": "word " * 3000}]) == "t/long"
    assert served([{"role": "user", "content": code}]) == "t/coder"
    assert served(HELLO) == "t/default"
    response = post(gw, {"model": "router/auto", "messages": HELLO})
    assert response.headers["x-router"] == "auto"
    ledger = row(gw, response.headers["x-request-id"])
    assert (ledger["router"], ledger["model_requested"], ledger["model_served"]) == (
        "auto", "router/auto", "t/default")
    assert fake.hits["ok-text"] == 1 and fake.hits["ok-notools"] == 0


def test_free_rotates_and_skips_a_limited_model(gw: GatewayProcess, fake: FakeUpstream) -> None:
    async def limited(exchange: Exchange) -> None:
        exchange.json(429, {"error": {"message": "limited"}}, {"Retry-After": "120"})

    fake.handlers["free-limited"] = limited
    served = []
    for _ in range(6):
        response = post(gw, {"model": "free", "messages": HELLO})
        assert response.status_code == 200
        assert response.headers["x-router"] == "free"
        served.append(response.headers["x-resolved-model"])
    assert fake.hits["free-limited"] == 1
    assert set(served) == {"t/free-b", "t/free-c"}


def test_ocr_reads_images_with_its_prompt(gw: GatewayProcess, fake: FakeUpstream) -> None:
    message = {"role": "user", "content": [IMAGE]}
    response = post(gw, {"model": "ocr", "messages": [message]})
    assert response.headers["x-resolved-model"] == "t/vision"
    sent = fake.bodies("ok-vision")[0]
    assert sent["messages"][0]["role"] == "system"
    assert "Thai" in sent["messages"][0]["content"]
    assert sent["temperature"] == 0
    response = post(gw, {"model": "ocr", "messages": HELLO})
    assert response.status_code == 400 and "image" in response.json()["error"]["message"]


# --- personas ---------------------------------------------------------------------------------


def test_a_persona_prompt_arrives_ahead_of_the_callers(
    gw: GatewayProcess, fake: FakeUpstream
) -> None:
    answer = sdk(gw).chat.completions.with_raw_response.create(
        model="p-coder",
        messages=[{"role": "system", "content": "CALLER PROMPT"}, *HELLO],
        max_tokens=5000,
    )
    assert answer.headers["x-persona"] == "p-coder"
    assert answer.parse().model == "fake/ok"
    sent = fake.bodies("ok")[0]
    assert [m["content"] for m in sent["messages"][:2]] == ["PERSONA PROMPT", "CALLER PROMPT"]
    assert sent["temperature"] == 0.3 and sent["max_tokens"] == 100
    stream = sdk(gw).chat.completions.create(model="p-coder", messages=HELLO, temperature=0.9,
                                             stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == (
        "fake: hello there")
    sent = fake.bodies("ok")[1]
    assert sent["messages"][0]["content"] == "PERSONA PROMPT"
    assert sent["temperature"] == 0.9 and sent["max_tokens"] == 100


def test_a_persona_on_a_router(gw: GatewayProcess, fake: FakeUpstream) -> None:
    response = post(gw, {"model": "p-auto", "messages": HELLO})
    assert response.headers["x-router"] == "auto"
    assert response.headers["x-resolved-model"] == "t/default"
    assert fake.bodies("ok-default")[0]["messages"][0]["content"] == "AUTO PERSONA"


def test_a_persona_through_a_canonical_provider(gw: GatewayProcess) -> None:
    # The mock provider takes canonical requests: the overlay goes on that form instead.
    answer = sdk(gw).chat.completions.create(model="p-lorem", messages=HELLO, max_tokens=50)
    assert answer.model == "mock/lorem"
    assert len((answer.choices[0].message.content or "").split()) == 5
