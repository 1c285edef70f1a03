"""The fake upstream's video jobs (OpenAI and MiniMax), which the video tests stand on: a job
finishes at the poll its model names, fails or is refused as told, and counts its polls,
overlapping polls and downloads."""

from __future__ import annotations

import threading

import httpx2 as httpx
import pytest

from bench.fake_upstream import FakeUpstream
from bench.fake_upstream.videos import REASON, SIZE, video_bytes

pytestmark = pytest.mark.e2e


def test_openai_job_finishes_at_its_polls_word_and_serves_its_file(fake: FakeUpstream) -> None:
    created = httpx.post(f"{fake.url}/videos", json={"model": "sora-2-polls3", "prompt": "a cat"})
    job_id = created.json()["id"]
    assert created.json()["status"] == "queued" and fake.hits["sora-2-polls3"] == 1
    states = [httpx.get(f"{fake.url}/videos/{job_id}").json()["status"] for _ in range(3)]
    assert states == ["in_progress", "in_progress", "completed"]
    content = httpx.get(f"{fake.url}/videos/{job_id}/content")
    assert content.headers["content-type"] == "video/mp4"
    assert content.content == video_bytes(job_id) and len(content.content) == SIZE
    job = fake.videos[job_id]
    assert (job.body["prompt"], job.polls, job.downloads) == ("a cat", 3, 1)
    assert httpx.get(f"{fake.url}/videos/nope").status_code == 404


def create(fake: FakeUpstream, model: str) -> str:
    """An OpenAI video job of ``model``; its id."""
    return str(httpx.post(f"{fake.url}/videos", json={"model": model, "prompt": "x"}).json()["id"])


def test_openai_failures(fake: FakeUpstream) -> None:
    refused = httpx.post(f"{fake.url}/videos", json={"model": "sora-2-error400", "prompt": "x"})
    assert refused.status_code == 400 and REASON in refused.json()["error"]["message"]
    failing = create(fake, "sora-2-fail")
    failed = httpx.get(f"{fake.url}/videos/{failing}").json()
    assert failed["status"] == "failed" and failed["error"]["message"] == REASON
    endless = create(fake, "sora-2-forever")
    assert {httpx.get(f"{fake.url}/videos/{endless}").json()["status"]
            for _ in range(4)} == {"in_progress"}


def test_minimax_job_query_retrieve_download(fake: FakeUpstream) -> None:
    model = "MiniMax-Hailuo-2.3"
    task = httpx.post(f"{fake.origin}/v1/video_generation", json={"model": model, "prompt": "x"})
    task_id = task.json()["task_id"]
    query = f"{fake.origin}/v1/query/video_generation?task_id={task_id}"
    assert [httpx.get(query).json()["status"] for _ in range(2)] == ["Processing", "Success"]
    file_id = httpx.get(query).json()["file_id"]
    retrieved = httpx.get(f"{fake.origin}/v1/files/retrieve?file_id={file_id}").json()["file"]
    assert retrieved["download_url"] == f"{fake.origin}/download/{task_id}.mp4"
    assert httpx.get(retrieved["download_url"]).content == video_bytes(task_id)
    assert fake.videos[task_id].downloads == 1
    refused = httpx.post(f"{fake.origin}/v1/video_generation",
                         json={"model": model + "-error1026", "prompt": "x"}).json()
    assert refused["base_resp"]["status_code"] == 1026
    failing = httpx.post(f"{fake.origin}/v1/video_generation",
                         json={"model": model + "-fail", "prompt": "x"}).json()["task_id"]
    failed = httpx.get(f"{fake.origin}/v1/query/video_generation?task_id={failing}").json()
    assert failed["status"] == "Fail" and failed["base_resp"]["status_code"] == 1027
    unknown = httpx.get(f"{fake.origin}/v1/query/video_generation?task_id=nope").json()
    assert unknown["base_resp"]["status_code"] == 2013


def test_ttft_delays_polls_and_overlapping_polls_are_counted(fake: FakeUpstream) -> None:
    job_id = create(fake, "sora-2-ttft300")
    httpx.get(f"{fake.url}/videos/{job_id}")
    assert fake.videos[job_id].overlaps == 0
    polls = [threading.Thread(target=httpx.get, args=(f"{fake.url}/videos/{job_id}",))
             for _ in range(2)]
    for poll in polls:
        poll.start()
    for poll in polls:
        poll.join()
    assert (fake.videos[job_id].polls, fake.videos[job_id].overlaps) == (3, 1)
