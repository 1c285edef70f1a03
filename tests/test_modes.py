"""Model modes: each endpoint serves only the models of its mode, routing stays within the
mode, prices per mode go through the one ``price``, and ledger rows and metrics name the
operation (in process, through tests/seam.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters import canonical as c
from gateway.config import ConfigError, ModelConfig, has_price, parse_config, unpriced_models
from gateway.pipeline.settle import price
from routers.catalog import Model
from tests.prom import sample
from tests.seam import pipeline

pytestmark = pytest.mark.unit

EXTRA = """
[providers.m]
kind = "mock"

[[models]]
id = "m/embed"
provider = "m"
upstream = "embed"
mode = "embeddings"
input_price = 0.5

[[models]]
id = "m/embed-fail"
provider = "m"
upstream = "fail"
mode = "embeddings"
input_price = 0.5
fallbacks = ["m/embed"]

[routers.embedders]
kind = "fallback"
models = ["m/embed-fail", "m/embed"]
"""

HELLO = [{"role": "user", "content": "hi"}]


async def test_a_chat_model_at_embeddings_gets_a_400_naming_its_mode(tmp_path: Path) -> None:
    async with pipeline(tmp_path, EXTRA) as seam:
        answer = await seam.post("/v1/embeddings", {"model": "scripted/main", "input": "hi"})
        assert answer.status_code == 400
        error = answer.json()["error"]
        assert error["code"] == "model_mode_mismatch" and error["param"] == "model"
        assert '"chat"' in error["message"] and "/v1/chat/completions" in error["message"]
        assert seam.adapter.calls == []


async def test_an_embeddings_model_at_chat_and_messages_gets_a_400(tmp_path: Path) -> None:
    async with pipeline(tmp_path, EXTRA) as seam:
        chat = await seam.post("/v1/chat/completions", {"model": "m/embed", "messages": HELLO})
        assert chat.status_code == 400
        assert "POST /v1/embeddings" in chat.json()["error"]["message"]
        messages = await seam.post(
            "/v1/messages", {"model": "m/embed", "max_tokens": 5, "messages": HELLO}
        )
        assert messages.status_code == 400
        body = messages.json()
        assert body["type"] == "error" and '"embeddings"' in body["error"]["message"]
        responses = await seam.post("/v1/responses", {"model": "m/embed", "input": "hi"})
        assert responses.status_code == 400


async def test_fallbacks_chains_and_routers_stay_within_the_mode(tmp_path: Path) -> None:
    async with pipeline(tmp_path, EXTRA) as seam:
        configured = await seam.post("/v1/embeddings", {"model": "m/embed-fail", "input": "x"})
        assert configured.status_code == 200
        assert configured.headers["x-resolved-model"] == "m/embed"
        assert configured.headers["x-fallback-level"] == "1"
        routed = await seam.post("/v1/embeddings", {"model": "embedders", "input": "x"})
        assert routed.status_code == 200 and routed.headers["x-router"] == "embedders"
        chain = await seam.post("/v1/embeddings", {
            "model": "m/embed-fail", "input": "x", "models": ["m/embed-fail", "scripted/main"],
        })
        assert chain.status_code == 400
        assert chain.json()["error"]["param"] == "models[1]"
        router_at_chat = await seam.post(
            "/v1/chat/completions", {"model": "embedders", "messages": HELLO}
        )
        assert router_at_chat.status_code == 400


async def test_models_list_shows_each_mode(tmp_path: Path) -> None:
    async with pipeline(tmp_path, EXTRA) as seam:
        listing = await seam.client.get(
            "/v1/models", headers={"authorization": f"Bearer {seam.key}"}
        )
        modes = {m["id"]: m.get("mode") for m in listing.json()["data"]}
        assert modes["m/embed"] == "embeddings" and modes["scripted/main"] == "chat"


async def test_a_non_chat_call_is_billed_recorded_and_counted_as_its_operation(
    tmp_path: Path,
) -> None:
    async with pipeline(tmp_path, EXTRA) as seam:
        answer = await seam.post("/v1/embeddings", {"model": "m/embed", "input": "x" * 400})
        assert answer.status_code == 200
        tokens = answer.json()["usage"]["prompt_tokens"]
        assert tokens == 100  # the mock's count: a token per four characters
        assert float(answer.headers["x-cost-usd"]) == pytest.approx(100 * 0.5 / 1e6)
        assert answer.headers["x-ratelimit-limit"] and answer.headers["x-tier"] is not None
        row = await seam.ledger_row(answer.headers["x-request-id"])
        assert row["operation"] == "embeddings" and row["prompt_tokens"] == 100
        assert row["cost_usd"] == pytest.approx(100 * 0.5 / 1e6)
        chat = await seam.chat()
        assert (await seam.ledger_row(chat.headers["x-request-id"]))["operation"] == "chat"
        text = (await seam.client.get("/metrics")).text
        assert sample(text, "gateway_requests_total", model="m/embed", operation="embeddings",
                      status="200", kind="complete") == 1


def test_one_price_prices_every_mode() -> None:
    image = Model(id="i", provider="p", upstream="i", mode="images", price_per_image=0.04)
    assert price(image, c.Usage(images=3)) == pytest.approx(0.12)
    video = Model(id="v", provider="p", upstream="v", mode="video", price_per_second=0.1,
                  price_per_video=0.5)
    assert price(video, c.Usage(videos=1, video_seconds=6.0)) == pytest.approx(1.1)
    embed = Model(id="e", provider="p", upstream="e", mode="embeddings", input_price=0.02)
    assert price(embed, c.Usage(input_tokens=1_000_000)) == pytest.approx(0.02)
    free = Model(id="f", provider="p", upstream="f", mode="images", price_per_image=1.0,
                 free=True)
    assert price(free, c.Usage(images=5)) == 0.0


BASE = """
[providers.o]
kind = "openai"
base_url = "http://127.0.0.1:9/v1"
default_input_price = 1.0
default_output_price = 2.0

[providers.a]
kind = "anthropic"
base_url = "http://127.0.0.1:9"
"""


def _config(models: str) -> None:
    parse_config(BASE + models)


@pytest.mark.parametrize(("model", "key"), [
    ('id = "x"\nprovider = "o"\nprice_per_image = 0.1', "models[0].price_per_image"),
    ('id = "x"\nprovider = "o"\nmode = "embeddings"\noutput_price = 1.0',
     "models[0].output_price"),
    ('id = "x"\nprovider = "o"\nmode = "video"\ninput_price = 1.0', "models[0].input_price"),
    ('id = "x"\nprovider = "a"\nmode = "embeddings"', "models[0].mode"),
    ('id = "x"\nprovider = "o"\nmode = "sound"', "models[0].mode"),
])
def test_the_config_refuses_prices_and_providers_foreign_to_a_mode(model: str, key: str) -> None:
    with pytest.raises(ConfigError, match=key.replace("[", r"\[").replace("]", r"\]")):
        _config(f"[[models]]\n{model}\n")


def test_the_config_refuses_fallbacks_routers_and_personas_across_modes() -> None:
    models = """
[[models]]
id = "chat"
provider = "o"

[[models]]
id = "embed"
provider = "o"
mode = "embeddings"
"""
    with pytest.raises(ConfigError, match=r"models\[1\]\.fallbacks\[0\]: 'chat' is a chat"):
        _config(models.replace('mode = "embeddings"', 'mode = "embeddings"\nfallbacks = ["chat"]'))
    with pytest.raises(ConfigError, match=r"routers\.mixed\.models\[1\]"):
        _config(models + '[routers.mixed]\nkind = "fallback"\nmodels = ["chat", "embed"]\n')
    with pytest.raises(ConfigError, match=r"personas\.p\.target"):
        _config(models + '[personas.p]\ntarget = "embed"\n')


def test_provider_token_defaults_do_not_price_images_or_video() -> None:
    config = parse_config(BASE + """
[[models]]
id = "embed"
provider = "o"
mode = "embeddings"
""")
    assert unpriced_models(config) == []  # the provider's defaults price embeddings
    assert not has_price(config, ModelConfig(id="paint", provider="o", mode="images"))
    assert has_price(config, ModelConfig(id="paint", provider="o", mode="images",
                                         price_per_image=0.04))
    assert not has_price(config, ModelConfig(id="film", provider="o", mode="video"))
    assert has_price(config, ModelConfig(id="film", provider="o", mode="video",
                                         price_per_second=0.1))
