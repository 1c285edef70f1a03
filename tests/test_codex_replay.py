"""A Codex CLI-shaped tool loop replayed through the real server at ``/v1/responses``, against
chat-only upstreams (OpenAI chat completions, Anthropic Messages, Gemini): Codex's body as its
``ResponsesApiRequest`` writes it (instructions, message items with ``input_text``, function
tools with ``strict``, ``tool_choice``, ``parallel_tool_calls``, ``reasoning`` with a summary,
``store: false``, ``stream: true``, ``include``, ``prompt_cache_key``), read the way Codex reads
the stream (``response.output_item.done`` items, then ``response.completed``'s id and usage),
and the second turn sent back with its ``function_call``/``function_call_output`` items and a
reasoning item whose ``content`` and ``encrypted_content`` are null."""

from __future__ import annotations

import json
from typing import Any

import httpx2 as httpx
import pytest

from bench.fake_upstream import FakeUpstream
from tests.conftest import GatewayProcess

pytestmark = pytest.mark.e2e

INSTRUCTIONS = "You are Codex, a coding agent running in the Codex CLI on a user's computer."
SHELL = {
    "type": "function",
    "name": "shell",
    "description": "Runs a shell command and returns its output.",
    "strict": False,
    "parameters": {
        "type": "object",
        "properties": {
            "command": {"type": "array", "items": {"type": "string"}},
            "workdir": {"type": "string"},
            "timeout_ms": {"type": "number"},
        },
        "required": ["command"],
        "additionalProperties": False,
    },
}
PLAN = {
    "type": "function",
    "name": "update_plan",
    "description": "Updates the task plan.",
    "strict": False,
    "parameters": {
        "type": "object",
        "properties": {"plan": {"type": "array", "items": {"type": "object"}}},
        "required": ["plan"],
        "additionalProperties": False,
    },
}


def user(text: str) -> dict[str, Any]:
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}


def codex_body(model: str, items: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "model": model,
        "instructions": INSTRUCTIONS,
        "input": items,
        "tools": [SHELL, PLAN],
        "tool_choice": "auto",
        "parallel_tool_calls": False,
        "reasoning": {"effort": "medium", "summary": "auto"},
        "store": False,
        "stream": True,
        "include": ["reasoning.encrypted_content"],
        "prompt_cache_key": "0199c6a2-5f3e-7c11-9d1a-3c2b1a0f9e8d",
    }


def turn(gateway: GatewayProcess, body: dict[str, Any]) -> tuple[list[dict[str, Any]], Any]:
    """One Codex turn: the items of ``response.output_item.done`` and ``response.completed``."""
    events: list[dict[str, Any]] = []
    headers = {"authorization": f"Bearer {gateway.key}", "originator": "codex_cli_rs",
               "accept": "text/event-stream"}
    with httpx.stream("POST", f"{gateway.url}/v1/responses", json=body, headers=headers,
                      timeout=10) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("data: "):
                events.append(json.loads(line[6:]))
    kinds = [event["type"] for event in events]
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    assert [event["sequence_number"] for event in events] == list(range(len(events)))
    done = [event["item"] for event in events if event["type"] == "response.output_item.done"]
    return done, events[-1]["response"]


@pytest.mark.parametrize("model", ["fake/tools", "fakeanthropic/tools", "fakegemini/tools"])
def test_codex_tool_loop_on_a_chat_only_model(
    dialect_gateway: GatewayProcess, fake: FakeUpstream, model: str
) -> None:
    history = [user("<environment_context>\n  <cwd>/home/dev/app</cwd>\n</environment_context>"),
               user("Weather and time in Paris?")]
    items, completed = turn(dialect_gateway, codex_body(model, history))
    calls = [item for item in items if item["type"] == "function_call"]
    assert [(call["name"], json.loads(call["arguments"])) for call in calls] == [
        ("get_weather", {"city": "Paris"}), ("get_time", {"tz": "CET"})]
    assert all(call["call_id"] and call["status"] == "completed" for call in calls)
    assert completed["id"].startswith("resp_") and completed["usage"]["total_tokens"] > 0

    history += [{"type": "reasoning", "summary": [], "content": None, "encrypted_content": None}]
    history += [{"type": "function_call", "name": call["name"], "arguments": call["arguments"],
                 "call_id": call["call_id"]} for call in calls]
    history += [{"type": "function_call_output", "call_id": call["call_id"],
                 "output": f"{call['name']}: ok"} for call in calls]
    items, completed = turn(dialect_gateway, codex_body(model, history))
    message = next(item for item in items if item["type"] == "message")
    text = message["content"][0]["text"]
    assert text.startswith("results: ")
    assert "get_weather: ok" in text and "get_time: ok" in text
    assert completed["status"] == "completed"


def test_codex_body_reaches_a_chat_completions_upstream_translated(
    dialect_gateway: GatewayProcess, fake: FakeUpstream
) -> None:
    turn(dialect_gateway, codex_body("fake/ok", [user("hello")]))
    sent = fake.requests[-1].body
    assert sent["messages"] == [{"role": "system", "content": INSTRUCTIONS},
                                {"role": "user", "content": "hello"}]
    assert [tool["function"]["name"] for tool in sent["tools"]] == ["shell", "update_plan"]
    assert sent["tools"][0]["function"]["parameters"] == SHELL["parameters"]
    assert sent.get("tool_choice", "auto") == "auto" and sent["parallel_tool_calls"] is False
    assert sent["reasoning_effort"] == "medium"
    assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}
    for field in ("store", "include", "prompt_cache_key", "instructions", "input"):
        assert field not in sent
