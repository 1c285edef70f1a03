"""Gateway configuration: TOML with ``${ENV}`` interpolation, decoded into frozen msgspec
Structs.

``load_config`` (or ``parse_config`` for a string) is the only entry point. Errors name the
failing key (``models[2].provider``) and say what is wrong, so ``gateway check-config`` can
print them as they are.

- ``schema``: every key, its default and its range (``Meta(ge=…)``), and ``Runtime``, what
  loading derives (never a key of the file);
- ``loading``: TOML, environment variables (read here only), relative paths, built-in tiers;
- ``checks``: consistency across keys, and prices;
- ``advice``: warnings and notes for ``check-config`` and ``serve``.
"""

from gateway.config.advice import config_warnings, disabled_providers_note, unpriced_note
from gateway.config.checks import default_prices, has_price, model_prices, unpriced_models
from gateway.config.loading import (
    DEFAULT_CONFIG_PATH,
    config_path,
    load_config,
    parse_config,
)
from gateway.config.schema import (
    AccountsConfig,
    CacheConfig,
    ConfigError,
    DeploymentConfig,
    GatewayConfig,
    KeysConfig,
    LimitsConfig,
    ModelConfig,
    PersonaConfig,
    PluginConfig,
    ProviderConfig,
    ReleaseConfig,
    ResponsesConfig,
    RouterConfig,
    RouterRuleConfig,
    RoutingConfig,
    Runtime,
    Section,
    ServerConfig,
    Settings,
    SmtpConfig,
    StorageConfig,
    TelemetryConfig,
    TierConfig,
    UpstreamConfig,
    VideoConfig,
    WebhooksConfig,
)

__all__ = [
    "DEFAULT_CONFIG_PATH",
    "AccountsConfig",
    "CacheConfig",
    "ConfigError",
    "DeploymentConfig",
    "GatewayConfig",
    "KeysConfig",
    "LimitsConfig",
    "ModelConfig",
    "PersonaConfig",
    "PluginConfig",
    "ProviderConfig",
    "ReleaseConfig",
    "ResponsesConfig",
    "RouterConfig",
    "RouterRuleConfig",
    "RoutingConfig",
    "Runtime",
    "Section",
    "ServerConfig",
    "Settings",
    "SmtpConfig",
    "StorageConfig",
    "TelemetryConfig",
    "TierConfig",
    "UpstreamConfig",
    "VideoConfig",
    "WebhooksConfig",
    "config_path",
    "config_warnings",
    "default_prices",
    "disabled_providers_note",
    "has_price",
    "load_config",
    "model_prices",
    "parse_config",
    "unpriced_models",
    "unpriced_note",
]
