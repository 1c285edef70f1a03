"""Malformed or out-of-range bodies get a 400 in the caller's dialect, before any upstream call
(issue 11: malformed input and model names; issue 15: sampling ranges), and the mock provider
says when it was cut and never repeats an id (issue 15)."""

from __future__ import annotations

from typing import Any

import httpx2 as httpx
import pytest

from adapters.base import ProviderSettings
from adapters.errors import ProviderHTTPError
from adapters.gemini.provider import GeminiProvider
from bench.fake_upstream import FakeUpstream
from gateway.config import DEFAULT_CONFIG_PATH, parse_config
from gateway.wiring import build_catalog
from routers.catalog import Model
from tests.conftest import GatewayProcess

pytestmark = pytest.mark.e2e



USER = {"role": "user", "content": "hi"}
# 50,000 levels of nesting in a tool's schema: small enough for the body limit.
DEEP_SCHEMA = b'{"type":"object","properties":{"a":' + b"[" * 50_000 + b"]" * 50_000 + b"}}"


def openai(gw: GatewayProcess, body: dict[str, Any] | bytes) -> httpx.Response:
    content = body if isinstance(body, bytes) else None
    return httpx.post(f"{gw.url}/v1/chat/completions", headers=gw.headers(), timeout=30,
                      content=content, json=None if content is not None else body)


def anthropic(gw: GatewayProcess, body: dict[str, Any] | bytes) -> httpx.Response:
    content = body if isinstance(body, bytes) else None
    headers = {"x-api-key": gw.key, "anthropic-version": "2023-06-01"}
    return httpx.post(f"{gw.url}/v1/messages", headers=headers, timeout=30,
                      content=content, json=None if content is not None else body)


def assert_openai_400(response: httpx.Response) -> None:
    assert response.status_code == 400, response.text
    assert response.json()["error"]["type"] == "invalid_request_error"


def assert_anthropic_400(response: httpx.Response) -> None:
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"


def part(**fields: Any) -> dict[str, Any]:
    return {"role": "user", "content": [{"type": "text", "text": "look"}, fields]}


@pytest.mark.parametrize("model", ["mock/echo", "fake/ok"])
@pytest.mark.parametrize(
    "message",
    [
        part(type="image_url", image_url=5),
        part(type="image_url", image_url=[1]),
        part(type="image_url", image_url={"detail": "low"}),
        part(type="input_audio", input_audio="x"),
        {"role": "user", "content": [5]},
    ],
)
def test_malformed_openai_content_parts_get_400(
    dialect_gateway: GatewayProcess, fake: FakeUpstream, model: str, message: dict[str, Any]
) -> None:
    assert_openai_400(openai(dialect_gateway, {"model": model, "messages": [message]}))
    assert fake.requests == []


@pytest.mark.parametrize("model", ["mock/echo", "fakeanthropic/ok", "fake/ok"])
@pytest.mark.parametrize(
    "block",
    [
        {"type": "image", "source": "x"},
        {"type": "document", "source": 5},
        {"type": "tool_result", "tool_use_id": "t", "content": [{"type": "image", "source": "x"}]},
        {"type": "tool_use", "id": "t", "name": "f", "input": "x"},
    ],
)
def test_malformed_anthropic_blocks_get_400(
    dialect_gateway: GatewayProcess, fake: FakeUpstream, model: str, block: dict[str, Any]
) -> None:
    body = {"model": model, "max_tokens": 10, "messages": [{"role": "user", "content": [block]}]}
    assert_anthropic_400(anthropic(dialect_gateway, body))
    assert fake.requests == []


def test_deeply_nested_tool_schema_gets_400_on_both_endpoints(
    dialect_gateway: GatewayProcess, fake: FakeUpstream
) -> None:
    tools = b'[{"type":"function","function":{"name":"f","parameters":' + DEEP_SCHEMA + b"}}]"
    body = b'{"model":"mock/echo","messages":[{"role":"user","content":"hi"}],"tools":' + tools
    assert_openai_400(openai(dialect_gateway, body + b"}"))
    tools = b'[{"name":"f","input_schema":' + DEEP_SCHEMA + b"}]"
    body = (b'{"model":"mock/echo","max_tokens":5,"messages":[{"role":"user","content":"hi"}],'
            b'"tools":' + tools + b"}")
    assert_anthropic_400(anthropic(dialect_gateway, body))
    assert fake.requests == []


@pytest.mark.parametrize(
    "name", ["fake/ok\n", "fake/a\rb", "fake/" + "x" * 300, "fake/" + "é" * 130, "fake/\x00"]
)
def test_bad_model_names_get_400_before_any_upstream_call(
    dialect_gateway: GatewayProcess, fake: FakeUpstream, name: str
) -> None:
    response = openai(dialect_gateway, {"model": name, "messages": [USER]})
    assert_openai_400(response)
    assert response.json()["error"]["param"] == "model"
    assert "x-resolved-model" not in response.headers
    chain = {"model": "mock/echo", "messages": [USER], "models": ["fake/ok", name],
             "route": "fallback"}
    assert_openai_400(openai(dialect_gateway, chain))
    body = {"model": name, "max_tokens": 5, "messages": [USER]}
    assert_anthropic_400(anthropic(dialect_gateway, body))
    count = httpx.post(f"{dialect_gateway.url}/v1/messages/count_tokens",
                       headers={"x-api-key": dialect_gateway.key}, json=body, timeout=30)
    assert_anthropic_400(count)
    assert fake.requests == []


def test_a_long_printable_name_within_the_cap_still_reaches_the_upstream(
    dialect_gateway: GatewayProcess, fake: FakeUpstream
) -> None:
    name = "fake/" + "x" * 200
    response = openai(dialect_gateway, {"model": name, "messages": [USER]})
    assert response.status_code == 200, response.text
    assert response.headers["x-resolved-model"] == name
    assert fake.requests


@pytest.mark.parametrize(
    "fields",
    [{"max_tokens": -1}, {"max_tokens": 0}, {"max_completion_tokens": 0}, {"temperature": 7},
     {"temperature": -0.1}, {"top_p": 3}, {"n": 0}, {"presence_penalty": 3},
     {"frequency_penalty": -2.5}],
)
def test_out_of_range_openai_sampling_fields_get_400(
    dialect_gateway: GatewayProcess, fake: FakeUpstream, fields: dict[str, Any]
) -> None:
    response = openai(dialect_gateway, {"model": "fake/ok", "messages": [USER], **fields})
    assert_openai_400(response)
    assert response.json()["error"]["param"] == next(iter(fields))
    assert fake.requests == []


@pytest.mark.parametrize(
    "fields",
    [{"max_tokens": -5}, {"max_tokens": 0}, {"temperature": 1.5}, {"temperature": -1},
     {"top_p": 3}, {"top_k": -1}],
)
def test_out_of_range_anthropic_sampling_fields_get_400(
    dialect_gateway: GatewayProcess, fake: FakeUpstream, fields: dict[str, Any]
) -> None:
    body = {"model": "fakeanthropic/ok", "max_tokens": 10, "messages": [USER], **fields}
    assert_anthropic_400(anthropic(dialect_gateway, body))
    assert fake.requests == []


def test_in_range_sampling_fields_pass(dialect_gateway: GatewayProcess) -> None:
    fields = {"max_tokens": 5, "temperature": 2, "top_p": 1, "n": 1, "presence_penalty": -2}
    assert openai(dialect_gateway, {"model": "mock/echo", "messages": [USER], **fields}).is_success
    body = {"model": "mock/echo", "max_tokens": 5, "temperature": 1, "top_p": 0, "top_k": 0,
            "messages": [USER]}
    assert anthropic(dialect_gateway, body).is_success


def test_gemini_urls_take_the_model_as_one_segment_and_refuse_dotdot() -> None:
    provider = GeminiProvider(ProviderSettings(name="g", base_url="https://g.example"), None)  # type: ignore[arg-type]
    assert provider.url("gemini-2.5-flash", stream=False) == (
        "https://g.example/v1beta/models/gemini-2.5-flash:generateContent"
    )
    assert provider.url("a/b?c", stream=False) == (
        "https://g.example/v1beta/models/a%2Fb%3Fc:generateContent"
    )
    for name in ("../../v1/files", "..", "a/../b", "models/.."):
        with pytest.raises(ProviderHTTPError) as refused:
            provider.url(name, stream=True)
        assert refused.value.status == 400


# --- the mock provider --------------------------------------------------------------------


def test_mock_says_length_when_cut_by_max_tokens(dialect_gateway: GatewayProcess) -> None:
    cut = openai(dialect_gateway, {"model": "mock/lorem", "max_tokens": 5, "messages": [USER]})
    assert cut.json()["choices"][0]["finish_reason"] == "length"
    assert cut.json()["usage"]["completion_tokens"] == 5
    whole = openai(dialect_gateway, {"model": "mock/lorem", "messages": [USER]})
    assert whole.json()["choices"][0]["finish_reason"] == "stop"
    echo = {"model": "mock/echo", "max_tokens": 2, "messages": [
        {"role": "user", "content": "one two three four"}]}
    answer = openai(dialect_gateway, echo).json()["choices"][0]
    assert (answer["message"]["content"], answer["finish_reason"]) == ("one two ", "length")
    short = openai(dialect_gateway, {**echo, "max_tokens": 10}).json()["choices"][0]
    assert short["finish_reason"] == "stop"
    stream = openai(dialect_gateway, {"model": "mock/lorem", "max_tokens": 3, "stream": True,
                                      "messages": [USER]})
    assert '"finish_reason":"length"' in stream.text
    message = anthropic(dialect_gateway, {"model": "mock/lorem", "max_tokens": 4,
                                          "messages": [USER]})
    assert message.json()["stop_reason"] == "max_tokens"
    events = anthropic(dialect_gateway, {"model": "mock/echo", "max_tokens": 100, "stream": True,
                                         "messages": [USER]})
    assert '"stop_reason":"end_turn"' in events.text


def test_mock_gives_each_answer_its_own_id(dialect_gateway: GatewayProcess) -> None:
    body = {"model": "mock/echo", "messages": [USER]}
    ids = {openai(dialect_gateway, body).json()["id"] for _ in range(3)}
    assert len(ids) == 3
    body = {"model": "mock/echo", "max_tokens": 5, "messages": [USER]}
    assert len({anthropic(dialect_gateway, body).json()["id"] for _ in range(3)}) == 3


def test_a_free_model_costs_nothing_whatever_prices_it_lists() -> None:
    lorem = Model(id="mock/lorem", provider="mock", upstream="lorem", input_price=0.1,
                      output_price=0.4, free=True)
    assert lorem.cost(1000, 2000, 10) == 0.0
    priced = Model(id="m", provider="p", upstream="m", input_price=0.1, output_price=0.4)
    assert priced.cost(1000, 2000) == pytest.approx(0.0009)


def test_the_shipped_catalog_charges_nothing_for_a_model_it_lists_as_free() -> None:
    catalog = build_catalog(parse_config(DEFAULT_CONFIG_PATH.read_text()))
    free = [model for model in catalog if model.free]
    assert free and all(model.cost(1000, 1000) == 0.0 for model in free)
    lorem = catalog.get("mock/lorem")
    assert lorem is not None and not lorem.free and lorem.cost(1000, 1000) > 0


@pytest.mark.parametrize("value", ["{key}", "Basic {key}", "Bearer"])
def test_an_authorization_header_without_bearer_is_named_not_called_missing(
    dialect_gateway: GatewayProcess, value: str
) -> None:
    headers = {"Authorization": value.format(key=dialect_gateway.key)}
    body = {"model": "mock/echo", "messages": [USER]}
    response = httpx.post(f"{dialect_gateway.url}/v1/chat/completions", headers=headers,
                          json=body, timeout=30)
    assert response.status_code == 401, response.text
    message = response.json()["error"]["message"]
    assert "Bearer <key>" in message and "Missing" not in message
