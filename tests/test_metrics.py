"""Metrics: the exposition, workers adding up, bounded labels, and the optional token."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import httpx2 as httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Route

import gateway.metrics as metrics_module
from bench.fake_upstream import FakeUpstream
from gateway.config import parse_config
from gateway.metrics import Metrics, metrics_endpoint
from tests.conftest import GatewayProcess, fake_config
from tests.prom import label_sets, sample


def _record(metrics: Metrics, **overrides: object) -> None:
    values: dict[str, object] = {
        "model": "m", "status": 200, "stream": True, "latency": 0.3, "ttft": 0.02,
        "input_tokens": 10, "output_tokens": 5, "cached_tokens": 0, "cost": 0.5,
        "failed_attempts": 1, "fallback": True, "requested": "r",
    }
    values.update(overrides)
    metrics.record(**values)  # type: ignore[arg-type]


def _known() -> Metrics:
    return Metrics(models=["m", "r", 'we"ird'])


async def test_metrics_exposition() -> None:
    metrics = _known()
    _record(metrics)
    _record(metrics, stream=False, latency=0.001, status=502, ttft=None, model='we"ird')
    text = (await metrics.exposition()).decode()
    assert sample(text, "gateway_requests_total", model="m", operation="chat", status="200",
                  kind="stream") == 1
    assert sample(
        text, "gateway_requests_total", model='we"ird', operation="chat", status="502",
        kind="complete"
    ) == 1
    bucket = "gateway_request_duration_seconds_bucket"
    assert sample(text, bucket, model="m", kind="stream", le="0.25") == 0
    assert sample(text, bucket, model="m", kind="stream", le="0.5") == 1
    assert sample(text, bucket, model="m", kind="stream", le="+Inf") == 1
    assert sample(text, "gateway_time_to_first_token_seconds_count", model="m") == 1
    assert sample(text, "gateway_tokens_total", model="m", type="output") == 5
    assert sample(text, "gateway_upstream_errors_total", model="r") == 2
    assert sample(text, "gateway_fallbacks_total", model="m") == 1
    assert "# TYPE gateway_request_duration_seconds histogram" in text


async def test_metrics_add_up_living_sibling_workers(tmp_path: Path) -> None:
    mine, sibling, gone = _known(), _known(), _known()
    _record(mine)
    _record(sibling)
    _record(sibling)
    _record(gone)
    for metrics in (mine, sibling, gone):
        await metrics.share(str(tmp_path))
    await gone.stop()  # an exited worker: its figures leave with it
    (tmp_path / "999999999-dead.sock").touch()  # a stale socket nobody answers
    text = (await mine.exposition()).decode()
    assert sample(text, "gateway_requests_total", model="m", operation="chat", status="200",
                  kind="stream") == 3
    assert sample(text, "gateway_request_duration_seconds_count", model="m", kind="stream") == 3
    assert not (tmp_path / "999999999-dead.sock").exists()
    await mine.stop()
    await sibling.stop()


async def test_health_flags_are_not_summed_and_live_gauges_are_current(tmp_path: Path) -> None:
    figures = [{"gateway_redis_up": 1.0, "gateway_open_streams": 2.0},
               {"gateway_redis_up": 1.0, "gateway_open_streams": 0.0}]
    workers = [Metrics(live=lambda i=i: dict(figures[i])) for i in range(2)]  # type: ignore[misc]
    for worker in workers:
        await worker.share(str(tmp_path))
    text = (await workers[0].exposition()).decode()
    assert sample(text, "gateway_redis_up") == 1  # two workers up: 1, not 2
    assert sample(text, "gateway_open_streams") == 2
    figures[1].update(gateway_redis_up=0.0, gateway_open_streams=5.0)  # the sibling, now
    text = (await workers[0].exposition()).decode()
    assert sample(text, "gateway_redis_up") == 0  # one worker cannot reach Redis
    assert sample(text, "gateway_open_streams") == 7  # the sibling's streams as of the scrape
    for worker in workers:
        await worker.stop()


async def test_unlisted_model_names_share_one_label() -> None:
    config = parse_config(
        '[providers.open]\nkind = "openai"\nbase_url = "http://x/v1"\nallow_any_model = true\n'
        'default_input_price = 1\ndefault_output_price = 1\n'
        '[[models]]\nid = "open/listed"\nprovider = "open"\ninput_price = 1\noutput_price = 1\n'
        '[routers.pick]\nkind = "fallback"\nmodels = ["open/listed"]\n'
    )
    metrics = Metrics.for_config(config)
    for index in range(300):
        name = f"open/{'x' * 4000}{index}"
        _record(metrics, model=name, requested=name)
    _record(metrics, model="open/listed", requested="router/pick")
    _record(metrics, model="open/listed", requested="made-up\nname")
    text = (await metrics.exposition()).decode()
    assert {s["model"] for s in label_sets(text, "gateway_requests_total")} == {
        "open/other", "open/listed"
    }
    assert {s["model"] for s in label_sets(text, "gateway_upstream_errors_total")} == {
        "open/other", "router/pick", "other"
    }
    assert sample(text, "gateway_requests_total", model="open/other", operation="chat",
                  status="200", kind="stream") == 300
    assert len(text) < 20_000


async def test_scrapes_render_off_the_event_loop_and_share_one_render(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    threads: list[int] = []
    real = metrics_module.render

    def render(snapshots: list[metrics_module.Snapshot]) -> bytes:
        threads.append(threading.get_ident())
        return real(snapshots)

    monkeypatch.setattr(metrics_module, "render", render)
    metrics = _known()
    _record(metrics)
    texts = await asyncio.gather(*(metrics.exposition() for _ in range(6)))
    assert len(set(texts)) == 1 and b"gateway_requests_total" in texts[0]
    assert len(threads) == 1 and threads[0] != threading.get_ident()


async def test_metrics_token_is_required_when_set() -> None:
    metrics = _known()
    _record(metrics)
    app = Starlette(routes=[Route("/metrics", metrics_endpoint(metrics, "s3cret-token"))])
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
        assert (await client.get("/metrics")).status_code == 401
        wrong = await client.get("/metrics", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401 and "metrics_token" in wrong.json()["error"]["message"]
        right = await client.get("/metrics", headers={"Authorization": "Bearer s3cret-token"})
        assert right.status_code == 200 and "gateway_requests_total" in right.text
    open_app = Starlette(routes=[Route("/metrics", metrics_endpoint(metrics, ""))])
    transport = httpx.ASGITransport(app=open_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
        assert (await client.get("/metrics")).status_code == 200


@pytest.mark.parametrize("server", ["uvicorn", "granian"])
def test_workers_of_other_servers_add_up_their_metrics(
    tmp_path: Path, upstream: FakeUpstream, server: str
) -> None:
    pytest.importorskip(server)
    process = GatewayProcess(tmp_path, fake_config(tmp_path, upstream.url))
    process.key = process.create_key("--name", "metrics")
    process.start(2, server=server, timeout=30)
    try:
        for _ in range(8):  # a new connection each time, so both workers take some
            with httpx.Client() as client:
                answer = client.post(
                    f"{process.url}/v1/chat/completions", headers=process.headers(),
                    json={"model": "echo", "messages": [{"role": "user", "content": "m"}]},
                )
                assert answer.status_code == 200
        for _ in range(4):  # whichever worker answers the scrape, it counts all eight
            with httpx.Client() as client:
                text = client.get(f"{process.url}/metrics").text
            assert sample(text, "gateway_requests_total", model="mock/echo", operation="chat",
                          status="200", kind="complete") == 8
    finally:
        assert process.stop() == 0, process.logs()
