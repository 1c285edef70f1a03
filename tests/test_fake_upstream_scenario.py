"""The fake upstream's scenario vocabulary: the words a model name is read as."""

from __future__ import annotations

import pytest

from bench.fake_upstream import Scenario, parse_scenario

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(("model", "expected"), [
    ("fake/ok", Scenario()),
    ("bench-tok64-gap20", Scenario(tokens=64, gap_ms=20)),
    ("error-500-a", Scenario(error=500)),  # a tag keeps a test's health state its own
    ("bench-error429", Scenario(error=429)),
    ("gap-100", Scenario(gap_ms=100)),
    ("ttft100-tok3", Scenario(tokens=3, ttft_ms=100)),
    ("cut-a", Scenario(flags=frozenset({"cut"}))),
    ("context-400", Scenario(flags=frozenset({"context"}))),
    ("tools-thinking", Scenario(flags=frozenset({"tools", "thinking"}))),
])
def test_model_words(model: str, expected: Scenario) -> None:
    assert parse_scenario(model) == expected


def test_headers_fill_what_the_model_name_leaves_out() -> None:
    headers = {b"x-fake-tokens": b"3", b"x-fake-gap-ms": b"2.5", b"x-fake-error": b"503"}
    assert parse_scenario("bench-tok5", headers) == Scenario(tokens=5, gap_ms=2.5, error=503)


def test_only_body_independent_replies_are_cached() -> None:
    assert parse_scenario("bench-tok16").cacheable
    assert not parse_scenario("fake/ok").cacheable  # echoes the body
    assert not parse_scenario("tok4-tools").cacheable  # reads tool results from the body
