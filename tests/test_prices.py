"""Prices through the real server: unpriced models are refused on the operator's key, provider
default prices apply to unlisted names, and free models cost nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import pytest

from bench.fake_upstream import FakeUpstream
from tests.conftest import GatewayProcess


def config(tmp: Path, url: str) -> str:
    return f"""
[storage]
url = "sqlite:///{tmp}/gateway.db"
ledger_flush_interval = 0.1

[providers.mock]
kind = "mock"

[providers.open]
kind = "openai"
base_url = "{url}"
api_key = "sk-operator"
allow_any_model = true

[providers.priced]
kind = "openai"
base_url = "{url}"
api_key = "sk-operator"
allow_any_model = true
default_input_price = 1.0
default_output_price = 2.0

[[models]]
id = "mock/lorem"
provider = "mock"
upstream = "lorem"
input_price = 0.10
output_price = 0.40
free = true

[[models]]
id = "open/listed"
provider = "open"
upstream = "ok"

[tiers.free]
requests_per_minute = 1000
"""


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory, upstream: FakeUpstream
            ) -> Iterator[GatewayProcess]:
    tmp = tmp_path_factory.mktemp("prices")
    process = GatewayProcess(tmp, config(tmp, upstream.url)).start()
    yield process
    process.stop()


def chat(gateway: GatewayProcess, model: str) -> httpx.Response:
    return httpx.post(
        f"{gateway.url}/v1/chat/completions", headers=gateway.headers(), timeout=10,
        json={"model": model, "max_tokens": 20,
              "messages": [{"role": "user", "content": "price me"}]},
    )


@pytest.mark.parametrize(("model", "provider"), [("open/o1-pro", "open"),
                                                 ("open/listed", "open")])
def test_unpriced_models_are_refused_on_the_operators_key(
    gateway: GatewayProcess, fake: FakeUpstream, model: str, provider: str
) -> None:
    refused = chat(gateway, model)
    assert refused.status_code == 403
    message = refused.json()["error"]["message"]
    assert "has no price" in message and f"[providers.{provider}]" in message
    assert "default_input_price" in message and "input_price" in message
    assert fake.requests == []  # nothing was sent upstream


def test_provider_default_prices_apply_to_unlisted_names(
    gateway: GatewayProcess, fake: FakeUpstream
) -> None:
    served = chat(gateway, "priced/o1-pro")
    assert served.status_code == 200, served.text
    usage = served.json()["usage"]
    expected = (usage["prompt_tokens"] * 1.0 + usage["completion_tokens"] * 2.0) / 1_000_000
    assert float(served.headers["x-cost-usd"]) == pytest.approx(expected, abs=1e-8)
    assert expected > 0


def test_free_models_cost_nothing_whatever_their_prices(gateway: GatewayProcess) -> None:
    served = chat(gateway, "mock/lorem")
    assert served.status_code == 200
    assert served.json()["usage"]["completion_tokens"] > 0
    assert float(served.headers["x-cost-usd"]) == 0
