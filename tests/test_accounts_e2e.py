"""Accounts through the real server: signup/login, keys, isolation, headers, costs, 402/403/503,
limits, BYOK, usage and billing."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import openai
import pytest

from bench.fake_upstream import FakeUpstream
from tests.conftest import FAKE_MODELS, GatewayProcess, fake_config

pytestmark = pytest.mark.e2e

ADMIN = "admin-key-for-tests-at-least-32-characters"
EXTRA = f"""
[[models]]
id = "fake/pricey"
provider = "fake"
upstream = "pricey"
input_price = 0.0
output_price = 250000.0

[accounts]
admin_key = "{ADMIN}"
secret = "server-secret-for-tests-of-at-least-32-bytes"
self_service_tiers = ["pro"]
login_max_failures = 3
signup = true
signups_per_hour = 1000
notify = "log"  # test_password_reset_and_checkout reads the reset token from the log

[tiers.free]
requests_per_minute = 1000
credits_per_day = 1000
max_keys = 3

[tiers.pro]
requests_per_minute = 1000
max_keys = 5
prepaid = true

[tiers.tight]
requests_per_minute = 5

[tiers.daily]
requests_per_day = 3

[tiers.enterprise]
"""


@pytest.fixture(scope="module")
def gw(
    tmp_path_factory: pytest.TempPathFactory, upstream: FakeUpstream
) -> Iterator[GatewayProcess]:
    tmp = tmp_path_factory.mktemp("accounts")
    process = GatewayProcess(tmp, fake_config(tmp, upstream.url, EXTRA, FAKE_MODELS)).start()
    yield process
    process.stop()


def post(gw: GatewayProcess, path: str, body: dict[str, Any], token: str | None = None,
         ) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.post(gw.url + path, json=body, headers=headers, timeout=10)


def get(gw: GatewayProcess, path: str, token: str) -> httpx.Response:
    return httpx.get(gw.url + path, headers={"Authorization": f"Bearer {token}"}, timeout=10)


def signup(gw: GatewayProcess, email: str, password: str = "correct horse") -> str:
    answer = post(gw, "/v1/auth/signup", {"email": email, "password": password})
    assert answer.status_code == 201, answer.text
    return str(answer.json()["token"])


def admin(gw: GatewayProcess, email: str, action: str, **body: Any) -> httpx.Response:
    answer = post(gw, f"/v1/admin/users/{email}/{action}", body, ADMIN)
    assert answer.status_code == 200, answer.text
    return answer


def chat(gw: GatewayProcess, token: str, model: str = "fake/ok", text: str = "one two",
         **extra: Any) -> httpx.Response:
    return post(gw, "/v1/chat/completions",
                {"model": model, "messages": [{"role": "user", "content": text}], **extra}, token)


def usage_row(gw: GatewayProcess, token: str, request_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 5
    while True:
        answer = get(gw, f"/v1/usage/requests/{request_id}", token)
        if answer.status_code == 200 or time.monotonic() > deadline:
            assert answer.status_code == 200, answer.text
            return dict(answer.json())
        time.sleep(0.05)


def test_signup_and_login_refuse_bad_input_and_throttle(gw: GatewayProcess) -> None:
    weak = post(gw, "/v1/auth/signup", {"email": "weak@example.com", "password": "short"})
    assert weak.status_code == 400 and weak.json()["error"]["param"] == "password"
    bad = post(gw, "/v1/auth/signup", {"email": "not-an-email", "password": "long enough"})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "email"
    signup(gw, "dup@example.com")
    again = post(gw, "/v1/auth/signup", {"email": "DUP@example.com", "password": "other pass"})
    assert again.status_code == 400 and again.json()["error"]["code"] == "email_taken"
    wrong = post(gw, "/v1/auth/login", {"email": "dup@example.com", "password": "wrong pass"})
    assert wrong.status_code == 401
    for _ in range(2):
        post(gw, "/v1/auth/login", {"email": "dup@example.com", "password": "wrong pass"})
    throttled = post(gw, "/v1/auth/login", {"email": "dup@example.com",
                                            "password": "correct horse"})
    assert throttled.status_code == 429
    assert throttled.json()["error"]["code"] == "login_throttled"
    assert int(throttled.headers["retry-after"]) > 0


def test_new_user_calls_at_once_with_headers_and_exact_cost(gw: GatewayProcess) -> None:
    token = signup(gw, "new@example.com")
    login = post(gw, "/v1/auth/login", {"email": "new@example.com", "password": "correct horse"})
    assert login.status_code == 200
    session = login.json()["token"]
    answer = chat(gw, session)
    assert answer.status_code == 200, answer.text
    headers = answer.headers
    assert headers["x-ratelimit-limit"] == "1000"
    assert headers["x-ratelimit-remaining"] == "999"
    assert int(headers["x-ratelimit-reset"]) >= int(time.time())
    assert headers["x-tier"] == "free"
    assert headers["x-key-source"] == "pool"
    assert headers["x-credits-remaining"] == "999"
    # fake upstream: prompt 10 (4 cached), completion 3 ("fake: one two");
    # $1/M input, $0.5/M cached, $2/M output -> (6 + 2 + 6) / 1e6
    assert headers["x-cost-usd"] == "0.00001400"
    me = get(gw, "/v1/auth/me", token).json()
    assert me["email"] == "new@example.com" and me["tier"] == "free"
    assert me["usage"]["credits_today"] == 1  # requests/day is unlimited on this free tier
    assert post(gw, "/v1/auth/logout", {}, session).status_code == 200
    assert chat(gw, session).status_code == 401


def test_stream_is_billed_from_final_usage(gw: GatewayProcess) -> None:
    token = signup(gw, "streamer@example.com")
    client = openai.OpenAI(base_url=f"{gw.url}/v1", api_key=token, max_retries=0)
    with client.chat.completions.with_streaming_response.create(
        model="fake/ok", messages=[{"role": "user", "content": "a b c d"}], stream=True
    ) as response:
        assert response.headers["x-cost-estimated"] == "true"
        request_id = response.headers["x-request-id"]
        text = "".join(c.choices[0].delta.content or "" for c in response.parse() if c.choices)
    assert text == "fake: a b c d"
    row = usage_row(gw, token, request_id)
    # prompt 10 (4 cached), completion 5: (6 * 1 + 4 * 0.5 + 5 * 2) / 1e6
    assert row["cost_usd"] == pytest.approx(18e-6)
    assert (row["prompt_tokens"], row["completion_tokens"], row["estimated"]) == (10, 5, 0)
    summary = get(gw, "/v1/usage", token).json()
    assert summary["requests"] == 1 and summary["by_model"]["fake/ok"]["total_tokens"] == 15
    assert summary["by_provider"]["fake"]["cost_usd"] == pytest.approx(18e-6)
    daily = get(gw, "/v1/usage/daily?days=30", token).json()["data"]
    assert len(daily) == 30 and daily[-1]["requests"] == 1
    invoices = get(gw, "/v1/billing/invoices", token).json()["data"]
    assert invoices[0]["amount_due_usd"] == pytest.approx(18e-6)


def test_keys_api_and_isolation(gw: GatewayProcess) -> None:
    alice, bob = signup(gw, "alice@example.com"), signup(gw, "bob@example.com")
    made = post(gw, "/v1/keys", {"name": "ci", "allowed_models": ["fake/ok"]}, alice)
    assert made.status_code == 201
    key, key_id = made.json()["key"], made.json()["id"]
    assert chat(gw, key).status_code == 200
    refused = chat(gw, key, model="echo")
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "model_not_allowed"
    listed = get(gw, "/v1/keys", alice).json()["data"]
    assert [k["id"] for k in listed] == [key_id]
    assert "key" not in listed[0] and key.startswith(listed[0]["prefix"])
    assert get(gw, "/v1/keys", bob).json()["data"] == []
    gone = httpx.delete(f"{gw.url}/v1/keys/{key_id}", headers={"Authorization": f"Bearer {bob}"})
    assert gone.status_code == 404
    request_id = chat(gw, key).headers["x-request-id"]
    usage_row(gw, alice, request_id)
    assert get(gw, f"/v1/usage/requests/{request_id}", bob).status_code == 404
    assert get(gw, "/v1/usage", bob).json()["requests"] == 0
    for _ in range(2):
        assert post(gw, "/v1/keys", {}, alice).status_code == 201
    over = post(gw, "/v1/keys", {}, alice)  # free: 3 keys at most
    assert over.status_code == 403 and over.json()["error"]["code"] == "key_limit_reached"
    revoked = httpx.delete(f"{gw.url}/v1/keys/{key_id}",
                           headers={"Authorization": f"Bearer {alice}"})
    assert revoked.status_code == 200
    assert chat(gw, key).status_code == 401  # at once, on this instance


def test_balance_402_and_concurrent_overspend(gw: GatewayProcess, fake: FakeUpstream) -> None:
    token = signup(gw, "payer@example.com")
    admin(gw, "payer@example.com", "tier", tier="pro")
    broke = chat(gw, token, model="fake/pricey", text="a b c", max_tokens=4)
    assert broke.status_code == 402
    assert broke.json()["error"]["type"] == "insufficient_balance"
    admin(gw, "payer@example.com", "topup", amount_usd=10.0)

    async def burst() -> list[int]:
        async with httpx.AsyncClient(timeout=30) as client:
            answers = await asyncio.gather(*(
                client.post(f"{gw.url}/v1/chat/completions", headers={
                    "Authorization": f"Bearer {token}"}, json={
                    "model": "fake/pricey", "max_tokens": 4,
                    "messages": [{"role": "user", "content": "a b c"}]})
                for _ in range(100)))
        return [a.status_code for a in answers]

    statuses = asyncio.run(burst())
    # each call costs exactly $1 (4 output tokens at $250k/M): $10 serves 10
    assert statuses.count(200) == 10 and statuses.count(402) == 90
    assert fake.hits["pricey"] == 10  # refused before any upstream call
    deadline = time.monotonic() + 5
    while get(gw, "/v1/auth/me", token).json()["balance_usd"] > 1e-9:
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_blocked_403_and_maintenance_503(gw: GatewayProcess) -> None:
    token = signup(gw, "blocked@example.com")
    admin(gw, "blocked@example.com", "block")
    refused = chat(gw, token)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "account_blocked"
    admin(gw, "blocked@example.com", "unblock")
    assert chat(gw, token).status_code == 200
    on = post(gw, "/v1/admin/maintenance", {"enabled": True, "message": "Upgrading, back soon"},
              ADMIN)
    assert on.status_code == 200
    try:
        down = chat(gw, token)
        assert down.status_code == 503
        assert down.json()["error"] == {"message": "Upgrading, back soon", "type": "maintenance",
                                        "code": "maintenance", "param": None}
    finally:
        post(gw, "/v1/admin/maintenance", {"enabled": False}, ADMIN)
    assert chat(gw, token).status_code == 200
    assert httpx.get(f"{gw.url}/v1/admin/users", headers={
        "Authorization": f"Bearer {token}"}).status_code == 401


def test_minute_and_daily_limits_through_the_server(gw: GatewayProcess) -> None:
    tight, daily = signup(gw, "tight@example.com"), signup(gw, "daily@example.com")
    admin(gw, "tight@example.com", "tier", tier="tight")
    admin(gw, "daily@example.com", "tier", tier="daily")
    statuses = [chat(gw, tight) for _ in range(7)]
    assert [a.status_code for a in statuses] == [200] * 5 + [429] * 2
    assert statuses[-1].json()["error"]["code"] == "rate_limit_exceeded"
    assert int(statuses[-1].headers["retry-after"]) >= 1
    assert statuses[4].headers["x-ratelimit-remaining"] == "0"
    answers = [chat(gw, daily) for _ in range(4)]
    assert [a.status_code for a in answers] == [200] * 3 + [429]
    assert answers[-1].json()["error"]["code"] == "daily_limit_exceeded"
    assert answers[-1].json()["error"]["type"] == "limit"


def test_byok_uses_the_users_key_and_draws_no_balance(gw: GatewayProcess,
                                                      fake: FakeUpstream) -> None:
    token = signup(gw, "byok@example.com")
    admin(gw, "byok@example.com", "tier", tier="pro")  # prepaid, balance 0
    stored = httpx.put(f"{gw.url}/v1/provider-keys/fake", json={"api_key": "sk-users-own-1234"},
                       headers={"Authorization": f"Bearer {token}"})
    assert stored.status_code == 200 and stored.json()["hint"] == "…1234"
    answer = chat(gw, token)
    assert answer.status_code == 200, answer.text
    assert answer.headers["x-key-source"] == "byok"
    assert fake.requests[-1].headers["Authorization"] == "Bearer sk-users-own-1234"
    assert "sk-users-own" not in get(gw, "/v1/provider-keys", token).text
    db = (Path(gw.tmp) / "gateway.db").read_bytes()
    assert b"sk-users-own-1234" not in db


def test_password_reset_and_checkout(gw: GatewayProcess) -> None:
    token = signup(gw, "forgetful@example.com")
    assert post(gw, "/v1/auth/forgot", {"email": "forgetful@example.com"}).status_code == 202
    assert post(gw, "/v1/auth/forgot", {"email": "nobody@example.com"}).status_code == 202
    deadline = time.monotonic() + 5
    while not (found := re.findall(r"gwreset_[A-Za-z0-9_-]+", gw.logs())):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    reset = post(gw, "/v1/auth/reset", {"token": found[-1], "password": "brand new pass"})
    assert reset.status_code == 200
    again = post(gw, "/v1/auth/reset", {"token": found[-1], "password": "another pass"})
    assert again.status_code == 400 and again.json()["error"]["code"] == "invalid_reset_token"
    assert get(gw, "/v1/auth/me", token).status_code == 401  # sessions ended by the reset
    login = post(gw, "/v1/auth/login", {"email": "forgetful@example.com",
                                        "password": "brand new pass"})
    session = login.json()["token"]
    tiers = {t["id"]: t for t in httpx.get(f"{gw.url}/v1/tiers").json()["data"]}
    assert tiers["pro"]["self_service"] and tiers["pro"]["prepaid"]
    assert not tiers["enterprise"]["self_service"]
    denied = post(gw, "/v1/billing/checkout", {"tier": "enterprise"}, session)
    assert denied.status_code == 403
    assert denied.json()["error"]["code"] == "self_service_disabled"
    done = post(gw, "/v1/billing/checkout", {"tier": "pro"}, session)
    assert done.status_code == 200 and done.json()["tier"] == "pro"
    assert get(gw, "/v1/auth/me", session).json()["tier"] == "pro"


def test_cut_stream_without_usage_is_counted_with_the_tokenizer(gw: GatewayProcess) -> None:
    from gateway.usage_estimate import count_tokens

    token = signup(gw, "cut@example.com")
    with httpx.stream("POST", f"{gw.url}/v1/chat/completions", headers={
            "Authorization": f"Bearer {token}"}, json={
            "model": "fake/cut", "stream": True,
            "messages": [{"role": "user", "content": "hello there world"}]}) as answer:
        request_id = answer.headers["x-request-id"]
        received = answer.read()
    assert b"fake: " in received and b'"error"' in received  # two words, then an error frame
    row = usage_row(gw, token, request_id)
    assert row["estimated"] == 1
    assert row["prompt_tokens"] == count_tokens("hello there world")
    assert row["completion_tokens"] == count_tokens("fake: hello ") > 0


def test_per_key_limits_and_admin_listing(gw: GatewayProcess) -> None:
    token = signup(gw, "perkey@example.com")
    made = post(gw, "/v1/keys", {"name": "slow", "requests_per_minute": 2}, token).json()
    assert made["requests_per_minute"] == 2
    statuses = [chat(gw, made["key"]).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    assert chat(gw, token).status_code == 200  # the user's other credentials are not limited
    users = httpx.get(f"{gw.url}/v1/admin/users", headers={"Authorization": f"Bearer {ADMIN}"})
    assert "perkey@example.com" in [u["email"] for u in users.json()["data"]]
    assert "password_hash" not in users.text
