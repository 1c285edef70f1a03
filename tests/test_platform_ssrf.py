"""The SSRF guard of webhooks (issue 12): only http(s) to public addresses, whatever the
spelling; checked at creation (400) and again at each delivery; redirects not followed."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from gateway.platform.ssrf import UnsafeURL, check_url
from tests.platform_app import running
from tests.webhook_receiver import Receiver, receiver_fixture  # noqa: F401  (fixture)

REFUSED = [
    "http://127.0.0.1/hook", "http://127.1/", "http://localhost/", "http://localhost./",
    "http://2130706433/", "http://0177.0.0.1/", "http://0x7f000001/", "http://10.0.0.1/",
    "http://172.16.5.4/", "http://192.168.1.1:8080/", "http://100.64.0.1/",
    "http://169.254.169.254/latest/meta-data/", "http://0.0.0.0/", "http://224.0.0.1/",
    "http://255.255.255.255/", "http://[::1]/", "http://[::]/", "http://[::ffff:127.0.0.1]/",
    "http://[::ffff:7f00:1]/", "http://[::ffff:10.0.0.1]/", "http://[fe80::1]/",
    "http://[fc00::1]/", "http://[fd12:3456::1]/", "http://[ff02::1]/",
    "ftp://93.184.216.34/", "file:///etc/passwd", "gopher://93.184.216.34/", "javascript:1",
    "http://user:pw@93.184.216.34/", "//93.184.216.34/", "http:///nohost", "not a url",
    "http://93.184.216.34:99999/",
]
ALLOWED = ["http://93.184.216.34/hook", "https://93.184.216.34:8443/x?y=1",
           "https://[2606:4700:4700::1111]/hook"]


@pytest.mark.parametrize("url", REFUSED)
async def test_private_addresses_and_other_schemes_are_refused(url: str) -> None:
    with pytest.raises(UnsafeURL):
        await check_url(url, allow_private=False)


@pytest.mark.parametrize("url", ALLOWED)
async def test_public_addresses_are_allowed_and_pinned(url: str) -> None:
    target = await check_url(url, allow_private=False)
    assert target.address in url


async def test_allow_private_lets_the_operator_deliver_inside_their_network() -> None:
    target = await check_url("http://127.0.0.1:9/x", allow_private=True)
    assert target.address == "127.0.0.1"
    with pytest.raises(UnsafeURL):  # the scheme rule stays
        await check_url("ftp://127.0.0.1/", allow_private=True)


async def test_creation_refuses_with_400_and_each_delivery_checks_again(
    tmp_path: Path, receiver: Receiver,
) -> None:
    async with running(tmp_path) as gw:  # allow_private = false (the default)
        token = await gw.key("ann@example.com")
        for url in ("http://127.0.0.1/hook", "http://[::ffff:127.0.0.1]/", "file:///etc/x"):
            refused = await gw.call("POST", "/v1/webhooks", token, json={"url": url})
            assert refused.status_code == 400, url
            assert refused.json()["error"]["param"] == "url"
    async with running(tmp_path, "[webhooks]\nallow_private = true\n") as gw:
        token = await gw.key("bob@example.com")
        made = (await gw.call("POST", "/v1/webhooks", token, json={"url": receiver.url})).json()
        redirect = await gw.call("POST", "/v1/webhooks", token,
                                 json={"url": receiver.url.replace("/hook", "/redirect")})
        tested = await gw.call("POST", f"/v1/webhooks/{redirect.json()['id']}/test", token)
        assert tested.json()["status_code"] == 302 and tested.json()["success"] is False
        assert receiver.deliveries == []  # the redirect was not followed
        # The operator turns private delivery off: the next delivery is checked again.
        deliverer = gw.gateway.platform.deliverer
        deliverer.config = msgspec.structs.replace(deliverer.config, allow_private=False)
        tested = await gw.call("POST", f"/v1/webhooks/{made['id']}/test", token)
        assert tested.json()["success"] is False
        assert "public addresses only" in tested.json()["error"]
        assert receiver.deliveries == []
