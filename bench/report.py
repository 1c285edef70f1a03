"""The markdown table, the goal checks and the plots of one benchmark run (from its raw JSON)."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

Raw = dict[str, Any]


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def summarize(raw: Raw) -> dict[str, dict[str, Any]]:
    """One flat dict of figures per target."""
    targets: dict[str, Any] = raw["targets"]
    out: dict[str, dict[str, Any]] = {}
    for name, t in targets.items():
        s: dict[str, Any] = {"kind": t["kind"], "error": t["error"]}
        for concurrency, runs in t["wrk"].items():
            c = int(concurrency)
            s[f"rps_{c}"] = _median([r["rps"] for r in runs])
            s[f"p50_{c}"] = _median([r["p50_ms"] for r in runs])
            s[f"p99_{c}"] = _median([r["p99_ms"] for r in runs])
            s[f"errors_{c}"] = sum(r["socket_errors"] + r["status_errors"] for r in runs)
        s["cpu_us"] = _median(t["cpu_us_per_request"])
        streams = t["streams"]
        s["ttft_p50"] = _median([r["ttft_p50_ms"] for r in streams])
        s["gap_p50"] = _median([r["gap_p50_ms"] for r in streams])
        s["gap_p99"] = _median([r["gap_p99_ms"] for r in streams])
        s["streams_completed"] = sum(r["completed"] for r in streams)
        s["streams_sent"] = sum(r["n"] for r in streams)
        if streams and s["streams_completed"]:
            s["stream_cpu_us"] = sum(r["cpu_s"] for r in streams) / s["streams_sent"] * 1e6
            # 64 content chunks + the closing ones, per stream
            s["chunk_cpu_us"] = s["stream_cpu_us"] / 66
        ok_levels = [r["n"] for r in t["sweep"] if r.get("ok")]
        base_ok = all(
            r["completed"] == r["n"] and r["gap_max_ms"] <= 200 for r in streams
        ) and bool(streams)
        s["max_streams"] = max(ok_levels, default=streams[0]["n"] if base_ok else 0)
        s["sweep_failed_at"] = next((r["n"] for r in t["sweep"] if not r.get("ok")), None)
        s["rss_idle_mb"] = t["rss_idle"] / 2**20
        holds = t.get("holds") or []
        hold = next((h for h in holds if h["n"] == 1000), holds[-1] if holds else None)
        if hold and len(hold["samples"]) >= 2:
            (open0, rss0), (open1, rss1) = hold["samples"][0], hold["samples"][-1]
            s["peak_open"] = open1
            s["rss_peak_mb"] = rss1 / 2**20
            if open1 > open0:
                s["rss_per_stream_kb"] = (rss1 - rss0) / (open1 - open0) / 1024
        s["requests_sent"] = t["requests_sent"]
        s["ledger_rows"] = t["ledger_rows"]
        out[name] = s
    direct = out.get("direct", {})
    for s in out.values():
        if s.get("ttft_p50") is not None and direct.get("ttft_p50") is not None:
            s["added_ttft"] = s["ttft_p50"] - direct["ttft_p50"]
    return out


def table(raw: Raw) -> str:
    summary = summarize(raw)
    concurrencies = sorted({int(c) for t in raw["targets"].values() for c in t["wrk"]})
    head = ["target"]
    for c in concurrencies:
        head += [f"req/s c{c}", f"p50/p99 ms c{c}"]
    head += ["CPU µs/req", "req/s per core", "added TTFT p50 ms", "gap p50/p99 ms",
             "streams ok", "CPU µs/chunk", "max held streams no stall", "RSS idle MB",
             "RSS KB/stream", "ledger rows/sent"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, s in summary.items():
        row = [name]
        for c in concurrencies:
            errors = s.get(f"errors_{c}") or 0
            row.append(_fmt(s.get(f"rps_{c}"), 0) + (f" ({errors} err)" if errors else ""))
            row.append(f"{_fmt(s.get(f'p50_{c}'), 2)} / {_fmt(s.get(f'p99_{c}'), 2)}")
        cpu = s.get("cpu_us")
        row.append(_fmt(cpu, 0))
        row.append(_fmt(1e6 / cpu, 0) if cpu else "-")
        row.append(_fmt(s.get("added_ttft"), 2) if s["kind"] != "direct" else "(base)")
        row.append(f"{_fmt(s.get('gap_p50'), 1)} / {_fmt(s.get('gap_p99'), 1)}")
        row.append(f"{s['streams_completed']}/{s['streams_sent']}")
        row.append(_fmt(s.get("chunk_cpu_us"), 1))
        failed = s.get("sweep_failed_at")
        if s["max_streams"]:
            row.append(f"{s['max_streams']}" + (f" (stall at {failed})" if failed else ""))
        elif not s["streams_sent"]:  # not measured (the two-worker rows)
            row.append("-")
        else:
            row.append(f"< {s['streams_sent'] // max(len(raw['targets'][name]['streams']), 1)}")
        row.append(_fmt(s.get("rss_idle_mb"), 0))
        row.append(_fmt(s.get("rss_per_stream_kb"), 1))
        if s["ledger_rows"] is not None:
            row.append(f"{s['ledger_rows']}/{s['requests_sent']}")
        else:
            row.append("n/a")
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


Check = tuple[str, bool, str]


def _cells(checks: list[Check]) -> str:
    return ", ".join(f"{'✅' if ok else '❌'} {label}: {value}" for label, ok, value in checks)


def _ratio(label: str, mine: float | None, base: float | None, limit: float,
           digits: int = 0) -> list[Check]:
    """``mine / base ≤ limit`` as a check, or nothing when either figure is missing."""
    if not mine or not base:
        return []
    ratio = mine / base
    return [(f"{label} ≤ {limit:g}x", ratio <= limit,
             f"{ratio:.2f}x ({mine:.{digits}f} vs {base:.{digits}f} µs)")]


def surface_ratios(raw: Raw) -> dict[str, dict[str, tuple[float, float, float]]]:
    """{target: {row: (CPU µs of the row, of its base, ratio)}}: medians over rounds, the ratio
    the median of each round's own (a row and its base run back to back, so the machine's load
    moves both alike within a round, not across rounds)."""
    bases: dict[str, str] = raw["meta"].get("surface_bases", {})
    out: dict[str, dict[str, tuple[float, float, float]]] = {}
    for name, t in raw["targets"].items():
        rows = {row: [r["cpu_us"] if r["requests"] else None for r in runs]
                for row, runs in (t.get("surfaces") or {}).items()}
        for row, base in bases.items():
            pairs = [(a, b) for a, b in zip(rows.get(row, []), rows.get(base, []), strict=False)
                     if a and b]
            if pairs:
                mine = statistics.median(a for a, _ in pairs)
                theirs = statistics.median(b for _, b in pairs)
                ratio = statistics.median(a / b for a, b in pairs)
                out.setdefault(name, {})[row] = (mine, theirs, ratio)
    return out


def _stream_checks(s: dict[str, Any], direct: dict[str, Any]) -> list[Check]:
    """Goal 8 (and the gap's tail): held streams, memory, time to first token."""
    checks: list[Check] = []
    if s.get("added_ttft") is not None:
        checks.append(("added TTFT p50 ≤ 2 ms at 256 streams", s["added_ttft"] <= 2,
                       f"{s['added_ttft']:.2f} ms"))
    if s.get("gap_p99") is not None and direct.get("gap_p99") is not None:
        delta = s["gap_p99"] - direct["gap_p99"]
        checks.append(("gap p99 ≤ direct + 5 ms", delta <= 5, f"{delta:+.1f} ms"))
    if s.get("streams_sent"):
        checks.append(("1,000 held streams, no gap over 200 ms", s["max_streams"] >= 1000,
                       f"max {s['max_streams']}"))
    if s.get("rss_per_stream_kb") is not None:
        checks.append(("≤ 30 KB RSS per open stream", s["rss_per_stream_kb"] <= 30,
                       f"{s['rss_per_stream_kb']:.1f} KB at {s['peak_open']} open"))
    return checks


def _ledger_checks(s: dict[str, Any]) -> list[Check]:
    checks: list[Check] = []
    if s["ledger_rows"] is not None:
        lost = max(s["requests_sent"] - s["ledger_rows"], 0)
        checks.append(("no ledger row lost", lost == 0,
                       f"{s['ledger_rows']} rows for {s['requests_sent']} requests"))
    if s["error"]:
        checks.append(("clean SIGTERM exit", False, s["error"]))
    return checks


def _server_checks(name: str, s: dict[str, Any], summary: dict[str, dict[str, Any]],
                   raw: Raw) -> list[Check]:
    """Goals 2, 3, 4, 7 and 8 for one gateway on one server, one worker."""
    server = name.split("-")[1]
    bare = summary.get(f"bare-{server}", {})
    litellm = summary.get("litellm", {})
    checks = _ratio(f"CPU/request vs bare-{server}", s.get("cpu_us"), bare.get("cpu_us"), 1.25)
    checks += _ratio(f"CPU/chunk vs bare-{server}", s.get("chunk_cpu_us"),
                     bare.get("chunk_cpu_us"), 1.1, digits=1)
    if s.get("cpu_us") and litellm.get("cpu_us"):
        ratio = litellm["cpu_us"] / s["cpu_us"]
        checks.append(("req/s per core ≥ 30x LiteLLM", ratio >= 30, f"{ratio:.1f}x"))
    ratios = surface_ratios(raw)
    floors = ratios.get(f"bare-{server}", {})
    for row, (mine, base, ratio) in ratios.get(name, {}).items():
        floor = floors.get(row)
        beside = "" if floor is None else (
            f"; bare-{server} {floor[2]:.2f}x ({floor[0]:.0f} vs {floor[1]:.0f} µs)")
        checks.append((f"{row} vs {raw['meta']['surface_bases'][row]} ≤ 1.25x", ratio <= 1.25,
                       f"{ratio:.2f}x ({mine:.0f} vs {base:.0f} µs{beside})"))
    return checks + _stream_checks(s, summary.get("direct", {})) + _ledger_checks(s)


def _scaleout_checks(name: str, s: dict[str, Any], summary: dict[str, dict[str, Any]],
                     raw: Raw) -> list[Check]:
    """Goal 5: PostgreSQL + Redis against SQLite + memory on the same server."""
    base_name = name.removesuffix("-scaleout")
    base = summary.get(base_name, {})
    checks = _ratio(f"CPU/request vs {base_name} (SQLite + memory)", s.get("cpu_us"),
                    base.get("cpu_us"), 1.15)
    side = raw["targets"][name].get("side") or {}
    sent = _handled(s)
    if side and sent:
        reads = side["redis_reads"] / sent
        checks.append(("≤ 1 Redis round trip per request", reads <= 1.0,
                       f"{reads:.2f} ({side['redis_reads']} read events for {sent} requests)"))
        commits = side["pg_commits"] / sent
        checks.append(("PostgreSQL writes batched (≤ 0.25 commits per request)", commits <= 0.25,
                       f"{commits:.3f} commits, {side['pg_rollbacks'] / sent:.3f} read-only "
                       "transactions per request (cache refreshes and idle polls)"))
    return checks + _stream_checks(s, summary.get("direct", {})) + _ledger_checks(s)


def _handled(s: dict[str, Any]) -> int:
    """Requests the gateway handled: its ledger rows, which also hold the requests wrk cut off
    at the end of each run (at a low rate and c64 that is many more than wrk counts)."""
    return max(int(s["ledger_rows"] or 0), int(s["requests_sent"]))


def _default_server_check(summary: dict[str, dict[str, Any]], default: str) -> list[Check]:
    """Goal 1: ``gateway serve`` without ``--server`` uses the cheapest server measured."""
    costs = {name.split("-")[1]: s["cpu_us"] for name, s in summary.items()
             if s["kind"] == "gateway" and name.count("-") == 1 and s.get("cpu_us")}
    if not costs or not default:
        return []
    best = min(costs, key=costs.__getitem__)
    shown = ", ".join(f"{k} {v:.0f} µs" for k, v in sorted(costs.items(), key=lambda kv: kv[1]))
    return [(f"the default server ({default}) is the fastest measured", best == default,
             shown)]


def goals(raw: Raw) -> str:
    """Issue 14's goals, checked for each gateway target against its floor, peer and base."""
    summary = summarize(raw)
    lines = []
    first = _default_server_check(summary, raw["meta"].get("default_server", ""))
    if first:
        lines.append(f"- **gateway serve**: {_cells(first)}")
    for name, s in summary.items():
        if s["kind"] != "gateway":
            continue
        if name.endswith("-scaleout"):
            lines.append(f"- **{name}**: {_cells(_scaleout_checks(name, s, summary, raw))}")
        elif name.endswith("w") and name.count("-") == 2:  # the same server with more workers
            lines.append(f"- **{name}**: {_cells(_workers_checks(name, s, summary))}"
                         + _workers_note(name, s, summary))
        else:
            lines.append(f"- **{name}**: {_cells(_server_checks(name, s, summary, raw))}")
    return "\n".join(lines)


def _workers_checks(
    name: str, s: dict[str, Any], summary: dict[str, dict[str, Any]]
) -> list[Check]:
    """Goal 6: N workers cost no more per request than one worker on the same cores (the
    ``-1w`` twin; a run without it compares with one worker on a core of its own)."""
    one_name = name.rsplit("-", 1)[0]
    one = summary.get(one_name, {})
    twin_name = f"{one_name}-1w"
    if name == twin_name:  # the base itself
        return _ledger_checks(s)
    base_name = twin_name if twin_name in summary else one_name
    base = summary.get(base_name, {})
    checks = _ratio(f"CPU/request vs {base_name}", s.get("cpu_us"), base.get("cpu_us"), 1.05)
    if s.get("rps_64") and one.get("rps_64"):
        checks.append(("c64 req/s on 2 cores (shared with the load) > 1 worker on 1",
                       s["rps_64"] > one["rps_64"],
                       f"{s['rps_64']:,.0f} vs {one['rps_64']:,.0f} "
                       f"({s['rps_64'] / one['rps_64']:.2f}x)"))
    return checks + _ledger_checks(s)


def _workers_note(name: str, s: dict[str, Any], summary: dict[str, dict[str, Any]]) -> str:
    """What the same figure is against one worker on a core of its own, for the record: that
    ratio also holds the cost of sharing a core with the load generator."""
    one_name = name.rsplit("-", 1)[0]
    one = summary.get(one_name, {})
    if not s.get("cpu_us") or not one.get("cpu_us"):
        return ""
    if name == f"{one_name}-1w":
        return (f" (goal 6's base: one worker on both cores, shared with the load; "
                f"{s['cpu_us'] / one['cpu_us']:.2f}x {one_name} on a core of its own)")
    return f" ({s['cpu_us'] / one['cpu_us']:.2f}x {one_name} on a core of its own)"


def side_tables(raw: Raw) -> str:
    """The surfaces' CPU per request, and what Redis and PostgreSQL did per request."""
    parts = []
    ratios = surface_ratios(raw)
    rows = [(name, row, v) for name, by_row in ratios.items() for row, v in by_row.items()]
    if rows:
        parts.append("| target | surface | CPU µs/req | base | base CPU µs/req | ratio |\n"
                     "|---|---|---|---|---|---|\n" + "\n".join(
                         f"| {name} | {row} | {mine:.0f} | "
                         f"{raw['meta']['surface_bases'][row]} | {base:.0f} | {ratio:.2f}x |"
                         for name, row, (mine, base, ratio) in rows))
    lines = []
    summary = summarize(raw)
    for name, t in raw["targets"].items():
        side, sent = t.get("side") or {}, _handled(summary[name])
        if not side or not sent:
            continue
        top = ", ".join(f"{cmd} {n / sent:.2f}" for cmd, n in sorted(
            side["redis_commands"].items(), key=lambda kv: -kv[1])[:6])
        lines.append(
            f"| {name} | {sent} | {side['redis_reads'] / sent:.2f} | "
            f"{sum(side['redis_commands'].values()) / sent:.2f} ({top}) | "
            f"{side['redis_cpu_s'] / sent * 1e6:.1f} | {side['pg_commits'] / sent:.3f} | "
            f"{side['pg_rollbacks'] / sent:.3f} | "
            f"{side['pg_inserted'] / sent:.2f} | {side['pg_cpu_s'] / sent * 1e6:.1f} |")
    if lines:
        parts.append("| target | requests | Redis round trips/req | Redis commands/req | "
                     "Redis CPU µs/req | PG commits/req | PG read-only transactions/req | "
                     "PG rows inserted/req | PG CPU µs/req |\n"
                     "|---|---|---|---|---|---|---|---|---|\n" + "\n".join(lines))
    ceilings = raw["meta"].get("ceilings") or {}
    if ceilings:
        parts.append("Ceilings on the load's core (throwaway instances): " + ", ".join(
            f"{k} {v:,.0f}/s" for k, v in ceilings.items()))
    return "\n\n".join(parts)


def plot(raw: Raw, out: Path) -> list[Path]:
    """latency.png (p50 and p99 against concurrency) and rss.png (RSS against open streams)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    written = []
    # Ten colours, solid then dashed: a run has more than ten targets, and the default cycle
    # gave two of them one colour.
    from cycler import cycler  # matplotlib's own dependency

    tab10 = [plt.get_cmap("tab10")(i) for i in range(10)]
    styles = cycler(linestyle=["-", "--"]) * cycler(color=tab10)
    summary = summarize(raw)
    concurrencies = sorted({int(c) for t in raw["targets"].values() for c in t["wrk"]})
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for ax in axes:
        ax.set_prop_cycle(styles)
    for name, s in summary.items():
        for ax, q in zip(axes, ("p50", "p99"), strict=True):
            ys = [s.get(f"{q}_{c}") for c in concurrencies]
            points = [(c, y) for c, y in zip(concurrencies, ys, strict=True) if y is not None]
            if points:
                ax.plot(*zip(*points, strict=True), marker="o", label=name)
    for ax, q in zip(axes, ("p50", "p99"), strict=True):
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("concurrent connections")
        ax.set_ylabel(f"{q} latency (ms)")
        ax.set_title(f"Non-streamed {q} latency")
        ax.grid(True, which="both", alpha=0.3)
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    path = out / "latency.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    written.append(path)

    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.set_prop_cycle(styles)
    for name, t in raw["targets"].items():
        samples = t["rss_samples"]
        if not samples:
            continue
        best: dict[int, int] = {0: t["rss_idle"]}
        for open_now, rss in samples:
            best[open_now] = max(best.get(open_now, 0), rss)
        xs = sorted(best)
        ax.plot(xs, [best[x] / 2**20 for x in xs], label=name, linewidth=1.2)
    ax.set_xlabel("open streams")
    ax.set_ylabel("RSS (MiB)")
    ax.set_title("Memory against open streams")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = out / "rss.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    written.append(path)
    return written


def write(raw: Raw, out: Path) -> str:
    """Write results.md and the plots into ``out``; returns the markdown."""
    meta = raw["meta"]
    text = (
        f"# Benchmark results ({meta['mode']}, {meta['date']}, {meta['cpus']} CPUs, "
        f"{meta['seconds']} s)\n\n"
        "Non-streamed: wrk, 16-token answers. Streams: 64 tokens 20 ms apart, "
        f"{meta['plan']['streams']} started over 1 s. Held streams: a token every 100 ms, "
        "opened in four steps, RSS sampled at each, closed by the client after 1 s at the top. "
        "Target on core 0, load and fake upstream on core 1. Medians over interleaved "
        "rounds.\n\n"
        + table(raw)
        + "\n\n" + side_tables(raw)
        + "\n\n## Goals\n\n"
        + goals(raw)
        + "\n\n![latency](latency.png)\n\n![rss](rss.png)\n"
    )
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.md").write_text(text)
    plot(raw, out)
    return text


if __name__ == "__main__":
    import json
    import sys

    raw_path = Path(sys.argv[1])
    print(write(json.loads(raw_path.read_text()), raw_path.parent.parent))
