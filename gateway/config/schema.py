"""The configuration schema: every key of ``gateway.toml``, its default and its range.

Ranges are declared on the types (``Annotated[int, Meta(ge=0)]``) so msgspec checks them while
decoding, and ``gateway.config.loading`` turns its messages into ``<key>: must …``. Sections are
frozen: a loaded configuration is never changed, only replaced (``msgspec.structs.replace``).
Facts derived while loading (where the file is, which providers are off) are not keys: they are
in ``Runtime``, outside the schema.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType

from gateway.semver import parse_version

NonNegative = Annotated[int, Meta(ge=0, le=10**15)]
AtLeastOne = Annotated[int, Meta(ge=1, le=10**15)]
Port = Annotated[int, Meta(ge=0, le=65535)]
Seconds = Annotated[float, Meta(ge=0)]
PositiveSeconds = Annotated[float, Meta(gt=0)]
Price = Annotated[float, Meta(ge=0)]  # USD per 1M tokens
Weight = Annotated[float, Meta(gt=0)]
Temperature = Annotated[float, Meta(ge=0, le=2)]


class ConfigError(Exception):
    """The configuration cannot be used; the message names the key and the problem."""


class Section(
    msgspec.Struct, kw_only=True, forbid_unknown_fields=True, omit_defaults=True, frozen=True
):
    """Base of every section: unknown keys are typos, so they are refused."""


class ServerConfig(Section, frozen=True):
    host: str = "127.0.0.1"
    port: Port = 8080
    workers: AtLeastOne = 1
    max_body_bytes: AtLeastOne = 20 * 1024 * 1024
    graceful_timeout: Seconds = 30.0
    # Slow clients: seconds for a request's headers, seconds a request body may send nothing
    # (then 408), and connections one worker holds (then 503).
    header_timeout: PositiveSeconds = 10.0
    body_timeout: PositiveSeconds = 30.0
    max_connections: AtLeastOne = 1000
    # Seconds before an uncommitted stream sends headers and keep-alive comments.
    commit_timeout: PositiveSeconds = 10.0
    log_level: str = "info"
    # Addresses (or CIDR networks) of reverse proxies whose X-Forwarded-For is believed when
    # telling clients apart (signup, login and reset throttles); others' is ignored.
    trusted_proxies: list[str] = msgspec.field(default_factory=list)
    # Bearer token GET /metrics requires; empty leaves it open (limit it in the proxy instead).
    metrics_token: str = ""


class StorageConfig(Section, frozen=True):
    # A relative SQLite path resolves against the configuration file's folder.
    url: str = "sqlite:///data/gateway.db"
    # Rows that make the ledger write before its interval: each commit rewrites the index
    # pages its rows touch, so fewer, larger commits cost less a row (bench/README.md).
    ledger_batch_size: AtLeastOne = 1000
    ledger_flush_interval: PositiveSeconds = 0.5
    key_cache_ttl: Seconds = 30.0
    # PostgreSQL only: connections per process (workers x instances x this <= max_connections).
    pool_size: AtLeastOne = 10


class LimitsConfig(Section, frozen=True):
    storage: str = "memory://"
    # Redis only: namespace of every key this gateway writes (one per deployment).
    redis_prefix: str = "gw:"
    # Redis unreachable: "open" carries on without it, "closed" refuses what needs it (503).
    redis_failure: Literal["open", "closed"] = "open"


class CacheConfig(Section, frozen=True):
    """The response cache (gateway.cache): exact match on the normalised request."""

    # "off"; "opt-in": only requests with `X-Cache: use` and keys listed in `keys`;
    # "on": every non-streamed request, unless it sends `X-Cache: bypass`.
    mode: Literal["off", "opt-in", "on"] = "off"
    # Where answers are kept: "memory" (per process) or "redis" (limits.storage, shared).
    backend: Literal["memory", "redis"] = "memory"
    ttl: PositiveSeconds = 300.0
    # Requests from these keys (id or name) are cached without asking, in "opt-in" mode.
    keys: list[str] = msgspec.field(default_factory=list)
    # Who shares answers: "key", "user" (default) or "global".
    scope: Literal["key", "user", "global"] = "user"
    max_entries: AtLeastOne = 10_000  # memory backend: least recently stored are evicted
    max_entry_bytes: AtLeastOne = 1024 * 1024  # larger answers are not cached


class UpstreamConfig(Section, frozen=True):
    connect_timeout: PositiveSeconds = 10.0
    first_byte_timeout: PositiveSeconds = 120.0
    idle_timeout: PositiveSeconds = 120.0
    max_connections: AtLeastOne = 4096
    max_connections_per_host: AtLeastOne = 1024


class ProviderConfig(Section, frozen=True):
    kind: Literal["openai", "anthropic", "gemini", "minimax", "mock"]
    base_url: str = ""
    api_key: str = ""
    headers: dict[str, str] = msgspec.field(default_factory=dict)
    # Serve any "<provider>/<model>" name, not only the models listed in the catalog.
    allow_any_model: bool = False
    # Prices of this provider's models that list none (USD per 1M tokens). Without them an
    # unpriced model is refused on the operator's key rather than served for $0.
    default_input_price: Price | UnsetType = UNSET
    default_output_price: Price | UnsetType = UNSET
    # openai kind: the field a translated request's output cap goes in ("max_tokens", or
    # "max_completion_tokens" for OpenAI itself, whose reasoning models refuse max_tokens).
    max_tokens_field: Literal["max_tokens", "max_completion_tokens"] = "max_tokens"
    # openai kind: the provider also serves the Responses API at {base_url}/responses, so
    # /v1/responses bodies go to it unchanged (others get them translated).
    responses_api: bool = False
    # mock only: generation speed; 0 means as fast as possible.
    tokens_per_second: Annotated[float, Meta(ge=0)] = 0.0


class DeploymentConfig(Section, frozen=True):
    """Another place that serves a model: a provider (its own key or region) and its name there."""

    provider: str
    upstream: str = ""
    weight: Weight = 1.0


Mode = Literal["chat", "embeddings", "images", "video", "rerank", "moderation"]


class ModelConfig(Section, frozen=True):
    id: str
    provider: str
    upstream: str = ""
    # The endpoint that serves it (docs/modes.md).
    mode: Mode = "chat"
    # No price at all (and not free) makes the model unpriced: see ProviderConfig. Token
    # prices (USD per 1M) bill chat, embeddings, rerank and moderation (input only for the
    # last three); images add price_per_image, video price_per_second or price_per_video.
    input_price: Price | UnsetType = UNSET
    output_price: Price | UnsetType = UNSET
    cached_input_price: Price | UnsetType = UNSET
    price_per_image: Annotated[float, Meta(ge=0)] | UnsetType = UNSET  # USD per image
    price_per_second: Annotated[float, Meta(ge=0)] | UnsetType = UNSET  # USD per video second
    price_per_video: Annotated[float, Meta(ge=0)] | UnsetType = UNSET  # USD per video
    context: AtLeastOne = 128_000
    max_output: AtLeastOne = 16_384
    capabilities: list[str] = msgspec.field(default_factory=lambda: ["tools"])
    aliases: list[str] = msgspec.field(default_factory=list)
    free: bool = False  # costs nothing, whatever its prices say
    credits: NonNegative = 1
    # Models tried in order when this one fails (at most four: a plan holds five models).
    fallbacks: Annotated[list[str], Meta(max_length=4)] = msgspec.field(default_factory=list)
    # More deployments besides provider/upstream, and how a request picks among them.
    deployments: list[DeploymentConfig] = msgspec.field(default_factory=list)
    strategy: Literal["weighted", "least_busy", "latency"] = "weighted"
    weight: Weight = 1.0


class KeysConfig(Section, frozen=True):
    prefix: str = "gw-"


class TierConfig(Section, frozen=True):
    """One account tier; 0 means unlimited for every limit."""

    description: str = ""
    requests_per_minute: NonNegative = 0
    requests_per_day: NonNegative = 0
    tokens_per_day: NonNegative = 0
    tokens_per_month: NonNegative = 0
    credits_per_day: NonNegative = 0
    max_keys: NonNegative = 0
    # Prepaid tiers draw a balance down by cost and refuse with 402 when it cannot cover a call.
    prepaid: bool = False
    # Models this tier may call (ids or aliases); empty means every model.
    models: list[str] = msgspec.field(default_factory=list)
    # Monthly price shown by checkout (USD); informational.
    price_usd: Annotated[float, Meta(ge=0)] = 0.0

    @property
    def unlimited(self) -> bool:
        """No request, token or credit limit at all."""
        return not (self.requests_per_minute or self.requests_per_day or self.tokens_per_day
                    or self.tokens_per_month or self.credits_per_day or self.prepaid)


class SmtpConfig(Section, frozen=True):
    """The mail server that delivers notices when ``accounts.notify = "smtp"``."""

    host: str = ""
    port: Port = 587
    username: str = ""
    password: str = ""
    sender: str = "gateway@localhost"
    security: Literal["starttls", "tls", "none"] = "starttls"


class AccountsConfig(Section, frozen=True):
    """Users, sessions, admin access, BYOK and notifications (docs/security.md)."""

    default_tier: str = "free"
    # Tier of the key `gateway serve` creates on first start (the operator's own).
    operator_tier: str = "enterprise"
    # Admin API key (Bearer) for /v1/admin/*; empty switches the admin API off.
    # Empty here takes $GATEWAY_ADMIN_KEY.
    admin_key: str = ""
    # Server secret that encrypts stored provider keys (BYOK); empty switches BYOK off.
    # Empty here takes $GATEWAY_SECRET.
    secret: str = ""
    # Tiers a user may switch to by POST /v1/billing/checkout; empty means operator-only.
    self_service_tiers: list[str] = msgspec.field(default_factory=list)
    # Off by default: anyone who can reach the gateway could sign up and spend its providers.
    signup: bool = False
    # A signup stays pending until the link sent to its address is used.
    verify_email: bool = False
    verify_token_ttl: PositiveSeconds = 86400.0
    signups_per_hour: NonNegative = 5  # per client address
    resets_per_hour: NonNegative = 5   # POST /v1/auth/forgot, per address and per client
    cache_ttl: Seconds = 5.0
    session_ttl: PositiveSeconds = 30 * 86400.0
    reset_token_ttl: PositiveSeconds = 3600.0
    # Password checks per login_lockout window: per address, and per client address.
    login_max_failures: NonNegative = 5
    login_client_max_failures: NonNegative = 20
    login_lockout: Seconds = 300.0
    # Argon2 checks running at once in one process; more get 429 at once.
    login_concurrency: NonNegative = 4
    # Output tokens reserved for a call that does not say max_tokens (balance and token limits).
    output_reserve_tokens: NonNegative = 1024
    # How reset and verification tokens reach users: "smtp", "webhook", "log" (tokens in the
    # log: trials only) or "off"; "" picks webhook or smtp by what is configured, else off.
    notify: Literal["", "smtp", "webhook", "log", "off"] = ""
    notify_webhook: str = ""
    smtp: SmtpConfig = msgspec.field(default_factory=SmtpConfig)


class RoutingConfig(Section, frozen=True):
    """Retries, cool-downs and router names (see docs/routing.md)."""

    # Rounds over a plan's targets after all have failed (fallbacks always come first).
    retries: NonNegative = 1
    backoff_base: Seconds = 0.25       # doubles each round, with jitter
    backoff_max: Seconds = 4.0
    max_retry_wait: Seconds = 5.0      # a longer Retry-After goes back to the caller instead
    allowed_fails: AtLeastOne = 3      # failures in a row that bench a deployment
    cooldown: Seconds = 30.0           # on the bench (a 429 uses its Retry-After)
    max_cooldown: Seconds = 300.0
    # "memory://": per process, shared through Redis when limits.storage is Redis;
    # "local": per process always (gateway.redis_health).
    health: str = "memory://"
    # Routers answer to "<prefix>/<name>" too (e.g. "router/auto").
    router_prefixes: list[str] = msgspec.field(default_factory=lambda: ["router"])


class RouterRuleConfig(Section, frozen=True):
    when: Literal["images", "tools", "audio", "long_context", "code", "always"]
    models: Annotated[list[str], Meta(min_length=1)]
    min_prompt_tokens: NonNegative = 32000


class RouterConfig(Section, frozen=True):
    kind: Literal["auto", "free", "ocr", "fallback"]
    # auto: the default chain; free: the rotation (empty: every model marked free);
    # ocr and fallback: the chain.
    models: list[str] = msgspec.field(default_factory=list)
    rules: list[RouterRuleConfig] = msgspec.field(default_factory=list)
    # A system prompt put ahead of the caller's (ocr: the extraction prompt; empty: built in).
    prompt: str = ""
    temperature: Temperature | UnsetType = UNSET
    max_tokens: AtLeastOne | UnsetType = UNSET
    description: str = ""


class PersonaConfig(Section, frozen=True):
    target: str                        # a model, alias or router
    system: str = ""                   # sent ahead of the caller's system prompt
    temperature: Temperature | UnsetType = UNSET  # used when the caller sets none
    max_tokens: AtLeastOne | UnsetType = UNSET    # a cap, and the default when the caller sets none
    description: str = ""


class PluginConfig(Section, frozen=True):
    """One entry of the plugin catalog behind ``GET /v1/plugins`` (docs/platform.md)."""

    name: str
    description: str = ""
    version: str = ""
    tags: list[str] = msgspec.field(default_factory=list)
    repository: str = ""
    homepage: str = ""
    author: str = ""
    min_version: str = ""


class ReleaseConfig(Section, frozen=True):
    """One release of the feed behind ``GET /v1/updates``; ``version`` is semantic (1.2.3)."""

    version: str
    date: str = ""
    notes: str = ""
    url: str = ""

    def __post_init__(self) -> None:
        if parse_version(self.version) is None:
            raise ValueError(f"release version {self.version!r} is not semantic (like 1.2.3)")


class WebhooksConfig(Section, frozen=True):
    """Signed webhook deliveries (docs/platform.md)."""

    allow_private: bool = False        # true: deliveries to loopback/private addresses allowed
    # Seconds before each retry of a failed delivery; after the last one it has failed.
    retry_schedule: list[Seconds] = msgspec.field(
        default_factory=lambda: [1.0, 5.0, 30.0, 120.0, 600.0, 1800.0, 3600.0, 7200.0,
                                 14400.0, 28800.0, 43200.0, 86400.0])
    timeout: PositiveSeconds = 10.0    # one attempt
    max_in_flight: AtLeastOne = 3      # deliveries at once per endpoint
    disable_after: AtLeastOne = 20     # failed attempts in a row that disable an endpoint
    poll_interval: PositiveSeconds = 1.0  # between looks at the outbox
    balance_check_interval: PositiveSeconds = 60.0  # between looks for balances under thresholds


class VideoConfig(Section, frozen=True):
    """Video jobs (gateway.video, docs/video.md): how they are polled, and for how long."""

    first_poll: Seconds = 2.0  # after creation
    # Between polls of one job: doubles from first_poll up to this.
    max_poll_interval: PositiveSeconds = 30.0
    # A job not finished this long after creation fails ("timed out").
    max_lifetime: PositiveSeconds = 3600.0
    # How often each instance looks for jobs due a poll.
    tick: PositiveSeconds = 1.0
    # How long a poll's lease holds a job for one instance (a dead one's jobs are taken after).
    lease: PositiveSeconds = 60.0
    default_seconds: Annotated[int, Meta(ge=1, le=600)] = 4
    max_seconds: Annotated[int, Meta(ge=1, le=600)] = 60
    max_prompt_chars: AtLeastOne = 10_000


class TelemetryConfig(Section, frozen=True):
    """Anonymous CLI telemetry (docs/platform.md)."""

    enabled: bool = True
    max_body_bytes: AtLeastOne = 1_048_576
    max_batch: AtLeastOne = 1000
    requests_per_minute: NonNegative = 60   # per client address; 0: unlimited
    max_property_bytes: AtLeastOne = 2048   # one event's properties, as JSON
    retention_days: AtLeastOne = 90
    stats_tiers: list[str] = msgspec.field(default_factory=lambda: ["enterprise"])


class ResponsesConfig(Section, frozen=True):
    """Stored Responses API answers (docs/responses.md)."""

    retention_days: AtLeastOne = 30       # older ones are purged, and no longer found
    purge_interval: PositiveSeconds = 3600.0  # seconds between purges (a background task)


class Settings(Section, frozen=True):
    """The whole file: what ``gateway.toml`` may contain."""

    server: ServerConfig = msgspec.field(default_factory=ServerConfig)
    storage: StorageConfig = msgspec.field(default_factory=StorageConfig)
    limits: LimitsConfig = msgspec.field(default_factory=LimitsConfig)
    cache: CacheConfig = msgspec.field(default_factory=CacheConfig)
    upstream: UpstreamConfig = msgspec.field(default_factory=UpstreamConfig)
    keys: KeysConfig = msgspec.field(default_factory=KeysConfig)
    providers: dict[str, ProviderConfig] = msgspec.field(default_factory=dict)
    models: list[ModelConfig] = msgspec.field(default_factory=list)
    tiers: dict[str, TierConfig] = msgspec.field(default_factory=dict)
    accounts: AccountsConfig = msgspec.field(default_factory=AccountsConfig)
    routing: RoutingConfig = msgspec.field(default_factory=RoutingConfig)
    routers: dict[str, RouterConfig] = msgspec.field(default_factory=dict)
    personas: dict[str, PersonaConfig] = msgspec.field(default_factory=dict)
    plugins: list[PluginConfig] = msgspec.field(default_factory=list)
    releases: list[ReleaseConfig] = msgspec.field(default_factory=list)
    webhooks: WebhooksConfig = msgspec.field(default_factory=WebhooksConfig)
    telemetry: TelemetryConfig = msgspec.field(default_factory=TelemetryConfig)
    video: VideoConfig = msgspec.field(default_factory=VideoConfig)
    responses: ResponsesConfig = msgspec.field(default_factory=ResponsesConfig)


class Runtime(msgspec.Struct, kw_only=True, frozen=True):
    """What loading found out, beside the keys: never read from the file itself."""

    source: str = "<string>"
    # Folder that relative paths in the file resolve against ("" for a string: the cwd).
    base_dir: str = ""
    # storage.url with a relative SQLite path made absolute against base_dir.
    database_url: str = ""
    # Providers switched off because their API key variable is unset (name -> variable).
    disabled_providers: dict[str, str] = msgspec.field(default_factory=dict)
    # Names of the models switched off with their provider (name -> provider).
    disabled_models: dict[str, str] = msgspec.field(default_factory=dict)
    # Tiers were not configured, so the built-in conservative ones apply.
    builtin_tiers: bool = False
    # $GATEWAY_METRICS_DIR: where the workers of one `serve --workers N` meet for /metrics.
    metrics_dir: str = ""


class GatewayConfig(Settings, frozen=True):
    """A loaded configuration: the file's settings plus what loading derived (``runtime``)."""

    runtime: Runtime = msgspec.field(default_factory=Runtime)

    @property
    def database_url(self) -> str:
        """The database to open: ``storage.url`` with relative paths resolved."""
        return self.runtime.database_url or self.storage.url
