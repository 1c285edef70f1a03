"""Errors as callers see them: one boundary per route, never a plain-text 500, JSON nesting
bounded before decoding, and the provider's own words only for the caller's own mistakes."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from adapters.errors import ProviderHTTPError
from gateway.errors import BadRequest, from_provider_error
from gateway.json_depth import MAX_DEPTH, check_depth
from tests.seam import pipeline

pytestmark = pytest.mark.unit

ORG = "Rate limit reached for org-operator-secret-42 on tokens per min"


async def test_deep_bodies_are_400s_in_the_callers_dialect(tmp_path: Path) -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    tools = (b'{"model":"scripted/main","messages":[{"role":"user","content":"hi"}],'
             b'"tools":[{"type":"function","function":{"name":"f","parameters":'
             + b'{"a":' * 50_000 + b"1" + b"}" * 50_000 + b"}}]}")
    async with pipeline(tmp_path) as seam:
        auth = {"authorization": f"Bearer {seam.key}"}
        for path, body in (("/v1/chat/completions", deep), ("/v1/chat/completions", tools),
                           ("/v1/messages", deep)):
            response = await seam.client.post(path, content=body, headers=auth)
            assert response.status_code == 400, response.text
            assert "nested" in response.text
        assert response.json()["type"] == "error"  # Anthropic's shape on /v1/messages
        for path in ("/v1/auth/login", "/v1/keys"):  # signup: tests/test_account_security.py
            response = await seam.client.post(path, content=deep, headers=auth)
            assert response.status_code == 400, (path, response.text)
            assert response.json()["error"]["type"] == "invalid_request_error"
        assert seam.adapter.calls == []


def test_depth_check_ignores_brackets_inside_strings() -> None:
    text = b'"' + b"[{" * 1000 + b'\\"' + b"]" * 5 + b'"'
    check_depth(b"[" + text + b"]")
    check_depth(b"[" * MAX_DEPTH + b"]" * MAX_DEPTH)
    with pytest.raises(Exception, match="nested"):
        check_depth(b'["\\\\",' + b"[" * MAX_DEPTH + b"]" * MAX_DEPTH + b"]")


def _depth(body: bytes) -> int:
    """The nesting of ``body`` read one character at a time: the check's reference."""
    depth = deepest = 0
    in_string = escaped = False
    for char in body.decode("latin-1"):
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def _nested(rng: random.Random, depth: int) -> str:
    """A random JSON value nested at most ``depth`` deep, its strings full of brackets,
    escaped quotes and backslashes."""
    strings = ['"a"', '"["', '"]}"', '"\\\\"', '"\\"["', '"x\\\\\\"{"', '"\\n"', '"\\u005b"',
               '""', '"[\\\\"', '"{\\\\\\\\"']
    if depth == 0 or rng.random() < 0.3:
        return rng.choice(strings)
    items = [_nested(rng, depth - 1) for _ in range(rng.randint(0, 3))]
    if rng.random() < 0.5:
        return "[" + ",".join(items) + "]"
    return "{" + ",".join(f"{rng.choice(strings)}:{item}" for item in items) + "}"


def test_depth_check_agrees_with_a_character_by_character_reading() -> None:
    """Every body is refused exactly when its nesting outside strings is over the limit."""
    rng = random.Random(14)
    for _ in range(3000):
        body = _nested(rng, rng.randint(1, 7)).encode()
        limit = rng.randint(1, 5)
        refused = False
        try:
            check_depth(body, limit)
        except BadRequest:
            refused = True
        assert refused == (_depth(body) > limit), body


async def test_an_unexpected_failure_outside_the_pipeline_is_a_json_500(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with pipeline(tmp_path) as seam:
        async def broken(key: object) -> object:
            raise RuntimeError("a bug")

        monkeypatch.setattr(seam.gateway.keys, "authenticate", broken)
        for path in ("/v1/models", "/v1/keys", "/v1/usage"):
            response = await seam.client.get(path, headers={"authorization": "Bearer x"})
            assert response.status_code == 500, path
            assert response.headers["content-type"] == "application/json"
            assert "a bug" not in response.text and response.json()["error"]["message"]


async def test_provider_text_reaches_the_caller_only_for_its_own_mistakes(
    tmp_path: Path
) -> None:
    async with pipeline(tmp_path) as seam:
        seam.adapter.script(ProviderHTTPError(400, "messages[0].content: too long"))
        response = await seam.chat()
        assert response.status_code == 400 and "too long" in response.text
        seam.adapter.script(ProviderHTTPError(500, ORG))
        seam.backup.script(ProviderHTTPError(503, ORG))
        response = await seam.chat()
        assert response.status_code == 502
        assert "org-operator" not in response.text and "HTTP 500" in response.text


def test_provider_error_mapping_keeps_its_own_words() -> None:
    limited = from_provider_error(ProviderHTTPError(429, ORG, retry_after=3), "m")
    assert limited.status == 429 and "org-operator" not in limited.message
    assert limited.headers["Retry-After"] == "3"
    broken = from_provider_error(ProviderHTTPError(503, ORG), "m")
    assert broken.status == 502 and "org-operator" not in broken.message
    caller = from_provider_error(ProviderHTTPError(422, "tools[0]: bad schema"), "m")
    assert caller.status == 422 and "tools[0]: bad schema" in caller.message
