"""The routing pieces on their own: planner, health, features, overlays and config checks."""

from __future__ import annotations

import asyncio
import time

import pytest

from adapters import canonical as c
from adapters.anthropic.client import overlay_anthropic_body
from adapters.errors import ProviderHTTPError, ProviderTimeout
from adapters.features import RequestFeatures, looks_like_code
from adapters.openai.client import OpenAIIngress
from adapters.overlay import Overlay, apply_to_canonical
from gateway.config import DEFAULT_CONFIG_PATH, ConfigError, parse_config
from gateway.wiring import build_catalog, build_planner
from routers.attempts import Attempts, RetryPolicy
from routers.catalog import Catalog, Model
from routers.health import MemoryHealth
from routers.plan import Plan, Planner
from routers.refusals import RoutingRefused

pytestmark = pytest.mark.unit

BASE = """
[providers.mock]
kind = "mock"

[providers.a]
kind = "openai"
base_url = "http://127.0.0.1:9/v1"

[[models]]
id = "m/one"
provider = "mock"
upstream = "echo"
"""


def features(**kwargs: object) -> RequestFeatures:
    return RequestFeatures(**kwargs)  # type: ignore[arg-type]


def never() -> RequestFeatures:
    raise AssertionError("a plain model name must not compute features")


def test_a_plain_model_name_is_planned_without_features() -> None:
    catalog = Catalog([Model(id="m/x", provider="p", upstream="x", aliases=("x",))])
    planner = Planner(catalog)
    plan = planner.plan("x", never)
    assert plan is not None and [t.id for t in plan.targets] == ["m/x"]
    assert planner.plan("nothing", never) is None


def test_a_model_with_fallbacks_drops_unfit_ones_on_every_request() -> None:
    small = Model(id="m/small", provider="p", upstream="small", context=1000,
                  capabilities=frozenset({"tools"}))
    seeing = Model(id="m/seeing", provider="p", upstream="seeing",
                   capabilities=frozenset({"vision", "tools"}))
    first = Model(id="m/first", provider="p", upstream="first", fallbacks=("m/small", "m/seeing"),
                  capabilities=frozenset({"tools"}))
    planner = Planner(Catalog([first, small, seeing]))

    def ids(**kwargs: object) -> list[str]:
        plan = planner.plan("m/first", lambda: features(**kwargs))
        assert plan is not None and plan.levels == list(range(len(plan.targets)))
        return [t.id for t in plan.targets]

    for _ in range(2):  # the first plan of a name, and the ones after it
        assert ids() == ["m/first", "m/small", "m/seeing"]
        assert ids(has_tools=True) == ["m/first", "m/small", "m/seeing"]
        assert ids(images=1) == ["m/seeing"]
        assert ids(prompt_chars=4 * 2000) == ["m/first", "m/seeing"]
        with pytest.raises(RoutingRefused):
            ids(has_audio=True)
    plan = planner.plan("m/first", lambda: features())
    assert plan is not None
    plan.targets.pop()  # a plan is the request's own to trim
    assert ids() == ["m/first", "m/small", "m/seeing"]


def test_deployment_strategies_order_by_in_flight_and_latency() -> None:
    one = Model(id="m", provider="p1", upstream="m")
    two = Model(id="m", provider="p2", upstream="m")
    for strategy in ("least_busy", "latency"):
        model = Model(id="m", provider="p1", upstream="m", deployments=(one, two),
                          strategy=strategy)
        health = MemoryHealth()
        planner = Planner(Catalog([model]), health=health)
        if strategy == "least_busy":
            health.started(one.health_key)
        else:
            health.record_success(one.health_key, 2.0)
            health.record_success(two.health_key, 0.1)
        plan = planner.plan("m", lambda: features())
        assert plan is not None
        assert [t.provider for t in plan.targets] == ["p2", "p1"]
        assert plan.levels == [0, 0]


def test_weighted_deployments_follow_their_weights() -> None:
    heavy = Model(id="m", provider="heavy", upstream="m", weight=9)
    light = Model(id="m", provider="light", upstream="m", weight=1)
    model = Model(id="m", provider="heavy", upstream="m", deployments=(heavy, light))
    planner = Planner(Catalog([model]))
    firsts = [planner.plan("m", lambda: features()).targets[0].provider  # type: ignore[union-attr]
              for _ in range(400)]
    assert 300 < firsts.count("heavy") < 400


def test_health_benches_after_repeated_failures_and_for_retry_after() -> None:
    health = MemoryHealth(allowed_fails=2, cooldown=30)
    now = time.monotonic()
    health.record_failure("k", rate_limited=False, retry_after=None)
    assert health.benched_until("k", now) == 0
    health.record_failure("k", rate_limited=False, retry_after=None)
    assert health.benched_until("k", now) > now + 29
    health.record_failure("r", rate_limited=True, retry_after=2)
    assert now < health.benched_until("r", now) <= time.monotonic() + 2
    health.record_success("k", 0.5)  # a success clears the count, not the bench
    assert health.benched_until("k", now) > now


def test_attempts_skip_smaller_contexts_after_a_context_error() -> None:
    small = Model(id="small", provider="p", upstream="s", context=8000)
    same = Model(id="same", provider="p", upstream="t", context=8000)
    big = Model(id="big", provider="p", upstream="b", context=200_000)
    attempts = Attempts(Plan("x", [small, same, big]), MemoryHealth(), RetryPolicy(retries=0))

    async def walk() -> list[str]:
        seen = []
        while (step := await attempts.next()) is not None:
            seen.append(step[0].id)
            if step[0].id == "small":
                attempts.failed(step[0], ProviderHTTPError(400, "maximum context length is 8000"))
        return seen

    assert asyncio.run(walk()) == ["small", "big"]


def test_attempts_retry_after_a_backoff_and_give_up_on_a_long_wait() -> None:
    model = Model(id="m", provider="p", upstream="m")
    policy = RetryPolicy(retries=2, backoff_base=0.01, backoff_max=0.02, max_wait=1)
    attempts = Attempts(Plan("m", [model]), MemoryHealth(allowed_fails=10), policy)

    async def walk() -> int:
        calls = 0
        while (step := await attempts.next()) is not None:
            calls += 1
            attempts.failed(step[0], ProviderHTTPError(503, "busy"))
        return calls

    assert asyncio.run(walk()) == 3  # the first try and two retries
    assert len(attempts.failures) == 3
    limited = Attempts(Plan("m", [model]), MemoryHealth(), policy)

    async def limited_walk() -> int:
        while (step := await limited.next()) is not None:
            limited.failed(step[0], ProviderHTTPError(429, "slow down", retry_after=60))
        return len(limited.failures)

    assert asyncio.run(limited_walk()) == 1  # a 60 s Retry-After is not waited out
    timed_out = Attempts(Plan("m", [model]), MemoryHealth(allowed_fails=10), policy)

    async def timeout_walk() -> int:
        while (step := await timed_out.next()) is not None:
            timed_out.failed(step[0], ProviderTimeout("first_token"))
        return len(timed_out.failures)

    assert asyncio.run(timeout_walk()) == 1  # a timeout is not waited out twice


def test_looks_like_code() -> None:
    assert looks_like_code("why does this fail?\n```js\nx()\n```")
    assert looks_like_code("def f(x):\n    return x\nclass A:\n    pass")
    assert looks_like_code("Write a python script that renames files")
    assert not looks_like_code("What is the capital of Thailand?")
    assert not looks_like_code("เขียนกลอนเกี่ยวกับฤดูฝน")


def test_openai_features_are_counted_from_the_request() -> None:
    parsed = OpenAIIngress().parse(
        b'{"model": "m", "max_tokens": 9, "tools": [{"type": "function", "function": '
        b'{"name": "f"}}], "messages": [{"role": "user", "content": [{"type": "text", '
        b'"text": "abcdefgh"}, {"type": "image_url", "image_url": {"url": "x"}}]}]}'
    )
    found = parsed.features(lambda: pytest.fail("canonical form not needed"))
    assert (found.has_images, found.has_tools, found.max_output) == (True, True, 9)
    assert found.prompt_tokens == 2 + 1000


def test_overlays_go_ahead_of_the_callers_prompt_in_each_form() -> None:
    overlay = Overlay(system="P", temperature=0.3, max_tokens=100)
    body = overlay_anthropic_body({"system": "caller", "max_tokens": 4000, "messages": []},
                                  overlay)
    assert body == {"system": "P\n\ncaller", "max_tokens": 100, "temperature": 0.3,
                    "messages": []}
    request = c.Request(model="m", messages=[], system=[c.TextBlock(text="caller")],
                        temperature=0.9)
    request = apply_to_canonical(request, overlay)
    assert [b.text for b in request.system] == ["P", "caller"]
    assert (request.temperature, request.max_tokens) == (0.9, 100)


@pytest.mark.parametrize(
    ("extra", "key"),
    [
        ('[routers.auto]\nkind = "auto"\nmodels = ["m/nope"]', "routers.auto.models[0]"),
        ('[routers.r]\nkind = "fallback"\nmodels = ["m/one"]\n'
         '[[routers.r.rules]]\nwhen = "code"\nmodels = ["m/one"]', "routers.r.rules"),
        ('[personas.p]\ntarget = "ghost"', "personas.p.target"),
        ('[personas.p]\ntarget = "m/one"\nmax_tokens = 0', "personas.p.max_tokens"),
        ('[personas."m/one"]\ntarget = "m/one"', "personas.m/one"),
        ("[routing]\nallowed_fails = 0", "routing.allowed_fails"),
        ('[routers.x]\nkind = "smart"', "routers.x.kind"),
        ('[[models]]\nid = "m/two"\nprovider = "mock"\nfallbacks = ["auto2"]\n'
         '[routers.auto2]\nkind = "free"', "models[1].fallbacks[0]"),
        ('[[models]]\nid = "m/two"\nprovider = "mock"\n'
         'deployments = [{ provider = "zz" }]', "models[1].deployments[0].provider"),
    ],
)
def test_check_config_names_the_failing_routing_key(extra: str, key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(BASE + extra)
    assert str(caught.value).startswith(key), caught.value


def test_the_default_config_ships_the_clearai_personas() -> None:
    config = parse_config(DEFAULT_CONFIG_PATH.read_text())
    planner = build_planner(config, build_catalog(config))
    limits = {"clear-talking": 1000, "clear-coding": 2000, "clear-thinking": 4000,
              "clear-researching": 2000, "clear-funny": 1000}
    for name, limit in limits.items():
        plan = planner.plan(name, lambda: features())
        assert plan is not None and plan.targets, name
        assert plan.overlay is not None and plan.overlay.system
        assert (plan.overlay.max_tokens, plan.overlay.temperature) == (limit, 0.3)
    assert planner.plan("router/free", lambda: features()) is not None
    with pytest.raises(RoutingRefused):
        planner.plan("ocr", lambda: features())
    image_plan = planner.plan("auto", lambda: features(images=1))
    assert image_plan is not None and image_plan.rule == "images"


def test_unlisted_names_are_remembered_up_to_a_bound() -> None:
    from routers.catalog import MAX_UNLISTED, Catalog

    catalog = Catalog([], open_providers=["open"])
    first = catalog.get("open/model-0")
    assert first is not None and first.upstream == "model-0" and not first.listed
    for index in range(1, MAX_UNLISTED + 50):
        assert catalog.get(f"open/model-{index}") is not None
    assert len(catalog._unlisted) == MAX_UNLISTED
    assert catalog.get("closed/model") is None
