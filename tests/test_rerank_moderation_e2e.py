"""``POST /v1/rerank`` and ``POST /v1/moderations`` end to end: the real server, a fake
openai-kind upstream over loopback HTTP, and the official openai SDK's ``moderations.create``
(the SDK has no rerank call: plain HTTP in the Cohere/Jina shape)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx2 as httpx
import openai
import pytest

from bench.fake_upstream import FakeUpstream
from tests.conftest import GatewayProcess, dialect_process

pytestmark = pytest.mark.e2e

MODELS = """
[[models]]
id = "rr/fake"
provider = "fake"
upstream = "bge-reranker"
mode = "rerank"
input_price = 1.0

[[models]]
id = "rr/broken"
provider = "fake"
upstream = "error-503"
mode = "rerank"
input_price = 1.0
fallbacks = ["rr/fake"]

[[models]]
id = "mod/fake"
provider = "fake"
upstream = "omni-moderation-2024"
aliases = ["omni-moderation-latest"]
mode = "moderation"
input_price = 1.0

[[models]]
id = "fake/chat"
provider = "fake"
upstream = "chat"
"""

DOCUMENTS = ["Dogs bark", "Cats sleep all day", {"text": "cats and dogs"}]


@pytest.fixture(scope="module")
def gateway(
    tmp_path_factory: pytest.TempPathFactory, upstream: FakeUpstream
) -> Iterator[GatewayProcess]:
    process = dialect_process(tmp_path_factory.mktemp("scoring"), upstream, MODELS)
    yield process.start()
    process.stop()


def post(gateway: GatewayProcess, path: str, body: Any) -> httpx.Response:
    return httpx.post(f"{gateway.url}{path}", headers=gateway.headers(), json=body)


def test_rerank_passes_through_and_is_billed(
    gateway: GatewayProcess, fake: FakeUpstream
) -> None:
    body = {"model": "rr/fake", "query": "cats sleep", "documents": DOCUMENTS, "top_n": 2,
            "return_documents": True, "max_tokens_per_doc": 512}
    answer = post(gateway, "/v1/rerank", body)
    assert answer.status_code == 200, answer.text
    results = answer.json()["results"]
    assert [r["index"] for r in results] == [1, 2]
    assert results[0]["document"] == {"text": "Cats sleep all day"}
    sent = fake.requests[-1]
    assert sent.path == "/v1/rerank" and sent.body == {**body, "model": "bge-reranker"}
    row = gateway.usage_row(answer.headers["x-request-id"])
    tokens = answer.json()["usage"]["total_tokens"]
    assert row["operation"] == "rerank" and row["prompt_tokens"] == tokens
    assert float(answer.headers["x-cost-usd"]) == pytest.approx(tokens / 1e6)
    assert answer.headers["x-ratelimit-limit"]


def test_rerank_falls_back_within_its_mode(
    gateway: GatewayProcess, fake: FakeUpstream
) -> None:
    answer = post(gateway, "/v1/rerank", {"model": "rr/broken", "query": "cats",
                                          "documents": ["cats"]})
    assert answer.status_code == 200 and answer.headers["x-fallback-level"] == "1"
    assert answer.headers["x-resolved-model"] == "rr/fake"


def test_the_sdk_moderates_through_the_gateway_and_usage_is_counted(
    gateway: GatewayProcess, fake: FakeUpstream
) -> None:
    client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=gateway.key, max_retries=0)
    raw = client.moderations.with_raw_response.create(
        model="mod/fake", input=["have a nice day", "I will kill it"]
    )
    result = raw.parse()
    assert [r.flagged for r in result.results] == [False, True]
    assert result.model == "mod/fake"
    assert fake.requests[-1].path == "/v1/moderations"
    # OpenAI's moderations report no usage: the gateway counts the input and bills it.
    row = gateway.usage_row(raw.headers["x-request-id"])
    tokens = raw.http_response.json()["usage"]["prompt_tokens"]
    assert tokens == 8  # the tokenizer's count of both inputs
    assert row["operation"] == "moderation" and row["prompt_tokens"] == tokens
    assert row["cost_usd"] == pytest.approx(tokens / 1e6)
    # Without a model, OpenAI's default name: here an alias of the operator's choice.
    default = client.moderations.create(input="hello")
    assert default.model == "mod/fake"


@pytest.mark.parametrize(("path", "body", "param"), [
    ("/v1/rerank", {"model": "rr/fake", "documents": ["a"]}, "query"),
    ("/v1/rerank", {"model": "rr/fake", "query": "  ", "documents": ["a"]}, "query"),
    ("/v1/rerank", {"model": "rr/fake", "query": "q"}, "documents"),
    ("/v1/rerank", {"model": "rr/fake", "query": "q", "documents": []}, "documents"),
    ("/v1/rerank", {"model": "rr/fake", "query": "q", "documents": [3]}, "documents[0]"),
    ("/v1/rerank", {"model": "rr/fake", "query": "q", "documents": [{"txt": "a"}]},
     "documents[0]"),
    ("/v1/rerank", {"model": "rr/fake", "query": "q", "documents": ["a"], "top_n": 0}, "top_n"),
    ("/v1/rerank", {"model": "rr/fake", "query": "q", "documents": "a"}, "documents"),
    ("/v1/rerank", {"model": "mod/fake", "query": "q", "documents": ["a"]}, "model"),
    ("/v1/moderations", {"model": "mod/fake"}, "input"),
    ("/v1/moderations", {"model": "mod/fake", "input": ""}, "input"),
    ("/v1/moderations", {"model": "mod/fake", "input": []}, "input"),
    ("/v1/moderations", {"model": "mod/fake", "input": [{"type": "audio"}]}, "input[0]"),
    ("/v1/moderations", {"model": "mod/fake", "input": 5}, "input"),
    ("/v1/moderations", {"model": "fake/chat", "input": "a"}, "model"),
    ("/v1/moderations", {"model": "rr/fake", "input": "a"}, "model"),
])
def test_bad_input_gets_a_400_naming_the_field(
    gateway: GatewayProcess, fake: FakeUpstream, path: str, body: Any, param: str
) -> None:
    answer = post(gateway, path, body)
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["message"] and error["param"] == param
    assert fake.requests == []


def test_chat_models_refuse_rerank_models(gateway: GatewayProcess) -> None:
    answer = post(gateway, "/v1/chat/completions",
                  {"model": "rr/fake", "messages": [{"role": "user", "content": "hi"}]})
    assert answer.status_code == 400 and "/v1/rerank" in answer.json()["error"]["message"]
