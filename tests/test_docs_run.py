"""Every example in README.md and docs/*.md marked ``<!-- run -->`` runs against a fresh
``make run``-style gateway (default config, new data folder, no provider key, the first-start
key), and prints what the text says it prints (``<!-- output -->``)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests import docs_runner
from tests.conftest import ROOT
from tests.fresh_gateway import FreshGateway

pytestmark = pytest.mark.e2e

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def test_the_readme_and_the_account_docs_keep_runnable_examples() -> None:
    counts = {path.name: len(docs_runner.parse(path).examples) for path in DOCS}
    assert counts["README.md"] >= 5, counts
    assert counts["accounts.md"] >= 3, counts


def test_the_matcher_takes_ellipses_and_order() -> None:
    actual = 'x-fallback-level: 1\n{"id":"key_12","key":"gw-abc"}\n'
    assert docs_runner.missing_lines(['{"id":"key_…","key":"gw-…"}'], actual) == []
    assert docs_runner.missing_lines(["x-fallback-level: 0"], actual) == ["x-fallback-level: 0"]
    assert docs_runner.missing_lines(['{"id"…', "x-fallback-level: 1"], actual) == [
        "x-fallback-level: 1"]


@pytest.mark.parametrize("doc", [p for p in DOCS if docs_runner.parse(p).examples
                                 or docs_runner.parse(p).server_output], ids=lambda p: p.name)
def test_doc_examples_run_and_print_what_the_text_claims(doc: Path, tmp_path: Path) -> None:
    parsed = docs_runner.parse(doc)
    fresh = FreshGateway(tmp_path)
    # What the page tells the reader to do before `make run` (a config edit, an export).
    fresh.env.update(docs_runner.prepare(parsed.setup, fresh.home, fresh.env))
    fresh.start()
    try:
        address = f"127.0.0.1:{fresh.port}"
        outputs = docs_runner.run(
            parsed.examples, sys.executable, fresh.home, fresh.env, address, fresh.key)
    finally:
        status = fresh.stop()

    def claimed(lines: list[str]) -> list[str]:
        return [docs_runner.localise(line, address, fresh.key) for line in lines]

    problems = []
    if missing := docs_runner.missing_lines(claimed(parsed.server_output), fresh.logs()):
        problems.append(f"{doc.name}: the server printed no {missing}")
    for example, output in zip(parsed.examples, outputs, strict=True):
        if missing := docs_runner.missing_lines(claimed(example.expected), output):
            problems.append(f"{example.source}: expected {missing} in:\n{output[-3000:]}")
    assert not problems, "\n\n".join(problems)
    assert status == 0, fresh.logs()[-3000:]
    assert "Traceback" not in fresh.logs(), fresh.logs()[-5000:]
