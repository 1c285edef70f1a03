"""Costs equal hand-computed values in both dialects, streamed and not, whichever upstream serves.

The OpenAI fake reports 10 prompt tokens (4 of them cached) and one completion token per word.
The Anthropic fake reports 10 input, 20 cache-read and 5 cache-write tokens (35 in all, as the
gateway counts input) and one output token per word.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import anthropic
import openai
import pytest

from bench.fake_upstream import FakeUpstream
from tests.conftest import DIALECT_PROVIDERS, GatewayProcess, fake_config

pytestmark = pytest.mark.e2e

PRICED = """
[[models]]
id = "priced/openai"
provider = "fake"
upstream = "ok"
input_price = 1.0
output_price = 2.0
cached_input_price = 0.5

[[models]]
id = "priced/anthropic"
provider = "fakeanthropic"
upstream = "ok"
input_price = 3.0
output_price = 15.0
cached_input_price = 0.3
"""
# "fake: hello there" is three words, so three completion tokens.
OPENAI_UPSTREAM_COST = (6 * 1.0 + 4 * 0.5 + 3 * 2.0) / 1e6
ANTHROPIC_UPSTREAM_COST = (15 * 3.0 + 20 * 0.3 + 3 * 15.0) / 1e6


@pytest.fixture(scope="module")
def priced(
    tmp_path_factory: pytest.TempPathFactory,
    upstream: FakeUpstream,
) -> Iterator[GatewayProcess]:
    tmp = tmp_path_factory.mktemp("priced")
    extra = DIALECT_PROVIDERS.format(origin=upstream.origin) + PRICED
    process = GatewayProcess(tmp, fake_config(tmp, upstream.url, extra=extra)).start()
    yield process
    process.stop()


def ledger_cost(gateway: GatewayProcess, request_id: str) -> float:
    for _ in range(100):
        rows = [r for r in gateway.usage_rows() if r["request_id"] == request_id]
        if rows:
            return float(rows[0]["cost_usd"])  # type: ignore[arg-type]
        time.sleep(0.05)
    raise AssertionError(f"no ledger row for {request_id}")


CASES = [
    ("priced/openai", OPENAI_UPSTREAM_COST),
    ("priced/anthropic", ANTHROPIC_UPSTREAM_COST),
]


@pytest.mark.parametrize(("model", "expected"), CASES)
@pytest.mark.parametrize("stream", [False, True])
def test_anthropic_client_cost(
    priced: GatewayProcess, model: str, expected: float, stream: bool
) -> None:
    client = anthropic.Anthropic(
        base_url=f"{priced.url}/anthropic", api_key=priced.key, max_retries=0
    )
    request_id = f"anthropic-{model}-{stream}"
    kwargs = {
        "model": model,
        "max_tokens": 100,
        "messages": [{"role": "user", "content": "hello there"}],
        "extra_headers": {"x-request-id": request_id},
    }
    if stream:
        with client.messages.stream(**kwargs) as events:  # type: ignore[arg-type]
            message = events.get_final_message()
    else:
        message = client.messages.create(**kwargs)  # type: ignore[arg-type]
    assert message.content[0].text == "fake: hello there"  # type: ignore[union-attr]
    assert ledger_cost(priced, request_id) == pytest.approx(expected)


@pytest.mark.parametrize(("model", "expected"), CASES)
@pytest.mark.parametrize("stream", [False, True])
def test_openai_client_cost(
    priced: GatewayProcess, model: str, expected: float, stream: bool
) -> None:
    client = openai.OpenAI(base_url=f"{priced.url}/v1", api_key=priced.key, max_retries=0)
    request_id = f"openai-{model}-{stream}"
    messages = [{"role": "user", "content": "hello there"}]
    headers = {"x-request-id": request_id}
    if stream:
        chunks = client.chat.completions.create(
            model=model,
            messages=messages,
            stream=True,
            extra_headers=headers,  # type: ignore[arg-type]
        )
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    else:
        answer = client.chat.completions.create(
            model=model,
            messages=messages,
            extra_headers=headers,  # type: ignore[arg-type]
        )
        text = answer.choices[0].message.content or ""
    assert text == "fake: hello there"
    assert ledger_cost(priced, request_id) == pytest.approx(expected)
