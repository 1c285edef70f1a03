"""``gateway.pipeline.operation.fit_to_model``: what a translated request is trimmed to for
its target."""

from __future__ import annotations

import pytest
from msgspec import UNSET

from adapters import canonical as c
from gateway.pipeline.operation import fit_to_model
from routers.catalog import Model

pytestmark = pytest.mark.unit


def request(**fields: object) -> c.Request:
    return c.Request(model="m", messages=[], **fields)  # type: ignore[arg-type]


def test_max_tokens_capped_at_max_output() -> None:
    target = Model(id="openai/gpt-4o", provider="openai", upstream="gpt-4o", max_output=16384)
    assert fit_to_model(request(max_tokens=32000), target).max_tokens == 16384
    assert fit_to_model(request(max_tokens=100), target).max_tokens == 100
    assert fit_to_model(request(), target).max_tokens is UNSET


def test_reasoning_dropped_only_for_listed_models_without_the_capability() -> None:
    asked = request(reasoning=c.Reasoning(budget_tokens=4000))
    plain = Model(id="openai/gpt-4o", provider="openai", upstream="gpt-4o")
    thinker = Model(
        id="x/r1", provider="x", upstream="r1", capabilities=frozenset({"reasoning"})
    )
    unlisted = Model(id="openai/o3", provider="openai", upstream="o3", listed=False)
    assert fit_to_model(asked, plain).reasoning is UNSET
    assert fit_to_model(asked, thinker).reasoning == c.Reasoning(budget_tokens=4000)
    assert fit_to_model(asked, unlisted).reasoning == c.Reasoning(budget_tokens=4000)
    assert asked.reasoning == c.Reasoning(budget_tokens=4000)  # shared across targets: untouched
