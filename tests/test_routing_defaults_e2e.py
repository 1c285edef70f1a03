"""The embedded default config with no provider keys: personas and routers land on the mock."""

from __future__ import annotations

from collections.abc import Iterator

import httpx2 as httpx
import openai
import pytest

from gateway.config import DEFAULT_CONFIG_PATH
from tests.conftest import GatewayProcess

pytestmark = pytest.mark.e2e

PERSONAS = ["clear-talking", "clear-coding", "clear-thinking", "clear-researching", "clear-funny"]


@pytest.fixture(scope="module")
def default_gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    tmp = tmp_path_factory.mktemp("defaults")
    text = DEFAULT_CONFIG_PATH.read_text().replace(
        'url = "sqlite:///data/gateway.db"', f'url = "sqlite:///{tmp}/gateway.db"'
    )
    process = GatewayProcess(tmp, text)
    for name in list(process.env):
        if name.endswith("_API_KEY"):
            del process.env[name]  # no test may reach a real provider
    process.start()
    yield process
    process.stop()


def test_personas_answer_with_their_token_limits(default_gw: GatewayProcess) -> None:
    client = openai.OpenAI(base_url=f"{default_gw.url}/v1", api_key=default_gw.key, max_retries=0)
    listed = {m.id for m in client.models.list()}
    assert set(PERSONAS) <= listed and {"auto", "free", "ocr"} <= listed
    answer = client.chat.completions.with_raw_response.create(
        model="clear-talking", messages=[{"role": "user", "content": "Hello! Who are you?"}]
    )
    assert answer.headers["x-persona"] == "clear-talking"
    assert answer.headers["x-router"] == "auto"
    # mock/lorem writes max_tokens words: the persona's default of 1000.
    completion = answer.parse()
    assert completion.model == "mock/lorem"
    assert completion.usage is not None and completion.usage.completion_tokens == 1000
    capped = client.chat.completions.create(
        model="clear-thinking", messages=[{"role": "user", "content": "why?"}], max_tokens=9000
    )
    assert capped.usage is not None and capped.usage.completion_tokens == 4000


def test_router_names_with_and_without_prefix(default_gw: GatewayProcess) -> None:
    for name in ("free", "router/free", "auto", "router/auto"):
        response = httpx.post(
            f"{default_gw.url}/v1/chat/completions",
            headers=default_gw.headers(),
            json={"model": name, "messages": [{"role": "user", "content": "hi"}]},
        )
        assert response.status_code == 200, response.text
        assert response.headers["x-router"] == name.removeprefix("router/")
        assert response.headers["x-resolved-model"].startswith("mock/")


def test_models_whose_provider_is_off_are_skipped_in_chains_and_named_alone(
    default_gw: GatewayProcess,
) -> None:
    chain = {
        "model": "anthropic/claude-sonnet-4.5",
        "route": "fallback",
        "models": ["anthropic/claude-sonnet-4.5", "openai/gpt-4o", "mock/lorem"],
        "max_tokens": 3,
        "messages": [{"role": "user", "content": "hi"}],
    }
    url = f"{default_gw.url}/v1/chat/completions"
    served = httpx.post(url, headers=default_gw.headers(), json=chain)
    assert served.status_code == 200, served.text
    assert served.headers["x-resolved-model"] == "mock/lorem"

    alone = httpx.post(
        url, headers=default_gw.headers(), json={**chain, "route": None, "models": None}
    )
    assert alone.status_code == 503
    assert "ANTHROPIC_API_KEY is not set" in alone.json()["error"]["message"]
    any_model = {**chain, "model": "openai/o3-pro", "route": None, "models": None}
    unlisted = httpx.post(url, headers=default_gw.headers(), json=any_model)
    assert unlisted.status_code == 503 and "OPENAI_API_KEY" in unlisted.json()["error"]["message"]

    only_off = {**chain, "models": ["anthropic/claude-sonnet-4.5", "openai/gpt-4o"]}
    refused = httpx.post(url, headers=default_gw.headers(), json=only_off)
    assert refused.status_code == 503
    assert "No model of the chain is available" in refused.json()["error"]["message"]
    typo = httpx.post(url, headers=default_gw.headers(), json={**chain, "models": ["mock/lorme"]})
    assert typo.status_code == 404
