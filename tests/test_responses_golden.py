"""Golden translation cases of the Responses API dialect, kept as data in
``tests/golden/responses/*.json``; everything it emits is also read by the official openai
SDK's own models, as ``client.responses.create`` and ``client.responses.stream`` read it.

* ``request`` cases: a Responses body, and the exact canonical request and chat-completions,
  Messages and Gemini bodies it becomes (``expected``).
* ``events`` cases: canonical stream events, and the exact SSE events sent to the caller.
* ``response`` cases: a canonical answer, and the exact ``response`` object sent.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec
import pytest
from openai import omit
from openai.lib.streaming.responses._responses import ResponseStreamState
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import TypeAdapter

from adapters import canonical as c
from adapters.anthropic.upstream import canonical_to_anthropic_request
from adapters.gemini.upstream import canonical_to_gemini_request
from adapters.openai.upstream import canonical_to_openai_request
from adapters.registry import ingress
from adapters.sse import SSEFramer, event_fields

GOLDEN = Path(__file__).parent / "golden" / "responses"
CASES = sorted(GOLDEN.glob("*.json"))
RESPONSES = ingress("responses")
EVENT = TypeAdapter(ResponseStreamEvent)


def _stable(value: Any) -> Any:
    """``value`` with its clock readings (``created_at``) set to 0."""
    if isinstance(value, dict):
        return {k: 0 if k == "created_at" else _stable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_stable(v) for v in value]
    return value


def translate(request: dict[str, Any]) -> Any:
    """A Responses body as canonical, and as each upstream dialect's body for model "up"."""
    parsed = RESPONSES.parse(json.dumps(request).encode())
    canonical = RESPONSES.to_canonical(parsed)
    return msgspec.to_builtins({
        "canonical": canonical,
        "openai": canonical_to_openai_request(canonical, "up"),
        "anthropic": canonical_to_anthropic_request(canonical, "up"),
        "gemini": canonical_to_gemini_request(canonical),
    })


def encode_stream(events: list[dict[str, Any]], body: dict[str, Any] | None = None) -> Any:
    """Canonical events (as builtins) as the SSE events a Responses caller gets."""
    parsed = RESPONSES.parse(json.dumps(body or {"model": "m", "input": "hi"}).encode())
    translator = RESPONSES.canonical_translator(parsed, "served", "req1")
    decoded = msgspec.convert(events, list[c.StreamEvent])
    sent = b"".join(translator.feed(event) for event in decoded) + translator.close()
    frames = [event_fields(frame) for frame in SSEFramer().feed(sent)]
    return _stable([{"event": name, "data": json.loads(data or b"")} for name, data in frames])


def encode_reply(response: dict[str, Any]) -> Any:
    """A canonical answer (as builtins) as the ``response`` object a Responses caller gets."""
    answer = msgspec.convert(response, c.Response)
    return _stable(json.loads(RESPONSES.canonical_reply(answer, "served")))


def test_there_are_golden_cases() -> None:
    kinds = {next(k for k in ("request", "events", "response") if k in json.loads(p.read_text()))
             for p in CASES}
    assert kinds == {"request", "events", "response"} and len(CASES) >= 6


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_golden_case(path: Path) -> None:
    case = json.loads(path.read_text())
    if "request" in case:
        assert translate(case["request"]) == case["expected"], case["description"]
    elif "events" in case:
        assert encode_stream(case["events"], case.get("body")) == case["expected"]
    else:
        assert encode_reply(case["response"]) == case["expected"], case["description"]


@pytest.mark.parametrize("path", [p for p in CASES if "events" in p.read_text()[:200]],
                         ids=lambda p: p.stem)
def test_streams_read_by_the_sdk(path: Path) -> None:
    """Each event parses as the SDK's event model, in order; the SDK's own accumulator (what
    ``responses.stream()`` runs) ends with the same response as ``response.completed``."""
    case = json.loads(path.read_text())
    state: ResponseStreamState[Any] = ResponseStreamState(input_tools=[], text_format=omit)
    numbers = []
    for frame in case["expected"]:
        event = EVENT.validate_python(frame["data"])
        assert event.type == frame["event"]
        numbers.append(event.sequence_number)
        state.handle_event(event)
    assert numbers == list(range(len(numbers)))
    final = state._completed_response
    assert final is not None and final.status in ("completed", "incomplete")
    assert final.output_text == case["text"]
    assert final.usage is not None and final.usage.total_tokens == case["total_tokens"]


@pytest.mark.parametrize("path", [p for p in CASES if '"response"' in p.read_text()[:300]],
                         ids=lambda p: p.stem)
def test_replies_read_by_the_sdk(path: Path) -> None:
    case = json.loads(path.read_text())
    response = Response.model_validate(case["expected"])
    assert response.output_text == case["text"]
