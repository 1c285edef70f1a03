"""``POST /v1/responses`` end to end through the official ``openai`` SDK against the real server:
``responses.create`` plain and streamed, a tool loop and ``responses.stream()``, translated for
fake OpenAI (chat completions), Anthropic and Gemini upstreams, and passed through unchanged to
a fake Responses API upstream (``responses_api = true``)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from bench.fake_upstream import FakeUpstream, Recorded
from tests.conftest import DIALECT_PROVIDERS, GatewayProcess, fake_config

TRANSLATED = ["fake", "fakeanthropic", "fakegemini"]
TOOLS: list[Any] = [
    {"type": "function", "name": "get_weather",
     "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}},
    {"type": "function", "name": "get_time",
     "parameters": {"type": "object", "properties": {"tz": {"type": "string"}}}},
]
RESPONSES_PROVIDER = """
[providers.fakeresponses]
kind = "openai"
base_url = "{url}"
api_key = "sk-fake-responses-secret"
responses_api = true
allow_any_model = true
default_input_price = 0.0
default_output_price = 0.0
"""
@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory,
            upstream: FakeUpstream) -> Iterator[GatewayProcess]:
    tmp = tmp_path_factory.mktemp("responses-gateway")
    extra = (DIALECT_PROVIDERS.format(origin=upstream.origin)
             + RESPONSES_PROVIDER.format(url=upstream.url))
    process = GatewayProcess(tmp, fake_config(tmp, upstream.url, extra=extra)).start()
    yield process
    process.stop()


@pytest.fixture
def client(gateway: GatewayProcess) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=gateway.key, max_retries=0)


def _sent_system(record: Recorded) -> Any:
    body = record.body
    if "messages" in body and record.path.endswith("/chat/completions"):
        return body["messages"][0]
    return body.get("system") or body.get("systemInstruction")


@pytest.mark.parametrize("provider", TRANSLATED)
def test_create(client: openai.OpenAI, fake: FakeUpstream, provider: str) -> None:
    answer = client.responses.create(model=f"{provider}/ok", input="hello there",
                                     instructions="be brief", max_output_tokens=50)
    assert answer.output_text == "fake: hello there"
    assert answer.status == "completed" and answer.model == f"{provider}/ok"
    assert answer.id.startswith("resp_")
    assert answer.usage is not None and answer.usage.total_tokens > 0
    assert answer.usage.input_tokens_details.cached_tokens > 0
    sent = fake.requests[-1]
    assert _sent_system(sent) in (
        {"role": "system", "content": "be brief"},
        [{"type": "text", "text": "be brief"}],
        {"parts": [{"text": "be brief"}]},
    )


@pytest.mark.parametrize("provider", TRANSLATED)
def test_create_streamed(client: openai.OpenAI, fake: FakeUpstream, provider: str) -> None:
    events = list(client.responses.create(model=f"{provider}/ok", input="hello there",
                                          stream=True))
    kinds = [event.type for event in events]
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[-1] == "response.completed"
    assert kinds.index("response.output_item.added") < kinds.index("response.content_part.added")
    assert [event.sequence_number for event in events] == list(range(len(events)))
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == "fake: hello there"
    final = events[-1]
    assert final.type == "response.completed"
    assert final.response.output_text == text and final.response.model == f"{provider}/ok"
    assert final.response.usage is not None and final.response.usage.output_tokens > 0


@pytest.mark.parametrize("provider", TRANSLATED)
def test_stream_helper(client: openai.OpenAI, fake: FakeUpstream, provider: str) -> None:
    with client.responses.stream(model=f"{provider}/ok", input="stream me") as stream:
        deltas = [event.delta for event in stream if event.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert "".join(deltas) == final.output_text == "fake: stream me"


@pytest.mark.parametrize("provider", TRANSLATED)
@pytest.mark.parametrize("streamed", [False, True])
def test_tool_loop(client: openai.OpenAI, fake: FakeUpstream, provider: str,
                   streamed: bool) -> None:
    conversation: list[Any] = [{"role": "user", "content": "Weather and time in Paris?"}]
    if streamed:
        with client.responses.stream(model=f"{provider}/tools", input=conversation,
                                     tools=TOOLS) as stream:
            first = stream.get_final_response()
    else:
        first = client.responses.create(model=f"{provider}/tools", input=conversation,
                                        tools=TOOLS)
    calls = [item for item in first.output if item.type == "function_call"]
    assert [(call.name, json.loads(call.arguments)) for call in calls] == [
        ("get_weather", {"city": "Paris"}), ("get_time", {"tz": "CET"})]
    conversation += first.output
    conversation += [{"type": "function_call_output", "call_id": call.call_id,
                      "output": f"result of {call.name}"} for call in calls]
    second = client.responses.create(model=f"{provider}/tools", input=conversation, tools=TOOLS)
    assert second.output_text.startswith("results: ")
    assert "result of get_weather" in second.output_text
    assert "result of get_time" in second.output_text


def test_reasoning_becomes_a_reasoning_item(client: openai.OpenAI,
                                            fake: FakeUpstream) -> None:
    answer = client.responses.create(model="fakeanthropic/thinking", input="think",
                                     reasoning={"effort": "low"})
    kinds = [item.type for item in answer.output]
    assert kinds[0] == "reasoning" and "message" in kinds
    reasoning = answer.output[0]
    assert reasoning.type == "reasoning" and reasoning.summary and reasoning.summary[0].text
    events = list(client.responses.create(model="fake/reasoning", input="think", stream=True))
    summary = "".join(e.delta for e in events
                      if e.type == "response.reasoning_summary_text.delta")
    assert summary == "thinking it over"


@pytest.mark.parametrize("streamed", [False, True])
def test_passthrough_to_a_responses_upstream(client: openai.OpenAI, fake: FakeUpstream,
                                              streamed: bool) -> None:
    if streamed:
        with client.responses.stream(model="fakeresponses/gpt-x", input="as is",
                                     store=False) as stream:
            answer = stream.get_final_response()
    else:
        answer = client.responses.create(model="fakeresponses/gpt-x", input="as is",
                                         store=False)
    assert answer.output_text == "fake responses: as is"
    assert answer.model == "fakeresponses/gpt-x"
    sent = fake.requests[-1]
    assert sent.path == "/v1/responses"
    assert sent.body["model"] == "gpt-x" and sent.body["store"] is False
    assert "stream_options" not in sent.body
    assert sent.headers["Authorization"] == "Bearer sk-fake-responses-secret"


def test_builtin_tool_is_a_400(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model="fake/ok", input="hi",
                                tools=[{"type": "web_search_preview"}])
    assert "web_search_preview" in str(caught.value)


def test_upstream_error_before_output(client: openai.OpenAI) -> None:
    with pytest.raises(openai.APIStatusError) as caught:
        client.responses.create(model="fakeanthropic/error-400", input="hi")
    assert caught.value.status_code == 400


def test_failure_after_commit_ends_with_error_then_response_failed(
        client: openai.OpenAI, fake: FakeUpstream) -> None:
    events = list(client.responses.create(model="fakeanthropic/overloaded", input="hi",
                                          stream=True))
    kinds = [event.type for event in events]
    assert "response.output_text.delta" in kinds and "response.completed" not in kinds
    assert kinds[-2:] == ["error", "response.failed"]
    assert [event.sequence_number for event in events] == list(range(len(events)))
    error, failed = events[-2:]
    assert error.type == "error" and error.message
    assert failed.type == "response.failed"
    assert failed.response.id == events[0].response.id  # type: ignore[union-attr]
    assert failed.response.status == "failed"
    assert failed.response.error is not None and failed.response.error.message == error.message
    partial = failed.response.output[0]
    assert partial.type == "message" and partial.content[0].text  # type: ignore[union-attr]


def test_stream_helper_ends_cleanly_on_a_failure_after_commit(
        client: openai.OpenAI, fake: FakeUpstream) -> None:
    with client.responses.stream(model="fakeanthropic/overloaded", input="hi") as stream:
        kinds = [event.type for event in stream]
        assert kinds[-1] == "response.failed"
        with pytest.raises(RuntimeError, match=r"response\.completed"):
            stream.get_final_response()


@pytest.mark.parametrize("provider", [*TRANSLATED, "fakeresponses"])
@pytest.mark.parametrize("streamed", [False, True])
def test_multi_turn_by_previous_response_id(client: openai.OpenAI, fake: FakeUpstream,
                                            provider: str, streamed: bool) -> None:
    model = f"{provider}/{'gpt-x' if provider == 'fakeresponses' else 'ok'}"
    first = client.responses.create(model=model, instructions="be brief", input="my name is Ann")
    if streamed:
        with client.responses.stream(model=model, input="what is my name?",
                                     previous_response_id=first.id) as stream:
            second = stream.get_final_response()
    else:
        second = client.responses.create(model=model, input="what is my name?",
                                         previous_response_id=first.id)
    assert second.status == "completed"
    if provider != "fakeresponses":  # the fake Responses upstream gives every answer one id
        assert second.id != first.id
    sent = fake.requests[-1]
    assert "previous_response_id" not in sent.body  # the gateway's id, never sent upstream
    conversation = json.dumps(sent.body)
    assert "my name is Ann" in conversation and first.output_text in conversation
    assert "what is my name?" in conversation
    assert "be brief" not in conversation  # the first request's instructions stay behind
    assert client.responses.retrieve(second.id).output_text == second.output_text
    items = client.responses.input_items.list(second.id, order="asc")
    assert [item.type for item in items.data] == ["message", "message", "message"]


def test_retrieve_delete_and_another_accounts_404(client: openai.OpenAI,
                                                  gateway: GatewayProcess,
                                                  fake: FakeUpstream) -> None:
    answer = client.responses.create(model="fakegemini/ok", input="keep me")
    assert client.responses.retrieve(answer.id).output_text == "fake: keep me"
    other = openai.OpenAI(base_url=f"{gateway.url}/v1", max_retries=0,
                          api_key=gateway.create_key("--user", "eve@example.com"))
    with pytest.raises(openai.NotFoundError) as caught:
        other.responses.retrieve(answer.id)
    assert caught.value.body["type"] == "invalid_request_error"  # type: ignore[index]
    with pytest.raises(openai.NotFoundError) as caught:
        other.responses.create(model="fake/ok", input="hi", previous_response_id=answer.id)
    assert caught.value.body["param"] == "previous_response_id"  # type: ignore[index]
    client.responses.delete(answer.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(answer.id)


def test_store_false_keeps_nothing(client: openai.OpenAI, fake: FakeUpstream) -> None:
    answer = client.responses.create(model="fake/ok", input="forget me", store=False)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(answer.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.create(model="fake/ok", input="hi", previous_response_id=answer.id)
