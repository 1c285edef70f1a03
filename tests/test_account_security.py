"""Account security (issue 11) and revocation consistency (issue 15 item 8), in-process: the
real app driven through httpx's ASGI transport, on SQLite in a temporary folder."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from gateway.accounts.keys import create_key
from gateway.config import ConfigError, load_config, parse_config
from gateway.wiring import Gateway, build_gateway
from tests.seam import in_process

ADMIN = "admin-key-of-the-security-tests-0123456789"
BASE = """
[storage]
url = "sqlite:///{tmp}/gateway.db"
ledger_flush_interval = 0.05

[server]
trusted_proxies = ["127.0.0.1"]

[providers.mock]
kind = "mock"

[[models]]
id = "mock/echo"
provider = "mock"
upstream = "echo"

[tiers.free]
[tiers.enterprise]
"""
ACCOUNTS = """
[accounts]
admin_key = "{admin}"
signup = true
signups_per_hour = 100
login_max_failures = 5
"""


class Client:
    """Requests to the in-process app, each from the client address ``peer``."""

    def __init__(self, http: httpx.AsyncClient, gateway: Gateway) -> None:
        self.http = http
        self.gateway = gateway

    async def call(self, method: str, path: str, token: str | None = None,
                   peer: str = "10.0.0.1", **kwargs: Any) -> httpx.Response:
        headers = {"X-Forwarded-For": peer}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return await self.http.request(method, path, headers=headers, **kwargs)

    async def signup(self, email: str, password: str = "correct horse",
                     peer: str = "10.0.0.1") -> httpx.Response:
        return await self.call("POST", "/v1/auth/signup", peer=peer,
                               json={"email": email, "password": password})

    async def login(self, email: str, password: str = "correct horse",
                    peer: str = "10.0.0.1") -> httpx.Response:
        return await self.call("POST", "/v1/auth/login", peer=peer,
                               json={"email": email, "password": password})

    async def chat(self, token: str) -> httpx.Response:
        return await self.call("POST", "/v1/chat/completions", token, json={
            "model": "mock/echo", "messages": [{"role": "user", "content": "hi"}]})


@asynccontextmanager
async def running(tmp: Path, accounts: str = ACCOUNTS) -> AsyncIterator[Client]:
    async with in_process(BASE.format(tmp=tmp) + accounts.format(admin=ADMIN)) as (http, gateway):
        yield Client(http, gateway)


class LogRecorder:
    """Stands in for the notifier's logger: what it would have written, in order."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def _record(self, event: str, **fields: Any) -> None:
        self.lines.append(f"{event} {fields}")

    warning = error = info = _record

    def read(self) -> str:
        text, self.lines = "\n".join(self.lines), []
        return text


@pytest.fixture
def notices(monkeypatch: pytest.MonkeyPatch) -> LogRecorder:
    import gateway.accounts.notifier

    recorder = LogRecorder()
    monkeypatch.setattr(gateway.accounts.notifier, "log", recorder)
    return recorder


def tokens_in(logs: str, prefix: str) -> list[str]:
    return re.findall(prefix + r"[A-Za-z0-9_-]+", logs)


# --- safe defaults, signup throttle ---


async def test_signup_is_off_by_default_in_code_and_shipped_config(tmp_path: Path) -> None:
    assert parse_config("").accounts.signup is False
    assert load_config().accounts.signup is False
    async with running(tmp_path, accounts="") as gw:
        refused = await gw.signup("anyone@example.com")
    assert refused.status_code == 403
    assert "Signup is switched off" in refused.json()["error"]["message"]


async def test_signup_is_throttled_per_client_address(tmp_path: Path) -> None:
    limited = ACCOUNTS.replace("signups_per_hour = 100", "signups_per_hour = 3")
    async with running(tmp_path, limited) as gw:
        answers = [await gw.signup(f"s{i}@example.com", peer="10.1.1.1") for i in range(5)]
        other = await gw.signup("other@example.com", peer="10.2.2.2")
    assert [a.status_code for a in answers] == [201, 201, 201, 429, 429]
    assert answers[-1].json()["error"]["code"] == "signup_throttled"
    assert int(answers[-1].headers["retry-after"]) > 0
    assert other.status_code == 201  # another client behind the trusted proxy


def test_forwarded_for_is_believed_only_from_trusted_proxies() -> None:
    from starlette.requests import Request

    from gateway.accounts.http import client_address

    def request(peer: str, forwarded: str) -> Request:
        return Request({"type": "http", "client": (peer, 1), "headers": [
            (b"x-forwarded-for", forwarded.encode())]})

    spoofed = request("203.0.113.9", "10.9.9.9")
    assert client_address(spoofed, ["127.0.0.1"]) == "203.0.113.9"
    assert client_address(spoofed, []) == "203.0.113.9"
    # behind nginx: the client wrote "1.1.1.1", nginx appended the real peer
    proxied = request("127.0.0.1", "1.1.1.1, 198.51.100.7")
    assert client_address(proxied, ["127.0.0.0/8"]) == "198.51.100.7"


# --- ownership ---


async def test_operator_keys_address_cannot_be_taken_by_signup(tmp_path: Path) -> None:
    async with running(tmp_path) as gw:
        operator_key, _ = await create_key(gw.gateway.store, "gw-", user="carol@corp.example",
                                           tier="enterprise")
        taken = await gw.signup("carol@corp.example")
        assert taken.status_code == 403 and taken.json()["error"]["code"] == "email_reserved"
        assert (await gw.login("carol@corp.example")).status_code == 401
        assert (await gw.chat(operator_key)).headers["x-tier"] == "enterprise"


async def test_operator_keys_address_is_claimed_only_through_its_link(
    tmp_path: Path, notices: LogRecorder
) -> None:
    async with running(tmp_path, ACCOUNTS + 'notify = "log"\n') as gw:
        operator_key, _ = await create_key(gw.gateway.store, "gw-", user="carol@corp.example",
                                           tier="enterprise")
        notices.read()
        pending = await gw.signup("carol@corp.example")
        logs = notices.read()
        assert pending.status_code == 202 and pending.json()["status"] == "pending"
        assert "token" not in pending.json()
        refused = await gw.login("carol@corp.example")
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "email_unverified"
        [token] = tokens_in(logs, "gwverify_")
        wrong = await gw.call("POST", "/v1/auth/reset", json={"token": token,
                                                             "password": "new password"})
        assert wrong.status_code == 400  # a verification token is no reset token
        verified = await gw.call("GET", f"/v1/auth/verify?token={token}")
        assert verified.status_code == 200 and verified.json()["status"] == "active"
        session = (await gw.login("carol@corp.example")).json()["token"]
        keys = (await gw.call("GET", "/v1/keys", session)).json()["data"]
        assert len(keys) == 1
        assert (await gw.chat(operator_key)).headers["x-tier"] == "enterprise"


async def test_verify_email_keeps_every_signup_pending(
    tmp_path: Path, notices: LogRecorder
) -> None:
    async with running(tmp_path, ACCOUNTS + 'verify_email = true\nnotify = "log"\n') as gw:
        notices.read()
        assert (await gw.signup("dan@example.com")).status_code == 202
        logs = notices.read()
        assert (await gw.login("dan@example.com")).status_code == 403
        [token] = tokens_in(logs, "gwverify_")
        assert (await gw.call("POST", "/v1/auth/verify", json={"token": token})).status_code == 200
        assert (await gw.login("dan@example.com")).status_code == 200
        again = await gw.call("POST", "/v1/auth/verify", json={"token": token})
        assert again.status_code == 400


async def test_keys_without_a_user_do_not_share_usage(tmp_path: Path) -> None:
    async with running(tmp_path) as gw:
        first, _ = await create_key(gw.gateway.store, "gw-", name="a")
        second, _ = await create_key(gw.gateway.store, "gw-", name="b")
        assert (await gw.chat(first)).status_code == 200
        assert (await gw.chat(first)).status_code == 200
        assert (await gw.chat(second)).status_code == 200
        await gw.gateway.ledger.flush()
        mine = (await gw.call("GET", "/v1/usage", first)).json()
        theirs = (await gw.call("GET", "/v1/usage", second)).json()
        assert (mine["requests"], theirs["requests"]) == (2, 1)
        listing = await gw.call("GET", "/v1/keys", first)
        assert listing.status_code == 403  # belongs to nobody's account


# --- permissions ---


async def test_session_keys_are_inference_only_unless_asked(tmp_path: Path) -> None:
    async with running(tmp_path) as gw:
        session = (await gw.signup("erin@example.com")).json()["token"]
        made = (await gw.call("POST", "/v1/keys", session, json={"name": "app"})).json()
        assert made["permissions"] == ["inference"]
        key = made["key"]
        assert (await gw.chat(key)).status_code == 200
        await gw.gateway.ledger.flush()
        assert (await gw.call("GET", "/v1/usage", key)).json()["requests"] == 1
        for method, path in (("POST", "/v1/keys"), ("GET", "/v1/keys"),
                             ("GET", "/v1/provider-keys"), ("GET", "/v1/billing/invoices"),
                             ("DELETE", f"/v1/keys/{made['id']}")):
            refused = await gw.call(method, path, key, json={})
            assert refused.status_code == 403, (method, path, refused.text)
        manager = (await gw.call("POST", "/v1/keys", session,
                                 json={"permissions": ["manage"]})).json()
        assert manager["permissions"] == ["inference", "manage"]
        minted = await gw.call("POST", "/v1/keys", manager["key"], json={})
        assert minted.status_code == 201
        assert (await gw.call("GET", "/v1/usage", session)).json()["requests"] == 1


async def test_policy_integers_are_range_checked(tmp_path: Path) -> None:
    async with running(tmp_path) as gw:
        session = (await gw.signup("frank@example.com")).json()["token"]
        for value in (1e20, 10**20, -1, 2**31):
            answer = await gw.call("POST", "/v1/keys", session,
                                   json={"requests_per_minute": value})
            assert answer.status_code == 400, (value, answer.text)
            assert answer.json()["error"]["param"] == "requests_per_minute"
        assert (await gw.call("GET", "/v1/keys", session)).json()["data"] == []
        ok = await gw.call("POST", "/v1/keys", session, json={"requests_per_day": 1000})
        assert ok.status_code == 201


async def test_password_reset_revokes_manage_keys_and_says_so(
    tmp_path: Path, notices: LogRecorder
) -> None:
    async with running(tmp_path, ACCOUNTS + 'notify = "log"\n') as gw:
        session = (await gw.signup("gina@example.com")).json()["token"]
        manager = (await gw.call("POST", "/v1/keys", session,
                                 json={"permissions": "manage"})).json()
        worker = (await gw.call("POST", "/v1/keys", session, json={})).json()
        notices.read()
        await gw.call("POST", "/v1/auth/forgot", json={"email": "gina@example.com"})
        logs = notices.read()
        [token] = tokens_in(logs, "gwreset_")
        reset = await gw.call("POST", "/v1/auth/reset", json={"token": token,
                                                             "password": "brand new pass"})
        assert reset.status_code == 200
        assert reset.json()["revoked_keys"] == [manager["id"]]
        assert "revoked" in reset.json()["message"]
        assert (await gw.chat(manager["key"])).status_code == 401
        assert (await gw.chat(worker["key"])).status_code == 200


async def test_blocked_user_can_only_log_in_to_see_it(tmp_path: Path) -> None:
    async with running(tmp_path) as gw:
        session = (await gw.signup("hal@example.com")).json()["token"]
        key = (await gw.call("POST", "/v1/keys", session, json={})).json()["key"]
        blocked = await gw.call("POST", "/v1/admin/users/hal@example.com/block", ADMIN)
        assert blocked.status_code == 200
        login = await gw.login("hal@example.com")
        assert login.status_code == 200 and login.json()["user"]["status"] == "blocked"
        fresh = login.json()["token"]
        me = await gw.call("GET", "/v1/auth/me", fresh)
        assert me.status_code == 200 and me.json()["status"] == "blocked"
        count = {"model": "mock/echo", "messages": [{"role": "user", "content": "hi"}]}
        for token in (fresh, key):
            for method, path, body in (("POST", "/v1/keys", {}),
                                       ("POST", "/v1/messages/count_tokens", count),
                                       ("GET", "/v1/models", None),
                                       ("GET", "/v1/usage", None),
                                       ("POST", "/v1/chat/completions", count)):
                refused = await gw.call(method, path, token, json=body)
                assert refused.status_code == 403, (path, refused.text)
                assert refused.json()["error"]["type"] in ("blocked", "permission_error")


# --- login ---


async def test_login_attempts_are_counted_before_they_are_verified(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import gateway.accounts.passwords as passwords

    verified = 0
    real_verify = passwords._verify

    def counting(stored: str, password: str) -> bool:
        nonlocal verified
        verified += 1
        return real_verify(stored, password)

    monkeypatch.setattr(passwords, "_verify", counting)
    async with running(tmp_path) as gw:
        await gw.signup("ivy@example.com")
        wrong = await asyncio.gather(*(
            gw.login("ivy@example.com", "wrong password", peer=f"10.3.0.{i}") for i in range(60)))
        assert verified <= 5
        assert sum(a.status_code == 429 for a in wrong) >= 55
        assert {a.status_code for a in wrong} <= {401, 429}
        # 39 wrong guesses and the right one together: the right one is refused too
        await asyncio.sleep(0)
        together = await asyncio.gather(*(
            gw.login("ivy@example.com", "wrong password" if i < 39 else "correct horse",
                     peer=f"10.4.0.{i}") for i in range(40)))
        assert together[-1].status_code == 429
        assert verified <= 5


async def test_login_failures_per_client_are_bounded_across_addresses(tmp_path: Path) -> None:
    accounts = ACCOUNTS + "login_client_max_failures = 4\n"
    async with running(tmp_path, accounts) as gw:
        answers = [await gw.login(f"user{i}@example.com", "wrong password", peer="10.5.5.5")
                   for i in range(6)]
        assert [a.status_code for a in answers] == [401] * 4 + [429] * 2
        assert (await gw.login("user9@example.com", "x" * 8, peer="10.6.6.6")).status_code == 401


async def test_argon2_runs_with_bounded_concurrency() -> None:
    from gateway.accounts.passwords import PasswordHasher
    from gateway.errors import RateLimited

    hasher = PasswordHasher(2)
    stored = await hasher.hash("correct horse")
    results = await asyncio.gather(*(hasher.verify(stored, "correct horse") for _ in range(10)),
                                   return_exceptions=True)
    refused = [r for r in results if isinstance(r, RateLimited)]
    assert results.count(True) == 2 and len(refused) == 8
    assert refused[0].headers["Retry-After"] == "1"


# --- secrets ---


def test_short_secret_and_admin_key_are_config_errors() -> None:
    with pytest.raises(ConfigError, match=r"accounts\.secret.*token_urlsafe\(32\)"):
        parse_config('[accounts]\nsecret = "too-short"\n')
    with pytest.raises(ConfigError, match=r"accounts\.admin_key.*32 characters"):
        parse_config('[accounts]\nadmin_key = "admin"\n')
    assert parse_config(f'[accounts]\nadmin_key = "{ADMIN}"\nsecret = "{"s" * 32}"\n')


def test_verify_email_without_a_way_to_send_the_link_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"accounts\.verify_email"):
        parse_config("[accounts]\nverify_email = true\n")
    assert parse_config('[accounts]\nverify_email = true\nnotify = "log"\n')


def test_byok_key_comes_from_hkdf_with_a_salt_and_old_values_still_open() -> None:
    import base64
    import hashlib

    from cryptography.fernet import Fernet

    from gateway.accounts.secretbox import SecretBox

    secret = "a server secret that is long enough!"
    legacy = Fernet(base64.urlsafe_b64encode(hashlib.sha256(secret.encode()).digest()))
    old_value = legacy.encrypt(b"sk-stored-before").decode()
    box = SecretBox(secret, "salt-one")
    assert box.open(old_value) == "sk-stored-before"
    sealed = box.seal("sk-new")
    with pytest.raises(Exception):  # noqa: B017 - no longer under the bare sha256
        legacy.decrypt(sealed.encode())
    assert SecretBox(secret, "salt-two").open(sealed) is None
    assert SecretBox(secret, "salt-one").open(sealed) == "sk-new"


async def test_the_salt_is_stored_once_per_database(tmp_path: Path) -> None:
    accounts = ACCOUNTS + f'secret = "{"k" * 40}"\n'
    async with running(tmp_path, accounts) as gw:
        first = await gw.gateway.accounts.store.get_setting("byok_salt")
        sealed = gw.gateway.accounts.box.seal("sk-user")
    async with running(tmp_path, accounts) as gw:
        assert await gw.gateway.accounts.store.get_setting("byok_salt") == first
        assert gw.gateway.accounts.box.open(sealed) == "sk-user"
    assert first


async def test_reset_tokens_are_not_logged_unless_notify_is_log(
    tmp_path: Path, notices: LogRecorder
) -> None:
    async with running(tmp_path) as gw:
        await gw.signup("jo@example.com")
        notices.read()
        answer = await gw.call("POST", "/v1/auth/forgot", json={"email": "jo@example.com"})
        logs = notices.read()
        assert answer.status_code == 202
        assert tokens_in(logs, "gwreset_") == []
        assert "notify_not_delivered" in logs


async def test_reset_token_is_mailed_over_smtp(
    tmp_path: Path, notices: LogRecorder
) -> None:
    from aiosmtpd.controller import Controller

    mails: list[str] = []

    class Inbox:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            mails.append(envelope.content.decode())
            return "250 OK"

    from tests.conftest import free_port

    port = free_port()
    controller = Controller(Inbox(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        smtp = (f'notify = "smtp"\n[accounts.smtp]\nhost = "127.0.0.1"\nport = {port}\n'
                'security = "none"\nsender = "gateway@corp.example"\n')
        async with running(tmp_path, ACCOUNTS + smtp) as gw:
            await gw.signup("kim@example.com")
            notices.read()
            await gw.call("POST", "/v1/auth/forgot", json={"email": "kim@example.com"})
            logs = notices.read()
            assert tokens_in(logs, "gwreset_") == []
    finally:
        controller.stop()
    [mail] = mails
    assert "To: kim@example.com" in mail and "gwreset_" in mail


async def test_forgot_is_throttled_per_address_and_per_client(tmp_path: Path) -> None:
    accounts = ACCOUNTS + "resets_per_hour = 2\n"
    async with running(tmp_path, accounts) as gw:
        by_address = [await gw.call("POST", "/v1/auth/forgot", peer=f"10.7.0.{i}",
                                    json={"email": "lee@example.com"}) for i in range(3)]
        by_client = [await gw.call("POST", "/v1/auth/forgot", peer="10.8.0.1",
                                   json={"email": f"x{i}@example.com"}) for i in range(3)]
    assert [a.status_code for a in by_address] == [202, 202, 429]
    assert [a.status_code for a in by_client] == [202, 202, 429]
    assert by_client[-1].json()["error"]["code"] == "reset_throttled"


# --- issue 15 item 8 ---


async def test_a_revoked_key_is_called_revoked_every_time(tmp_path: Path) -> None:
    async with running(tmp_path) as gw:
        session = (await gw.signup("max@example.com")).json()["token"]
        made = (await gw.call("POST", "/v1/keys", session, json={})).json()
        assert (await gw.chat(made["key"])).status_code == 200
        await gw.call("DELETE", f"/v1/keys/{made['id']}", session)
        messages = [(await gw.chat(made["key"])).json()["error"]["message"] for _ in range(3)]
        # a second instance, which never saw the key: same answer
        other = build_gateway(gw.gateway.config)
        await other.start()
        try:
            with pytest.raises(Exception) as refused:
                await other.keys.authenticate(made["key"])
        finally:
            await other.stop()
        unknown = (await gw.chat("gw-never-issued")).json()["error"]["message"]
    assert all("revoked" in m for m in messages), messages
    assert "revoked" in str(refused.value)
    assert "Invalid API key" in unknown


async def test_a_deeply_nested_signup_body_is_a_400(tmp_path: Path) -> None:
    body = b'{"email": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    async with running(tmp_path) as gw:
        answer = await gw.call("POST", "/v1/auth/signup", content=body)
    assert answer.status_code == 400
    assert "nested" in answer.json()["error"]["message"]


def test_cli_keys_are_manage_keys_unless_told_otherwise(tmp_path: Path) -> None:
    from tests.conftest import GatewayProcess

    process = GatewayProcess(tmp_path, BASE.format(tmp=tmp_path))
    operator = process.create_key("--user", "ops@corp.example")
    worker = process.create_key("--user", "ops@corp.example", "--permissions", "inference")
    wrong = process.cli("keys", "create", "--permissions", "everything")
    assert wrong.returncode != 0 and "inference" in wrong.stderr

    async def permissions() -> list[str]:
        from gateway.accounts.keys import hash_key
        from gateway.storage import open_store

        store = await open_store(f"sqlite:///{tmp_path}/gateway.db")
        try:
            found = [await store.find_key(hash_key(key)) for key in (operator, worker)]
            return [record.permissions for record in found if record is not None]
        finally:
            await store.close()

    assert asyncio.run(permissions()) == ["manage", "inference"]


def test_two_workers_both_call_a_revoked_key_revoked(tmp_path: Path) -> None:
    from tests.conftest import GatewayProcess

    config = BASE.format(tmp=tmp_path).replace(
        "ledger_flush_interval = 0.05", "ledger_flush_interval = 0.05\nkey_cache_ttl = 0.0")
    process = GatewayProcess(tmp_path, config).start(workers=2)
    try:
        key = process.create_key("--name", "doomed")
        chat = {"model": "mock/echo", "messages": [{"role": "user", "content": "hi"}]}
        assert httpx.post(process.url + "/v1/chat/completions", json=chat,
                          headers=process.headers(key)).status_code == 200
        assert process.cli("keys", "revoke", key[:9]).returncode == 0
        answers = [httpx.post(process.url + "/v1/chat/completions", json=chat,
                              headers=process.headers(key)) for _ in range(12)]
    finally:
        process.stop()
    assert {a.status_code for a in answers} == {401}
    assert {a.json()["error"]["message"] for a in answers} == {
        "This API key has been revoked: create a new one"}
