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


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[server]\nworkers = 0", r"^server.workers: must be at least 1"),
        ("[server]\nport = 70000", r"^server.port: must be at most 65535"),
        ("[tiers.gold]\ncredits_per_day = -3", r"^tiers.gold.credits_per_day: must not be neg"),
        ("[tiers.gold]\nrequests_per_minute = 100000000000000000000",
         r"^tiers.gold.requests_per_minute: must be at most"),
        ('[[models]]\nid = "m"\nprovider = "p"\ninput_price = -1',
         r"^models\[0\].input_price: must not be negative"),
        ("[upstream]\nidle_timeout = 0", r"^upstream.idle_timeout: must be more than 0"),
        ('[personas.p]\ntarget = "x"\ntemperature = 3',
         r"^personas.p.temperature: must be at most 2"),
    ],
)
def test_ranges_are_checked_and_name_the_key(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config(text)


def test_derived_fields_are_not_keys_of_the_file() -> None:
    for text in ('disabled_providers = { openai = "X" }', 'source = "x"',
                 '[runtime]\nsource = "x"'):
        with pytest.raises(ConfigError, match="unknown field"):
            parse_config(text)
    config = parse_config('[providers.o]\nkind = "openai"\nbase_url = "u"\napi_key = "${GW_NO}"')
    assert config.runtime.disabled_providers == {"o": "GW_NO"}


def test_environment_is_read_while_loading(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_SECRET", "s" * 40)
    monkeypatch.setenv("GATEWAY_ADMIN_KEY", "a" * 40)
    monkeypatch.setenv("GATEWAY_METRICS_DIR", "/tmp/gw-metrics-x")
    config = parse_config("")
    assert (config.accounts.secret, config.accounts.admin_key) == ("s" * 40, "a" * 40)
    assert config.runtime.metrics_dir == "/tmp/gw-metrics-x"
    mine = "from-the-file-" + "f" * 32
    written = parse_config(f'[accounts]\nsecret = "{mine}"')
    assert written.accounts.secret == mine  # the file wins over the variable


def test_a_loaded_config_cannot_be_changed() -> None:
    config = parse_config("")
    with pytest.raises(AttributeError):
        config.server.port = 1  # type: ignore[misc]


def test_relative_sqlite_path_resolves_against_the_file(tmp_path: Path) -> None:
    (tmp_path / "gw.toml").write_text('[storage]\nurl = "sqlite:///state/gw.db"\n')
    config = load_config(tmp_path / "gw.toml")
    assert config.storage.url == "sqlite:///state/gw.db"  # as written
    assert config.runtime.database_url == f"sqlite:///{tmp_path}/state/gw.db"
    absolute = parse_config('[storage]\nurl = "sqlite:////var/gw.db"', base_dir=str(tmp_path))
    assert absolute.runtime.database_url == "sqlite:////var/gw.db"
    default = load_config()
    assert default.runtime.database_url.endswith("/data/gateway.db")
    assert "/config/data/" not in default.runtime.database_url  # the checkout's data/


def test_no_tiers_means_conservative_built_in_tiers() -> None:
    config = parse_config("")
    free = config.tiers["free"]
    assert not free.unlimited and free.requests_per_minute and free.credits_per_day
    assert config.runtime.builtin_tiers
    named = parse_config('[accounts]\ndefault_tier = "starter"')
    assert not named.tiers["starter"].unlimited


OPEN_PROVIDER = """
[providers.open]
kind = "openai"
base_url = "http://127.0.0.1:9/v1"
allow_any_model = true

[[models]]
id = "open/listed"
provider = "open"
"""


def test_signup_warns_about_an_unlimited_default_tier_and_unpriced_models() -> None:
    config = parse_config(OPEN_PROVIDER + "[accounts]\nsignup = true\n[tiers.free]\n")
    warnings = config_warnings(config)
    assert any("'free' has no limits" in w for w in warnings), warnings
    assert any("unpriced models (open/listed, open/*)" in w for w in warnings), warnings
    limited = parse_config(
        OPEN_PROVIDER.replace('provider = "open"\n', 'provider = "open"\ninput_price = 1\n')
        + "[accounts]\nsignup = true\n[tiers.free]\nrequests_per_minute = 5\n"
        'models = ["open/listed"]\n'
    )
    assert config_warnings(limited) == []
    off = parse_config(OPEN_PROVIDER + "[accounts]\nsignup = false\n[tiers.free]\n")
    assert config_warnings(off) == []


def test_check_config_lists_unpriced_models_and_built_in_tiers(tmp_path: Path) -> None:
    file = tmp_path / "gw.toml"
    file.write_text(OPEN_PROVIDER)
    result = subprocess.run([GATEWAY, "check-config", "--config", str(file)],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert "unpriced models" in result.stdout and "open/listed, open/*" in result.stdout
    assert "built-in conservative tiers" in result.stdout


async def test_configuration_faults_raise_the_config_error_not_value_error() -> None:
    from gateway.cache import build_cache
    from gateway.storage import open_store

    with pytest.raises(ConfigError, match=r"storage\.url"):
        await open_store("mysql://db/x")
    config = parse_config(
        '[cache]\nmode = "on"\nbackend = "redis"\n[limits]\nstorage = "redis://127.0.0.1:1"\n'
    )
    with pytest.raises(ConfigError, match=r"cache\.backend"):
        build_cache(config, None)
