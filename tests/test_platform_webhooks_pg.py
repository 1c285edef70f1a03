"""Two instances on one PostgreSQL database share the webhook outbox (issue 12): each event is
delivered once, whichever instance queued it, and one emitted by both is queued once."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path

from tests.platform_app import running
from tests.services import pg_query, pg_url  # noqa: F401  (fixture)
from tests.webhook_receiver import Receiver, receiver_fixture  # noqa: F401  (fixture)

FAST = """
[webhooks]
allow_private = true
retry_schedule = [0.2, 0.2, 0.2, 0.2, 0.2]
poll_interval = 0.02
"""


async def test_two_instances_deliver_each_event_once(
    tmp_path: Path, receiver: Receiver, pg_url: str,  # noqa: F811
) -> None:
    schema = f"hooks_{time.time_ns()}"
    pg_query(pg_url, f"CREATE SCHEMA {schema}")
    url = f"{pg_url}?options=-csearch_path%3D{schema}"
    receiver.statuses = [500, 500, 500]  # a few retries in the mix
    async with running(tmp_path / "a", FAST, url) as one, \
            running(tmp_path / "b", FAST, url) as two:
        token = await one.key("ann@example.com")
        made = await one.call("POST", "/v1/webhooks", token, json={
            "url": receiver.url, "event_types": ["key.created", "limit.reached"]})
        assert made.status_code == 200, made.text
        for n in range(10):
            gw = one if n % 2 else two
            assert (await gw.call("POST", "/v1/keys", token, json={"name": f"k{n}"})
                    ).status_code == 201
        for gw in (one, two):  # the same event seen by both instances
            gw.gateway.platform.emit("ann@example.com", "limit.reached",
                                     {"key_id": "k", "limit": "requests_per_minute"},
                                     event_id="evt_limit_k_rpm_1")
        deliveries = await receiver.wait_for(14)
        await asyncio.sleep(1.0)  # time for a duplicate to show up, if there were one
        ok = Counter(d.headers["webhook-id"] for d in receiver.deliveries)
        assert len(ok) == 11
        assert sum(ok.values()) == 14 == len(deliveries)  # 11 events, 3 retried once each
        shared = {d.headers["webhook-id"] for d in receiver.deliveries
                  if b'"limit.reached"' in d.body}
        assert len(shared) == 1  # emitted by both instances, queued once
