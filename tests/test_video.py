"""Video jobs in process (the built-in mock provider): the bad-input matrix answers 4xx in the
OpenAI shape, a job completes and is billed, a failed one is not charged (its credits come
back), webhooks announce both ends, and /metrics counts them."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from gateway.storage import UserRecord
from gateway.storage.tables import usage
from tests.platform_app import Client, running
from tests.webhook_receiver import Receiver, receiver_fixture  # noqa: F401  (fixture)

pytestmark = pytest.mark.unit

VIDEO = """
[[models]]
id = "mock/video"
provider = "mock"
upstream = "video"
mode = "video"
price_per_second = 0.01
credits = 2

[video]
first_poll = 0.02
tick = 0.02
max_seconds = 20

[webhooks]
allow_private = true
retry_schedule = [0.2]
poll_interval = 0.02
"""
PNG = b"\x89PNG\r\n\x1a\n" + b"{[" * 200  # brackets: a multipart body is not JSON


async def finished(gw: Client, token: str, video_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        answer = await gw.call("GET", f"/v1/videos/{video_id}", token)
        assert answer.status_code == 200, answer.text
        if answer.json()["status"] in ("completed", "failed"):
            return dict(answer.json())
        await asyncio.sleep(0.02)
    raise AssertionError(f"{video_id} did not finish")


BAD: list[tuple[Any, int, str | None]] = [
    (b"not json", 400, None),
    ([1, 2], 400, None),
    ({"prompt": "a cat"}, 400, "model"),
    ({"model": "mock/video"}, 400, "prompt"),
    ({"model": "mock/video", "prompt": "  "}, 400, "prompt"),
    ({"model": "mock/video", "prompt": "x" * 10_001}, 400, "prompt"),
    ({"model": "mock/video", "prompt": "a", "seconds": 0}, 400, "seconds"),
    ({"model": "mock/video", "prompt": "a", "seconds": "four"}, 400, "seconds"),
    ({"model": "mock/video", "prompt": "a", "seconds": 21}, 400, "seconds"),
    ({"model": "mock/video", "prompt": "a", "seconds": True}, 400, "seconds"),
    ({"model": "mock/video", "prompt": "a", "size": "huge"}, 400, "size"),
    ({"model": "mock/video", "prompt": "a", "input_reference": "ftp://x/y.png"}, 400,
     "input_reference"),
    ({"model": "mock/video", "prompt": "a", "input_reference": {"file_id": "f"}}, 400,
     "input_reference"),
    ({"model": "mock/video", "prompt": "a", "input_reference": 7}, 400, "input_reference"),
    ({"model": "mock/echo", "prompt": "a"}, 400, "model"),
    ({"model": "nope/none", "prompt": "a"}, 404, "model"),
]


@pytest.mark.parametrize(("body", "status", "param"), BAD)
async def test_bad_input_is_a_4xx_naming_the_field(tmp_path: Path, body: Any, status: int,
                                                   param: str | None) -> None:
    async with running(tmp_path, VIDEO) as gw:
        token = await gw.key("ann@example.com")
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        for path in ("/v1/videos", "/v1/video/generations"):
            answer = await gw.call("POST", path, token, content=content)
            assert answer.status_code == status, answer.text
            error = answer.json()["error"]
            assert error["message"] and error["type"]
            assert error["param"] == param


async def test_no_key_unknown_job_and_unready_content(tmp_path: Path) -> None:
    async with running(tmp_path, VIDEO) as gw:
        token = await gw.key("ann@example.com")
        assert (await gw.call("POST", "/v1/videos", json={"model": "mock/video",
                                                          "prompt": "a"})).status_code == 401
        for path in ("/v1/videos/video_nope", "/v1/video/generations/video_nope/content"):
            answer = await gw.call("GET", path, token)
            assert answer.status_code == 404 and answer.json()["error"]["message"]
        made = (await gw.call("POST", "/v1/videos", token, json={
            "model": "mock/video", "prompt": "a"})).json()
        answer = await gw.call("GET", f"/v1/videos/{made['id']}/content?variant=thumbnail",
                               token)
        assert answer.status_code == 400


async def test_multipart_with_an_uploaded_reference(tmp_path: Path) -> None:
    """The openai SDK's shape: multipart/form-data, the reference image as a file."""
    async with running(tmp_path, VIDEO) as gw:
        token = await gw.key("ann@example.com")
        answer = await gw.call("POST", "/v1/videos", token, data={
            "model": "mock/video", "prompt": "a cat", "seconds": "8", "size": "1280x720"},
            files={"input_reference": ("cat.png", PNG, "image/png")})
        assert answer.status_code == 200, answer.text
        video = answer.json()
        assert (video["status"], video["seconds"], video["size"]) == ("queued", "8", "1280x720")
        assert float(answer.headers["x-cost-usd"]) == pytest.approx(0.08)
        done = await finished(gw, token, video["id"])
        assert done["status"] == "completed" and done["completed_at"]
        content = await gw.call("GET", f"/v1/video/generations/{video['id']}/content", token)
        assert content.status_code == 200
        assert content.headers["content-type"] == "video/mp4"
        assert content.content[4:8] == b"ftyp"


async def test_completion_and_failure_billed_counted_and_announced(
        tmp_path: Path, receiver: Receiver) -> None:
    async with running(tmp_path, VIDEO) as gw:
        token = await gw.key("ann@example.com")
        hook = await gw.call("POST", "/v1/webhooks", token, json={
            "url": receiver.url, "event_types": ["video.completed", "video.failed"]})
        assert hook.status_code == 200, hook.text
        ok = await gw.call("POST", "/v1/video/generations", token, json={
            "model": "mock/video", "prompt": "a cat", "seconds": 5})
        credits = int(ok.headers["x-credits-remaining"])
        failing = await gw.call("POST", "/v1/video/generations", token, json={
            "model": "mock/video", "prompt": "[fail] a cat"})
        assert int(failing.headers["x-credits-remaining"]) == credits - 2
        done = await finished(gw, token, ok.json()["id"])
        failed = await finished(gw, token, failing.json()["id"])
        assert done["status"] == "completed"
        assert failed["status"] == "failed" and "asked to fail" in failed["error"]["message"]
        again = await gw.call("POST", "/v1/video/generations", token, json={
            "model": "mock/video", "prompt": "a dog"})
        assert int(again.headers["x-credits-remaining"]) == credits - 2  # the failed one's back
        rows = await gw.gateway.store.db.fetch(select(usage.c.row_id, usage.c.cost_usd,
                                                      usage.c.status))
        billed = {row.row_id: (row.cost_usd, row.status) for row in rows}
        assert billed[f"video:{done['id']}"] == (pytest.approx(0.05), 200)
        assert billed[f"video:{failed['id']}"] == (0, 502)
        deliveries = await receiver.wait_for(2)
        events = {json.loads(d.body)["type"]: json.loads(d.body)["data"] for d in deliveries}
        assert events["video.completed"]["id"] == done["id"]
        assert "asked to fail" in events["video.failed"]["error"]["message"]
        metrics = (await gw.call("GET", "/metrics")).text
        assert 'model="mock/video"' in metrics


async def test_prepaid_balance_reserved_at_creation_and_spent_once(tmp_path: Path) -> None:
    async with running(tmp_path, VIDEO + "\n[tiers.prepay]\nprepaid = true\n") as gw:
        await gw.gateway.accounts.store.insert_user(UserRecord(
            email="pat@example.com", id="u-pat", password_hash="x", tier="prepay",
            balance_usd=0.1, created_at=time.time()))
        token = await gw.key("pat@example.com", tier="prepay")

        async def create(seconds: int) -> Any:
            return await gw.call("POST", "/v1/videos", token, json={
                "model": "mock/video", "prompt": "a cat", "seconds": seconds})

        refused = await create(20)  # $0.20 on a $0.10 balance
        assert refused.status_code == 402, refused.text
        assert "balance" in refused.json()["error"]["message"]
        made = await create(5)
        assert made.status_code == 200
        assert (await finished(gw, token, made.json()["id"]))["status"] == "completed"
        billed = await gw.call("GET", f"/v1/videos/{made.json()['id']}", token)
        assert float(billed.headers["x-cost-usd"]) == pytest.approx(0.05)
        assert (await create(6)).status_code == 402  # $0.05 is left
        assert (await create(4)).status_code == 200
