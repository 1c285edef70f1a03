"""The fake upstream's image endpoints (OpenAI and MiniMax), which the images tests stand on."""

from __future__ import annotations

import httpx2 as httpx
import pytest

from bench.fake_upstream import FakeUpstream, fake_png

pytestmark = pytest.mark.e2e


def test_openai_images_by_url_and_the_files_they_name(fake: FakeUpstream) -> None:
    answer = httpx.post(f"{fake.url}/images/generations",
                        json={"model": "dall-e-3", "prompt": "a cat", "n": 2}).json()
    urls = [item["url"] for item in answer["data"]]
    assert urls == [f"{fake.origin}/files/0.png", f"{fake.origin}/files/1.png"]
    image = httpx.get(urls[1])
    assert image.headers["content-type"] == "image/png" and image.content == fake_png(1)
    assert fake.hits["dall-e-3"] == 1
    refused = httpx.post(f"{fake.url}/images/generations",
                         json={"model": "gpt-image-1", "prompt": "x", "response_format": "url"})
    assert refused.status_code == 400
    assert httpx.post(f"{fake.url}/images/generations",
                      json={"model": "error-429", "prompt": "x"}).status_code == 429


def test_minimax_images_report_failures_in_base_resp(fake: FakeUpstream) -> None:
    url = f"{fake.origin}/v1/image_generation"
    bearer = {"Authorization": "Bearer k"}
    unsigned = httpx.post(url, json={"model": "image-01", "prompt": "x"}).json()
    assert unsigned["base_resp"]["status_code"] == 1004
    failed = httpx.post(url, json={"model": "image-01-error-1026", "prompt": "x"},
                        headers=bearer)
    assert failed.status_code == 200 and failed.json()["base_resp"]["status_code"] == 1026
    made = httpx.post(url, json={"model": "image-01", "prompt": "x", "n": 2,
                                 "response_format": "base64"}, headers=bearer).json()
    assert len(made["data"]["image_base64"]) == 2 and made["metadata"]["success_count"] == "2"
    withheld = httpx.post(url, json={"model": "image-01-filtered", "prompt": "x", "n": 3},
                          headers=bearer).json()
    assert withheld["metadata"] == {"success_count": "0", "failed_count": "3"}
