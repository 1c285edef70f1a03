"""The model catalog: every model the gateway can serve, with prices, limits and capabilities.

Names resolve in this order: an exact catalog id, an alias, then ``<provider>/<model>`` for a
provider that allows any of its models, at that provider's default prices.

A model without any price is ``priced = False``: the gateway refuses it on the operator's
provider key (it would be served for $0), and serves it only on the caller's own key (BYOK). A
``free`` model costs nothing whatever prices it lists.

A ``Model`` is a catalog entry: its id, prices, limits and capabilities, and the provider and
upstream name that serve it. It may have several ``deployments`` (providers, keys, regions):
each a ``Deployment``, the same model (same ``id`` and prices) with its own
``provider``/``upstream`` and ``weight``; a model without any is its own one deployment. What
is tried, billed and health-tracked (under ``health_key``) is always a deployment.

Every model has a ``mode`` (``MODES``): the kind of endpoint that serves it. Its price is one
sum, whatever the mode: tokens at ``input_price``/``output_price`` per 1M, images at
``price_per_image``, video at ``price_per_second`` and ``price_per_video``; the configuration
lets each mode set only the prices that bill it (``gateway.config.checks``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

# The kinds of endpoint a model can serve (``[[models]] mode``); chat is the default.
MODES = ("chat", "embeddings", "images", "video", "rerank", "moderation")
# Modes billed by tokens alone: an unlisted "<provider>/<model>" name, priced by its provider's
# per-token defaults, may serve any of them (the provider has the last word on the name).
TOKEN_MODES = frozenset(("chat", "embeddings", "rerank", "moderation"))


@dataclass(frozen=True, slots=True)
class Model:
    """A servable model: what clients call it, what its provider calls it, what it costs."""

    id: str
    provider: str
    upstream: str
    input_price: float = 0.0  # USD per 1M tokens
    output_price: float = 0.0
    cached_input_price: float | None = None
    mode: str = "chat"  # one of MODES
    price_per_image: float = 0.0  # USD per image generated
    price_per_second: float = 0.0  # USD per second of video generated
    price_per_video: float = 0.0  # USD per video generated
    context: int = 128_000
    max_output: int = 16_384
    capabilities: frozenset[str] = field(default_factory=frozenset)
    aliases: tuple[str, ...] = ()
    free: bool = False
    credits: int = 1
    listed: bool = True  # False for "<provider>/<model>" names served without a catalog entry
    priced: bool = True  # False: no price configured, so never served on the operator's key
    # Routing: configured fallback model names, other deployments, how to pick among them.
    fallbacks: tuple[str, ...] = ()
    deployments: tuple[Deployment, ...] = ()
    strategy: str = "weighted"  # weighted | least_busy | latency
    weight: float = 1.0
    health_key: str = ""

    def __post_init__(self) -> None:
        if not self.health_key:
            object.__setattr__(self, "health_key", f"{self.provider}:{self.upstream}")

    def can(self, capability: str) -> bool:
        """Whether the catalog says this model has ``capability``; unlisted models may."""
        return not self.listed or capability in self.capabilities

    def serves(self, mode: str) -> bool:
        """Whether an endpoint of ``mode`` may call this model: its own mode, or, for a name
        outside the catalog, any mode billed by tokens."""
        return self.mode == mode if self.listed else mode in TOKEN_MODES

    @property
    def all_deployments(self) -> tuple[Deployment, ...]:
        """Every deployment that serves this model (the model itself when none are set)."""
        return self.deployments or (self,)

    def cost(
        self,
        input_tokens: int,
        output_tokens: int,
        cached_tokens: int = 0,
        images: int = 0,
        videos: int = 0,
        video_seconds: float = 0.0,
    ) -> float:
        """USD for one call; cached reads at their own rate, the rest of the input at full,
        plus what images and video cost (zero prices for modes that make none).
        A model marked ``free`` costs nothing, whatever prices it also lists."""
        if self.free:
            return 0.0
        cached_price = (
            self.input_price if self.cached_input_price is None else self.cached_input_price
        )
        uncached = max(input_tokens - cached_tokens, 0)
        return (
            uncached * self.input_price
            + cached_tokens * cached_price
            + output_tokens * self.output_price
        ) / 1_000_000 + (
            images * self.price_per_image
            + videos * self.price_per_video
            + video_seconds * self.price_per_second
        )


# One way to serve a model: a ``Model`` whose provider, upstream and weight name the deployment.
Deployment = Model

MAX_UNLISTED = 4096  # "<provider>/<model>" names remembered beyond the catalog


class Catalog:
    """Looks models up by id, alias or provider-prefixed name."""

    def __init__(
        self,
        models: Iterable[Model],
        open_providers: Iterable[str] = (),
        switched_off: dict[str, str] | None = None,
        default_prices: Mapping[str, tuple[float, float]] | None = None,
    ) -> None:
        self.models: list[Model] = list(models)
        # Names the configuration knows but cannot serve now, and why (for a clear refusal).
        self.switched_off: dict[str, str] = dict(switched_off or {})
        self._by_name: dict[str, Model] = {}
        for model in self.models:
            self._by_name[model.id] = model
            for alias in model.aliases:
                self._by_name[alias] = model
        self._open_providers = frozenset(open_providers)
        # Input and output prices of unlisted names, per provider that sets defaults.
        self._default_prices = dict(default_prices or {})
        self._unlisted: dict[str, Model] = {}

    def why_unavailable(self, name: str) -> str | None:
        """Why a name the configuration knows cannot be served now, or None if it is unknown."""
        reason = self.switched_off.get(name)
        if reason is None:
            provider, _, upstream = name.partition("/")
            reason = self.switched_off.get(f"{provider}/*") if upstream else None
        return reason

    def get(self, name: str) -> Model | None:
        """The model called ``name``, or None."""
        model = self._by_name.get(name)
        if model is not None:
            return model
        model = self._unlisted.get(name)
        if model is not None:
            return model
        provider, _, upstream = name.partition("/")
        if upstream and provider in self._open_providers:
            prices = self._default_prices.get(provider)
            model = Model(
                id=name, provider=provider, upstream=upstream, listed=False,
                input_price=prices[0] if prices else 0.0,
                output_price=prices[1] if prices else 0.0,
                priced=prices is not None,
            )
            # Callers choose these names: remember a bounded number, not every one ever sent.
            if len(self._unlisted) >= MAX_UNLISTED:
                self._unlisted.pop(next(iter(self._unlisted)))
            self._unlisted[name] = model
            return model
        return None

    def __iter__(self) -> Iterator[Model]:
        return iter(self.models)
