"""The other surfaces, each next to a plain chat request of the same size (issue 14, goal 7).

Every row is wrk at a fixed concurrency against one gateway, CPU per request from
``/proc``; every round runs the rows in order and then in reverse (``measure``), so a row and
its base are measured around the same moment and the ratio is steadier than either figure:

==================  ==========================================  ===============================
row                 what the client sends                       compared with
==================  ==========================================  ===============================
``chat``            chat completions, 16-token answer           (the base of the three below)
``fallback``        a model whose first deployment answers 500  ``chat``: same body, same answer
                    (``bench-error500-tok16``), its fallback
                    the 16-token model
``embeddings16``    ``/v1/embeddings``, 16 inputs               ``chat`` (a request of about
                                                                the same body size)
``chat-stream``     chat completions streamed, 64 tokens 2 ms   (the base of the one below)
                    apart
``responses-stream``  ``/v1/responses`` streamed to the same    ``chat-stream``
                    chat-only upstream (translated)
==================  ==========================================  ===============================

The embeddings row is there when the gateway has ``/v1/embeddings`` (``has_embeddings``).

A bare pass-through (``bench/bare_proxy.py``) runs the ``chat`` and ``fallback`` rows too: its
fallback swaps the model's name in the body's bytes and sends it again, the least a fallback
can do, so its ratio is the floor of what a second call costs on that server.

Each row is run once, unrecorded, before the rounds, and the next row's CPU reading waits until
the target is quiet: wrk's end cuts the streams in flight, and their settlement (the first one
loads the tokenizer, ~0.5 s of CPU, to count what was sent) would otherwise land in the window
of the row after them, which was the first round's ``responses-stream``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.load import WrkResult, chat_body, run_wrk
from bench.targets import LOAD_CPUS, Bare, Gateway, Target, cpu_seconds, has_embeddings

CONCURRENCY = 16
SURFACE_STREAM = "bench-tok64-gap2"
WARM_SECONDS = 1  # wrk runs whole seconds
QUIET_WAIT = 3.0  # at most this long for a target to finish what the last row left running
EMBED_INPUTS = [f"The sentence number {i} to embed, about ten words long." for i in range(16)]


@dataclass(frozen=True)
class Surface:
    name: str
    path: str
    body: Callable[[Target], str]
    base: str = ""  # the row it is compared with
    bare: bool = False  # a bare pass-through serves it too


def _responses_body(target: Target) -> str:
    return json.dumps({
        "model": target.model(SURFACE_STREAM), "instructions": "You are a terse assistant.",
        "input": "Say hello in sixteen tokens, please.", "max_output_tokens": 64,
        "stream": True,
    }, separators=(",", ":"))


def _embeddings_body(target: Target) -> str:
    return json.dumps({"model": "bench/bench-embed", "input": EMBED_INPUTS},
                      separators=(",", ":"))


def surfaces() -> list[Surface]:
    rows = [
        Surface("chat", "/v1/chat/completions", lambda t: chat_body(t.model("bench-tok16")),
                bare=True),
        Surface("fallback", "/v1/chat/completions",
                lambda t: chat_body(t.model("bench-error500-tok16")), base="chat", bare=True),
    ]
    if has_embeddings():
        rows.append(Surface("embeddings16", "/v1/embeddings", _embeddings_body, base="chat"))
    rows += [
        Surface("chat-stream", "/v1/chat/completions",
                lambda t: chat_body(t.model(SURFACE_STREAM), stream=True)),
        Surface("responses-stream", "/v1/responses", _responses_body, base="chat-stream"),
    ]
    return rows


def wait_quiet(pids: list[int]) -> None:
    """Until these processes have used no CPU for 0.2 s (at most ``QUIET_WAIT``)."""
    deadline = time.monotonic() + QUIET_WAIT
    last = cpu_seconds(pids)
    while time.monotonic() < deadline:
        time.sleep(0.2)
        now = cpu_seconds(pids)
        if now == last:
            return
        last = now


def measure(targets: list[Target], rounds: int, seconds: float, workdir: Path,
            log: Callable[[str], None], only: set[str] | None = None,
            ) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """{target: {row: [one dict per round]}} with requests, errors and CPU µs per request.

    A round runs every row twice, in order and then in reverse (A B B A), for half of
    ``seconds`` each: a row and its base then sit at the same mean time in the round, so a
    change in the machine's speed during the round moves both alike."""
    out: dict[str, dict[str, list[dict[str, Any]]]] = {t.name: {} for t in targets}
    wanted = [row for row in surfaces() if only is None or row.name in only]
    served = {t.name: [r for r in wanted if r.bare or not isinstance(t, Bare)] for t in targets}
    for target in targets:  # one-time costs (tokenizer, first statements) out of round one
        for row in served[target.name]:
            run_wrk(target.url, "", target.keys, CONCURRENCY, WARM_SECONDS, workdir, LOAD_CPUS,
                    path=row.path, body=row.body(target))
    for _ in range(rounds):
        for target in targets:
            rows = served[target.name]
            slices: dict[str, list[tuple[WrkResult, float]]] = {row.name: [] for row in rows}
            for row in rows + rows[::-1]:
                slices[row.name].append(_slice(target, row, seconds / 2, workdir))
            for row in rows:
                entry = _entry(slices[row.name])
                out[target.name].setdefault(row.name, []).append(entry)
                log(f"{target.name:18} {row.name:17} {entry['rps']:7.0f} req/s "
                    f"cpu {entry['cpu_us']:6.0f} us/req "
                    f"errors {entry['socket_errors']}+{entry['status_errors']}")
    return out


def _slice(target: Target, row: Surface, seconds: float, workdir: Path) -> tuple[WrkResult, float]:
    """One wrk run of ``row`` and the CPU seconds the target spent in it."""
    pids = target.pids()
    wait_quiet(pids)
    before = cpu_seconds(pids)
    result = run_wrk(target.url, "", target.keys, CONCURRENCY, seconds, workdir, LOAD_CPUS,
                     path=row.path, body=row.body(target))
    return result, cpu_seconds(pids) - before


def _entry(runs: list[tuple[WrkResult, float]]) -> dict[str, Any]:
    """A row's figures over its slices of one round (latencies: the slowest slice's)."""
    requests = sum(result.requests for result, _ in runs)
    spent = sum(cpu for _, cpu in runs)
    seconds = sum(result.seconds for result, _ in runs)
    return {
        "requests": requests, "seconds": seconds, "rps": requests / seconds if seconds else 0.0,
        "socket_errors": sum(result.socket_errors for result, _ in runs),
        "status_errors": sum(result.status_errors for result, _ in runs),
        **{p: max(getattr(result, p) for result, _ in runs) for p in ("p50_ms", "p90_ms",
                                                                       "p99_ms")},
        "cpu_us": spent / max(requests, 1) * 1e6,
    }


def bases() -> dict[str, str]:
    """Each compared row's base row."""
    return {row.name: row.base for row in surfaces() if row.base}


def main(argv: list[str] | None = None) -> int:
    """Only the surfaces, on one server: quicker than ``bench.run`` for working on goal 7.

        python -m bench.surfaces --rows chat,fallback --rounds 5
    """
    import argparse
    import os
    import shutil
    import tempfile

    from bench.report import surface_ratios
    from bench.run import start_upstream

    parser = argparse.ArgumentParser(description="The surfaces' rows against their chat rows")
    parser.add_argument("--server", default="uvicorn")
    parser.add_argument("--rows", help="comma-separated rows (default: all)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=2)
    parser.add_argument("--bare", action="store_true",
                        help="the bare pass-through too (its chat and fallback rows)")
    args = parser.parse_args(argv)
    os.sched_setaffinity(0, {int(LOAD_CPUS)})
    workdir = Path(tempfile.mkdtemp(prefix="gateway-surfaces-"))
    upstream, upstream_url = start_upstream(workdir)
    targets: list[Target] = [Gateway(workdir, upstream_url, args.server)]
    if args.bare:
        targets.append(Bare(workdir, upstream_url, args.server))
    wanted = set(args.rows.split(",")) if args.rows else None
    try:
        for target in targets:
            target.start()
            target.wait_ready()
        measured = measure(targets, args.rounds, args.seconds, workdir, print, wanted)
    finally:
        for target in targets:
            target.stop()
        upstream.terminate()
        upstream.wait(10)
        shutil.rmtree(workdir, ignore_errors=True)
    raw = {"meta": {"surface_bases": bases()},
           "targets": {name: {"surfaces": rows} for name, rows in measured.items()}}
    for target_name, ratios in surface_ratios(raw).items():
        rows = measured[target_name]
        for name, (mine, theirs, ratio) in ratios.items():
            base = bases()[name]
            rounds = ", ".join(f"{r['cpu_us'] / b['cpu_us']:.2f}"
                               for r, b in zip(rows[name], rows[base], strict=True))
            print(f"{target_name} {name} / {base}: median {ratio:.2f}x ({mine:.0f} vs "
                  f"{theirs:.0f} µs; rounds {rounds})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
