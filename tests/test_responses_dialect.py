"""The Responses API dialect's client side, beyond the golden cases: what it refuses (each a
400 naming the field, never a 500), pass-through inspection of a Responses upstream's stream,
the persona overlay on a pass-through body, and the texts counted when usage is missing."""

from __future__ import annotations

import json
from typing import Any

import pytest

from adapters import canonical as c
from adapters.errors import InvalidRequest, ProviderHTTPError
from adapters.overlay import Overlay
from adapters.registry import ingress
from adapters.responses.client import overlay_responses_body
from gateway.errors import BadRequest

RESPONSES = ingress("responses")


def refused(body: dict[str, Any] | bytes) -> InvalidRequest:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    with pytest.raises(InvalidRequest) as caught:
        RESPONSES.to_canonical(RESPONSES.parse(raw))
    return caught.value


@pytest.mark.parametrize(
    ("body", "param", "words"),
    [
        (b"", None, "empty"),
        (b"[1]", None, "JSON object"),
        ({"input": "hi"}, "model", "model"),
        ({"model": "", "input": "hi"}, "model", "empty"),
        ({"model": "m"}, "input", "missing"),
        ({"model": "m", "input": 5}, "input", "input"),
        ({"model": "m", "input": "hi", "temperature": 3}, "temperature", "temperature"),
        ({"model": "m", "input": "hi", "max_output_tokens": 0}, "max_output_tokens", ">= 1"),
        ({"model": "m", "input": "hi", "tools": [{"type": "web_search_preview"}]},
         "tools[0].type", "web_search_preview"),
        ({"model": "m", "input": "hi", "tools": [{"type": "function"}]}, "tools[0].name", "name"),
        ({"model": "m", "input": "hi", "tool_choice": "sometimes"}, "tool_choice", "sometimes"),
        ({"model": "m", "input": "hi", "tool_choice": {"type": "file_search"}},
         "tool_choice.type", "file_search"),
        ({"model": "m", "input": [{"type": "item_reference", "id": "x"}]}, "input[0].type",
         "item_reference"),
        ({"model": "m", "input": [{"role": "robot", "content": "hi"}]}, "input[0].role", "robot"),
        ({"model": "m", "input": [{"role": "user", "content": [{"type": "input_audio"}]}]},
         "input[0].content[0].type", "input_audio"),
        ({"model": "m", "input": [{"role": "user", "content": [
            {"type": "input_file", "file_id": "file-1"}]}]}, "input[0].content[0]", "file_id"),
        ({"model": "m", "input": [{"type": "function_call_output", "output": "x"}]},
         "input[0].call_id", "call_id"),
        ({"model": "m", "input": "hi", "text": {"format": {"type": "yaml"}}},
         "text.format.type", "yaml"),
        ({"model": "m", "input": "hi", "previous_response_id": ""},
         "previous_response_id", "empty"),
        ({"model": "m", "input": "hi", "previous_response_id": 7},
         "previous_response_id", "expected `str | null`"),
        ({"model": "m", "input": "hi", "store": "yes"}, "store", "expected `bool | null`"),
    ],
)
def test_bad_input_is_a_clear_400(body: dict[str, Any] | bytes, param: str | None,
                                  words: str) -> None:
    error = refused(body)
    assert error.param == param
    assert words in error.message


def test_refused_when_parsed() -> None:
    """The pipeline reads InvalidRequest from parse only: later it would be a 500."""
    with pytest.raises(InvalidRequest):
        RESPONSES.parse(b'{"model":"m","input":"hi","tools":[{"type":"file_search"}]}')


def test_store_and_metadata_are_kept_for_the_pipeline() -> None:
    parsed = RESPONSES.parse(b'{"model":"m","input":"hi","store":false,"metadata":{"k":"v"}}')
    assert parsed.typed.store is False
    assert parsed.typed.metadata == {"k": "v"}


def test_previous_response_id_never_goes_upstream() -> None:
    parsed = RESPONSES.parse(b'{"model":"m","input":"hi","previous_response_id":"resp_1"}')
    assert "previous_response_id" not in RESPONSES.passthrough_body(parsed, None)


def test_fallback_chain_is_read() -> None:
    parsed = RESPONSES.parse(b'{"model":"a","input":"hi","models":["a","b"],"route":"fallback"}')
    assert parsed.chain == ["a", "b"]
    assert "models" not in RESPONSES.passthrough_body(parsed, None)


def _sse(kind: str, **fields: Any) -> bytes:
    return f"event: {kind}\ndata: ".encode() + json.dumps({"type": kind, **fields}).encode()


def test_passthrough_commits_at_the_first_delta_and_reads_usage_and_renames() -> None:
    parsed = RESPONSES.parse(b'{"model":"m","input":"hi","stream":true}')
    relay = RESPONSES.passthrough_translator(parsed, "served")
    created = _sse("response.created", response={"id": "r", "model": "gpt-up", "usage": None})
    assert b'"served"' in relay.feed(created) and not relay.committed
    relay.feed(_sse("response.output_text.delta", delta="hi", item_id="m", output_index=0))
    assert relay.committed
    done = _sse("response.completed", response={"id": "r", "model": "gpt-up", "usage": {
        "input_tokens": 3, "output_tokens": 2, "total_tokens": 5,
        "input_tokens_details": {"cached_tokens": 1}, "output_tokens_details": {}}})
    assert relay.feed(done) == b""  # the final event waits for close (the response store)
    assert relay.usage == c.Usage(input_tokens=3, output_tokens=2, cache_read_tokens=1)
    assert json.loads(relay.final)["model"] == "served"  # type: ignore[attr-defined]
    assert relay.close().startswith(b"event: response.completed") and relay.close() == b""


def test_passthrough_broken_after_commit_ends_with_response_failed() -> None:
    parsed = RESPONSES.parse(b'{"model":"m","input":"hi","stream":true}')
    relay = RESPONSES.passthrough_translator(parsed, "served")
    relay.feed(_sse("response.created", sequence_number=0,
                    response={"id": "r", "model": "gpt-up", "status": "in_progress"}))
    relay.feed(_sse("response.output_text.delta", sequence_number=1, delta="hi"))
    error = BadRequest("cut short")
    frames = relay.fail(error).decode()  # type: ignore[attr-defined]
    events = [json.loads(line[6:]) for line in frames.splitlines() if line.startswith("data: ")]
    assert [(e["type"], e["sequence_number"]) for e in events] == [
        ("error", 2), ("response.failed", 3)]
    failed = events[1]["response"]
    assert failed["id"] == "r" and failed["model"] == "served" and failed["status"] == "failed"
    assert failed["error"]["message"] == "cut short"


def test_passthrough_error_before_output_may_fall_back() -> None:
    relay = RESPONSES.passthrough_translator(RESPONSES.parse(b'{"model":"m","input":"x"}'), "s")
    with pytest.raises(ProviderHTTPError):
        relay.feed(_sse("error", message="overloaded"))


def test_persona_overlay_on_a_passthrough_body() -> None:
    body = overlay_responses_body({"instructions": "Mine.", "max_output_tokens": 900},
                                  Overlay(system="Persona.", max_tokens=500, temperature=0.1))
    assert body == {"instructions": "Persona.\n\nMine.", "max_output_tokens": 500,
                    "temperature": 0.1}


def test_texts_for_estimates() -> None:
    body = json.dumps({"model": "m", "instructions": "Be brief.", "input": [
        {"role": "user", "content": [{"type": "input_text", "text": "Hi"}]},
        {"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c", "output": "42"}]}).encode()
    assert RESPONSES.prompt_texts(body) == ["Be brief.", "Hi", "{}", "42"]
    stream = [b'{"type":"response.created","response":{"output":[]}}',
              b'{"type":"response.output_text.delta","delta":"Hel"}',
              b'{"type":"response.output_text.done","text":"Hello"}',
              b'{"type":"response.function_call_arguments.delta","delta":"{}"}']
    assert RESPONSES.answer_texts(stream) == ["Hel", "{}"]
    whole = json.dumps({"object": "response", "output": [
        {"type": "message", "content": [{"type": "output_text", "text": "Hello"}]}]}).encode()
    assert RESPONSES.answer_texts([whole]) == ["Hello"]


def test_responses_api_is_an_openai_provider_setting() -> None:
    from gateway.config import ConfigError, parse_config

    base = '[providers.x]\nkind = "{kind}"\nbase_url = "https://x.example/v1"\nresponses_api = true'
    assert parse_config(base.format(kind="openai")).providers["x"].responses_api
    with pytest.raises(ConfigError, match=r"providers.x.responses_api: only an openai-kind"):
        parse_config(base.format(kind="anthropic"))
