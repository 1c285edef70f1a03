"""Golden translation cases kept as data: ``tests/golden/requests/*.json``.

Each file is one case: a request in the ``from`` dialect (a caller's body, or a canonical
request), the ``model`` it goes to, and the exact body the ``to`` dialect's provider side must
send. A new case is a new file; nothing here changes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec
import pytest

from adapters import canonical as c
from adapters.anthropic.client import anthropic_to_canonical
from adapters.anthropic.upstream import canonical_to_anthropic_request
from adapters.anthropic.wire import MessagesRequest
from adapters.gemini.upstream import canonical_to_gemini_request
from adapters.openai.client import openai_to_canonical
from adapters.openai.upstream import canonical_to_openai_request
from adapters.openai.wire import ChatRequest

pytestmark = pytest.mark.unit

GOLDEN = Path(__file__).parent / "golden" / "requests"
CASES = sorted(GOLDEN.glob("*.json"))


def to_canonical(source: str, request: dict[str, Any]) -> c.Request:
    raw = json.dumps(request).encode()
    if source == "openai":
        return openai_to_canonical(msgspec.json.decode(raw, type=ChatRequest))
    if source == "anthropic":
        return anthropic_to_canonical(msgspec.json.decode(raw, type=MessagesRequest))
    return msgspec.json.decode(raw, type=c.Request)


def to_provider(target: str, request: c.Request, model: str | None) -> Any:
    if target == "openai":
        return canonical_to_openai_request(request, model or "")
    if target == "anthropic":
        return canonical_to_anthropic_request(request, model or "")
    return canonical_to_gemini_request(request)


def test_there_are_golden_cases() -> None:
    assert len(CASES) >= 4


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_golden_request(path: Path) -> None:
    case = json.loads(path.read_text())
    # Provider bodies may be Structs: compared as the builtins they encode to.
    body = msgspec.to_builtins(
        to_provider(case["to"], to_canonical(case["from"], case["request"]), case["model"])
    )
    assert body == case["expected"], case["description"]
