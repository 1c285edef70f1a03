"""Profile one target under load with py-spy and print where its CPU goes.

    python -m bench.profile [--target gateway-hypercorn] [--stream] [--seconds 10]
    python -m bench.profile --target gateway-uvicorn --surface fallback

Targets: ``bare-<server>``, ``gateway-<server>`` and ``gateway-<server>-scaleout`` (PostgreSQL
and Redis, each a throwaway instance as in ``bench.run``: ``bench/scaleout.py``). Starts the
fake upstream and the target (pinned like ``bench.run``), drives it with wrk at concurrency 64
(``--connections``; or 256 ramped streams with ``--stream``), samples it with ``py-spy record``
in collapsed-stack format and prints the functions with the most samples, by self time and by
inclusive time. The collapsed stacks are kept in ``bench/results/raw/`` for flamegraphs.
"""

from __future__ import annotations

import argparse
import collections
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.load import run_streams, run_wrk
from bench.run import NONSTREAM, RESULTS, STREAM, start_upstream
from bench.scaleout import Scaleout
from bench.surfaces import CONCURRENCY, surfaces
from bench.targets import LOAD_CPUS, VENV_BIN, Bare, Gateway, Target


def top_functions(collapsed: Path, limit: int = 25) -> str:
    self_time: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = stack.split(";")
        self_time[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    out = [f"{total} samples", "", "self time:"]
    out += [f"  {n / total:6.1%}  {f}" for f, n in self_time.most_common(limit)]
    out += ["", "inclusive time:"]
    out += [f"  {n / total:6.1%}  {f}" for f, n in inclusive.most_common(limit)]
    return "\n".join(out)


def make_target(name: str, workdir: Path, upstream_url: str) -> Target:
    """The target a ``--target`` name stands for (``bench.run``'s names)."""
    kind, _, server = name.partition("-")
    server, _, suffix = server.partition("-")
    if kind == "bare":
        return Bare(workdir, upstream_url, server or "hypercorn")
    if suffix == Scaleout.suffix.lstrip("-"):
        return Scaleout(workdir, upstream_url, server or "uvicorn")
    return Gateway(workdir, upstream_url, server or "hypercorn")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--target", default="gateway-hypercorn")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--stream", action="store_true")
    parser.add_argument("--connections", type=int, default=64,
                        help="wrk's concurrency (non-streamed)")
    parser.add_argument("--surface", help="a row of bench/surfaces.py (fallback, ...) at c16")
    parser.add_argument(
        "--gil", action="store_true",
        help="only samples holding the GIL (CPU work, not waits for the GIL or for I/O)",
    )
    args = parser.parse_args(argv)
    py_spy = shutil.which("py-spy") or str(VENV_BIN / "py-spy")
    os.sched_setaffinity(0, {int(LOAD_CPUS)})
    workdir = Path(tempfile.mkdtemp(prefix="gateway-profile-"))
    upstream, url = start_upstream(workdir)
    target = make_target(args.target, workdir, url)
    try:
        target.start()
        target.wait_ready()
        run_wrk(target.url, target.model(NONSTREAM), target.keys, 8, 1, workdir, LOAD_CPUS)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        RESULTS.joinpath("raw").mkdir(parents=True, exist_ok=True)
        mode = args.surface or ("stream" if args.stream else "complete")
        collapsed = RESULTS / "raw" / f"profile-{args.target}-{mode}-{stamp}.txt"
        pid = max(target.pids())  # the worker when the server forks one
        spy = subprocess.Popen(
            [py_spy, "record", "--pid", str(pid), "--duration", str(args.seconds), "--rate",
             "250", "--format", "raw", "--nonblocking", "--output", str(collapsed),
             *(["--gil"] if args.gil else [])],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        time.sleep(0.5)
        if args.stream:
            import uvloop

            deadline = time.monotonic() + args.seconds
            while time.monotonic() < deadline:
                uvloop.run(run_streams(target.url, target.model(STREAM), target.keys, 256,
                                       timeout=30, ramp_seconds=1.0))
        elif args.surface:
            assert isinstance(target, Gateway), "surfaces are rows of a gateway"
            row = next(r for r in surfaces() if r.name == args.surface)
            result = run_wrk(target.url, "", target.keys, CONCURRENCY, args.seconds, workdir,
                             LOAD_CPUS, path=row.path, body=row.body(target))
            print(f"{result.rps:.0f} req/s during the profile")
        else:
            result = run_wrk(target.url, target.model(NONSTREAM), target.keys, args.connections,
                             args.seconds, workdir, LOAD_CPUS)
            print(f"{result.rps:.0f} req/s during the profile")
        spy.wait(args.seconds + 30)
        print(top_functions(collapsed))
        print(f"\ncollapsed stacks: {collapsed}")
    finally:
        target.stop()
        target.cleanup()
        upstream.terminate()
        upstream.wait(10)
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
