"""Two gateway checkouts side by side: same core, same moment, same load; CPU per unit of each.

    python -m bench.ab old=/path/to/checkout new=. [--server uvicorn] [--rounds 5]
                       [--phases req,stream,idle]

On a machine shared with other work, CPU per request moves by ±30% from one run to the next,
so runs made one after the other compare badly. Here both gateways (each from its own
checkout and virtualenv, bench configuration, 64 keys) run at once pinned to core 0, and every
phase drives both at the same time with the same requests: whatever else the machine does
hits both alike. An A/A run (the same checkout twice) gives ratios within ±5% per round.

Phases: ``req`` (non-streamed requests, ``--conc`` at a time), ``stream`` (``--streams``
streams of ``--tokens`` tokens ``--gap`` ms apart, started over one second), ``idle`` (ten
seconds of nothing: the background tasks' CPU, µs per ms). CPU is utime + stime of each
server process (all threads) from /proc. The fake upstream is this checkout's, on core 1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import statistics
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import aiohttp

from bench.load import chat_body, run_streams
from bench.targets import ROOT, cpu_seconds, free_port, process_tree

# Run by each checkout's own interpreter: its bench.targets writes its gateway's config.
_PREPARE = """
import json, sys
from pathlib import Path
sys.path.insert(0, ".")
import bench.targets as targets
work, upstream, server, scenarios = sys.argv[1:5]
targets.SCENARIOS = tuple(scenarios.split(","))
gateway = targets.Gateway(Path(work), upstream, server=server)
gateway.prepare()
print(json.dumps({"cmd": [sys.executable, *gateway.command()], "keys": gateway.keys,
                  "port": gateway.port, "workdir": str(gateway.workdir)}))
"""


class Side:
    """One gateway under test."""

    def __init__(self, name: str, root: str, work: Path, upstream: str, server: str,
                 scenarios: str) -> None:
        self.name = name
        prepared = subprocess.run(
            [f"{root}/.venv/bin/python", "-c", _PREPARE, str(work / name), upstream, server,
             scenarios], cwd=root, capture_output=True, text=True, check=True,
        )
        info = json.loads(prepared.stdout.strip().splitlines()[-1])
        self.keys: list[str] = info["keys"]
        self.url = f"http://127.0.0.1:{info['port']}"
        log = (Path(info["workdir"]) / "server.log").open("ab")
        self.process = subprocess.Popen(
            ["taskset", "-c", "0", *info["cmd"]], cwd=info["workdir"], stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True,
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=1):
                    return
            except OSError:
                time.sleep(0.3)
        raise RuntimeError(f"{name} not ready; see {info['workdir']}/server.log")

    def cpu(self) -> float:
        return cpu_seconds(process_tree(self.process.pid))

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)


async def _requests(side: Side, model: str, n: int, concurrency: int) -> int:
    body = chat_body(model).encode()
    ok = 0
    turns = iter(range(n))
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as s:

        async def worker() -> None:
            nonlocal ok
            for i in turns:
                headers = {"Authorization": "Bearer " + side.keys[i % len(side.keys)],
                           "Content-Type": "application/json"}
                async with s.post(side.url + "/v1/chat/completions", data=body,
                                  headers=headers) as response:
                    await response.read()
                    ok += response.status == 200

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return ok


async def _both_requests(sides: list[Side], n: int, concurrency: int) -> None:
    oks = await asyncio.gather(
        *(_requests(side, "bench/bench-tok16", n, concurrency) for side in sides)
    )
    if any(ok != n for ok in oks):
        raise RuntimeError(f"requests not all answered 200: {oks} of {n}")


async def _both_streams(sides: list[Side], model: str, n: int) -> None:
    runs = await asyncio.gather(*(
        run_streams(side.url, model, side.keys, n, timeout=120, ramp_seconds=1.0)
        for side in sides
    ))
    for run in runs:
        done = sum(result.completed for result in run.results)
        if done != n:
            raise RuntimeError(f"{n - done} of {n} streams did not complete")


def _phase(sides: list[Side], phase: str, args: argparse.Namespace, stream_model: str) -> float:
    """Run one phase on both sides; the units it served (µs per unit is reported)."""
    if phase == "idle":
        time.sleep(10)
        return 10_000  # ms of wall time
    if phase == "req":
        asyncio.run(_both_requests(sides, args.requests, args.conc))
        return float(args.requests)
    asyncio.run(_both_streams(sides, stream_model, args.streams))
    return float(args.streams * (args.tokens + 2))  # the bench counts 66 chunks per 64 tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("sides", nargs=2, help="name=checkout (each with its .venv)")
    parser.add_argument("--server", default="uvicorn")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--phases", default="req,stream")
    parser.add_argument("--requests", type=int, default=1500)
    parser.add_argument("--conc", type=int, default=16)
    parser.add_argument("--streams", type=int, default=128)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--gap", type=int, default=40, help="ms between tokens")
    args = parser.parse_args()
    named = [tuple(spec.split("=", 1)) for spec in args.sides]
    stream_scenario = f"bench-tok{args.tokens}-gap{args.gap}"
    work = Path(tempfile.mkdtemp(prefix="bench-ab-"))
    port = free_port()
    fake = subprocess.Popen(
        ["taskset", "-c", "1", f"{ROOT}/.venv/bin/python", "-m", "bench.fake_upstream",
         "--port", str(port)], env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=ROOT,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    sides: list[Side] = []
    figures: dict[str, list[list[float]]] = {}
    try:
        for name, root in named:
            sides.append(Side(name, root, work, f"http://127.0.0.1:{port}", args.server,
                              f"bench-tok16,{stream_scenario}"))
        asyncio.run(_both_requests(sides, 100, args.conc))  # warm up
        asyncio.run(_both_streams(sides, f"bench/{stream_scenario}", 32))
        for round_ in range(1, args.rounds + 1):
            line = []
            for phase in args.phases.split(","):
                before = [side.cpu() for side in sides]
                units = _phase(sides, phase, args, f"bench/{stream_scenario}")
                used = [(side.cpu() - b) / units * 1e6
                        for side, b in zip(sides, before, strict=True)]
                figures.setdefault(phase, []).append(used)
                line.append(f"{phase} {used[0]:7.1f} {used[1]:7.1f} µs  "
                            f"ratio {used[1] / used[0]:.3f}")
            print(f"round {round_}: " + " | ".join(line), flush=True)
    finally:
        for side in sides:
            side.stop()
        fake.terminate()
        fake.wait(10)
        shutil.rmtree(work, ignore_errors=True)
    _summary([str(name) for name, _ in named], figures)


def _summary(names: list[str], figures: dict[str, Any]) -> None:
    for phase, rows in figures.items():
        a, b = [row[0] for row in rows], [row[1] for row in rows]
        ratios = [y / x for x, y in zip(a, b, strict=True) if x]
        print(f"{phase}: {names[0]} median {statistics.median(a):.1f} µs, {names[1]} median "
              f"{statistics.median(b):.1f} µs; {names[1]}/{names[0]} median ratio "
              f"{statistics.median(ratios):.3f} (rounds: "
              f"{', '.join(f'{r:.3f}' for r in ratios)})")


if __name__ == "__main__":
    main()
