"""Two gateway servers sharing one PostgreSQL database share the video jobs: whichever
instance created a job, exactly one instance polls it at a time (the fake upstream counts
overlapping polls of one job) and its end is billed once (one ledger row per job)."""

from __future__ import annotations

import time
from pathlib import Path

import openai
import pytest

from bench.fake_upstream import FakeUpstream
from tests.conftest import GatewayProcess
from tests.services import pg_query, pg_url  # noqa: F401  (fixture)
from tests.test_video_e2e import video_config

pytestmark = [pytest.mark.e2e, pytest.mark.filterwarnings("ignore::DeprecationWarning")]

EAGER = """
first_poll = 0.05
max_poll_interval = 0.05
tick = 0.02
"""


def test_two_instances_poll_each_job_once_at_a_time_and_bill_it_once(
        tmp_path: Path, pg_url: str) -> None:  # noqa: F811
    fake = FakeUpstream().start()
    schema = f"video_{time.time_ns()}"
    pg_query(pg_url, f"CREATE SCHEMA {schema}")
    url = f"{pg_url}?options=-csearch_path%3D{schema}"
    servers: list[GatewayProcess] = []
    try:
        for name in ("a", "b"):
            (tmp_path / name).mkdir()
            text = video_config(tmp_path / name, fake, EAGER).replace(
                f"sqlite:///{tmp_path / name}/gateway.db", url)
            servers.append(GatewayProcess(tmp_path / name, text))
        servers[0].start()
        servers[1].key = servers[0].key
        servers[1].start()
        clients = [openai.OpenAI(base_url=s.url + "/v1", api_key=s.key, max_retries=0)
                   for s in servers]
        ids = [clients[n % 2].videos.create(model="vo/slow", prompt=f"job {n}").id
               for n in range(8)]
        done = [clients[(n + 1) % 2].videos.poll(i, poll_interval_ms=100)
                for n, i in enumerate(ids)]
        assert {video.status for video in done} == {"completed"}
        assert len(fake.videos) == 8
        assert sum(job.overlaps for job in fake.videos.values()) == 0  # never two at once
        assert all(job.polls == 4 for job in fake.videos.values())  # none polled after its end
        rows = pg_query(pg_url, f"SELECT row_id, cost_usd FROM {schema}.usage "
                             "WHERE row_id LIKE 'video:%'")
        assert sorted(row[0] for row in rows) == sorted(f"video:{i}" for i in ids)
        assert all(float(row[1]) == pytest.approx(0.4) for row in rows)
    finally:
        for server in servers:
            server.stop()
        fake.stop()
