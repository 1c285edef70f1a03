"""Image generation end to end: the official ``openai`` SDK's ``images.generate`` against the
real server, in front of a fake OpenAI images API and a fake MiniMax image API over loopback
HTTP, URLs and base64 alike; fallback from a failing image model to another; MiniMax's
``base_resp`` failures on HTTP 200; and billing per image in the ledger."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from bench.fake_upstream import FakeUpstream
from tests.conftest import IMAGE_PROVIDERS, GatewayProcess, fake_config

pytestmark = pytest.mark.e2e

MODELS = """
[[models]]
id = "fake/ok"
provider = "fake"
upstream = "ok"
input_price = 1.0
output_price = 2.0

[[models]]
id = "openai/dall-e-3"
provider = "fake"
upstream = "dall-e-3"
aliases = ["dall-e-3"]
mode = "images"
price_per_image = 0.04

[[models]]
id = "openai/gpt-image-1"
provider = "fake"
upstream = "gpt-image-1"
mode = "images"
input_price = 5.0
output_price = 40.0

[[models]]
id = "minimax/image-01"
provider = "fakeminimax"
upstream = "image-01"
aliases = ["minimax-image-01"]
mode = "images"
price_per_image = 0.0035

[[models]]
id = "openai/broken"
provider = "fake"
upstream = "images-error-500"
mode = "images"
price_per_image = 0.04
fallbacks = ["minimax/image-01"]

[[models]]
id = "minimax/limited"
provider = "fakeminimax"
upstream = "image-01-error-1002"
mode = "images"
price_per_image = 0.0035
fallbacks = ["openai/dall-e-3"]

[[models]]
id = "minimax/sensitive"
provider = "fakeminimax"
upstream = "image-01-error-1026"
mode = "images"
price_per_image = 0.0035

[[models]]
id = "minimax/filtered"
provider = "fakeminimax"
upstream = "image-01-filtered"
mode = "images"
price_per_image = 0.0035
"""


@pytest.fixture(scope="module")
def images_gateway(tmp_path_factory: pytest.TempPathFactory,
                   upstream: FakeUpstream) -> Iterator[GatewayProcess]:
    """A gateway whose images models are served by the fake OpenAI and MiniMax image APIs."""
    tmp: Path = tmp_path_factory.mktemp("images-gateway")
    extra = IMAGE_PROVIDERS.format(origin=upstream.origin)
    process = GatewayProcess(tmp, fake_config(tmp, upstream.url, extra=extra, models=MODELS))
    yield process.start()
    process.stop()


@pytest.fixture
def client(images_gateway: GatewayProcess, fake: FakeUpstream) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{images_gateway.url}/v1", api_key=images_gateway.key,
                         max_retries=0)


def test_openai_urls_pass_through(client: openai.OpenAI, fake: FakeUpstream) -> None:
    result = client.images.generate(model="dall-e-3", prompt="a lighthouse", size="1792x1024",
                                    quality="hd", style="natural", user="u-1")
    assert result.data is not None and result.data[0].url == f"{fake.origin}/files/0.png"
    assert result.data[0].revised_prompt == "a lighthouse"
    [sent] = fake.bodies("dall-e-3")
    assert sent == {"model": "dall-e-3", "prompt": "a lighthouse", "size": "1792x1024",
                    "quality": "hd", "style": "natural", "user": "u-1"}
    assert fake.requests[0].headers["Authorization"] == "Bearer sk-fake-upstream-secret"


def test_openai_base64(client: openai.OpenAI) -> None:
    result = client.images.generate(model="openai/dall-e-3", prompt="a cat",
                                    response_format="b64_json")
    assert result.data is not None
    assert base64.b64decode(result.data[0].b64_json or "").startswith(b"\x89PNG")


def test_gpt_image_gets_no_response_format_and_urls_come_as_data_urls(
    client: openai.OpenAI, fake: FakeUpstream
) -> None:
    result = client.images.generate(model="openai/gpt-image-1", prompt="a cat", n=2,
                                    response_format="url")
    assert result.data is not None and len(result.data) == 2
    assert all((d.url or "").startswith("data:image/png;base64,iVBOR") for d in result.data)
    assert "response_format" not in fake.bodies("gpt-image-1")[0]
    as_b64 = client.images.generate(model="openai/gpt-image-1", prompt="a cat",
                                    response_format="b64_json")
    assert as_b64.data is not None and as_b64.data[0].b64_json


def test_minimax_urls_and_base64(client: openai.OpenAI, fake: FakeUpstream) -> None:
    urls = client.images.generate(model="minimax-image-01", prompt="a fox", n=2,
                                  size="1024x1792")
    assert urls.data is not None
    assert [d.url for d in urls.data] == [f"{fake.origin}/files/{i}.jpeg" for i in (0, 1)]
    b64 = client.images.generate(model="minimax/image-01", prompt="a fox",
                                 response_format="b64_json")
    assert b64.data is not None
    assert base64.b64decode(b64.data[0].b64_json or "").startswith(b"\x89PNG")
    first, second = fake.bodies("image-01")
    assert first == {"model": "image-01", "prompt": "a fox", "response_format": "url", "n": 2,
                     "aspect_ratio": "9:16"}
    assert second["response_format"] == "base64" and "aspect_ratio" not in second
    assert fake.requests[0].path == "/v1/image_generation"
    assert fake.requests[0].headers["Authorization"] == "Bearer minimax-fake-upstream-secret"


def test_a_failing_image_model_falls_back_and_bills_what_served(
    client: openai.OpenAI, images_gateway: GatewayProcess, fake: FakeUpstream
) -> None:
    raw = client.images.with_raw_response.generate(model="openai/broken", prompt="a cat", n=3)
    assert raw.headers["x-resolved-model"] == "minimax/image-01"
    assert raw.headers["x-fallback-level"] == "1"
    assert raw.headers["x-cost-usd"] == "0.01050000"  # 3 images at $0.0035
    assert fake.hits["images-error-500"] >= 1
    row = images_gateway.usage_row(raw.headers["x-request-id"], timeout=10)
    assert row["operation"] == "images" and row["images"] == 3
    assert row["model_served"] == "minimax/image-01"
    assert row["cost_usd"] == pytest.approx(0.0105)


def test_a_minimax_rate_limit_on_http_200_falls_back(client: openai.OpenAI) -> None:
    raw = client.images.with_raw_response.generate(model="minimax/limited", prompt="a cat")
    assert raw.headers["x-resolved-model"] == "openai/dall-e-3"
    assert raw.headers["x-cost-usd"] == "0.04000000"


def test_minimax_refusals_are_the_callers_400s(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as sensitive:
        client.images.generate(model="minimax/sensitive", prompt="a cat")
    assert "fake minimax failure" in sensitive.value.message
    with pytest.raises(openai.BadRequestError) as filtered:
        client.images.generate(model="minimax/filtered", prompt="a cat", n=2)
    assert "2 withheld" in filtered.value.message
    with pytest.raises(openai.BadRequestError) as too_many:
        client.images.generate(model="minimax/image-01", prompt="a cat", n=10)
    assert "at most 9" in too_many.value.message


def test_bad_input_through_the_sdk_is_a_400(client: openai.OpenAI) -> None:
    for fields in ({"n": 0}, {"size": "999x999"}, {"prompt": ""}, {"quality": "ultra"}):
        arguments = {"model": "dall-e-3", "prompt": "a cat", **fields}
        with pytest.raises(openai.BadRequestError) as refused:
            client.images.generate(**arguments)  # type: ignore[call-overload]
        assert refused.value.status_code == 400
    with pytest.raises(openai.BadRequestError) as wrong_mode:
        client.images.generate(model="fake/ok", prompt="a cat")
    assert "mode" in wrong_mode.value.message
