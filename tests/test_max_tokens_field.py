"""A translated request puts its output cap where the provider wants it."""

from __future__ import annotations

from collections.abc import Iterator

import anthropic
import msgspec
import pytest

from adapters import canonical as c
from adapters.openai.upstream import canonical_to_openai_request
from bench.fake_upstream import FakeUpstream
from tests.conftest import GatewayProcess, fake_config

pytestmark = pytest.mark.e2e

REASONING_PROVIDER = """
[providers.reasoner]
kind = "openai"
base_url = "{url}"
api_key = "sk-reasoner"
allow_any_model = true
default_input_price = 0.0
default_output_price = 0.0
max_tokens_field = "max_completion_tokens"
"""


def test_the_cap_goes_in_the_configured_field() -> None:
    request = c.Request(
        model="m",
        messages=[c.Message(role="user", content=[c.TextBlock(text="hi")])],
        max_tokens=77,
    )
    assert msgspec.to_builtins(canonical_to_openai_request(request, "m"))["max_tokens"] == 77
    modern = msgspec.to_builtins(canonical_to_openai_request(request, "m", "max_completion_tokens"))
    assert modern["max_completion_tokens"] == 77 and "max_tokens" not in modern


@pytest.fixture(scope="module")
def reasoner(
    tmp_path_factory: pytest.TempPathFactory, upstream: FakeUpstream
) -> Iterator[GatewayProcess]:
    tmp = tmp_path_factory.mktemp("reasoner")
    extra = REASONING_PROVIDER.format(url=upstream.url)
    process = GatewayProcess(tmp, fake_config(tmp, upstream.url, extra=extra)).start()
    yield process
    process.stop()


def test_claude_code_style_request_reaches_a_reasoning_model_with_max_completion_tokens(
    reasoner: GatewayProcess, fake: FakeUpstream
) -> None:
    client = anthropic.Anthropic(
        base_url=f"{reasoner.url}/anthropic", api_key=reasoner.key, max_retries=0
    )
    message = client.messages.create(
        model="reasoner/ok", max_tokens=321, messages=[{"role": "user", "content": "hello"}]
    )
    assert message.content[0].text == "fake: hello"  # type: ignore[union-attr]
    sent = fake.bodies()[0]
    assert sent["max_completion_tokens"] == 321 and "max_tokens" not in sent
    client.messages.create(
        model="fake/ok", max_tokens=123, messages=[{"role": "user", "content": "x"}]
    )
    assert fake.bodies()[1]["max_tokens"] == 123
