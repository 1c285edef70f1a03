"""Configuration: the contract keys, ${ENV} interpolation, and errors that name the key."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from gateway.config import ConfigError, config_warnings, load_config, parse_config
from tests.conftest import GATEWAY

pytestmark = pytest.mark.e2e

MINIMAL = """
[providers.openai]
kind = "openai"
base_url = "https://api.openai.com/v1"
api_key = "${TEST_GW_KEY}"

[[models]]
id = "openai/gpt-4o-mini"
provider = "openai"
upstream = "gpt-4o-mini"
input_price = 0.15
output_price = 0.60
"""


def test_embedded_default_serves_the_mock_without_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "DEEPSEEK_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    config = load_config()
    assert config.storage.url == "sqlite:///data/gateway.db"
    assert config.limits.storage == "memory://"
    assert config.providers["mock"].kind == "mock"
    assert "openai" not in config.providers
    assert all(model.provider == "mock" for model in config.models)


def test_provider_switches_on_when_its_key_is_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    config = load_config()
    assert config.providers["openai"].api_key == "sk-test"
    assert any(model.id == "openai/gpt-4o-mini" for model in config.models)


def test_env_interpolation(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_GW_KEY", "secret")
    config = parse_config(MINIMAL)
    assert config.providers["openai"].api_key == "secret"
    assert config.models[0].input_price == 0.15


def test_env_default_and_missing_variable_outside_api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GW_PORT_UNSET", raising=False)
    text = '[server]\nhost = "${GW_HOST_UNSET:-0.0.0.0}"\n'
    assert parse_config(text).server.host == "0.0.0.0"
    with pytest.raises(
        ConfigError, match=r"server.host: environment variable GW_HOST_X is not set"
    ):
        parse_config('[server]\nhost = "${GW_HOST_X}"\n')


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[server]\nport = "80"', r"server.port: Expected `int`, got `str`"),
        ("[server]\nprot = 80", r"server: Object contains unknown field `prot`"),
        (
            '[[models]]\nid = "a"\nprovider = "nope"',
            r"models\[0\].provider: unknown provider 'nope'",
        ),
        ('[providers.x]\nkind = "openai"', r"providers.x.base_url: required"),
        ('[providers.x]\nkind = "cohere"', r"providers.x.kind: Invalid enum value 'cohere'"),
        ("[server\n", r"not valid TOML"),
    ],
)
def test_errors_name_the_key(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config(text)


def test_duplicate_model_names_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_GW_KEY", "x")
    text = (
        MINIMAL + '\n[[models]]\nid = "b"\nprovider = "openai"\naliases = ["openai/gpt-4o-mini"]\n'
    )
    with pytest.raises(
        ConfigError, match=r"models\[1\]: name 'openai/gpt-4o-mini' is already used"
    ):
        parse_config(text)


def test_workers_with_memory_limits_warns() -> None:
    config = parse_config("[server]\nworkers = 2\n")
    assert any("workers > 1" in warning for warning in config_warnings(config))


def test_check_config_command(tmp_path: Path) -> None:
    good = subprocess.run([GATEWAY, "check-config"], capture_output=True, text=True, check=False)
    assert good.returncode == 0 and good.stdout.strip().splitlines()[-1].startswith("ok:")
    bad_file = tmp_path / "bad.toml"
    bad_file.write_text('[server]\nport = "eighty"\n')
    bad = subprocess.run(
        [GATEWAY, "check-config", "--config", str(bad_file)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 2
    assert "server.port" in bad.stderr and "Expected `int`" in bad.stderr
