"""The upstream client's own CPU per call: ``UpstreamClient.fetch`` against the fake upstream.

    python -m bench.client [--calls 30000] [--concurrency 16] [--model bench-tok16 ...]

The fake upstream runs on the load's core and this process on the target's (as ``bench.run``
pins them); calls go ``--concurrency`` at a time over keep-alive connections, on uvloop, and
the figure is this process's CPU time (user and system: the system calls are most of a call)
per call, for each ``--model`` in turn. ``bench-error500-tok16`` answers 500, so it measures
a failed call: what a fallback's first attempt costs on the client's side. No gateway, no
server: use it to compare changes to ``adapters/http1.py`` and ``adapters/upstream.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import uvloop

from adapters.errors import ProviderHTTPError
from adapters.upstream import Timeouts, UpstreamClient
from bench.load import chat_body
from bench.run import start_upstream
from bench.targets import SERVER_CPUS

WARM_CALLS = 500


async def measure(url: str, model: str, calls: int, concurrency: int) -> tuple[float, int]:
    """µs of this process's CPU per call of ``model``, and how many calls failed."""
    client = UpstreamClient(Timeouts(connect=5.0, first_byte=60.0, idle=60.0))
    body = chat_body(model).encode()
    headers = {"Content-Type": "application/json", "Authorization": "Bearer sk-bench"}
    endpoint = url + "/v1/chat/completions"

    failed = 0

    async def caller(count: int) -> None:
        nonlocal failed
        for _ in range(count):
            try:
                await client.fetch(endpoint, body, headers)
            except ProviderHTTPError:
                failed += 1

    try:
        await caller(WARM_CALLS)
        failed = 0
        started = time.process_time()
        await asyncio.gather(*(caller(calls // concurrency) for _ in range(concurrency)))
        spent = time.process_time() - started
    finally:
        await client.close()
    made = calls // concurrency * concurrency
    return spent / made * 1e6, failed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=30000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--model", action="append",
                        help="fake upstream scenarios (default: bench-tok16, bench-error500-tok16)")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="gateway-client-"))
    upstream, url = start_upstream(workdir)  # pinned to the load's core
    os.sched_setaffinity(0, {int(SERVER_CPUS)})
    try:
        for model in args.model or ["bench-tok16", "bench-error500-tok16"]:
            cost, failed = uvloop.run(measure(url, model, args.calls, args.concurrency))
            print(f"{model}: {cost:.1f} µs of CPU per call ({failed} failed)", file=sys.stderr)
    finally:
        upstream.terminate()
        upstream.wait(10)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
