"""The ``gateway`` command: paths relative to the config, what each command prints, make."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.conftest import GATEWAY, ROOT, free_port, launch, stop_tree

CONFIG = """
[storage]
url = "sqlite:///data/gw.db"

[accounts]
default_tier = "gold"

[tiers.gold]
requests_per_minute = 5

[tiers.free]
requests_per_minute = 1

[providers.mock]
kind = "mock"
"""


def run(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [GATEWAY, *args], capture_output=True, text=True, cwd=cwd, check=False,
        env={**os.environ, **(env or {})},
    )


def folders(tmp_path: Path) -> tuple[Path, Path]:
    home, elsewhere = tmp_path / "home", tmp_path / "elsewhere"
    home.mkdir()
    elsewhere.mkdir()
    (home / "gateway.toml").write_text(CONFIG)
    return home / "gateway.toml", elsewhere


def test_relative_database_path_follows_the_config_file(tmp_path: Path) -> None:
    config, elsewhere = folders(tmp_path)
    created = run("keys", "create", "--config", str(config), "--name", "k", cwd=elsewhere)
    assert created.returncode == 0, created.stderr
    assert (config.parent / "data" / "gw.db").exists()
    assert not (elsewhere / "data").exists()  # not beside the current directory
    listed = run("keys", "list", "--config", "../home/gateway.toml", cwd=elsewhere)
    assert "gold" in listed.stdout and listed.stdout.count("\n") == 2  # header + the key
    assert "database" not in listed.stderr  # the one beside the config: nothing to say


def test_commands_say_which_database_when_it_is_not_beside_the_config(tmp_path: Path) -> None:
    config, elsewhere = folders(tmp_path)
    other = tmp_path / "other.db"
    config.write_text(CONFIG.replace("sqlite:///data/gw.db", f"sqlite:///{other}"))
    created = run("keys", "create", "--config", str(config), cwd=elsewhere)
    assert f"database: {other} (new" in created.stderr
    listed = run("keys", "list", "--config", str(config), cwd=elsewhere)
    assert f"database: {other}" in listed.stderr and "(new" not in listed.stderr


def test_keys_create_reports_on_stderr_and_defaults_to_the_default_tier(tmp_path: Path) -> None:
    config, elsewhere = folders(tmp_path)
    created = run("keys", "create", "--config", str(config), "--user", "ann@example.com",
                  cwd=elsewhere)
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip().splitlines()[-1]
    assert key.startswith("gw-") and created.stdout.strip() == key
    assert "tier gold" in created.stderr and "ann@example.com" in created.stderr
    assert "permissions inference+manage" in created.stderr
    inference = run("keys", "create", "--config", str(config), "--permissions", "inference",
                    cwd=elsewhere)
    assert "permissions inference," in inference.stderr
    assert "created key key_" in created.stderr or "created key " in created.stderr
    unknown = run("keys", "create", "--config", str(config), "--tier", "platinum", cwd=elsewhere)
    assert unknown.returncode == 2 and "unknown tier 'platinum'" in unknown.stderr


def test_keys_list_has_a_header_and_says_when_there_are_none(tmp_path: Path) -> None:
    config, elsewhere = folders(tmp_path)
    empty = run("keys", "list", "--config", str(config), cwd=elsewhere)
    assert empty.returncode == 0 and empty.stdout.strip() == "no keys"
    run("keys", "create", "--config", str(config), "--name", "first", cwd=elsewhere)
    listed = run("keys", "list", "--config", str(config), cwd=elsewhere)
    header, row = listed.stdout.strip().splitlines()
    assert header.split("\t")[:6] == ["id", "prefix", "state", "tier", "user", "permissions"]
    assert row.split("\t")[2:6] == ["active", "gold", "-", "inference+manage"]


def test_version() -> None:
    result = subprocess.run([GATEWAY, "--version"], capture_output=True, text=True, check=False)
    assert result.returncode == 0 and result.stdout.startswith("gateway ")
    assert result.stdout.split()[1][0].isdigit()


def test_serve_warns_about_workers_on_memory_limits_and_sqlite(tmp_path: Path) -> None:
    config, elsewhere = folders(tmp_path)
    process = launch(
        [GATEWAY, "serve", "--config", str(config), "--port", str(free_port()),
         "--workers", "2"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=elsewhere,
    )
    try:
        assert process.stderr is not None
        warnings = [process.stderr.readline() for _ in range(2)]
    finally:
        stop_tree(process, 30)
    assert any("limits.storage = memory://" in line for line in warnings), warnings
    assert any("SQLite" in line for line in warnings), warnings


def test_make_lists_targets_and_run_takes_a_port_and_arguments() -> None:
    plain = subprocess.run(["make", "-s"], capture_output=True, text=True, cwd=ROOT, check=False)
    assert plain.returncode == 0 and "make run" in plain.stdout and "make test" in plain.stdout
    dry = subprocess.run(
        ["make", "-n", "run", "PORT=9123", "ARGS=--workers 2"],
        capture_output=True, text=True, cwd=ROOT, check=False,
    )
    assert "gateway serve --port 9123 --workers 2" in dry.stdout
