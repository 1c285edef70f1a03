"""Run the benchmark: every target, one machine, interleaved rounds; write the table and plots.

    python -m bench.run --quick     # under 3 minutes, every target present
    python -m bench.run --full      # the numbers for the README

Layout on a 2-core machine: the target under test runs on core 0; wrk, the stream client
(this process) and the shared fake upstream on core 1. The ``direct`` target is a second fake
upstream on core 0, so it is measured like any other server. Rounds go through the targets in
a rotated order, so drift in the machine's load hits every target alike.

Results: ``bench/results/results.md`` (the table), ``latency.png``, ``rss.png`` and the raw
numbers in ``bench/results/raw/<time>.json``.
"""

from __future__ import annotations

import argparse
import collections
import functools
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench import report, surfaces
from bench.load import LATE, hold_streams, percentile, run_streams, run_wrk
from bench.scaleout import Scaleout, throughput_ceilings
from bench.targets import (
    LOAD_CPUS,
    ROOT,
    Bare,
    Direct,
    Gateway,
    LiteLLM,
    Nginx,
    Target,
    cpu_seconds,
    free_port,
    install_litellm,
    rss_bytes,
)

RESULTS = ROOT / "bench" / "results"
NONSTREAM = "bench-tok16"
STREAM = "bench-tok64-gap20"
# Held streams: a token every 100 ms for up to 60 s; the client closes them after measuring.
# (At 20 ms a Python proxy on one core is CPU-bound long before 1,000 streams: the table's
# "µs/chunk" column gives that ceiling, 1e6 / (50 x µs per chunk) streams.)
SWEEP_STREAM = "bench-tok600-gap100"
STREAM_RAMP = 1.0  # seconds over which the 256 streams start (arrivals, not one burst)
STALL_SECONDS = 0.200


@dataclass(frozen=True)
class Plan:
    """How much of everything one run does; every loop below is bounded by it."""

    wrk_seconds: float
    concurrencies: tuple[int, ...]
    rounds: int
    stream_rounds: int
    streams: int
    sweep: tuple[int, ...]
    servers: tuple[str, ...]
    bare_servers: tuple[str, ...]
    # Servers measured again with two workers on both cores, and with one worker on those same
    # cores as the base (non-streamed rounds only): goal 6.
    two_worker_servers: tuple[str, ...] = ("uvicorn",)
    # PostgreSQL storage and Redis limits (bench/scaleout.py): issue 14's goal 5. One server:
    # the Redis and PostgreSQL counters are read over the whole run, so one target per run.
    scaleout_servers: tuple[str, ...] = ("uvicorn",)
    # Responses stream, embeddings, fallback next to chat (bench/surfaces.py): goal 7.
    surface_servers: tuple[str, ...] = ("uvicorn",)
    surface_seconds: float = 1.0
    scaleout_streams: bool = False  # the stream phases on the scale-out target too


QUICK = Plan(1, (1, 64), 2, 2, 256, (1000,), ("hypercorn", "uvicorn", "granian"),
             ("hypercorn", "uvicorn"))
FULL = Plan(8, (1, 16, 64, 256), 3, 3, 256, (256, 512, 1000, 2000, 4000),
            ("hypercorn", "uvicorn", "granian"), ("hypercorn", "uvicorn", "granian"),
            two_worker_servers=("uvicorn", "granian"),
            surface_servers=("hypercorn", "uvicorn", "granian"), surface_seconds=4.0,
            scaleout_streams=True)


@dataclass
class TargetResults:
    name: str
    kind: str
    wrk: dict[int, list[dict[str, float]]] = field(default_factory=dict)
    cpu_us_per_request: list[float] = field(default_factory=list)
    streams: list[dict[str, Any]] = field(default_factory=list)
    sweep: list[dict[str, Any]] = field(default_factory=list)
    rss_idle: int = 0
    rss_samples: list[tuple[int, int]] = field(default_factory=list)
    holds: list[dict[str, Any]] = field(default_factory=list)
    requests_sent: int = 0
    ledger_rows: int | None = None
    ledger_rows_ok: int | None = None
    surfaces: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    side: dict[str, Any] = field(default_factory=dict)  # Redis and PostgreSQL (scale-out)
    error: str = ""


def _log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


def rotated(items: list[Target], by: int) -> list[Target]:
    """``items`` started ``by`` places on. A gateway on shared cores (with more workers, or its
    one-worker twin there) is measured right next to the others of its server (first every
    other round), so goal 6's ratio compares readings a few seconds apart, not minutes: this
    machine's speed drifts by more than 5% in that time."""
    units: list[list[Target]] = []
    placed: set[str] = set()
    for item in items:
        if item.name in placed:
            continue
        unit = [item] + [other for other in items if isinstance(other, Gateway)
                         and other.shared and other.name.rsplit("-", 1)[0] == item.name]
        placed.update(t.name for t in unit)
        units.append(unit[::-1] if by % 2 else unit)
    by %= max(len(units), 1)
    return [target for unit in units[by:] + units[:by] for target in unit]


def build_targets(plan: Plan, workdir: Path, upstream: str, with_litellm: bool) -> list[Target]:
    targets: list[Target] = [Direct(workdir, upstream), Nginx(workdir, upstream)]
    targets += [Bare(workdir, upstream, server) for server in plan.bare_servers]
    targets += [Gateway(workdir, upstream, server) for server in plan.servers]
    for server in plan.two_worker_servers:
        targets += [Gateway(workdir, upstream, server, shared=True),
                    Gateway(workdir, upstream, server, workers=2)]
    targets += [Scaleout(workdir, upstream, server) for server in plan.scaleout_servers]
    if with_litellm:
        targets.append(LiteLLM(workdir, upstream))
    return targets


def measure_nonstreamed(plan: Plan, targets: list[Target], results: dict[str, TargetResults],
                        workdir: Path) -> None:
    for round_ in range(plan.rounds):
        for concurrency in plan.concurrencies:
            for target in rotated(targets, round_):
                pids = target.pids()
                before = cpu_seconds(pids)
                result = run_wrk(target.url, target.model(NONSTREAM), target.keys, concurrency,
                                 plan.wrk_seconds, workdir, LOAD_CPUS)
                spent = cpu_seconds(pids) - before
                record = results[target.name]
                record.requests_sent += result.requests
                entry = asdict(result) | {"rps": result.rps, "cpu_s": spent}
                record.wrk.setdefault(concurrency, []).append(entry)
                if result.requests:
                    record.cpu_us_per_request.append(spent / result.requests * 1e6)
                _log(f"{target.name:18} c={concurrency:<4} {result.rps:8.0f} req/s "
                     f"p50 {result.p50_ms:6.2f} ms p99 {result.p99_ms:7.2f} ms "
                     f"cpu {spent / max(result.requests, 1) * 1e6:7.0f} us/req "
                     f"errors {result.socket_errors}+{result.status_errors}")


def _streams_summary(run: Any, cpu_s: float) -> dict[str, Any]:
    gaps = run.gaps
    return {
        "n": run.n,
        "completed": run.completed,
        "errors": sorted({r.error for r in run.results if r.error}),
        "ttft_p50_ms": percentile(run.ttfts, 50) * 1000,
        "ttft_p99_ms": percentile(run.ttfts, 99) * 1000,
        "gap_p50_ms": percentile(gaps, 50) * 1000,
        "gap_p99_ms": percentile(gaps, 99) * 1000,
        "gap_max_ms": run.max_gap * 1000,
        "peak_open": run.peak_open,
        "seconds": run.seconds,
        "cpu_s": cpu_s,
    }


async def measure_streams(plan: Plan, targets: list[Target],
                          results: dict[str, TargetResults]) -> None:
    for round_ in range(plan.stream_rounds):
        for target in rotated(targets, round_):
            pids = target.pids()
            before = cpu_seconds(pids)
            run = await run_streams(target.url, target.model(STREAM), target.keys, plan.streams,
                                    timeout=30.0, ramp_seconds=STREAM_RAMP)
            summary = _streams_summary(run, cpu_seconds(pids) - before)
            results[target.name].streams.append(summary)
            results[target.name].requests_sent += plan.streams
            _log(f"{target.name:18} {plan.streams} streams: {summary['completed']} completed, "
                 f"ttft p50 {summary['ttft_p50_ms']:.1f} ms, gap p50 {summary['gap_p50_ms']:.1f}"
                 f" p99 {summary['gap_p99_ms']:.1f} max {summary['gap_max_ms']:.0f} ms")


async def measure_sweep(plan: Plan, targets: list[Target],
                        results: dict[str, TargetResults]) -> None:
    """Ever more concurrent streams until one gap exceeds 200 ms or a stream fails.

    A target that already stalled at the fixed stream count is not swept further.
    """
    alive = [
        t for t in targets
        if all(r["completed"] == r["n"] and r["gap_max_ms"] <= STALL_SECONDS * 1000
               for r in results[t.name].streams)
    ]
    for level in plan.sweep:
        for target in list(alive):
            pids = target.pids()
            before = cpu_seconds(pids)
            run = await hold_streams(target.url, target.model(SWEEP_STREAM), target.keys, level,
                                     rss=functools.partial(rss_bytes, pids))
            summary = _streams_summary(run, cpu_seconds(pids) - before)
            ok = run.completed == level and run.max_gap <= STALL_SECONDS
            summary["ok"] = ok
            record = results[target.name]
            record.sweep.append(summary)
            record.rss_samples.extend(run.rss_samples)
            record.holds.append({"n": level, "samples": run.rss_samples})
            # Only the streams the pipeline answered: past ``server.max_connections`` (1,000
            # by default) the server answers a new connection with its own 503 (or the client
            # sees it closed first), by design, before any request is read: no row.
            statuses = collections.Counter(r.status for r in run.results)
            record.requests_sent += sum(n for status, n in statuses.items()
                                        if status and status != 503)
            _log(f"{target.name:18} {level} streams: {summary['completed']} completed, "
                 f"peak open {run.peak_open}, max gap {summary['gap_max_ms']:.0f} ms "
                 f"-> {'ok' if ok else 'STALL'}; statuses {dict(sorted(statuses.items()))}")
            bursts = run.late_bursts()[:5]
            if bursts:  # one pause of the server, or streams late one by one?
                _log(f"{'':18} gaps > {LATE * 1000:.0f} ms ended at (s into the run: streams) "
                     + ", ".join(f"{end - run.started:.2f} (monotonic {end:.3f}): {count}"
                                 for end, count in bursts))
            if not ok:
                alive.remove(target)


def measure_surfaces(plan: Plan, targets: list[Target], results: dict[str, TargetResults],
                     workdir: Path) -> None:
    gateways: list[Target] = [
        t for t in targets if isinstance(t, Gateway) and t.server in plan.surface_servers
        and not t.shared and not isinstance(t, Scaleout)]
    # The bare pass-through's chat and fallback: the floor of what a second call costs.
    floors: list[Target] = [
        t for t in targets if isinstance(t, Bare) and t.server in plan.surface_servers]
    measured = surfaces.measure(gateways + floors, plan.rounds, plan.surface_seconds, workdir,
                                _log)
    for name, rows in measured.items():
        results[name].surfaces = rows
        results[name].requests_sent += sum(r["requests"] for runs in rows.values() for r in runs)


def stop_all(targets: list[Target], results: dict[str, TargetResults]) -> None:
    """SIGTERM every target; count the gateways' ledger rows; remove what they left."""
    for target in targets:
        code = target.stop()
        if isinstance(target, Gateway):
            record = results[target.name]
            if code != 0:
                record.error = f"exit code {code} on SIGTERM"
            try:
                record.ledger_rows, record.ledger_rows_ok = target.ledger_rows()
            except Exception as exc:  # the run may have failed before the gateway started
                record.error = f"ledger unreadable: {exc}"
        if isinstance(target, Scaleout):
            results[target.name].side = target.side_work()
        target.cleanup()


def measure_ceilings(targets: list[Target]) -> dict[str, float]:
    """redis-benchmark and pgbench on the scale-out's throwaway instances, all else stopped."""
    if not any(isinstance(t, Scaleout) for t in targets):
        return {}
    try:
        return throughput_ceilings()
    except Exception as exc:  # figures for the README, not a reason to lose the run
        _log(f"redis-benchmark / pgbench failed: {exc}")
        return {}


def default_server() -> str:
    """The server ``gateway serve`` uses when not told (read from its own parser)."""
    from gateway.cli import build_parser

    parser = build_parser()
    return str(parser.parse_args(["serve"]).server)


def warm_up(targets: list[Target], workdir: Path, results: dict[str, TargetResults]) -> None:
    for target in targets:
        result = run_wrk(target.url, target.model(NONSTREAM), target.keys, 8, 1.0, workdir,
                         LOAD_CPUS)
        results[target.name].requests_sent += result.requests
        if result.status_errors or not result.requests:
            raise RuntimeError(f"{target.name}: warm-up failed ({result})")
    time.sleep(1.0)
    for target in targets:
        results[target.name].rss_idle = rss_bytes(target.pids())


def start_upstream(workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    log = (workdir / "upstream.log").open("ab")
    process = subprocess.Popen(
        ["taskset", "-c", LOAD_CPUS, sys.executable, "-m", "bench.fake_upstream", "--port",
         str(port)],
        stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    url = f"http://127.0.0.1:{port}"
    import urllib.request

    for _ in range(100):
        try:
            urllib.request.urlopen(url + "/health", timeout=1).close()
            return process, url
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("fake upstream did not start")


def run_phases(plan: Plan, targets: list[Target], results: dict[str, TargetResults],
               workdir: Path, held_only: bool = False) -> None:
    """Start the targets and measure them, phase by phase (``held_only``: the held streams)."""
    for target in targets:
        target.start()
    for target in targets:
        target.wait_ready()
    _log("all targets up: " + ", ".join(t.name for t in targets))
    warm_up(targets, workdir, results)
    if not held_only:
        measure_nonstreamed(plan, targets, results, workdir)
        measure_surfaces(plan, targets, results, workdir)
    import uvloop

    streamed = [t for t in targets if not (isinstance(t, Gateway) and t.shared)
                and (plan.scaleout_streams or not isinstance(t, Scaleout))]
    if not held_only:
        uvloop.run(measure_streams(plan, streamed, results))
    uvloop.run(measure_sweep(plan, streamed, results))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Gateway benchmarks against floor and peer")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="under 3 minutes (default)")
    mode.add_argument("--full", action="store_true", help="the full run for the README")
    parser.add_argument("--no-litellm", action="store_true", help="skip the LiteLLM target")
    parser.add_argument("--only", help="comma-separated target names to run")
    parser.add_argument("--held-only", action="store_true",
                        help="only the held-streams phase (a look at goal 8's stalls)")
    args = parser.parse_args(argv)
    plan = FULL if args.full else QUICK
    has_nginx = shutil.which("nginx") or Path("/usr/sbin/nginx").exists()
    if not shutil.which("wrk") or not has_nginx:
        print("bench: wrk and nginx are needed (make bench installs them)", file=sys.stderr)
        return 2
    os.sched_setaffinity(0, {int(LOAD_CPUS)})
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if not args.no_litellm:
        install_litellm()
    started = time.time()
    workdir = Path(tempfile.mkdtemp(prefix="gateway-bench-"))
    upstream, upstream_url = start_upstream(workdir)
    targets = build_targets(plan, workdir, upstream_url, not args.no_litellm)
    if args.only:
        wanted = set(args.only.split(","))
        targets = [t for t in targets if t.name in wanted]
    results = {t.name: TargetResults(t.name, t.kind) for t in targets}
    try:
        run_phases(plan, targets, results, workdir, args.held_only)
    finally:
        stop_all(targets, results)
        upstream.terminate()
        upstream.wait(10)
    ceilings = measure_ceilings(targets)
    elapsed = time.time() - started
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "raw").mkdir(exist_ok=True)
    meta = {
        "mode": "full" if args.full else "quick",
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "seconds": round(elapsed, 1),
        "cpus": os.cpu_count(),
        "plan": asdict(plan),
        "python": sys.version.split()[0],
        "default_server": default_server(),
        "surface_bases": surfaces.bases(),
        "ceilings": ceilings,
    }
    raw = {"meta": meta, "targets": {name: asdict(r) for name, r in results.items()}}
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (RESULTS / "raw" / f"{stamp}.json").write_text(json.dumps(raw, indent=1))
    if not args.held_only:  # a partial run: results.md keeps the last whole one
        print(report.write(raw, RESULTS))
    _log(f"done in {elapsed:.0f} s; results in {RESULTS} (raw/{stamp}.json)")
    shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
