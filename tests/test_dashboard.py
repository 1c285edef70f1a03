"""The dashboard at /app/ in headless Chromium, against the real server on the shipped config.

One browser for the module, one page reused: a user signs up, creates a key, calls the API with
it, sees the call on the Usage page's chart, revokes the key and sees it refused, and logs out;
another manages webhooks delivered to a real receiver on loopback; then the operator signs in
with the admin key and uses every admin page. Any console error, any uncaught exception and any
request to another origin fails the test. Every page is saved as a
screenshot, at desktop and phone width, in a folder printed at the end of the module.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx2 as httpx
import openai
import pytest

from tests.conftest import ROOT, GatewayProcess, free_port
from tests.fresh_gateway import FreshGateway

pytestmark = pytest.mark.e2e

playwright_sync = pytest.importorskip("playwright.sync_api")

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]
ADMIN = "admin-key-of-the-dashboard-tests-0123456789abcdef"
PASSWORD = "correct horse battery"
EMAIL = "ann.example.with.a.rather.long.address@example.com"
LONG_KEY_NAME = "continuous-integration runner for the billing service (staging, eu-west)"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1200, "height": 800}

# A provider that nobody listens for: calling it benches its deployment, for the health page.
DOWN_PROVIDER = """
[providers.down]
kind = "openai"
base_url = "http://127.0.0.1:{port}/v1"
api_key = "sk-down"

[[models]]
id = "down/model"
provider = "down"
upstream = "model"
input_price = 1.0
output_price = 1.0
"""


# Deliveries to the tests' loopback receiver are allowed the way an operator allows them inside
# their own network; a failed delivery waits a minute, so the page shows its next retry.
WEBHOOKS = """
[webhooks]
allow_private = true
retry_schedule = [60.0]
poll_interval = 0.1
"""


def shipped_config(tmp: Path) -> str:
    """config/gateway.toml with signup switched on, one unreachable provider added, and
    webhooks allowed to a loopback receiver."""
    text = (ROOT / "config" / "gateway.toml").read_text()
    if re.search(r"^signup\s*=", text, re.M):
        text = re.sub(r"^signup\s*=.*$", "signup = true", text, flags=re.M)
    else:
        text = text.replace("[accounts]\n", "[accounts]\nsignup = true\n", 1)
    text = re.sub(r"^allowed_fails\s*=.*$", "allowed_fails = 1", text, flags=re.M)
    text = re.sub(r"^self_service_tiers\s*=.*$", 'self_service_tiers = ["pro"]', text, flags=re.M)
    # tokens reach the server's log, where the test picks them up as a user would from email
    text = re.sub(r"^notify\s*=.*$", 'notify = "log"', text, flags=re.M)
    return text + DOWN_PROVIDER.format(port=free_port()) + WEBHOOKS


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    tmp = tmp_path_factory.mktemp("dashboard")
    env = {name: "" for name in os.environ if name.endswith("_API_KEY")}  # no real provider
    env["GATEWAY_ADMIN_KEY"] = ADMIN
    env["GATEWAY_SECRET"] = "secret-of-the-dashboard-tests-for-byok-0123456789"
    process = GatewayProcess(tmp, shipped_config(tmp), env).start()
    yield process
    process.stop()


@dataclass
class Browser:
    """The page, what it did wrong, and where its screenshots go."""

    page: Any
    base: str
    shots: Path
    errors: list[str] = field(default_factory=list)
    expected: list[str] = field(default_factory=list)
    # Other gateways these tests started: Chromium may still fetch the last page's favicon
    # from one after a test has moved on to another.
    gateways: list[str] = field(default_factory=list)

    def console(self, message: Any) -> None:
        if message.type != "error":
            return
        text = str(message.text)
        # Chromium reports each 4xx answer as a console error; only the refusals a step
        # provokes on purpose are allowed, once each.
        for status in self.expected:
            if f"status of {status}" in text:
                self.expected.remove(status)
                return
        self.errors.append(f"console: {text}")

    def route(self, route: Any) -> None:
        url = route.request.url
        if any(url.startswith(f"{base}/") for base in (self.base, *self.gateways)):
            route.continue_()
        else:
            self.errors.append(f"request left the gateway: {route.request.url}")
            route.abort()

    def open(self, path: str, heading: str) -> None:
        self.page.goto(f"{self.base}/app/#{path}")
        self.heading(heading)

    def heading(self, text: str) -> None:
        self.page.get_by_role("heading", level=1, name=text).wait_for()

    def nav(self, name: str, heading: str | None = None) -> None:
        self.page.get_by_role("navigation").get_by_role("link", name=name, exact=True).click()
        self.heading(heading or name)

    def shot(self, name: str) -> None:
        """The page at desktop and at phone width; fails if the page scrolls sideways."""
        self.page.screenshot(path=self.shots / f"{name}.png", full_page=True)
        self.page.set_viewport_size(PHONE)
        wide = self.page.evaluate("document.documentElement.scrollWidth")
        self.page.screenshot(path=self.shots / f"{name}-phone.png", full_page=True)
        self.page.set_viewport_size(DESKTOP)
        assert wide <= PHONE["width"], f"{name}: {wide}px wide at phone width"

    def check(self) -> None:
        assert not self.errors, self.errors
        assert not self.expected, f"refusals expected but not seen: {self.expected}"


@pytest.fixture(scope="module")
def browser(server: GatewayProcess, request: pytest.FixtureRequest) -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium is not installed (make chromium)")
    # under data/ (ignored by git), not pytest's temporary folders, which later runs delete
    shots = Path(os.environ.get("DASHBOARD_SHOTS", ROOT / "data" / "dashboard-screenshots"))
    shots.mkdir(parents=True, exist_ok=True)
    with playwright_sync.sync_playwright() as driver:
        chromium = driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = chromium.new_page(viewport=DESKTOP)
        state = Browser(page, server.url, shots)
        page.on("console", state.console)
        page.on("pageerror", lambda error: state.errors.append(f"page error: {error}"))
        page.route("**/*", state.route)
        page.set_default_timeout(10_000)
        yield state
        chromium.close()
    plugins = request.config.pluginmanager
    reporter, capture = plugins.getplugin("terminalreporter"), plugins.getplugin("capturemanager")
    if reporter is not None and capture is not None:
        with capture.global_and_fixture_disabled():
            reporter.write_line(f"\ndashboard screenshots: {shots}")


def chat(server: GatewayProcess | FreshGateway, key: str, model: str = "mock") -> httpx.Response:
    return httpx.post(f"{server.url}/v1/chat/completions",
                      headers={"Authorization": f"Bearer {key}"},
                      json={"model": model, "max_tokens": 12,
                            "messages": [{"role": "user", "content": "Hello"}]}, timeout=10)


def test_serving_is_offline_and_locked_down(server: GatewayProcess) -> None:
    page = httpx.get(f"{server.url}/app/")
    assert page.status_code == 200
    assert "text/html" in page.headers["content-type"]
    policy = page.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "script-src 'self'" in policy
    assert "unsafe-inline" not in policy and "frame-ancestors 'none'" in policy
    assert not re.search(r"(src|href)=\"(https?:)?//", page.text), "assets from another host"
    again = httpx.get(f"{server.url}/app/", headers={"if-none-match": page.headers["etag"]})
    assert again.status_code == 304
    assert httpx.get(f"{server.url}/app").text == page.text
    missing = httpx.get(f"{server.url}/app/nothing.js")
    assert missing.status_code == 404 and "error" in missing.json()
    script = httpx.get(f"{server.url}/app/js/main.js")
    assert script.headers["content-type"].startswith("text/javascript")
    assert "http://" not in script.text and "https://" not in script.text


def test_user_flow(server: GatewayProcess, browser: Browser) -> None:
    b, page = browser, browser.page
    b.open("/login", "Log in")
    b.expected.append("401")
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("alert").filter(has_text="password").wait_for()
    b.shot("login-error")

    page.get_by_role("link", name="Create an account").click()
    b.heading("Sign up")
    page.get_by_label("Name").fill("Ann Example-Longname")
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Password").fill(PASSWORD)
    b.shot("signup")
    page.get_by_role("button", name="Sign up").click()
    b.heading("Overview")
    assert page.get_by_text("Credits left today").is_visible()
    b.shot("overview-new")

    b.nav("API keys")
    page.get_by_text("No keys yet").wait_for()
    page.get_by_label("Name").fill(LONG_KEY_NAME)
    page.get_by_role("button", name="Create key").click()
    key = page.locator("#new-key").text_content() or ""
    assert key.startswith("gw-")
    assert page.get_by_role("button", name="Copy").is_visible()
    row = page.get_by_role("row").filter(has_text=LONG_KEY_NAME)
    assert row.get_by_text("Never").is_visible()  # last use
    b.shot("keys-created")

    assert chat(server, key).status_code == 200
    assert chat(server, key, "echo").status_code == 200
    time.sleep(1.2)  # usage rows are written in batches
    b.nav("Usage")
    recent = page.get_by_role("region", name="Recent requests")
    assert recent.get_by_role("row").count() == 3  # heading + the two calls
    assert page.locator(".chart rect.bar[height]:not([height='0'])").count() >= 3
    assert page.get_by_role("img", name=re.compile(r"Requests per day: 2 in total")).is_visible()
    by_model = page.get_by_role("region", name="By model")
    assert by_model.get_by_role("cell", name="mock/lorem").is_visible()
    b.shot("usage")
    page.get_by_role("button", name="7 days").click()
    page.get_by_role("heading", name="Last 7 days").wait_for()
    b.shot("usage-7-days")  # docs/dashboard.png is this one

    b.nav("Overview")
    assert page.get_by_text("2 requests").is_visible()
    b.shot("overview")
    b.nav("Billing")
    page.get_by_role("cell", name=time.strftime("%Y-%m", time.gmtime())).wait_for()
    b.shot("billing")
    page.get_by_role("button", name="Switch to pro").click()
    page.get_by_role("dialog").get_by_role("button", name="Switch to pro").click()
    page.get_by_role("alert").filter(has_text="You are now on the pro tier").wait_for()
    assert page.get_by_text("Balance", exact=True).is_visible()  # pro is prepaid
    b.shot("billing-checked-out")
    b.nav("Provider keys")
    page.get_by_text("No provider keys").wait_for()
    page.get_by_label("Provider").select_option("down")
    page.get_by_label("API key").fill("sk-my-own-key-7890")
    page.get_by_role("button", name="Save key").click()
    page.get_by_role("cell", name="…7890").wait_for()
    b.shot("provider-keys")
    page.get_by_role("button", name="Remove down key").click()
    page.get_by_role("dialog").get_by_role("button", name="Remove key").click()
    page.get_by_text("No provider keys").wait_for()

    b.nav("API keys")
    page.get_by_role("button", name="Revoke").click()
    page.keyboard.press("Escape")  # changed my mind
    page.get_by_role("dialog").wait_for(state="detached")
    assert page.get_by_role("row").filter(has_text=LONG_KEY_NAME).is_visible()
    page.get_by_role("button", name="Revoke").click()
    dialog = page.get_by_role("dialog")
    b.shot("keys-revoke-confirm")
    dialog.get_by_role("button", name="Revoke key").click()
    page.get_by_text("No keys yet").wait_for()
    refused = chat(server, key)
    assert refused.status_code == 401, refused.text

    page.get_by_role("button", name="Log out").click()
    b.heading("Log in")
    assert page.get_by_text("You are logged out").is_visible()
    assert page.evaluate("sessionStorage.length") == 0
    b.check()


def test_forgot_and_reset_pages(server: GatewayProcess, browser: Browser) -> None:
    b, page = browser, browser.page
    b.open("/forgot", "Forgot password")
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_role("button", name="Send reset token").click()
    page.get_by_role("alert").filter(has_text="reset").wait_for()
    b.shot("forgot")
    b.open("/reset?token=gwreset_not-a-real-one", "Reset password")
    assert page.get_by_label("Reset token").input_value() == "gwreset_not-a-real-one"
    b.expected.append("400")
    page.get_by_label("New password").fill("another long password")
    page.get_by_role("button", name="Set new password").click()
    page.locator(".alert.error").wait_for()
    b.shot("reset-error")

    token = re.findall(r"gwreset_[A-Za-z0-9_-]+", server.logs())[-1]
    b.open(f"/reset?token={token}", "Reset password")
    page.get_by_label("New password").fill("another long password")
    page.get_by_role("button", name="Set new password").click()
    b.heading("Log in")
    page.get_by_role("alert").filter(has_text="log in again").wait_for()
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Password").fill("another long password")
    page.get_by_role("button", name="Log in").click()
    b.heading("Overview")
    page.get_by_role("button", name="Log out").click()
    b.heading("Log in")
    b.check()


def test_log_in_with_an_api_key(server: GatewayProcess, browser: Browser) -> None:
    """A key from `gateway keys create --user` opens the same pages, and is never stored."""
    b, page = browser, browser.page
    b.open("/login", "Log in")
    page.reload()
    b.heading("Log in")
    page.keyboard.press("Tab")  # the first stop is the skip link
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    page.get_by_text("Log in with an API key instead").focus()  # by keyboard from here on
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    page.keyboard.type(server.key)
    assert page.get_by_label("API key").input_value() == server.key
    b.shot("login-with-key")
    page.keyboard.press("Enter")
    b.heading("Overview")
    assert page.get_by_text("tests@example.com").first.is_visible()
    assert page.evaluate("sessionStorage.getItem('gateway.session')") is None
    b.nav("API keys")
    assert page.get_by_role("row").filter(has_text="tests").count() == 1
    page.get_by_role("button", name="Log out").click()
    b.heading("Log in")
    assert chat(server, server.key, "echo").status_code == 200  # logging out kept the key
    b.check()


def bench_down_provider(server: GatewayProcess) -> None:
    for _ in range(3):
        chat(server, server.key, "down/model")
        health = httpx.get(f"{server.url}/v1/admin/health", headers=server.headers(ADMIN)).json()
        if any(d["benched"] for d in health["data"]):
            return
    raise AssertionError(f"the unreachable provider was never benched: {health}")


def test_admin_pages(server: GatewayProcess, browser: Browser) -> None:
    b, page = browser, browser.page
    bench_down_provider(server)
    b.open("/admin-login", "Operator sign-in")
    page.get_by_label("Admin key").fill(ADMIN)
    page.get_by_role("button", name="Sign in as operator").click()
    b.heading("Users")
    page.get_by_label("Search users").fill("ann.example")
    page.get_by_role("button", name="Search").click()
    page.get_by_role("heading", name=re.compile("Users matching")).wait_for()
    manage = page.get_by_role("button", name=f"Manage {EMAIL}")
    manage.click()
    page.get_by_role("dialog").get_by_label("Tier").select_option("enterprise")
    page.get_by_role("dialog").get_by_role("button", name="Change tier").click()
    page.get_by_role("alert").filter(has_text="is now on the enterprise tier").wait_for()
    manage.click()
    page.get_by_role("dialog").get_by_label("Top-up (USD)").fill("5")
    page.get_by_role("dialog").get_by_role("button", name="Top up").click()
    page.get_by_role("alert").filter(has_text="$5.00 added").wait_for()
    manage.click()
    page.get_by_role("dialog").get_by_role("button", name="Block").click()
    page.get_by_role("alert").filter(has_text="is blocked").wait_for()
    row = page.get_by_role("row").filter(has_text=EMAIL)
    assert row.get_by_text("blocked", exact=True).is_visible()
    assert row.get_by_role("cell", name="enterprise", exact=True).is_visible()
    assert row.get_by_role("cell", name="$5.00").is_visible()
    b.shot("admin-users")
    manage.click()
    b.shot("admin-users-manage")
    page.get_by_role("dialog").get_by_role("button", name="Close").click()

    page.get_by_label("Search users").fill("nobody-matches-this")
    page.get_by_role("button", name="Search").click()
    page.get_by_text("No user matches").wait_for()

    b.nav("All usage", "Usage across users")
    user_row = page.get_by_role("region", name="By user").get_by_role("row").filter(has_text=EMAIL)
    assert user_row.get_by_role("cell", name="2", exact=True).is_visible()
    b.shot("admin-usage")

    b.nav("System")
    health = page.get_by_role("region", name=re.compile("Provider health"))
    down = health.get_by_role("row").filter(has_text="down:model")
    assert down.get_by_text(re.compile("Benched|Rate-limited")).is_visible()
    assert down.get_by_text(re.compile(r"until \d{4}-\d\d-\d\d")).is_visible()
    page.get_by_role("checkbox", name="Maintenance mode on").check()
    page.get_by_label("Message").fill("Back at 14:00 UTC")
    page.get_by_role("button", name="Save maintenance setting").click()
    page.get_by_role("heading", name=re.compile("Maintenance mode On")).wait_for()
    b.shot("admin-system")
    answer = chat(server, server.key, "echo")
    assert answer.status_code == 503 and "Back at 14:00 UTC" in answer.text
    page.get_by_role("checkbox", name="Maintenance mode on").uncheck()
    page.get_by_role("button", name="Save maintenance setting").click()
    page.get_by_role("heading", name=re.compile("Maintenance mode Off")).wait_for()
    assert chat(server, server.key, "echo").status_code == 200

    page.get_by_role("button", name="Log out").click()
    b.heading("Log in")
    page.get_by_label("Email").fill(EMAIL)  # blocked above: she may only see that she is
    page.get_by_label("Password").fill("another long password")
    page.get_by_role("button", name="Log in").click()
    b.heading("Overview")
    page.get_by_text("This account is blocked").wait_for()
    b.shot("overview-blocked")
    page.get_by_role("button", name="Log out").click()
    b.heading("Log in")
    b.check()


def test_account_api_behind_the_pages(server: GatewayProcess) -> None:
    """The routes added for the pages: recent requests, search, usage of everyone, health."""
    g, admin = server.url, server.headers(ADMIN)
    signup = httpx.post(f"{g}/v1/auth/signup", json={"email": "bob@example.com",
                                                       "password": PASSWORD, "name": "Bob"})
    assert signup.status_code == 201, signup.text
    session = server.headers(signup.json()["token"])
    key = httpx.post(f"{g}/v1/keys", headers=session, json={"name": "bob"}).json()["key"]
    ids = [chat(server, key).headers["x-request-id"] for _ in range(3)]
    time.sleep(1.2)

    recent = httpx.get(f"{g}/v1/usage/requests?limit=2", headers=session).json()["data"]
    assert [r["request_id"] for r in recent] == ids[:0:-1]  # newest first, two of three
    assert recent[0]["status"] == 200 and recent[0]["latency_ms"] >= 0
    assert recent[0]["model_served"] == "mock/lorem" and recent[0]["cost_usd"] > 0
    bad = httpx.get(f"{g}/v1/usage/requests?limit=0", headers=session)
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "limit"

    found = httpx.get(f"{g}/v1/admin/users?q=BOB", headers=admin).json()["data"]
    assert [u["email"] for u in found] == ["bob@example.com"]
    assert httpx.get(f"{g}/v1/admin/users?q=bob", headers=session).status_code == 401

    everyone = httpx.get(f"{g}/v1/admin/usage?days=7", headers=admin).json()
    assert everyone["by_user"]["bob@example.com"]["requests"] == 3
    assert len(everyone["daily"]) == 7 and everyone["daily"][-1]["requests"] >= 3
    assert everyone["requests"] >= 3

    health = httpx.get(f"{g}/v1/admin/health", headers=admin).json()["data"]
    lorem = next(d for d in health if d["deployment"] == "mock:lorem")
    assert lorem["models"] == ["mock/lorem"] and lorem["benched"] is False
    assert lorem["benched_until"] is None and lorem["latency_s"] is not None

    byok = httpx.get(f"{g}/v1/provider-keys", headers=session).json()
    assert byok["enabled"] is True and "down" in byok["providers"]
    assert "mock" not in byok["providers"]


def test_signup_that_needs_the_link_sent_to_the_address(
    server: GatewayProcess, browser: Browser
) -> None:
    """An address that owns operator-made keys is claimed only through the link sent to it."""
    b, page = browser, browser.page
    b.open("/signup", "Sign up")
    page.get_by_label("Email").fill("tests@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign up").click()
    page.get_by_role("alert").filter(has_text="mailbox").wait_for()
    b.shot("signup-pending")
    token = re.findall(r"gwverify_[A-Za-z0-9_-]+", server.logs())[-1]
    b.open(f"/verify?token={token}", "Confirm your address")
    page.get_by_role("button", name="Confirm address").click()
    page.get_by_role("alert").filter(has_text="confirmed").wait_for()
    b.shot("verify")
    page.get_by_role("main").get_by_role("link", name="Log in").click()
    page.get_by_label("Email").fill("tests@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    b.heading("Overview")
    b.nav("API keys")
    row = page.get_by_role("row").filter(has_text="tests")
    assert row.get_by_text("manage", exact=True).is_visible()  # the operator's key, kept
    row.get_by_role("button", name="Revoke").click()  # the free tier allows one key
    page.get_by_role("dialog").get_by_role("button", name="Revoke key").click()
    page.get_by_text("No keys yet").wait_for()
    page.get_by_label("Name").fill("notebook")
    page.get_by_label("Permissions").select_option("inference")
    page.get_by_role("button", name="Create key").click()
    page.get_by_role("row").filter(has_text="notebook").get_by_text("inference").wait_for()
    b.shot("keys-permissions")
    page.get_by_role("button", name="Log out").click()
    b.heading("Log in")
    b.check()


class HookReceiver:
    """A webhook receiver on a loopback port, served from a thread (the browser tests are
    synchronous): keeps each delivery's headers and body, and answers the statuses it is
    given, in order (then 200)."""

    PATH = "/hooks/gateway-events/billing-service/eu-west-1/staging?tenant=ann-example-longname"

    def __init__(self) -> None:
        self.statuses: list[int] = []
        self.deliveries: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                receiver.deliveries.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(receiver.statuses.pop(0) if receiver.statuses else 200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}{self.PATH}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, count: int, timeout: float = 10.0) -> list[tuple[dict[str, str], bytes]]:
        deadline = time.monotonic() + timeout
        while len(self.deliveries) < count:
            assert time.monotonic() < deadline, f"{len(self.deliveries)} of {count} deliveries"
            time.sleep(0.05)
        return self.deliveries

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[HookReceiver]:
    hooks = HookReceiver()
    yield hooks
    hooks.close()


def verifies(delivery: tuple[dict[str, str], bytes], secret: str) -> bool:
    """Whether the openai SDK accepts the delivery's signature under ``secret``."""
    headers, body = delivery
    try:
        openai.OpenAI(api_key="unused").webhooks.verify_signature(body, headers, secret=secret)
    except openai.InvalidWebhookSignatureError:
        return False
    return True


def test_webhooks_page(server: GatewayProcess, browser: Browser, receiver: HookReceiver) -> None:
    """Create an endpoint at a real receiver, send a test that verifies with the secret shown,
    see a failed event waiting for its retry, rotate, disable and enable, delete."""
    b, page = browser, browser.page
    who = "wes.webhooks@example.com"
    signup = httpx.post(f"{server.url}/v1/auth/signup",
                        json={"email": who, "password": PASSWORD, "name": "Wes"})
    assert signup.status_code == 201, signup.text
    session = server.headers(signup.json()["token"])
    b.open("/login", "Log in")
    page.get_by_label("Email").fill(who)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    b.heading("Overview")
    b.nav("Webhooks")
    page.get_by_text("No endpoints yet").wait_for()
    assert page.get_by_role("checkbox", name="key.created").is_checked()
    assert not page.get_by_role("checkbox", name="video.completed").is_checked()  # reserved
    b.shot("webhooks-empty")

    b.expected.append("400")
    page.get_by_label("URL").fill("http://someone:hunter2@127.0.0.1:9/hook")
    page.get_by_role("button", name="Create endpoint").click()
    page.get_by_role("alert").filter(has_text="must not carry credentials").wait_for()
    b.shot("webhooks-error")

    description = "Billing alerts for the staging cluster (eu-west-1)"
    page.get_by_label("URL").fill(receiver.url)
    page.get_by_label("Description").fill(description)
    page.get_by_role("checkbox", name="limit.reached").uncheck()
    page.get_by_role("button", name="Create endpoint").click()
    page.get_by_role("heading", name=f'Signing secret of "{description}"').wait_for()
    secret = page.locator("#new-secret").text_content() or ""
    assert secret.startswith("whsec_")
    assert page.get_by_role("button", name="Copy").is_visible()
    card = page.get_by_role("article", name=description)
    assert card.get_by_text(receiver.url).is_visible()
    assert card.get_by_text("limit.reached").count() == 0
    assert card.get_by_text(f"whsec_…{secret[-4:]}").is_visible()

    card.get_by_label("Test event").select_option("key.revoked")
    card.get_by_label("Test event").focus()
    page.keyboard.press("Tab")  # to "Send test", by keyboard
    page.keyboard.press("Enter")
    card.get_by_role("alert").filter(has_text="delivered, HTTP 200").wait_for()
    assert verifies(receiver.wait_for(1)[0], secret)
    assert page.locator("#new-secret").text_content() == secret  # still there to copy
    log = card.get_by_role("table", name="Recent deliveries")
    tested = log.get_by_role("row").filter(has_text="key.revoked")
    assert tested.get_by_text("Test sent").is_visible()
    assert tested.get_by_role("cell", name="200", exact=True).is_visible()
    b.shot("webhooks-created")

    receiver.statuses = [500]  # a real event, refused once: it waits for its retry
    made = httpx.post(f"{server.url}/v1/keys", headers=session, json={"name": "ci"})
    assert made.status_code in (200, 201), made.text
    receiver.wait_for(2)
    failed = log.get_by_role("row").filter(has_text="key.created")
    for _ in range(50):  # the attempt is logged just after the receiver answers
        page.get_by_role("button", name="Refresh deliveries").click()
        if failed.count():
            break
        time.sleep(0.1)
    assert failed.get_by_text("Retrying").is_visible()
    assert failed.get_by_text("HTTP 500").is_visible()
    retry = failed.locator("td[data-label='Next retry']").text_content() or ""
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", retry), retry
    b.shot("webhooks-deliveries")

    card.get_by_role("button", name="Rotate secret").click()
    page.keyboard.press("Escape")  # changed my mind
    page.get_by_role("dialog").wait_for(state="detached")
    card.get_by_role("button", name="Rotate secret").click()
    b.shot("webhooks-rotate-confirm")
    page.get_by_role("dialog").get_by_role("button", name="Rotate secret").click()
    page.get_by_role("heading", name=f'New signing secret of "{description}"').wait_for()
    rotated = page.locator("#new-secret").text_content() or ""
    assert rotated.startswith("whsec_") and rotated != secret
    card.get_by_role("button", name="Send test").click()
    card.get_by_role("alert").filter(has_text="delivered, HTTP 200").wait_for()
    latest = receiver.wait_for(3)[2]
    assert verifies(latest, rotated) and not verifies(latest, secret)

    card.get_by_role("button", name="Disable").click()
    card.get_by_text("Disabled: disabled by its owner").wait_for()
    assert card.get_by_role("alert").filter(has_text="no events are sent to it").is_visible()
    assert page.evaluate("document.activeElement.textContent") == "Enable"
    b.shot("webhooks-disabled")
    card.get_by_role("button", name="Enable").click()
    card.get_by_text("Enabled", exact=True).wait_for()

    card.get_by_role("button", name="Delete").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete endpoint").click()
    page.get_by_text("No endpoints yet").wait_for()
    assert page.get_by_role("alert").filter(has_text="is deleted").is_visible()
    assert httpx.get(f"{server.url}/v1/webhooks", headers=session).json()["data"] == []
    page.get_by_role("button", name="Log out").click()
    b.heading("Log in")
    b.check()


def test_straight_after_make_run(browser: Browser, tmp_path: Path) -> None:
    """The default config, a new data folder, no admin key: the key printed on first start
    opens the pages, and the whole key flow works; signup says it is off."""
    fresh = FreshGateway(tmp_path).start()
    b, page = browser, browser.page
    origin, b.base = b.base, fresh.url
    b.gateways.append(origin)
    try:
        b.open("/login", "Log in")
        page.get_by_text("Log in with an API key instead").click()
        page.get_by_label("API key").fill(fresh.key)
        page.get_by_role("button", name="Log in with key").click()
        b.heading("Overview")
        b.nav("API keys")
        page.get_by_label("Name").fill("laptop")
        page.get_by_role("button", name="Create key").click()
        key = page.locator("#new-key").text_content() or ""
        assert chat(fresh, key).status_code == 200
        time.sleep(1.2)
        b.nav("Usage")
        recent = page.get_by_role("region", name="Recent requests")
        assert recent.get_by_role("cell", name="mock/lorem").is_visible()
        b.nav("API keys")
        row = page.get_by_role("row").filter(has_text="laptop")
        row.get_by_role("button", name="Revoke").click()
        page.get_by_role("dialog").get_by_role("button", name="Revoke key").click()
        page.get_by_role("alert").filter(has_text="revoked").wait_for()
        assert chat(fresh, key).status_code == 401
        b.nav("Webhooks")  # the default config delivers to public addresses only
        b.expected.append("400")
        page.get_by_label("URL").fill("http://127.0.0.1:9/hook")
        page.get_by_role("button", name="Create endpoint").click()
        page.get_by_role("alert").filter(has_text="webhooks go to public addresses only").wait_for()
        b.shot("webhooks-private-refused")
        page.get_by_role("button", name="Log out").click()
        b.heading("Log in")
        b.open("/signup", "Sign up")
        b.expected.append("403")
        page.get_by_label("Email").fill("new@example.com")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign up").click()
        page.get_by_role("alert").filter(has_text="Signup is switched off").wait_for()
        b.check()
    finally:
        b.base = origin
        b.gateways.append(fresh.url)
        fresh.stop()
