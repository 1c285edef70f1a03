"""Pure parts of gateway.accounts: the notifier, passwords, the secret box."""

from __future__ import annotations

import pytest

from gateway.accounts.passwords import check_password, hash_password, verify_password
from gateway.accounts.secretbox import SecretBox
from gateway.errors import BadRequest

pytestmark = pytest.mark.unit

SECRET = "server secret of at least 32 bytes, for tests"


async def test_notifier_posts_to_the_webhook_and_logs_without_one() -> None:
    from aiohttp import web
    from structlog.testing import capture_logs

    from gateway.accounts.notifier import Notifier

    received: list[dict[str, str]] = []

    async def hook(request: web.Request) -> web.Response:
        received.append(await request.json())
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        await Notifier("webhook", f"http://127.0.0.1:{port}/hook").notify(
            "password_reset", "a@example.com", token="gwreset_x"
        )
    finally:
        await runner.cleanup()
    assert received == [{"kind": "password_reset", "email": "a@example.com",
                         "token": "gwreset_x"}]
    with capture_logs() as logs:
        await Notifier("log").notify("password_reset", "a@example.com", token="gwreset_y")
    assert logs[0]["event"] == "notify_deliver_by_log" and logs[0]["token"] == "gwreset_y"


async def test_passwords_are_argon2id_and_checked() -> None:
    stored = await hash_password("correct horse")
    assert stored.startswith("$argon2id$")
    assert await verify_password(stored, "correct horse")
    assert not await verify_password(stored, "wrong horse")
    assert not await verify_password("not a hash", "correct horse")
    with pytest.raises(BadRequest):
        check_password("short")


def test_secret_box_round_trip_and_wrong_secret() -> None:
    sealed = SecretBox(SECRET, "salt").seal("sk-provider-key")
    assert "sk-provider-key" not in sealed
    assert SecretBox(SECRET, "salt").open(sealed) == "sk-provider-key"
    assert SecretBox("another secret, also 32 bytes long", "salt").open(sealed) is None
    assert not SecretBox("").enabled
