"""``POST /v1/images/generations`` in process (tests/seam.py): the mock's images, billing per
image (``X-Cost-USD``, the ledger row's operation and count), fallback within the images mode,
the mode refusals, and the bad-input matrix: a 400 naming the field, never a 5xx."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest

from adapters import canonical as c
from gateway.accounts.keys import Principal
from gateway.accounts.secretbox import SecretBox
from gateway.accounts.userstate import AccountCache
from gateway.admission import Admission, Limiter
from gateway.balances import LocalBalances
from gateway.config import parse_config
from gateway.errors import InsufficientBalance
from gateway.storage import AccountsStore, UserRecord, open_store
from routers.catalog import Model
from tests.prom import sample
from tests.seam import pipeline

pytestmark = pytest.mark.unit

EXTRA = """
[providers.m]
kind = "mock"

[[models]]
id = "m/image"
provider = "m"
upstream = "image"
aliases = ["painter"]
mode = "images"
price_per_image = 0.25

[[models]]
id = "m/image-fail"
provider = "m"
upstream = "fail"
mode = "images"
price_per_image = 0.5
fallbacks = ["m/image"]
"""

PATH = "/v1/images/generations"


async def test_images_as_base64_are_pngs_billed_per_image(tmp_path: Path) -> None:
    async with pipeline(tmp_path, EXTRA) as seam:
        answer = await seam.post(PATH, {"model": "painter", "prompt": "a lighthouse", "n": 3,
                                        "response_format": "b64_json"})
        assert answer.status_code == 200, answer.text
        data = answer.json()["data"]
        assert len(data) == 3
        assert all(base64.b64decode(d["b64_json"]).startswith(b"\x89PNG") for d in data)
        assert answer.headers["x-resolved-model"] == "m/image"
        assert answer.headers["x-cost-usd"] == "0.75000000"
        assert "x-ratelimit-limit-requests" in answer.headers or "x-tier" in answer.headers
        row = await seam.ledger_row(answer.headers["x-request-id"])
        assert (row["operation"], row["images"], row["model_served"]) == ("images", 3, "m/image")
        assert row["cost_usd"] == pytest.approx(0.75)
        text = (await seam.client.get("/metrics")).text
        assert sample(text, "gateway_requests_total", model="m/image", operation="images",
                      status="200", kind="complete") == 1


async def test_urls_by_default(tmp_path: Path) -> None:
    async with pipeline(tmp_path, EXTRA) as seam:
        answer = await seam.post(PATH, {"model": "m/image", "prompt": "a cat"})
        assert answer.status_code == 200
        [image] = answer.json()["data"]
        assert image["url"].startswith("data:image/png;base64,")


async def test_a_failing_image_model_falls_back_to_another(tmp_path: Path) -> None:
    async with pipeline(tmp_path, EXTRA) as seam:
        configured = await seam.post(PATH, {"model": "m/image-fail", "prompt": "a cat"})
        assert configured.status_code == 200
        assert configured.headers["x-fallback-level"] == "1"
        assert configured.headers["x-cost-usd"] == "0.25000000"  # the price of what served
        chain = await seam.post(PATH, {"model": "m/image-fail", "prompt": "a cat",
                                       "route": "fallback", "models": ["m/image-fail", "m/image"]})
        assert chain.status_code == 200 and chain.headers["x-resolved-model"] == "m/image"
        row = await seam.ledger_row(chain.headers["x-request-id"])
        assert (row["images"], row["model_served"]) == (1, "m/image")


async def test_models_of_other_modes_are_refused_naming_the_mode(tmp_path: Path) -> None:
    async with pipeline(tmp_path, EXTRA) as seam:
        chat_model = await seam.post(PATH, {"model": "scripted/main", "prompt": "a cat"})
        assert chat_model.status_code == 400
        assert '"chat"' in chat_model.json()["error"]["message"]
        image_model = await seam.post("/v1/chat/completions", {
            "model": "m/image", "messages": [{"role": "user", "content": "hi"}]})
        assert image_model.status_code == 400
        assert "POST /v1/images/generations" in image_model.json()["error"]["message"]
        chain = await seam.post(PATH, {"model": "m/image", "prompt": "a cat",
                                       "route": "fallback", "models": ["m/image", "echo"]})
        assert chain.status_code in (400, 404)
        assert seam.adapter.calls == []


BAD: list[tuple[Any, str | None]] = [
    ({"model": "m/image"}, "prompt"),
    ({"model": "m/image", "prompt": ""}, "prompt"),
    ({"model": "m/image", "prompt": 3}, "prompt"),
    ({"model": "m/image", "prompt": "x", "n": 0}, "n"),
    ({"model": "m/image", "prompt": "x", "n": 11}, "n"),
    ({"model": "m/image", "prompt": "x", "n": "two"}, "n"),
    ({"model": "m/image", "prompt": "x", "n": True}, "n"),
    ({"model": "m/image", "prompt": "x", "size": "huge"}, "size"),
    ({"model": "m/image", "prompt": "x", "size": ["1024x1024"]}, "size"),
    ({"model": "m/image", "prompt": "x", "quality": "best"}, "quality"),
    ({"model": "m/image", "prompt": "x", "response_format": "jpeg"}, "response_format"),
    ({"model": "m/image", "prompt": "x", "style": 1}, "style"),
    ({"model": "m/image", "prompt": "x", "user": {}}, "user"),
    ({"model": "m/image", "prompt": "x", "stream": True}, "stream"),
    ({"model": 5, "prompt": "x"}, "model"),
    ({"prompt": "x"}, "model"),
    (["m/image", "x"], None),
]


@pytest.mark.parametrize(("body", "param"), BAD)
async def test_bad_input_is_a_400_naming_the_field(
    tmp_path: Path, body: Any, param: str | None
) -> None:
    async with pipeline(tmp_path, EXTRA) as seam:
        answer = await seam.post(PATH, body)
        assert answer.status_code == 400, answer.text
        error = answer.json()["error"]
        assert error["message"] and error["param"] == param
        assert answer.headers["x-request-id"]


async def test_not_json_and_unknown_models(tmp_path: Path) -> None:
    async with pipeline(tmp_path, EXTRA) as seam:
        headers = {"authorization": f"Bearer {seam.key}"}
        broken = await seam.client.post(PATH, content=b"{not json", headers=headers)
        assert broken.status_code == 400
        unknown = await seam.post(PATH, {"model": "nope/none", "prompt": "x"})
        assert unknown.status_code == 404
        anonymous = await seam.client.post(PATH, json={"model": "m/image", "prompt": "x"})
        assert anonymous.status_code == 401
        assert anonymous.json()["error"]["type"] == "authentication_error"


async def test_a_prepaid_balance_must_cover_every_image_asked() -> None:
    store = await open_store("sqlite:///:memory:")
    try:
        tiers = parse_config("[tiers.free]\n[tiers.pro]\nprepaid = true\n")
        cache = AccountCache(AccountsStore(store.db), tiers, SecretBox(""), LocalBalances())
        admission = Admission(cache, Limiter("memory://"), 4)
        await cache.store.insert_user(UserRecord(email="p@example.com", id="u1",
                                                 password_hash="x", tier="pro", balance_usd=1.0,
                                                 created_at=0.0))
        painter = Model(id="i", provider="p", upstream="i", mode="images", price_per_image=0.25)
        buyer = Principal(key_id="k", user="p@example.com", tier="pro")
        ticket = await admission.admit(buyer, painter, 40, 0, c.Usage(images=3))
        assert ticket.estimate_usd == pytest.approx(0.75)
        with pytest.raises(InsufficientBalance):  # $0.25 left, two images asked
            await admission.admit(buyer, painter, 40, 0, c.Usage(images=2))
        await admission.admit(buyer, painter, 40, 0, c.Usage(images=1))
    finally:
        await store.close()
