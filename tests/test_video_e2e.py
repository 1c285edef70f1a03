"""Video jobs through a real gateway server, driven by the official openai SDK
(``videos.create``, ``videos.poll``, ``download_content``) against fake OpenAI-compatible and
MiniMax upstreams on loopback: the file relayed without its upstream URL, failures with the
upstream's reason, billing once, and a job that survives a gateway restart."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from bench.fake_upstream import FakeUpstream
from bench.fake_upstream.videos import REASON, SIZE
from tests.conftest import GatewayProcess, fake_config

pytestmark = [pytest.mark.e2e,
              pytest.mark.filterwarnings("ignore::DeprecationWarning")]


FAST = """
first_poll = 0.1
max_poll_interval = 0.2
tick = 0.1
"""


def video_config(tmp: Path, fake: FakeUpstream, video: str = FAST) -> str:
    models = f"""
[providers.vo]
kind = "openai"
base_url = "{fake.url}"
api_key = "sk-video-upstream-secret"

[providers.mm]
kind = "minimax"
base_url = "{fake.origin}"
api_key = "mm-video-upstream-secret"

[[models]]
id = "vo/sora"
provider = "vo"
upstream = "sora-2"
mode = "video"
price_per_second = 0.1

[[models]]
id = "vo/fail"
provider = "vo"
upstream = "sora-2-fail"
mode = "video"
price_per_second = 0.1

[[models]]
id = "vo/refuse"
provider = "vo"
upstream = "sora-2-error400"
mode = "video"
price_per_second = 0.1

[[models]]
id = "vo/forever"
provider = "vo"
upstream = "sora-2-forever"
mode = "video"
price_per_second = 0.1

[[models]]
id = "vo/long"
provider = "vo"
upstream = "sora-2-polls4"
mode = "video"
price_per_second = 0.1

[[models]]
id = "vo/slow"
provider = "vo"
upstream = "sora-2-polls4-ttft150"
mode = "video"
price_per_second = 0.1

[[models]]
id = "mm/hailuo"
provider = "mm"
upstream = "MiniMax-Hailuo-2.3"
mode = "video"
price_per_video = 0.25

[[models]]
id = "mm/fail"
provider = "mm"
upstream = "MiniMax-Hailuo-2.3-fail"
mode = "video"
price_per_video = 0.25

[[models]]
id = "mm/refuse"
provider = "mm"
upstream = "MiniMax-Hailuo-2.3-error1026"
mode = "video"
price_per_video = 0.25

[video]
{video}
"""
    return fake_config(tmp, fake.url, models=models)


@pytest.fixture(scope="module")
def video_fake() -> Iterator[FakeUpstream]:
    fake = FakeUpstream().start()
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory,
           video_fake: FakeUpstream) -> Iterator[GatewayProcess]:
    tmp = tmp_path_factory.mktemp("video")
    process = GatewayProcess(tmp, video_config(tmp, video_fake)).start()
    yield process
    process.stop()


def sdk(server: GatewayProcess, key: str | None = None) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url + "/v1", api_key=key or server.key, max_retries=0)


def video_rows(server: GatewayProcess) -> list[dict[str, object]]:
    return [row for row in server.usage_rows() if str(row["row_id"]).startswith("video:")]


@pytest.mark.parametrize(("model", "cost"), [("vo/sora", 0.8), ("mm/hailuo", 0.25)])
def test_sdk_create_poll_download(server: GatewayProcess, video_fake: FakeUpstream,
                                  model: str, cost: float) -> None:
    client = sdk(server)
    created = client.videos.with_raw_response.create(model=model, prompt="a cat", seconds="8")
    video = created.parse()
    assert (video.status, video.object, video.model) == ("queued", "video", model)
    assert created.headers["x-cost-estimated"] == "true"
    assert float(created.headers["x-cost-usd"]) == pytest.approx(cost)
    assert "x-ratelimit-limit" in created.headers
    done = client.videos.poll(video.id, poll_interval_ms=100)
    assert (done.status, done.progress, done.error) == ("completed", 100, None)
    content = client.videos.download_content(video.id)
    assert len(content.content) == SIZE
    assert content.content[4:8] == b"ftyp"
    for text in (created.text, client.videos.with_raw_response.retrieve(video.id).text):
        assert "127.0.0.1" not in text and "download" not in text  # no upstream URL
    rows = [r for r in video_rows(server) if r["row_id"] == f"video:{video.id}"]
    assert len(rows) == 1
    assert rows[0]["cost_usd"] == pytest.approx(cost)
    assert rows[0]["status"] == 200


@pytest.mark.parametrize("model", ["vo/fail", "mm/fail"])
def test_failure_carries_the_upstream_reason_and_costs_nothing(
        server: GatewayProcess, model: str) -> None:
    client = sdk(server)
    video = client.videos.create(model=model, prompt="something flagged")
    done = client.videos.poll(video.id, poll_interval_ms=100)
    assert done.status == "failed"
    assert done.error is not None and REASON in done.error.message
    row = next(r for r in video_rows(server) if r["row_id"] == f"video:{video.id}")
    assert row["cost_usd"] == 0 and row["status"] == 502
    with pytest.raises(openai.BadRequestError, match=r"failed"):
        client.videos.download_content(video.id)


@pytest.mark.parametrize("model", ["vo/refuse", "mm/refuse"])
def test_refused_at_creation_is_a_4xx_with_the_reason(server: GatewayProcess,
                                                      model: str) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        sdk(server).videos.create(model=model, prompt="something flagged")
    assert REASON in refused.value.message


def test_another_users_job_is_not_found(server: GatewayProcess) -> None:
    video = sdk(server).videos.create(model="vo/sora", prompt="mine")
    other = sdk(server, server.create_key("--name", "other", "--user", "eve@example.com"))
    with pytest.raises(openai.NotFoundError):
        other.videos.retrieve(video.id)
    with pytest.raises(openai.NotFoundError):
        other.videos.download_content(video.id)


def test_a_job_survives_a_restart(tmp_path: Path, video_fake: FakeUpstream) -> None:
    gateway = GatewayProcess(tmp_path, video_config(tmp_path, video_fake, """
first_poll = 0.5
max_poll_interval = 0.2
tick = 0.1
""")).start()
    try:
        video = sdk(gateway).videos.create(model="vo/long", prompt="a long one", seconds="4")
        gateway.stop()  # before it finished: the job stays in the database
        upstream_id = next(k for k, job in video_fake.videos.items()
                           if job.body["prompt"] == "a long one")
        assert video_fake.videos[upstream_id].polls < 4  # not finished when the gateway stopped
        gateway.start()
        done = sdk(gateway).videos.poll(video.id, poll_interval_ms=100)
        assert done.status == "completed"
        assert len(sdk(gateway).videos.download_content(video.id).content) == SIZE
        assert video_fake.videos[upstream_id].polls == 4
        rows = [r for r in video_rows(gateway) if r["row_id"] == f"video:{video.id}"]
        assert len(rows) == 1 and rows[0]["cost_usd"] == pytest.approx(0.4)
    finally:
        gateway.stop()


def test_polling_gives_up_after_max_lifetime(tmp_path: Path, video_fake: FakeUpstream) -> None:
    gateway = GatewayProcess(tmp_path, video_config(tmp_path, video_fake, FAST + """
max_lifetime = 1.0
""")).start()
    try:
        started = time.monotonic()
        video = sdk(gateway).videos.create(model="vo/forever", prompt="never ends")
        done = sdk(gateway).videos.poll(video.id, poll_interval_ms=100)
        assert done.status == "failed" and done.error is not None
        assert "max_lifetime" in done.error.message
        assert time.monotonic() - started < 10
    finally:
        gateway.stop()
