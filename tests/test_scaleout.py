"""Several gateway instances sharing PostgreSQL and Redis: the tests' own (tests/services.py).

Two instances (A and B) share one fresh PostgreSQL database and one Redis key prefix. The key
cache TTL is the default 30 s, so a revocation seen within seconds is the Redis channel's work.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import openai
import pytest

from bench.fake_upstream import Exchange, FakeUpstream
from bench.fake_upstream import sse_data as sse
from tests.conftest import (
    ROOT,
    GatewayProcess,
    end_tree,
    fake_config,
    free_port,
    launch,
    stop_tree,
)
from tests.prom import sample
from tests.services import (
    REDIS_URL,
    ensure_postgres,
    ensure_redis,
    pg_ctl,
    pg_query,
    pg_url,  # noqa: F401  (fixture)
    postgres_up,
    redis_ping,
    redis_prefix,  # noqa: F401  (fixture)
    start_redis,
    stop_redis,
    wait_postgres,
)

pytestmark = pytest.mark.e2e


def scaleout_config(
    tmp: Path, upstream: str, database: str, prefix: str, failure: str = "open", redis: bool = True
) -> str:
    extra = ""
    if redis:
        extra = f"""
[limits]
storage = "{REDIS_URL}"
redis_prefix = "{prefix}"
redis_failure = "{failure}"

[cache]
mode = "opt-in"
backend = "redis"
ttl = 60

[tiers.free]
[tiers.enterprise]
[tiers.tight]
requests_per_minute = 5
"""
    text = fake_config(tmp, upstream, extra=extra)
    return text.replace(f'url = "sqlite:///{tmp}/gateway.db"', f'url = "{database}"')


def eventually(predicate: Callable[[], Any], timeout: float = 10.0) -> Any:
    """Poll until ``predicate`` returns something truthy (bounded wait, not a timing test)."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.1)


def chat(gw: GatewayProcess, key: str | None = None, text: str = "hi", **kw: Any) -> httpx.Response:
    headers = {**gw.headers(key), **kw.pop("headers", {})}
    body = {"model": kw.pop("model", "fake/ok"), "messages": [{"role": "user", "content": text}]}
    return httpx.post(f"{gw.url}/v1/chat/completions", json=body, headers=headers, timeout=15)


@pytest.fixture(scope="module")
def pair(
    tmp_path_factory: pytest.TempPathFactory,
    upstream: FakeUpstream,
    pg_url: str,  # noqa: F811
    redis_prefix: str,  # noqa: F811
) -> Iterator[tuple[GatewayProcess, GatewayProcess]]:
    ensure_postgres()
    ensure_redis()
    a_tmp, b_tmp = tmp_path_factory.mktemp("a"), tmp_path_factory.mktemp("b")
    a = GatewayProcess(a_tmp, scaleout_config(a_tmp, upstream.url, pg_url, redis_prefix))
    b = GatewayProcess(b_tmp, scaleout_config(b_tmp, upstream.url, pg_url, redis_prefix))
    a.start()
    b.key = a.key
    b.start()
    yield a, b
    a.stop()
    b.stop()


def usage(database: str, request_ids: list[str]) -> dict[str, list[str]]:
    ids = ",".join(f"'{r}'" for r in request_ids)
    rows = pg_query(
        database,
        f"SELECT request_id, status, cache_hit, cost_usd, prompt_tokens, key_id FROM usage "
        f"WHERE request_id IN ({ids})",
    )
    return {row[0]: row[1:] for row in rows}


def test_key_created_on_one_instance_works_on_the_other(
    pair: tuple[GatewayProcess, GatewayProcess],
) -> None:
    a, b = pair
    key = a.create_key("--name", "cross", "--user", "cross@example.com")
    assert chat(b, key).status_code == 200
    assert chat(a, key).status_code == 200


def test_revocation_on_one_instance_reaches_the_other_within_seconds(
    pair: tuple[GatewayProcess, GatewayProcess],
) -> None:
    a, b = pair
    key = a.create_key("--name", "doomed")
    assert chat(a, key).status_code == 200 and chat(b, key).status_code == 200  # both cache it
    result = a.cli("keys", "revoke", key[:9])
    assert result.returncode == 0, result.stderr
    # The cache TTL is 30 s: only the Redis channel can make this happen within 5 s.
    assert eventually(lambda: chat(b, key).status_code == 401, timeout=5)
    refused = chat(a, key)
    assert refused.status_code == 401 and "revoked" in refused.text
    # The same through the HTTP API: the owner deletes a key on B, A stops taking it.
    owner = a.create_key("--name", "owner", "--user", "owner@example.com")
    other = a.create_key("--name", "second", "--user", "owner@example.com")
    assert chat(a, other).status_code == 200 and chat(b, other).status_code == 200
    listed = httpx.get(f"{b.url}/v1/keys", headers=b.headers(owner), timeout=10).json()
    key_id = next(k["id"] for k in listed["data"] if k["name"] == "second")
    deleted = httpx.delete(f"{b.url}/v1/keys/{key_id}", headers=b.headers(owner), timeout=10)
    assert deleted.status_code == 200, deleted.text
    assert eventually(lambda: chat(a, other).status_code == 401, timeout=5)


def test_a_per_minute_limit_is_shared_by_both_instances(
    pair: tuple[GatewayProcess, GatewayProcess],
) -> None:
    a, b = pair
    key = a.create_key("--name", "tight", "--tier", "tight")
    statuses = [chat(a if i % 2 else b, key).status_code for i in range(8)]
    assert statuses.count(200) == 5 and statuses.count(429) == 3, statuses


def test_usage_rows_from_both_instances_land_in_postgres(
    pair: tuple[GatewayProcess, GatewayProcess], pg_url: str  # noqa: F811
) -> None:
    a, b = pair
    ids = []
    for i in range(6):
        request_id = f"both-{time.time_ns()}-{i}"
        gw = a if i % 2 else b
        assert chat(gw, headers={"x-request-id": request_id}).status_code == 200
        ids.append(request_id)
    rows = eventually(lambda: len(usage(pg_url, ids)) == 6 and usage(pg_url, ids))
    assert rows and all(row[0] == "200" for row in rows.values())


def test_response_cache_shared_across_instances_and_billed_at_cached_rate(
    pair: tuple[GatewayProcess, GatewayProcess], fake: FakeUpstream, pg_url: str  # noqa: F811
) -> None:
    a, b = pair
    text = f"cache me {time.time_ns()}"
    miss = chat(a, text=text, headers={"x-cache": "use", "x-request-id": "miss-" + text[9:]})
    assert miss.status_code == 200 and miss.headers["x-cache"] == "MISS"
    # Same request, other instance, fields that do not change the answer differ.
    body = {"messages": [{"role": "user", "content": text}], "model": "fake-ok", "user": "bob"}
    hit = httpx.post(
        f"{b.url}/v1/chat/completions",
        json=body,
        headers={**b.headers(), "x-cache": "use", "x-request-id": "hit-" + text[9:]},
        timeout=15,
    )
    assert hit.status_code == 200 and hit.headers["x-cache"] == "HIT"
    assert hit.json() == miss.json()
    assert fake.hits["ok"] == 1
    pair_ids = ["miss-" + text[9:], "hit-" + text[9:]]
    rows = eventually(lambda: len(u := usage(pg_url, pair_ids)) == 2 and u)
    miss_row, hit_row = rows[pair_ids[0]], rows[pair_ids[1]]
    assert (miss_row[1], hit_row[1]) == ("0", "1")
    prompt = int(hit_row[3])
    assert prompt > 0 and float(hit_row[2]) == pytest.approx(prompt * 0.5 / 1e6)
    assert float(miss_row[2]) > float(hit_row[2])
    # Not asked for: no cache involvement; streams are never cached.
    assert "x-cache" not in chat(a, text=text).headers
    assert fake.hits["ok"] == 2
    stream = openai.OpenAI(base_url=f"{a.url}/v1", api_key=a.key, max_retries=0)
    with stream.chat.completions.with_streaming_response.create(
        model="fake/ok", messages=[{"role": "user", "content": text}], stream=True,
        extra_headers={"x-cache": "use"},
    ) as response:
        assert "x-cache" not in response.headers
        assert "".join(
            chunk.choices[0].delta.content or "" for chunk in response.parse() if chunk.choices
        ) == f"fake: {text}"


def test_metrics_and_readiness(pair: tuple[GatewayProcess, GatewayProcess]) -> None:
    a, _ = pair
    assert chat(a).status_code == 200
    assert chat(a, model="fake/error-500").status_code >= 500
    ready = httpx.get(f"{a.url}/ready", timeout=5)
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"store": "ok", "redis": "ok"}
    text = httpx.get(f"{a.url}/metrics", timeout=5).text
    # Label order in the text is prometheus_client's; tests.prom reads samples whatever it is.
    served = sample(text, "gateway_requests_total", model="fake/ok", operation="chat",
                    status="200", kind="complete")
    assert served is not None and served >= 1
    # fake/error-500 is not in the catalog: its label is bounded to "<provider>/other".
    assert (sample(text, "gateway_upstream_errors_total", model="fake/other") or 0) >= 1
    assert (sample(text, "gateway_request_duration_seconds_bucket", model="fake/ok",
                   kind="complete", le="+Inf") or 0) >= 1
    assert (sample(text, "gateway_tokens_total", model="fake/ok", type="input") or 0) >= 1
    assert sample(text, "gateway_open_streams") == 0
    assert sample(text, "gateway_redis_up") == 1


def test_postgres_outage_keeps_cached_keys_and_loses_no_usage_row(
    pair: tuple[GatewayProcess, GatewayProcess], pg_url: str  # noqa: F811
) -> None:
    a, b = pair
    ids: list[str] = []

    def send(gw: GatewayProcess, tag: str) -> int:
        request_id = f"pg-{tag}-{time.time_ns()}"
        ids.append(request_id)
        try:
            return chat(gw, headers={"x-request-id": request_id}).status_code
        except httpx.HTTPError as exc:
            ids.remove(request_id)  # never reached the gateway's ledger
            return -1 if "timed out" not in str(exc).lower() else -2

    assert send(a, "before") == 200 and send(b, "before") == 200
    # The cluster is this session's own, but a slow stop is retried rather than misread.
    for _attempt in range(3):
        fresh = a.create_key("--name", "never-used-yet")
        pg_ctl("stop")
        try:
            down = [send(a, "down"), send(b, "down")]
            fresh_status = chat(b, fresh).status_code
            ready_status = httpx.get(f"{a.url}/ready", timeout=5).status_code
            still_down = not postgres_up()
        finally:
            pg_ctl("start")
            assert wait_postgres()
        assert down == [200, 200]  # cached keys keep working, whether or not it came back
        if still_down:
            assert fresh_status == 503  # an unknown key cannot be checked: 503, not 401
            assert ready_status == 503
            break
    else:
        pytest.fail("PostgreSQL did not stay down during the outage test")
    # Restarted mid-run: requests keep flowing to both instances while it goes down and up.
    statuses: list[int] = []
    stop = threading.Event()

    def load() -> None:
        while not stop.is_set():
            statuses.append(send(a if len(statuses) % 2 else b, "during"))

    worker = threading.Thread(target=load)
    worker.start()
    try:
        eventually(lambda: len(statuses) >= 3)
        pg_ctl("restart")
        assert wait_postgres()
        eventually(lambda: len(statuses) >= 10)
    finally:
        stop.set()
        worker.join(30)
    assert statuses and set(statuses) == {200}, statuses
    assert send(a, "after") == 200 and send(b, "after") == 200
    rows = eventually(lambda: len(u := usage(pg_url, ids)) == len(ids) and u, timeout=30)
    missing = sorted(set(ids) - set(usage(pg_url, ids)))
    assert not missing, f"rows never written: {missing}\n{a.logs()[-3000:]}\n{b.logs()[-3000:]}"
    assert rows and len(rows) == len(ids) >= 16
    quoted = ",".join(f"'{r}'" for r in ids)
    counts = pg_query(pg_url, f"SELECT COUNT(*), COUNT(DISTINCT request_id) FROM usage "
                              f"WHERE request_id IN ({quoted})")
    assert counts == [[str(len(ids)), str(len(ids))]]  # none lost, none written twice
    assert chat(b, fresh).status_code == 200
    assert eventually(lambda: httpx.get(f"{a.url}/ready", timeout=5).status_code == 200)


def test_redis_outage_fails_open_or_closed_as_configured(
    pair: tuple[GatewayProcess, GatewayProcess],
    tmp_path_factory: pytest.TempPathFactory,
    upstream: FakeUpstream,
    pg_url: str,  # noqa: F811
    redis_prefix: str,  # noqa: F811
) -> None:
    a, _ = pair
    tmp = tmp_path_factory.mktemp("closed")
    closed = GatewayProcess(
        tmp, scaleout_config(tmp, upstream.url, pg_url, redis_prefix, failure="closed")
    )
    closed.key = a.key
    closed.start()
    try:
        # The Redis is this session's own, but a slow stop is retried rather than misread.
        for _attempt in range(3):
            doomed = a.create_key("--name", "revoked-while-redis-is-down")
            assert chat(closed, doomed).status_code == 200  # cached on the closed instance
            stop_redis()
            try:
                opened = chat(a, text="redis down", headers={"x-cache": "use"})
                refused = chat(closed, text="redis down", headers={"x-cache": "use"})
                plain = chat(closed).status_code  # keys still checked, against the database
                ready = httpx.get(f"{a.url}/ready", timeout=5)
                # Closed: while revocations cannot arrive, keys are rechecked in the database.
                revoked = closed.cli("keys", "revoke", doomed[:9])
                doomed_status = eventually(
                    lambda: chat(closed, doomed).status_code == 401, timeout=10  # noqa: B023
                )
                still_down = not redis_ping()
            finally:
                start_redis()
            assert plain == 200 and revoked.returncode == 0
            if still_down:
                assert opened.status_code == 200 and opened.headers["x-cache"] == "MISS"
                assert refused.status_code == 503 and "shared state store" in refused.text
                assert ready.status_code == 503
                assert ready.json()["checks"]["redis"] == "unavailable"
                assert "Redis unreachable" in revoked.stderr
                assert doomed_status
                break
        else:
            pytest.fail("Redis did not stay down during the outage test")
        assert eventually(lambda: httpx.get(f"{a.url}/ready", timeout=5).status_code == 200)
        assert "redis_unavailable" in a.logs() and "fail open" in a.logs()
        assert "redis_unavailable" in closed.logs() and "fail closed" in closed.logs()
        text = f"after redis {time.time_ns()}"

        def hit() -> bool:
            chat(a, text=text, headers={"x-cache": "use"})
            return chat(a, text=text, headers={"x-cache": "use"}).headers["x-cache"] == "HIT"

        assert eventually(hit)
    finally:
        closed.stop()


def test_workers_share_the_database_and_aggregate_metrics(
    tmp_path_factory: pytest.TempPathFactory, upstream: FakeUpstream, pg_url: str  # noqa: F811
) -> None:
    tmp = tmp_path_factory.mktemp("workers")
    gw = GatewayProcess(tmp, scaleout_config(tmp, upstream.url, pg_url, "", redis=False))
    warning = gw.cli("check-config")
    assert "warning" not in warning.stdout  # one worker: nothing to warn about
    config = gw.config_path.read_text().replace("[server]", "[server]\nworkers = 2")
    gw.config_path.write_text(config)
    warned = gw.cli("check-config")
    assert warned.returncode == 0 and "limits.storage = memory://" in warned.stdout
    gw.env["GATEWAY_METRICS_DIR"] = str(tmp / "metrics")
    gw.start(workers=2)
    try:
        ids = [f"w-{time.time_ns()}-{i}" for i in range(12)]
        for request_id in ids:  # a new connection each time, so both workers take some
            with httpx.Client() as client:
                response = client.post(
                    f"{gw.url}/v1/chat/completions",
                    json={"model": "echo", "messages": [{"role": "user", "content": "w"}]},
                    headers={**gw.headers(), "x-request-id": request_id},
                )
                assert response.status_code == 200
        assert eventually(lambda: len(usage(pg_url, ids)) == 12)

        def total() -> float:
            text = httpx.get(f"{gw.url}/metrics", timeout=5).text
            return sample(text, "gateway_requests_total", model="mock/echo", operation="chat",
                          status="200", kind="complete") or 0.0

        assert eventually(lambda: total() == 12, timeout=10)
    finally:
        assert gw.stop() == 0


# --- nginx in front of A and B ---


def _which_nginx() -> str | None:
    return shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if Path(p).exists()), None
    )


def nginx_binary() -> str | None:
    """nginx, installed through ``make nginx`` (apt-get) if it is missing."""
    found = _which_nginx()
    if found is None:
        subprocess.run(["make", "-s", "nginx"], cwd=ROOT, check=False, timeout=600)
        found = _which_nginx()
    return found


@pytest.fixture(scope="module")
def nginx(
    pair: tuple[GatewayProcess, GatewayProcess], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    binary = nginx_binary()
    if binary is None:
        pytest.skip("nginx is not installed and `make nginx` could not install it (apt-get)")
    a, b = pair
    tmp = tmp_path_factory.mktemp("nginx")
    port = free_port()
    conf = (ROOT / "config" / "nginx.conf").read_text()
    conf = conf.replace("127.0.0.1:8081", f"127.0.0.1:{a.port}")
    conf = conf.replace("127.0.0.1:8082", f"127.0.0.1:{b.port}")
    conf = conf.replace("listen 8090;", f"listen 127.0.0.1:{port};")
    conf = conf.replace("pid /tmp/gateway-nginx.pid;", f"pid {tmp}/nginx.pid;")
    conf = conf.replace("worker_processes auto;", "worker_processes 1;")
    conf = conf.replace("http {", f"http {{\n    client_body_temp_path {tmp}/body;\n"
                        f"    proxy_temp_path {tmp}/proxy;", 1)
    (tmp / "nginx.conf").write_text(conf)
    log = (tmp / "nginx.log").open("wb")
    process = launch(
        [binary, "-p", str(tmp), "-c", str(tmp / "nginx.conf"), "-g", "daemon off;"],
        stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    if not eventually(lambda: _get_ok(f"{url}/health"), timeout=10):
        end_tree(process)  # its master and its worker
        pytest.fail("nginx did not start:\n" + (tmp / "nginx.log").read_text())
    yield url
    stop_tree(process, 10)


def _get_ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def test_nginx_streams_through_without_buffering(
    pair: tuple[GatewayProcess, GatewayProcess], nginx: str, fake: FakeUpstream
) -> None:
    a, b = pair
    gate = threading.Event()
    released: list[bool] = []

    async def gated(exchange: Exchange) -> None:
        """First token, then nothing until the test has seen it through nginx."""
        exchange.open_stream()

        def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
            return sse({"id": "c", "object": "chat.completion.chunk", "created": 1,
                        "model": "gated", "choices": [{"index": 0, "delta": delta,
                                                       "finish_reason": finish}]})

        exchange.send(chunk({"role": "assistant", "content": "first"}))
        released.append(await asyncio.get_running_loop().run_in_executor(None, gate.wait, 15))
        exchange.send(chunk({"content": " second"}, "stop"))
        exchange.send(b"data: [DONE]\n\n")

    fake.handlers["gated"] = gated
    client = openai.OpenAI(base_url=f"{nginx}/v1", api_key=a.key, max_retries=0, timeout=60)
    stream = client.chat.completions.create(
        model="fake/gated", messages=[{"role": "user", "content": "x"}], stream=True
    )
    received: list[str] = []
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            received.append(chunk.choices[0].delta.content)
            # The upstream holds the rest until the first token has reached the client:
            # through a buffering proxy it would only arrive when the gate times out.
            gate.set()
    assert received == ["first", " second"]
    assert released == [True], "the first token was held back until the upstream gave up"
    # nginx spreads requests over both instances.
    before = [echo_count(a), echo_count(b)]
    assert {chat_via(nginx, a.key) for _ in range(6)} == {200}
    after = [echo_count(a), echo_count(b)]
    assert after[0] > before[0] and after[1] > before[1]


def echo_count(gw: GatewayProcess) -> float:
    text = httpx.get(f"{gw.url}/metrics", timeout=5).text
    return sample(text, "gateway_requests_total", model="mock/echo", operation="chat",
                  status="200", kind="complete") or 0.0


def chat_via(url: str, key: str) -> int:
    return httpx.post(
        f"{url}/v1/chat/completions",
        json={"model": "echo", "messages": [{"role": "user", "content": "via nginx"}]},
        headers={"Authorization": f"Bearer {key}"},
        timeout=15,
    ).status_code
