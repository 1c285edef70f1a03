"""Run the examples of the Markdown docs and check what the text says they print.

Marks, each an HTML comment on the line before a fenced block:

* ``<!-- run -->`` runs the block (``sh``/``bash`` in one bash session per file, in order, so
  variables carry over; ``python`` with the checkout's interpreter).
* ``<!-- output -->`` before a block right after a run block: what that run prints. Every line
  must appear in the real output, in this order; ``…`` stands for any text (a line of its own:
  any lines).
* ``<!-- server-output -->``: what the server prints (from its first start to its stop, in
  order; several such blocks read as one).
* ``<!-- setup -->``: what the reader does before starting the gateway (edit the config,
  export a variable); run before the server starts, with its ``make run`` line left out, and
  the variables it exports given to the server and to every example.

Before running, the docs' placeholders become the test instance's: ``127.0.0.1:8080`` its
address, ``gw-3kq9…`` the key it printed on first start.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

MARK = re.compile(r"^<!--\s*(run|output|server-output|setup)\s*-->\s*$")
FENCE = re.compile(r"^(```+|~~~+)\s*([\w-]*)")
PLACEHOLDER_KEY = "gw-3kq9…"
PLACEHOLDER_ADDRESS = "127.0.0.1:8080"


@dataclass
class Example:
    """A block marked ``run``, with the output its text claims (if any)."""

    source: str
    line: int
    language: str
    code: str
    expected: list[str] = field(default_factory=list)


@dataclass
class DocExamples:
    examples: list[Example] = field(default_factory=list)
    server_output: list[str] = field(default_factory=list)
    setup: list[str] = field(default_factory=list)


def _blocks(text: str) -> list[tuple[str | None, int, str, str]]:
    """``(mark, line, language, body)`` of every fenced block; ``mark`` from the line above."""
    lines = text.splitlines()
    found: list[tuple[str | None, int, str, str]] = []
    i = 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        mark = MARK.match(lines[i - 1].strip()) if i else None
        end = i + 1
        while end < len(lines) and not lines[end].startswith(opening.group(1)):
            end += 1
        body = "\n".join(lines[i + 1:end])
        found.append((mark.group(1) if mark else None, i + 1, opening.group(2), body))
        i = end + 1
    return found


def parse(path: Path) -> DocExamples:
    """The marked examples of one Markdown file."""
    doc = DocExamples()
    for mark, line, language, body in _blocks(path.read_text(encoding="utf-8")):
        if mark == "run":
            doc.examples.append(Example(f"{path.name}:{line}", line, language, body))
        elif mark == "output":
            assert doc.examples, f"{path.name}:{line}: an output block before any run block"
            doc.examples[-1].expected = body.splitlines()
        elif mark == "server-output":
            doc.server_output += body.splitlines()
        elif mark == "setup":
            doc.setup.append(body)
    return doc


def prepare(setup: list[str], cwd: Path, env: dict[str, str]) -> dict[str, str]:
    """Run the setup blocks (without starting the server); answer the variables they set."""
    if not setup:
        return {}
    steps = [line for code in setup for line in code.splitlines()
             if not line.strip().startswith("make run")]
    dump = cwd / ".docs-setup-env"
    bash = "set -eo pipefail\n" + "\n".join(steps) + f"\nenv -0 > {dump}\n"
    result = subprocess.run(["bash", "-c", bash], cwd=cwd, env=env, capture_output=True,
                            text=True, timeout=60, check=False)
    assert result.returncode == 0, f"setup failed:\n{result.stdout}{result.stderr}"
    after = dict(item.split("=", 1) for item in dump.read_text().split("\0") if "=" in item)
    shell_own = {"_", "SHLVL", "PWD", "OLDPWD"}
    return {name: value for name, value in after.items()
            if env.get(name) != value and name not in shell_own}


def _pattern(expected: str) -> re.Pattern[str]:
    parts = [re.escape(part) for part in expected.strip().split("…")]
    return re.compile(".*".join(parts))


def missing_lines(expected: list[str], actual: str) -> list[str]:
    """The expected lines not found, in order, among the lines of ``actual``."""
    lines = [line.strip() for line in actual.splitlines()]
    position, missing = 0, []
    for wanted in (e for e in expected if e.strip() not in ("", "…")):
        pattern = _pattern(wanted)
        for index in range(position, len(lines)):
            if pattern.fullmatch(lines[index]):
                position = index + 1
                break
        else:
            missing.append(wanted)
    return missing


def localise(code: str, address: str, key: str) -> str:
    return code.replace(PLACEHOLDER_ADDRESS, address).replace(PLACEHOLDER_KEY, key)


def script(examples: list[Example], python: str) -> str:
    """One bash script running every example in order, each output after a marker line."""
    # curl prints no newline after a JSON body: give it one, so outputs stay line by line.
    parts = ["set -eo pipefail",
             'curl() { command curl "$@"; local status=$?; echo; return $status; }']
    for index, example in enumerate(examples):
        parts.append(f"echo '@@example {index}@@'")
        if example.language == "python":
            parts.append(f"{python} - <<'DOCS_PYTHON_EOF'\n{example.code}\nDOCS_PYTHON_EOF")
        else:
            parts.append(example.code)
    parts.append("echo '@@example end@@'")
    return "\n".join(parts) + "\n"


def run(examples: list[Example], python: str, cwd: Path, env: dict[str, str],
        address: str, key: str) -> list[str]:
    """Run ``examples``; answer each one's output (a failing one fails with the transcript)."""
    localised = [Example(e.source, e.line, e.language, localise(e.code, address, key),
                         e.expected) for e in examples]
    result = subprocess.run(["bash", "-c", script(localised, python)], cwd=cwd, env=env,
                            capture_output=True, text=True, timeout=300, check=False)
    transcript = result.stdout + result.stderr
    chunks = re.split(r"^@@example (\d+|end)@@$", result.stdout, flags=re.MULTILINE)
    outputs = [""] * len(examples)
    for marker, body in zip(chunks[1::2], chunks[2::2], strict=True):
        if marker != "end":
            outputs[int(marker)] = body
    if result.returncode != 0 or "@@example end@@" not in result.stdout:
        ran = [m for m in chunks[1::2] if m != "end"]
        where = examples[int(ran[-1])].source if ran else "the first example"
        raise AssertionError(f"{where} failed (exit {result.returncode}):\n{transcript[-6000:]}")
    return outputs
