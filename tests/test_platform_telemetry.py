"""Anonymous telemetry (issue 12): accepted without a key, bounded in every way a stranger could
abuse it, and summed for the admin key and enterprise users only."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from sqlalchemy import insert, select

import gateway.platform.telemetry
from gateway.storage.tables import telemetry_events
from tests.platform_app import ADMIN, running

LIMITS = """
[telemetry]
requests_per_minute = 5
max_body_bytes = 20000
max_batch = 50
max_property_bytes = 256
retention_days = 30
"""


async def test_pings_and_events_are_summed_for_the_admin_and_enterprise_only(
    tmp_path: Path,
) -> None:
    async with running(tmp_path) as gw:
        for peer, instance, version in (("10.0.0.1", "a", "0.9.0"), ("10.0.0.2", "b", "0.10.0"),
                                        ("10.0.0.3", "a", "0.9.0")):
            ping = await gw.call("POST", "/v1/telemetry/ping", peer=peer,
                                 json={"instance_id": instance, "version": version, "os": "linux"})
            assert ping.status_code == 200, ping.text
        event = await gw.call("POST", "/v1/telemetry/event",
                              json={"instance_id": "a", "name": "session.start",
                                    "properties": {"model": "echo"}})
        assert event.json()["accepted"] == 1
        batch = await gw.call("POST", "/v1/telemetry/batch", json={"events": [
            {"instance_id": "c", "name": "session.start"},
            {"instance_id": "c", "name": "tool.call", "properties": {"tool": "grep"}}]})
        assert batch.json()["accepted"] == 2
        stats = await gw.call("GET", "/v1/telemetry/stats", ADMIN)
        assert stats.status_code == 200, stats.text
        body = stats.json()
        assert (body["instances"], body["events"], body["pings"]) == (3, 3, 3)
        assert body["by_name"] == {"session.start": 2, "tool.call": 1}
        assert body["by_version"] == {"0.9.0": 1, "0.10.0": 1}
        today = time.strftime("%Y-%m-%d", time.gmtime())
        assert body["by_day"] == {today: 3}
        enterprise = await gw.key("boss@example.com", tier="enterprise")
        assert (await gw.call("GET", "/v1/telemetry/stats", enterprise)).status_code == 200
        free = await gw.key("ann@example.com")
        assert (await gw.call("GET", "/v1/telemetry/stats", free)).status_code == 403
        assert (await gw.call("GET", "/v1/telemetry/stats")).status_code == 401
        assert (await gw.call("GET", "/v1/telemetry/stats", "gw-forged")).status_code == 401


async def test_telemetry_is_bounded_in_size_count_rate_and_age(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(gateway.platform.telemetry, "_PRUNE_EVERY", 0.0)  # not once an hour
    minute = time.time() // 60 * 60 + 30  # every request inside one rate-limit minute
    monkeypatch.setattr(gateway.platform.telemetry, "clock", lambda: minute)
    async with running(tmp_path, LIMITS) as gw:
        events = [{"instance_id": "x", "name": "e"}] * 51
        over = await gw.call("POST", "/v1/telemetry/batch", peer="10.0.1.1",
                             json={"events": events})
        assert over.status_code == 413
        huge = await gw.call("POST", "/v1/telemetry/event", peer="10.0.1.2",
                             content=b'{"instance_id": "x", "name": "' + b"e" * 30000 + b'"}')
        assert huge.status_code == 413
        props = await gw.call("POST", "/v1/telemetry/event", peer="10.0.1.3",
                              json={"instance_id": "x", "name": "e",
                                    "properties": {"blob": "p" * 300}})
        assert props.status_code == 400 and props.json()["error"]["param"] == "properties"
        for body in ({"name": "e"}, {"instance_id": "x", "name": "n" * 200}, [1],
                     {"instance_id": 5, "name": "e"}):
            bad = await gw.call("POST", "/v1/telemetry/event", peer="10.0.1.4", json=body)
            assert bad.status_code == 400, body
        assert (await gw.call("POST", "/v1/telemetry/ping", peer="10.0.1.5",
                              content=b"{not json")).status_code == 400
        # Five a minute per client address; another address is still served.
        answers = [(await gw.call("POST", "/v1/telemetry/ping", peer="10.0.2.1",
                                  json={"instance_id": "r"})).status_code for _ in range(6)]
        assert answers == [200] * 5 + [429]
        assert (await gw.call("POST", "/v1/telemetry/ping", peer="10.0.2.2",
                              json={"instance_id": "r"})).status_code == 200
        # Rows past the retention are deleted by the next write.
        db = gw.gateway.store.db
        old = time.time() - 31 * 86400
        await db.execute(insert(telemetry_events).values(created_at=old, kind="event",
                                                         instance_id="old", name="e"))
        await gw.call("POST", "/v1/telemetry/ping", peer="10.0.2.3", json={"instance_id": "n"})
        left = await db.fetch(select(telemetry_events.c.instance_id))
        assert "old" not in {row[0] for row in left}
