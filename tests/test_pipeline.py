"""The request pipeline in process (tests/seam.py): whole answers and streams, fallback,
failures before and after the commit point, settlement and its price, the response cache,
and the error boundary, without spawning a server."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from adapters.errors import ProviderConnectionError, ProviderHTTPError
from gateway.pipeline.settle import price
from tests.seam import Answer, pipeline

pytestmark = pytest.mark.unit

MAIN_COST = (10 * 1.0 + 4 * 2.0) / 1e6  # 10 prompt tokens, "hello from the fake" = 4 words


def sse_data(text: str) -> list[str]:
    return [line[6:] for line in text.splitlines() if line.startswith("data: ")]


async def test_whole_answer_headers_and_ledger_agree_on_cost(tmp_path: Path) -> None:
    async with pipeline(tmp_path) as seam:
        response = await seam.chat()
        assert response.status_code == 200
        body = response.json()
        assert body["choices"][0]["message"]["content"] == "hello from the fake"
        assert body["model"] == "scripted/main"
        headers = response.headers
        assert headers["x-resolved-model"] == "scripted/main"
        assert headers["x-fallback-level"] == "0"
        assert float(headers["x-cost-usd"]) == pytest.approx(MAIN_COST)
        assert "x-cost-estimated" not in headers
        row = await seam.ledger_row(headers["x-request-id"])
        assert row["cost_usd"] == pytest.approx(MAIN_COST)
        assert (row["prompt_tokens"], row["completion_tokens"], row["status"]) == (10, 4, 200)
        assert seam.adapter.calls[0].model == "main"


async def test_stream_relays_content_and_settles_usage(tmp_path: Path) -> None:
    async with pipeline(tmp_path) as seam:
        response = await seam.chat(stream=True)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["cache-control"] == "no-cache"
        assert response.headers["x-cost-estimated"] == "true"
        frames = sse_data(response.text)
        assert frames[-1] == "[DONE]"
        text = "".join(
            choice["delta"].get("content") or ""
            for frame in frames[:-1]
            for choice in msgspec.json.decode(frame)["choices"]
        )
        assert text == "hello from the fake"
        row = await seam.ledger_row(response.headers["x-request-id"])
        assert row["stream"] and row["status"] == 200
        assert row["cost_usd"] == pytest.approx(MAIN_COST)


@pytest.mark.parametrize("stream", [False, True])
async def test_failure_before_commit_falls_back(tmp_path: Path, stream: bool) -> None:
    async with pipeline(tmp_path) as seam:
        seam.adapter.script(ProviderHTTPError(500, "upstream exploded"))
        response = await seam.chat(stream=stream)
        assert response.status_code == 200
        assert response.headers["x-resolved-model"] == "scripted/backup"
        assert response.headers["x-fallback-level"] == "1"
        assert "backup" in response.text
        assert len(seam.adapter.calls) == len(seam.backup.calls) == 1
        row = await seam.ledger_row(response.headers["x-request-id"])
        assert (row["model_served"], row["status"]) == ("scripted/backup", 200)


async def test_every_target_failing_is_a_502_that_costs_nothing(tmp_path: Path) -> None:
    async with pipeline(tmp_path) as seam:
        seam.adapter.script(ProviderConnectionError("reset"))
        seam.backup.script(ProviderConnectionError("reset"))
        response = await seam.chat()
        assert response.status_code == 502
        error = response.json()["error"]
        assert error["type"] == "provider_error" and "scripted/backup" in error["message"]
        assert response.headers["x-cost-usd"] == "0.00000000"
        row = await seam.ledger_row(response.headers["x-request-id"])
        assert (row["status"], row["cost_usd"], row["model_served"]) == (502, 0.0, "")


async def test_caller_fault_4xx_is_not_retried_elsewhere(tmp_path: Path) -> None:
    async with pipeline(tmp_path) as seam:
        seam.adapter.script(ProviderHTTPError(422, "temperature: must be at most 2"))
        response = await seam.chat()
        assert response.status_code == 422
        assert "temperature: must be at most 2" in response.json()["error"]["message"]
        assert seam.backup.calls == []


async def test_stream_broken_after_commit_ends_with_an_error_frame(tmp_path: Path) -> None:
    async with pipeline(tmp_path) as seam:
        seam.adapter.script(Answer(broken=ProviderConnectionError("cut")))
        response = await seam.chat(stream=True)
        assert response.status_code == 200
        last = msgspec.json.decode(sse_data(response.text)[-1])
        assert "error" in last
        assert seam.backup.calls == []  # nothing spliced in after commit
        row = await seam.ledger_row(response.headers["x-request-id"])
        assert row["status"] == 502 and row["model_served"] == "scripted/main"
        assert row["completion_tokens"] > 0  # the partial answer is billed (estimated)


async def test_answer_without_usage_is_counted_with_the_tokenizer(tmp_path: Path) -> None:
    async with pipeline(tmp_path) as seam:
        seam.adapter.script(Answer("one two three four five", usage=False))
        response = await seam.chat(stream=True)
        assert response.status_code == 200
        row = await seam.ledger_row(response.headers["x-request-id"])
        assert row["estimated"] and row["completion_tokens"] >= 5 and row["prompt_tokens"] > 0


async def test_cache_hit_header_cost_equals_its_ledger_cost(tmp_path: Path) -> None:
    async with pipeline(tmp_path, '[cache]\nmode = "on"\n') as seam:
        seam.adapter.script(Answer(cached_tokens=0))
        miss = await seam.chat()
        hit = await seam.chat()
        assert (miss.headers["x-cache"], hit.headers["x-cache"]) == ("MISS", "HIT")
        assert hit.json() == miss.json()
        assert len(seam.adapter.calls) == 1
        row = await seam.ledger_row(hit.headers["x-request-id"])
        assert float(hit.headers["x-cost-usd"]) == pytest.approx(row["cost_usd"], abs=1e-8)
        assert row["cost_usd"] == pytest.approx(10 * 0.5 / 1e6)  # the prompt, at the cached rate


async def test_anthropic_dialect_gets_its_own_error_shape(tmp_path: Path) -> None:
    async with pipeline(tmp_path) as seam:
        seam.adapter.script(ProviderConnectionError("reset"))
        seam.backup.script(ProviderConnectionError("reset"))
        response = await seam.post("/v1/messages", {
            "model": "scripted/main", "max_tokens": 16,
            "messages": [{"role": "user", "content": "hi"}]})
        assert response.status_code == 502
        assert response.json()["type"] == "error"
        stream = await seam.post("/v1/messages", {
            "model": "scripted/main", "max_tokens": 16, "stream": True,
            "messages": [{"role": "user", "content": "hi"}]})
        assert stream.status_code == 502 and stream.json()["type"] == "error"


async def test_a_bug_inside_the_pipeline_is_a_json_500_and_is_settled(tmp_path: Path) -> None:
    async with pipeline(tmp_path) as seam:
        seam.adapter.script(RuntimeError("bug"))  # type: ignore[arg-type]
        seam.adapter._next = _raise  # type: ignore[method-assign]
        response = await seam.chat()
        assert response.status_code == 500
        request_id = response.headers["x-request-id"]
        assert request_id in response.json()["error"]["message"]
        row = await seam.ledger_row(request_id)
        assert row["status"] == 500


def _raise(call: object) -> Answer:
    raise RuntimeError("a bug, not a provider error")


async def test_refusals_before_dispatch_are_answered_and_recorded(tmp_path: Path) -> None:
    async with pipeline(tmp_path) as seam:
        bad = await seam.client.post("/v1/chat/completions", content=b"{nope",
                                     headers={"authorization": f"Bearer {seam.key}"})
        assert bad.status_code == 400 and bad.json()["error"]["type"] == "invalid_request_error"
        unknown = await seam.chat(model="nobody/knows")
        assert unknown.status_code == 404
        nokey = await seam.client.post("/v1/chat/completions", content=b"{}")
        assert nokey.status_code == 401
        row = await seam.ledger_row(unknown.headers["x-request-id"])
        assert (row["status"], row["model_requested"]) == (404, "nobody/knows")
        assert seam.adapter.calls == []


def test_price_is_the_one_cost_function() -> None:
    from adapters import canonical as c
    from routers.catalog import Model

    model = Model(id="m", provider="p", upstream="m", input_price=1.0, output_price=2.0,
                      cached_input_price=0.5)
    usage = c.Usage(input_tokens=10, output_tokens=4, cache_read_tokens=4)
    assert price(model, usage) == pytest.approx((6 + 2 + 8) / 1e6)
    assert price(model, usage, cache_hit=True) == pytest.approx((6 + 2) / 1e6)
    assert price(None, usage) == 0.0 and price(model, None) == 0.0
