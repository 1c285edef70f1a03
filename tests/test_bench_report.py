"""The bench report checks issue 14's goals from a run's raw figures, one ✅/❌ per goal."""

from __future__ import annotations

from typing import Any

import pytest

from bench import report

pytestmark = pytest.mark.unit


def _target(kind: str, cpu: float, *, chunk_cpu_s: float = 0.0, sent: int = 1000,
            rows: int | None = None, **extra: Any) -> dict[str, Any]:
    stream = {"n": 256, "completed": 256, "ttft_p50_ms": 2.0, "gap_p50_ms": 20.0,
              "gap_p99_ms": 22.0, "gap_max_ms": 30.0, "cpu_s": chunk_cpu_s}
    streams = [stream] if chunk_cpu_s else []
    return {
        "kind": kind, "error": "", "cpu_us_per_request": [cpu],
        "wrk": {"64": [{"rps": 1e6 / cpu, "p50_ms": 1.0, "p99_ms": 2.0, "socket_errors": 0,
                        "status_errors": 0}]},
        "streams": streams, "sweep": [{"n": 1000, "completed": 1000, "gap_max_ms": 150,
                                       "ok": True}] if streams else [],
        "rss_idle": 50 * 2**20, "rss_samples": [],
        "holds": [{"n": 1000, "samples": [[0, 50 * 2**20], [1000, 50 * 2**20 + 25 * 1024 * 1000]]}]
        if streams else [],
        "requests_sent": sent, "ledger_rows": rows, "surfaces": {}, "side": {}, **extra,
    }


def _raw() -> dict[str, Any]:
    chunk = 256 * 66 * 50e-6  # 50 µs a chunk
    return {
        "meta": {"default_server": "uvicorn",
                 "surface_bases": {"fallback": "chat", "responses-stream": "chat-stream"}},
        "targets": {
            "direct": _target("direct", 15, chunk_cpu_s=256 * 66 * 15e-6),
            "bare-uvicorn": _target("bare", 200, chunk_cpu_s=chunk),
            "gateway-uvicorn": _target(
                "gateway", 240, chunk_cpu_s=chunk * 1.05, rows=1000,
                surfaces={
                    "chat": [{"requests": 100, "cpu_us": 300.0}],
                    "fallback": [{"requests": 100, "cpu_us": 450.0}],
                    "chat-stream": [{"requests": 100, "cpu_us": 3000.0}],
                    "responses-stream": [{"requests": 100, "cpu_us": 3300.0}],
                }),
            "gateway-hypercorn": _target("gateway", 400, rows=1000),
            "gateway-uvicorn-2w": _target("gateway", 245, rows=1000),
            "gateway-uvicorn-scaleout": _target(
                "gateway", 300, rows=990,
                side={"redis_reads": 8000, "redis_commands": {"evalsha": 8000},
                      "redis_cpu_s": 0.1, "pg_commits": 80, "pg_rollbacks": 30,
                      "pg_inserted": 1000, "pg_rows_read": 30, "pg_cpu_s": 0.05}),
            "litellm": _target("litellm", 7000),
        },
    }


def _line(text: str, name: str) -> str:
    return next(line for line in text.splitlines() if line.startswith(f"- **{name}**"))


def test_each_goal_of_issue_14_is_checked_against_its_base() -> None:
    goals = report.goals(_raw())

    uvicorn = _line(goals, "gateway-uvicorn")
    assert "✅ CPU/request vs bare-uvicorn ≤ 1.25x: 1.20x" in uvicorn
    assert "✅ CPU/chunk vs bare-uvicorn ≤ 1.1x: 1.05x" in uvicorn
    assert "✅ req/s per core ≥ 30x LiteLLM: 29.2x" not in uvicorn
    assert "❌ req/s per core ≥ 30x LiteLLM: 29.2x" in uvicorn
    assert "❌ fallback vs chat ≤ 1.25x: 1.50x" in uvicorn
    assert "✅ responses-stream vs chat-stream ≤ 1.25x: 1.10x" in uvicorn
    assert "✅ 1,000 held streams, no gap over 200 ms" in uvicorn
    assert "✅ ≤ 30 KB RSS per open stream: 25.0 KB" in uvicorn
    assert "✅ no ledger row lost" in uvicorn

    first = _line(goals, "gateway serve")
    assert "✅ the default server (uvicorn) is the fastest measured" in first
    assert "✅ CPU/request vs gateway-uvicorn ≤ 1.05x: 1.02x" in _line(goals, "gateway-uvicorn-2w")

    scaleout = _line(goals, "gateway-uvicorn-scaleout")
    assert "❌ CPU/request vs gateway-uvicorn (SQLite + memory) ≤ 1.15x: 1.25x" in scaleout
    assert "❌ ≤ 1 Redis round trip per request: 8.00" in scaleout
    assert "✅ PostgreSQL writes batched (≤ 0.25 commits per request): 0.080" in scaleout
    assert "❌ no ledger row lost: 990 rows for 1000 requests" in scaleout


def test_two_workers_are_checked_against_one_worker_on_the_same_cores() -> None:
    raw = _raw()
    raw["targets"]["gateway-uvicorn-1w"] = _target("gateway", 250, rows=1000)
    goals = report.goals(raw)

    two = _line(goals, "gateway-uvicorn-2w")
    assert "✅ CPU/request vs gateway-uvicorn-1w ≤ 1.05x: 0.98x (245 vs 250 µs)" in two
    assert "(1.02x gateway-uvicorn on a core of its own)" in two
    assert "goal 6's base" in _line(goals, "gateway-uvicorn-1w")
    assert "≤ 1.05x" not in _line(goals, "gateway-uvicorn-1w")

    raw["targets"]["gateway-uvicorn-2w"] = _target("gateway", 270, rows=1000)
    two = _line(report.goals(raw), "gateway-uvicorn-2w")
    assert "❌ CPU/request vs gateway-uvicorn-1w ≤ 1.05x: 1.08x" in two


def test_the_fallback_is_shown_beside_the_bare_pass_throughs_own_fallback() -> None:
    raw = _raw()
    raw["targets"]["bare-uvicorn"]["surfaces"] = {
        "chat": [{"requests": 100, "cpu_us": 200.0}],
        "fallback": [{"requests": 100, "cpu_us": 290.0}],
    }

    uvicorn = _line(report.goals(raw), "gateway-uvicorn")

    floor = "; bare-uvicorn 1.45x (290 vs 200 µs)"
    assert f"❌ fallback vs chat ≤ 1.25x: 1.50x (450 vs 300 µs{floor})" in uvicorn
    assert "| bare-uvicorn | fallback | 290 | chat | 200 | 1.45x |" in report.side_tables(raw)


def test_the_side_tables_show_surfaces_and_redis_and_postgres_work_per_request() -> None:
    text = report.side_tables(_raw())

    assert "| gateway-uvicorn | fallback | 450 | chat | 300 | 1.50x |" in text
    row = "| gateway-uvicorn-scaleout | 1000 | 8.00 | 8.00 (evalsha 8.00) | 100.0 | 0.080 |"
    assert row in text


def test_a_slower_default_server_fails_the_first_goal() -> None:
    raw = _raw()
    raw["meta"]["default_server"] = "hypercorn"

    assert "❌ the default server (hypercorn)" in _line(report.goals(raw), "gateway serve")
