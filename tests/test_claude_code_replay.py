"""A Claude Code-shaped conversation replayed through the real server with the ``anthropic``
SDK: system blocks with cache_control, a dozen tools, signed thinking, parallel tool calls whose
results include an error, thinking enabled, streamed, the beta header Claude Code sends. Each
upstream dialect must take it and answer a well-formed stream."""

from __future__ import annotations

import json
from typing import Any

import anthropic
import openai
import pytest

from bench.fake_upstream import FakeUpstream
from tests.conftest import GatewayProcess

pytestmark = pytest.mark.e2e



BETA = "claude-code-20250219,interleaved-thinking-2025-05-14,fine-grained-tool-streaming-2025-05-14"
TOOL_NAMES = [
    "Task", "Bash", "Glob", "Grep", "LS", "Read", "Edit", "MultiEdit", "Write", "WebFetch",
    "TodoWrite", "WebSearch",
]  # fmt: skip


def tools() -> list[Any]:
    return [
        {
            "name": name,
            "description": f"The {name} tool.",
            "input_schema": {
                "$schema": "http://json-schema.org/draft-07/schema#",
                "type": "object",
                "properties": {"arg": {"type": "string", "description": "what to act on"}},
                "required": ["arg"],
                "additionalProperties": False,
            },
        }
        for name in TOOL_NAMES
    ]


SYSTEM: list[Any] = [
    {
        "type": "text",
        "text": "You are Claude Code, Anthropic's official CLI for Claude.",
        "cache_control": {"type": "ephemeral"},
    },
    {
        "type": "text",
        "text": "You are an interactive CLI tool that helps users with software engineering.",
        "cache_control": {"type": "ephemeral"},
    },
]

MESSAGES: list[Any] = [
    {
        "role": "user",
        "content": [
            {"type": "text", "text": "<system-reminder>context</system-reminder>"},
            {
                "type": "text",
                "text": "why does the build fail?",
                "cache_control": {"type": "ephemeral"},
            },
        ],
    },
    {
        "role": "assistant",
        "content": [
            {
                "type": "thinking",
                "thinking": "Check the log and the config.",
                "signature": "EqQBsig",
            },
            {"type": "text", "text": "Let me look."},
            {"type": "tool_use", "id": "toolu_01A", "name": "Bash", "input": {"arg": "make"}},
            {"type": "tool_use", "id": "toolu_01B", "name": "Read", "input": {"arg": "setup.cfg"}},
        ],
    },
    {
        "role": "user",
        "content": [
            {"type": "tool_result", "tool_use_id": "toolu_01A", "content": "error: missing dep"},
            {
                "type": "tool_result",
                "tool_use_id": "toolu_01B",
                "content": [{"type": "text", "text": "File does not exist."}],
                "is_error": True,
            },
        ],
    },
]


def replay(gateway: GatewayProcess, model: str) -> anthropic.types.Message:
    api = anthropic.Anthropic(
        base_url=gateway.url + "/anthropic", auth_token=gateway.key, api_key=None, max_retries=0
    )
    with api.messages.stream(
        model=model,
        max_tokens=32000,
        system=SYSTEM,
        messages=MESSAGES,
        tools=tools(),
        thinking={"type": "enabled", "budget_tokens": 4000},
        extra_body={"temperature": 1},
        metadata={"user_id": "user_" + "a" * 64 + "_account__session_0b1c"},
        extra_headers={"anthropic-beta": BETA},
    ) as stream:
        names = [event.type for event in stream]
        final = stream.get_final_message()
    assert names[0] == "message_start"
    assert names[-1] == "message_stop"
    return final


def test_claude_code_conversation_to_openai_upstream(
    dialect_gateway: GatewayProcess, fake: FakeUpstream
) -> None:
    final = replay(dialect_gateway, "fake/tools")
    assert [block.type for block in final.content] == ["text"]
    assert final.content[0].text == (  # type: ignore[union-attr]
        "results: error: missing dep | Error: File does not exist."
    )
    assert final.stop_reason == "end_turn"
    assert final.usage.cache_read_input_tokens == 4
    assert final.usage.input_tokens == 6
    sent = fake.requests[-1].body
    assert sent["messages"][0]["role"] == "system"
    assert sent["messages"][0]["content"].startswith("You are Claude Code")
    assert len(sent["tools"]) == 12
    assert sent["reasoning_effort"] == "low"
    assert sent["max_tokens"] == 16384  # Claude Code's 32000, cut to the model's max_output
    assistant = sent["messages"][2]
    assert [json.loads(call["function"]["arguments"]) for call in assistant["tool_calls"]] == [
        {"arg": "make"},
        {"arg": "setup.cfg"},
    ]
    assert sent["messages"][3:5] == [
        {"role": "tool", "tool_call_id": "toolu_01A", "content": "error: missing dep"},
        {"role": "tool", "tool_call_id": "toolu_01B", "content": "Error: File does not exist."},
    ]
    assert "user" not in sent  # Claude Code's long user ids are over OpenAI's limit


def test_claude_code_conversation_to_anthropic_upstream_is_passed_through(
    dialect_gateway: GatewayProcess, fake: FakeUpstream
) -> None:
    final = replay(dialect_gateway, "fakeanthropic/ok")
    assert final.content[-1].type == "text"
    recorded = fake.requests[-1]
    assert recorded.headers["anthropic-beta"] == BETA
    assert recorded.body["system"] == SYSTEM
    assert recorded.body["messages"] == MESSAGES
    assert recorded.body["tools"] == tools()
    assert recorded.body["thinking"] == {"type": "enabled", "budget_tokens": 4000}
    assert final.usage.cache_creation_input_tokens == 5


def test_claude_code_conversation_to_gemini_upstream(
    dialect_gateway: GatewayProcess, fake: FakeUpstream
) -> None:
    final = replay(dialect_gateway, "fakegemini/ok")
    text = final.content[-1]
    assert text.type == "text"
    assert text.text.startswith("results: Bash=")
    sent = fake.requests[-1].body
    assert len(sent["tools"][0]["functionDeclarations"]) == 12
    assert "$schema" not in sent["tools"][0]["functionDeclarations"][0]["parametersJsonSchema"]
    calls = [p for p in sent["contents"][1]["parts"] if "functionCall" in p]
    assert [p.get("thoughtSignature") for p in calls] == ["skip_thought_signature_validator", None]
    responses = [p["functionResponse"] for p in sent["contents"][2]["parts"]]
    assert responses[1] == {
        "name": "Read",
        "response": {"error": "File does not exist."},
        "id": "toolu_01B",
    }
    assert sent["generationConfig"]["thinkingConfig"] == {
        "thinkingBudget": 4000,
        "includeThoughts": True,
    }


def test_gemini_signature_round_trip_through_anthropic_sdk(
    dialect_gateway: GatewayProcess, fake: FakeUpstream
) -> None:
    api = anthropic.Anthropic(
        base_url=dialect_gateway.url + "/anthropic",
        auth_token=dialect_gateway.key,
        api_key=None,
        max_retries=0,
    )
    messages: list[Any] = [{"role": "user", "content": "go"}]
    with api.messages.stream(
        model="fakegemini/tools", max_tokens=100, messages=messages, tools=tools()
    ) as stream:
        first = stream.get_final_message()
    messages.append({"role": "assistant", "content": [b.model_dump() for b in first.content]})
    messages.append(
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": b.id, "content": "ok"}
                for b in first.content
                if b.type == "tool_use"
            ],
        }
    )
    api.messages.create(model="fakegemini/tools", max_tokens=100, messages=messages, tools=tools())
    parts = fake.requests[-1].body["contents"][1]["parts"]
    assert parts[0]["thoughtSignature"] == fake.GEMINI_SIGNATURE


def test_openai_passthrough_streams_tool_calls(
    dialect_gateway: GatewayProcess, fake: FakeUpstream
) -> None:
    """Regression: the OpenAI pass-through rejected every chunk carrying tool_calls."""
    api = openai.OpenAI(
        base_url=f"{dialect_gateway.url}/v1", api_key=dialect_gateway.key, max_retries=0
    )
    stream = api.chat.completions.create(
        model="fake/tools", messages=[{"role": "user", "content": "x"}], stream=True
    )
    arguments = "".join(
        call.function.arguments or ""
        for chunk in stream
        if chunk.choices
        for call in chunk.choices[0].delta.tool_calls or []
        if call.function is not None
    )
    assert arguments == '{"city": "Paris"}{"tz": "CET"}'


def test_claude_code_2_1_request_shape_is_accepted(
    dialect_gateway: GatewayProcess, fake: FakeUpstream
) -> None:
    """Regression, found by running Claude Code 2.1.197 against the gateway: its
    mid-conversation ``system`` messages were refused (400 on messages.1.role)."""
    api = anthropic.Anthropic(
        base_url=dialect_gateway.url + "/anthropic",
        auth_token=dialect_gateway.key,
        api_key=None,
        max_retries=0,
    )
    with api.messages.stream(
        model="fake/ok",
        max_tokens=32000,
        system=SYSTEM,
        messages=[
            {"role": "user", "content": "hello"},
            {"role": "system", "content": "Available agent types: general"},  # type: ignore[typeddict-item]
        ],
        tools=tools(),
        thinking={"type": "adaptive"},  # type: ignore[typeddict-item]
        extra_body={
            "output_config": {"effort": "high"},
            "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
        },
        extra_headers={"anthropic-beta": BETA + ",mid-conversation-system-2026-04-07"},
    ) as stream:
        final = stream.get_final_message()
    assert final.content[0].text == "fake: hello"  # type: ignore[union-attr]
    sent = fake.requests[-1].body
    assert sent["messages"][0]["role"] == "system"
    assert sent["messages"][0]["content"].endswith("Available agent types: general")
    assert sent["reasoning_effort"] == "high"
