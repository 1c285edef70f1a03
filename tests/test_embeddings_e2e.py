"""``POST /v1/embeddings`` end to end: the real server, the official openai SDK's
``embeddings.create``, and fake OpenAI and Gemini upstreams over loopback HTTP."""

from __future__ import annotations

import base64
import struct
from collections.abc import Iterator
from typing import Any

import httpx2 as httpx
import openai
import pytest

from bench.fake_upstream import FakeUpstream
from bench.fake_upstream.operations import fake_vector
from tests.conftest import GatewayProcess, dialect_process

pytestmark = pytest.mark.e2e

MODELS = """
[[models]]
id = "emb/openai"
provider = "fake"
upstream = "text-embedding-fake"
mode = "embeddings"
input_price = 1.0

[[models]]
id = "emb/gemini"
provider = "fakegemini"
upstream = "gemini-embedding-001"
mode = "embeddings"
input_price = 2.0

[[models]]
id = "emb/broken"
provider = "fake"
upstream = "error-500"
mode = "embeddings"
input_price = 1.0
fallbacks = ["emb/gemini"]

[[models]]
id = "emb/nousage"
provider = "fake"
upstream = "nousage"
mode = "embeddings"
input_price = 1.0

[[models]]
id = "fake/chat"
provider = "fake"
upstream = "chat"
"""


@pytest.fixture(scope="module")
def gateway(
    tmp_path_factory: pytest.TempPathFactory, upstream: FakeUpstream
) -> Iterator[GatewayProcess]:
    process = dialect_process(tmp_path_factory.mktemp("embeddings"), upstream, MODELS)
    yield process.start()
    process.stop()


def client(gateway: GatewayProcess) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=gateway.key, max_retries=0)


@pytest.mark.parametrize("model", ["emb/openai", "emb/gemini"])
def test_the_sdk_embeds_strings_through_each_dialect(
    gateway: GatewayProcess, fake: FakeUpstream, model: str
) -> None:
    raw = client(gateway).embeddings.with_raw_response.create(
        model=model, input=["one two", "three"], dimensions=4
    )
    answer = raw.parse()
    assert answer.model == model
    # The SDK asks for base64 and decodes it: the vectors are what the upstream made.
    assert [d.embedding for d in answer.data] == [
        pytest.approx(fake_vector("one two", 0, 4)), pytest.approx(fake_vector("three", 1, 4))]
    assert answer.usage.prompt_tokens > 0
    row = gateway.usage_row(raw.headers["x-request-id"])
    assert row["operation"] == "embeddings" and row["model_served"] == model
    assert row["prompt_tokens"] == answer.usage.prompt_tokens
    price = 1.0 if model == "emb/openai" else 2.0
    assert row["cost_usd"] == pytest.approx(answer.usage.prompt_tokens * price / 1e6)
    assert float(raw.headers["x-cost-usd"]) == pytest.approx(row["cost_usd"])
    assert raw.headers["x-ratelimit-limit"]


def test_openai_gets_the_body_as_sent_and_gemini_a_batch(
    gateway: GatewayProcess, fake: FakeUpstream
) -> None:
    client(gateway).embeddings.create(model="emb/openai", input="hi", dimensions=3,
                                      encoding_format="float", user="u1")
    sent = fake.requests[-1]
    assert sent.path == "/v1/embeddings"
    assert sent.body == {"model": "text-embedding-fake", "input": "hi", "dimensions": 3,
                         "encoding_format": "float", "user": "u1"}
    assert sent.headers["Authorization"] == "Bearer sk-fake-upstream-secret"
    client(gateway).embeddings.create(model="emb/gemini", input=["a", "b"], dimensions=3)
    batch = fake.requests[-1]
    assert batch.path == "/v1beta/models/gemini-embedding-001:batchEmbedContents"
    assert batch.body == {"requests": [
        {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "a"}]},
         "outputDimensionality": 3},
        {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "b"}]},
         "outputDimensionality": 3},
    ]}


@pytest.mark.parametrize("model", ["emb/openai", "emb/gemini"])
def test_float_and_base64_are_what_the_caller_asked_for(
    gateway: GatewayProcess, fake: FakeUpstream, model: str
) -> None:
    body = {"model": model, "input": "four", "dimensions": 3}
    floats = httpx.post(f"{gateway.url}/v1/embeddings", headers=gateway.headers(),
                        json={**body, "encoding_format": "float"}).json()
    assert floats["data"][0]["embedding"] == fake_vector("four", 0, 3)
    packed = httpx.post(f"{gateway.url}/v1/embeddings", headers=gateway.headers(),
                        json={**body, "encoding_format": "base64"}).json()
    vector = struct.unpack("<3f", base64.b64decode(packed["data"][0]["embedding"]))
    assert list(vector) == pytest.approx(fake_vector("four", 0, 3))


def test_token_arrays_pass_through_and_gemini_refuses_them(
    gateway: GatewayProcess, fake: FakeUpstream
) -> None:
    answer = client(gateway).embeddings.create(model="emb/openai", input=[[1, 2, 3], [4]])
    assert len(answer.data) == 2 and answer.usage.prompt_tokens == 4
    assert fake.requests[-1].body["input"] == [[1, 2, 3], [4]]
    with pytest.raises(openai.BadRequestError, match="text only"):
        client(gateway).embeddings.create(model="emb/gemini", input=[1, 2, 3])


def test_a_failing_embeddings_model_falls_back_within_the_mode(
    gateway: GatewayProcess, fake: FakeUpstream
) -> None:
    raw = client(gateway).embeddings.with_raw_response.create(model="emb/broken", input="x")
    assert raw.parse().model == "emb/gemini"
    assert raw.headers["x-fallback-level"] == "1"
    chain = httpx.post(f"{gateway.url}/v1/embeddings", headers=gateway.headers(), json={
        "model": "emb/broken", "input": "x", "models": ["emb/broken", "emb/openai"],
        "route": "fallback"})
    assert chain.status_code == 200 and chain.json()["model"] == "emb/openai"


def test_usage_is_counted_when_the_upstream_reports_none(
    gateway: GatewayProcess, fake: FakeUpstream
) -> None:
    raw = client(gateway).embeddings.with_raw_response.create(
        model="emb/nousage", input="hello there world"
    )
    answer = raw.parse()
    assert answer.usage.prompt_tokens == 3  # the tokenizer's count
    row = gateway.usage_row(raw.headers["x-request-id"])
    assert row["prompt_tokens"] == 3 and row["cost_usd"] == pytest.approx(3 / 1e6)


@pytest.mark.parametrize(("body", "param"), [
    ({"input": "x"}, "model"),
    ({"model": "emb/openai"}, "input"),
    ({"model": "emb/openai", "input": ""}, "input"),
    ({"model": "emb/openai", "input": []}, "input"),
    ({"model": "emb/openai", "input": ["a", ""]}, "input"),
    ({"model": "emb/openai", "input": [1, "a"]}, "input"),
    ({"model": "emb/openai", "input": [[1], ["a"]]}, "input"),
    ({"model": "emb/openai", "input": [-1]}, "input"),
    ({"model": "emb/openai", "input": 5}, "input"),
    ({"model": "emb/openai", "input": {"text": "a"}}, "input"),
    ({"model": "emb/openai", "input": ["a"] * 2049}, "input"),
    ({"model": "emb/openai", "input": "a", "dimensions": 0}, "dimensions"),
    ({"model": "emb/openai", "input": "a", "dimensions": "8"}, "dimensions"),
    ({"model": "emb/openai", "input": "a", "encoding_format": "int8"}, "encoding_format"),
    ({"model": "emb/openai", "input": "a", "models": "emb/gemini"}, "models"),
    ({"model": 7, "input": "a"}, "model"),
    ({"model": "fake/chat", "input": "a"}, "model"),
])
def test_bad_input_gets_a_400_naming_the_field(
    gateway: GatewayProcess, fake: FakeUpstream, body: dict[str, Any], param: str
) -> None:
    answer = httpx.post(f"{gateway.url}/v1/embeddings", headers=gateway.headers(), json=body)
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["message"] and error["type"] == "invalid_request_error"
    assert error["param"] == param
    assert fake.requests == []


@pytest.mark.parametrize(("content", "status"), [
    (b"", 400), (b"not json", 400), (b"[1, 2]", 400), (b'{"model": "emb/nope", "input": "a"}', 404),
])
def test_unreadable_bodies_and_unknown_models_are_4xx(
    gateway: GatewayProcess, content: bytes, status: int
) -> None:
    answer = httpx.post(f"{gateway.url}/v1/embeddings", headers=gateway.headers(),
                        content=content)
    assert answer.status_code == status and answer.json()["error"]["message"]


def test_no_key_is_a_401_in_the_openai_shape(gateway: GatewayProcess) -> None:
    answer = httpx.post(f"{gateway.url}/v1/embeddings", json={"model": "emb/openai",
                                                               "input": "a"})
    assert answer.status_code == 401 and answer.json()["error"]["type"]
