"""``/openapi.json`` describes every route the server answers, ``/docs`` renders it from local
assets only, and schemathesis, fuzzing the real server from the document, finds no 5xx and no
answer that contradicts its schema."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import pytest

from gateway.app import create_app
from gateway.config import load_config
from gateway.openapi.build import build_spec, mounted
from gateway.openapi.operations import OPERATIONS
from tests.fresh_gateway import FreshGateway

pytestmark = pytest.mark.e2e

SCHEMATHESIS = str(Path(sys.executable).parent / "schemathesis")
ADMIN_KEY = "gwadmin-openapi-test-0123456789abcdef0123456789"
SECRET = "openapi-test-secret-0123456789abcdef0123456789"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FreshGateway]:
    env = {"GATEWAY_ADMIN_KEY": ADMIN_KEY, "GATEWAY_SECRET": SECRET}
    process = FreshGateway(tmp_path_factory.mktemp("openapi"), env)
    # mock/fail answers 503 by design (the fallback demo). Schemathesis takes model ids from
    # GET /v1/models, and its designed 503 is no server fault: the catalog here leaves it out.
    config = process.home / "config" / "gateway.toml"
    text = config.read_text()
    start = text.index('[[models]]\nid = "mock/fail"')
    end = text.index("[[models]]", start + 1)
    config.write_text(text[:start] + text[end:])
    process.start()
    yield process
    process.stop()


def test_every_mounted_route_is_described_with_its_dialects_error_shape() -> None:
    app = create_app(load_config())
    spec = build_spec(app.app.routes, OPERATIONS)
    routes = mounted(app.app.routes)
    assert len(routes) >= 33
    undocumented = [f"{m} {p}" for m, p in routes
                    if spec["paths"][p][m.lower()].get("x-undocumented")]
    assert not undocumented, f"add an Operation in gateway/openapi/operations.py: {undocumented}"
    for path in ("/v1/chat/completions", "/v1/messages", "/anthropic/v1/messages",
                 "/v1/messages/count_tokens", "/v1/models", "/v1/models/{model_id}", "/health",
                 "/ready", "/metrics", "/v1/auth/signup", "/v1/keys", "/v1/usage",
                 "/v1/billing/invoices", "/v1/admin/users"):
        assert path in spec["paths"], path
    chat = spec["paths"]["/v1/chat/completions"]["post"]
    assert chat["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "ChatCompletionRequest")
    assert set(chat["responses"]["200"]["content"]) == {"application/json", "text/event-stream"}
    assert chat["responses"]["401"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/OpenAIError")
    messages = spec["paths"]["/anthropic/v1/messages"]["post"]
    assert messages["responses"]["401"]["content"]["application/json"]["schema"][
        "$ref"].endswith("/AnthropicError")
    schemas = spec["components"]["schemas"]
    assert schemas["OpenAIErrorDetail"]["required"] == ["message", "type"]
    assert set(schemas["OpenAIErrorDetail"]["properties"]) == {"message", "type", "code", "param"}
    assert set(schemas["AnthropicError"]["properties"]) == {"type", "error"}


def test_the_document_is_served_and_the_docs_page_loads_nothing_from_elsewhere(
    server: FreshGateway,
) -> None:
    spec = httpx.get(f"{server.url}/openapi.json").json()
    assert spec["openapi"].startswith("3.1")
    assert "/v1/keys/{key_id}" in spec["paths"]
    page = httpx.get(f"{server.url}/docs")
    assert page.status_code == 200
    csp = page.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assets = re.findall(r'(?:src|href)="(docs/[^"]+)"', page.text)
    assert sorted(assets) == ["docs/docs.css", "docs/docs.js"]
    for asset in assets:
        answer = httpx.get(f"{server.url}/{asset}")
        assert answer.status_code == 200
        assert not re.search(r"https?://", answer.text), f"{asset} reaches another origin"
    assert not re.search(r"<script>|\sstyle=|\son[a-z]+=", page.text)  # nothing inline for CSP


@pytest.mark.skipif(not shutil.which("chromium"), reason="chromium is not installed")
def test_the_docs_page_renders_every_operation_in_a_browser(
    server: FreshGateway, tmp_path: Path
) -> None:
    result = subprocess.run(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=5000",
         f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", f"{server.url}/docs"],
        capture_output=True, text=True, timeout=120, check=False,
    )
    dom = result.stdout
    assert 'class="path">/v1/chat/completions<' in dom, result.stderr[-2000:]
    assert dom.count('<article class="op"') == len(mounted(create_app(load_config()).app.routes))
    assert "Could not load" not in dom


def _schemathesis(server: FreshGateway, key: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SCHEMATHESIS, "run", f"{server.url}/openapi.json",
         "--checks", "not_a_server_error,response_schema_conformance",
         "--phases", "examples,coverage,fuzzing", "--max-examples", "50", "--seed", "1",
         "--generation-database", "none", "--workers", "1", "--request-timeout", "10",
         "--no-color", "-H", f"Authorization: Bearer {key}", *args],
        capture_output=True, text=True, timeout=540, check=False, cwd=server.home,
    )


def test_schemathesis_finds_no_server_error_and_no_answer_off_its_schema(
    server: FreshGateway,
) -> None:
    # With the first-start key: every route (admin ones answer 401 to it).
    run = _schemathesis(server, server.key)
    assert run.returncode == 0, run.stdout[-20000:] + run.stderr[-2000:]
    # With the admin key: the admin routes, but not switching maintenance mode on (its 503s
    # would be every later request's answer, not a fault).
    run = _schemathesis(server, ADMIN_KEY, "--include-path-regex", "^/v1/admin/",
                        "--exclude-operation-id", "post_v1_admin_maintenance")
    assert run.returncode == 0, run.stdout[-20000:] + run.stderr[-2000:]
    assert "Traceback" not in server.logs()
