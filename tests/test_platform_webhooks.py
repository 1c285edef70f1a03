"""Signed webhooks (issue 12): the openai SDK verifies what the gateway signs, retries keep
their id, the outbox survives a restart, endpoints are a user's own."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import openai
import pytest

from gateway.storage import UserRecord
from tests.platform_app import ADMIN, Client, running
from tests.webhook_receiver import Receiver, receiver_fixture  # noqa: F401  (fixture)

FAST = """
[webhooks]
allow_private = true
retry_schedule = [0.2, 0.2, 0.2]
poll_interval = 0.05
timeout = 2
disable_after = 3
"""


async def make_endpoint(gw: Client, token: str, url: str, prefix: str = "/v1/webhooks",
                        **fields: object) -> dict[str, object]:
    answer = await gw.call("POST", prefix, token, json={
        "name": "mine", "url": url, "event_types": ["key.created", "key.revoked"], **fields})
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


async def test_the_openai_sdk_verifies_a_test_delivery_and_refuses_a_forged_one(
    tmp_path: Path, receiver: Receiver,
) -> None:
    async with running(tmp_path, FAST) as gw:
        token = await gw.key("ann@example.com")
        made = await make_endpoint(gw, token, receiver.url, "/v1/webhook_endpoints")
        assert made["object"] == "webhook_endpoint"
        secret = str(made["signing_secret"])
        assert secret.startswith("whsec_")
        assert {"id", "name", "url", "event_types", "created_at"} <= set(made)
        tested = await gw.call("POST", f"/v1/webhook_endpoints/{made['id']}/test", token,
                               json={"event_type": "key.revoked"})
        assert tested.status_code == 200, tested.text
        assert {k: tested.json()[k] for k in ("object", "status_code", "success",
                                               "webhook_endpoint_id", "event_type")} == {
            "object": "webhook_endpoint.test", "status_code": 200, "success": True,
            "webhook_endpoint_id": made["id"], "event_type": "key.revoked"}
        delivery = (await receiver.wait_for(1))[0]
        client = openai.OpenAI(api_key="unused")
        client.webhooks.verify_signature(delivery.body, delivery.headers, secret=secret)
        unwrapped = client.webhooks.unwrap(delivery.body, delivery.headers, secret=secret)
        assert unwrapped.type == "key.revoked"  # type: ignore[comparison-overlap]
        event = json.loads(delivery.body)
        assert event["object"] == "event" and event["type"] == "key.revoked"
        assert {"id", "created_at", "data"} <= set(event)
        forged = dict(delivery.headers, **{"webhook-signature": "v1,AAAAAAAAAAAAAAAAAAAAAAAA"})
        with pytest.raises(openai.InvalidWebhookSignatureError):
            client.webhooks.unwrap(delivery.body, forged, secret=secret)
        with pytest.raises(openai.InvalidWebhookSignatureError):
            client.webhooks.verify_signature(delivery.body.replace(b"key", b"kex"),
                                             delivery.headers, secret=secret)
        # The secret is shown at creation and rotation only; listings show its hint.
        listed = (await gw.call("GET", "/v1/webhooks", token)).json()["data"]
        assert "signing_secret" not in listed[0]
        assert listed[0]["signing_secret_hint"].endswith(secret[-4:])
        rotated = await gw.call("POST", f"/v1/webhook_endpoints/{made['id']}/rotate_secret",
                                token)
        assert rotated.json()["signing_secret"] != secret
        log = await gw.call("GET", f"/v1/webhooks/{made['id']}/deliveries", token)
        assert {k: log.json()["data"][0][k] for k in (
            "status_code", "event_type", "delivery_status", "attempts", "next_attempt_at")} == {
            "status_code": 200, "event_type": "key.revoked", "delivery_status": "test",
            "attempts": 1, "next_attempt_at": None}


async def test_a_failed_delivery_is_retried_with_the_same_id_and_body(
    tmp_path: Path, receiver: Receiver,
) -> None:
    receiver.statuses = [500, 503]
    async with running(tmp_path, FAST) as gw:
        token = await gw.key("ann@example.com")
        made = await make_endpoint(gw, token, receiver.url)
        created = await gw.call("POST", "/v1/keys", token, json={"name": "ci"})
        assert created.status_code in (200, 201), created.text
        deliveries = await receiver.wait_for(3)
        assert len({d.headers["webhook-id"] for d in deliveries}) == 1
        assert len({d.body for d in deliveries}) == 1
        event = json.loads(deliveries[0].body)
        assert event["type"] == "key.created"
        assert event["data"]["key_id"] == created.json()["id"]
        await asyncio.sleep(0.3)
        log = (await gw.call("GET", f"/v1/webhooks/{made['id']}/deliveries", token)).json()
        assert sorted(a["status_code"] for a in log["data"]) == [200, 500, 503]
        assert any(a["error"] == "HTTP 500" for a in log["data"])
        assert {(a["event_type"], a["delivery_status"], a["attempts"], a["next_attempt_at"])
                for a in log["data"]} == {("key.created", "delivered", 3, None)}


async def test_a_restart_between_the_failure_and_the_retry_still_delivers(
    tmp_path: Path, receiver: Receiver,
) -> None:
    receiver.statuses = [500]
    slow = FAST.replace("retry_schedule = [0.2, 0.2, 0.2]", "retry_schedule = [1.5]")
    async with running(tmp_path, slow) as gw:
        token = await gw.key("ann@example.com")
        made = await make_endpoint(gw, token, receiver.url)
        await gw.call("POST", "/v1/keys", token, json={"name": "ci"})
        first = await receiver.wait_for(1)
        for _ in range(20):  # the attempt is logged just after the receiver answers
            log = (await gw.call("GET", f"/v1/webhooks/{made['id']}/deliveries", token)).json()
            if log["data"]:
                break
            await asyncio.sleep(0.05)
        pending = log["data"][0]
        assert (pending["delivery_status"], pending["attempts"]) == ("pending", 1)
        assert pending["next_attempt_at"] == pytest.approx(pending["created_at"] + 1.5, abs=0.5)
    assert len(first) == 1  # stopped before the retry was due
    async with running(tmp_path, slow):
        deliveries = await receiver.wait_for(2)
    assert deliveries[0].headers["webhook-id"] == deliveries[1].headers["webhook-id"]


async def test_an_endpoint_that_keeps_failing_is_disabled_and_says_so(
    tmp_path: Path, receiver: Receiver,
) -> None:
    receiver.statuses = [500] * 10
    async with running(tmp_path, FAST) as gw:
        token = await gw.key("ann@example.com")
        made = await make_endpoint(gw, token, receiver.url)
        await gw.call("POST", "/v1/keys", token, json={"name": "ci"})
        await receiver.wait_for(3)
        for _ in range(50):
            entry = (await gw.call("GET", f"/v1/webhook_endpoints/{made['id']}", token)).json()
            if entry["status"] == "disabled":
                break
            await asyncio.sleep(0.1)
        assert entry["status"] == "disabled"
        assert "failed deliveries in a row" in entry["disabled_reason"]
        enabled = await gw.call("POST", f"/v1/webhook_endpoints/{made['id']}", token,
                                json={"disabled": False})
        assert enabled.json()["status"] == "enabled"


async def test_endpoints_are_their_owners_only_and_need_a_manage_key(
    tmp_path: Path, receiver: Receiver,
) -> None:
    async with running(tmp_path, FAST) as gw:
        ann = await gw.key("ann@example.com")
        bob = await gw.key("bob@example.com")
        made = await make_endpoint(gw, ann, receiver.url)
        path = f"/v1/webhooks/{made['id']}"
        for method, suffix in (("GET", ""), ("POST", ""), ("DELETE", ""),
                               ("POST", "/rotate_secret"), ("POST", "/test"),
                               ("GET", "/deliveries")):
            answer = await gw.call(method, path + suffix, bob, json={})
            assert answer.status_code == 404, (method, suffix, answer.text)
        assert (await gw.call("GET", "/v1/webhooks", bob)).json()["data"] == []
        inference = await gw.key("ann@example.com", permissions="inference")
        assert (await gw.call("GET", "/v1/webhooks", inference)).status_code == 403
        assert (await gw.call("GET", "/v1/webhooks")).status_code == 401
        gone = await gw.call("DELETE", path, ann)
        assert gone.json() == {"id": made["id"], "object": "webhook_endpoint.deleted",
                               "deleted": True}
        assert (await gw.call("GET", path, ann)).status_code == 404


async def test_the_event_types_are_listed_without_a_key_with_what_each_means(
    tmp_path: Path,
) -> None:
    async with running(tmp_path, FAST) as gw:
        listed = (await gw.call("GET", "/v1/webhooks/event_types")).json()["data"]
    types = {e["type"]: e for e in listed}
    assert set(types) >= {"key.created", "key.revoked", "limit.reached", "balance.low",
                          "account.blocked", "video.completed"}
    assert types["key.created"]["reserved"] is False and types["key.created"]["description"]
    assert types["video.completed"]["reserved"] is True


async def test_limit_reached_is_sent_once_per_window_and_a_block_is_sent(
    tmp_path: Path, receiver: Receiver,
) -> None:
    tight = FAST + "\n[tiers.tight]\nrequests_per_minute = 2\n"
    async with running(tmp_path, tight) as gw:
        await gw.gateway.accounts.store.insert_user(UserRecord(
            email="ann@example.com", id="u1", password_hash="x", tier="tight",
            created_at=time.time()))
        token = await gw.key("ann@example.com", tier="tight")
        await make_endpoint(gw, token, receiver.url,
                            event_types=["limit.reached", "account.blocked"])
        chat = {"model": "mock/echo", "messages": [{"role": "user", "content": "hi"}]}
        answers = [(await gw.call("POST", "/v1/chat/completions", token, json=chat)).status_code
                   for _ in range(5)]
        assert answers == [200, 200, 429, 429, 429]
        delivered = await receiver.wait_for(1)
        blocked = await gw.call("POST", "/v1/admin/users/ann@example.com/block", ADMIN,
                                json={})
        assert blocked.status_code == 200, blocked.text
        delivered = await receiver.wait_for(2)
        await asyncio.sleep(0.5)
        events = [json.loads(d.body) for d in receiver.deliveries]
        assert [e["type"] for e in events] == ["limit.reached", "account.blocked"]
        assert events[0]["data"]["limit"] == "rate_limit_exceeded"
        assert events[1]["data"]["email"] == "ann@example.com"
        assert len(delivered) == 2


async def test_balance_low_goes_to_prepaid_users_under_their_threshold_once_a_day(
    tmp_path: Path, receiver: Receiver,
) -> None:
    prepaid = FAST + "\n[tiers.prepay]\nprepaid = true\n"
    async with running(tmp_path, prepaid) as gw:
        store = gw.gateway.accounts.store
        for email, tier in (("ann@example.com", "prepay"), ("bob@example.com", "free")):
            await store.insert_user(UserRecord(email=email, id=email[:3], password_hash="x",
                                               tier=tier, balance_usd=0.5,
                                               created_at=time.time()))
            token = await gw.key(email, tier=tier)
            await make_endpoint(gw, token, receiver.url, event_types=["balance.low"],
                                balance_low_usd=1.0)
        watch = gw.gateway.platform.balance_watch
        assert await watch.check() == 1  # bob's tier is not prepaid
        delivered = await receiver.wait_for(1)
        await watch.check()  # still low, same day: not again
        await asyncio.sleep(0.5)
        assert len(receiver.deliveries) == 1
        event = json.loads(delivered[0].body)
        assert event["type"] == "balance.low"
        assert event["data"] == {"balance_usd": 0.5, "threshold_usd": 1.0}
