"""Dialects: the one place that maps a name to what the gateway knows of that dialect.

A dialect has a provider side (the adapter class for a configured provider ``kind``) and, when
callers may speak it, a client side (``Ingress``). Gemini, MiniMax and the mock provider are
provider kinds only; the Responses API is a client side only (an openai-kind provider with
``responses_api`` takes its bodies as they are).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from adapters.anthropic.client import AnthropicIngress
from adapters.anthropic.provider import AnthropicProvider
from adapters.base import Adapter, ProviderSettings
from adapters.client import Ingress
from adapters.gemini.provider import GeminiProvider
from adapters.minimax.common import DEFAULT_BASE_URL as MINIMAX_BASE_URL
from adapters.minimax.provider import MiniMaxProvider
from adapters.minimax.video import MinimaxVideo
from adapters.mock.provider import MockProvider
from adapters.mock.video import MockVideo
from adapters.openai.client import OpenAIIngress
from adapters.openai.provider import OpenAIProvider
from adapters.openai.video import OpenAIVideo
from adapters.responses.client import ResponsesIngress
from adapters.upstream import UpstreamClient
from adapters.video import VideoAdapter

AdapterFactory = Callable[[ProviderSettings, UpstreamClient], Adapter]


@dataclass(frozen=True, slots=True)
class Dialect:
    """One dialect: its provider class (None: no provider kind), its client side when
    callers may speak it, and the base URL a provider of its kind has when none is configured
    (empty: ``base_url`` is required, except for the network-free mock)."""

    provider: AdapterFactory | None
    client: Ingress | None = None
    default_base_url: str = ""


DIALECTS: dict[str, Dialect] = {
    "openai": Dialect(OpenAIProvider, OpenAIIngress()),
    "anthropic": Dialect(AnthropicProvider, AnthropicIngress()),
    "gemini": Dialect(GeminiProvider),
    "mock": Dialect(MockProvider),
    "minimax": Dialect(MiniMaxProvider, default_base_url=MINIMAX_BASE_URL),
    "responses": Dialect(None, ResponsesIngress()),
}

VideoFactory = Callable[[ProviderSettings, UpstreamClient], VideoAdapter]

# Provider kinds that serve video jobs (adapters/video.py).
VIDEO: dict[str, VideoFactory] = {
    "openai": OpenAIVideo,
    "minimax": MinimaxVideo,
    "mock": MockVideo,
}


def build_video_adapter(
    kind: str, settings: ProviderSettings, client: UpstreamClient
) -> VideoAdapter | None:
    """The video side of a provider of ``kind``, or None when that kind serves no video."""
    factory = VIDEO.get(kind)
    return factory(settings, client) if factory is not None else None


def build_adapter(kind: str, settings: ProviderSettings, client: UpstreamClient) -> Adapter:
    """The adapter for a provider of ``kind``; unknown kinds are a configuration error."""
    provider = DIALECTS[kind].provider if kind in DIALECTS else None
    if provider is None:
        raise ValueError(f"unknown provider kind {kind!r}")
    return provider(settings, client)


def modes_of(kind: str) -> tuple[str, ...]:
    """The model modes a provider of ``kind`` serves (its adapter's ``modes``; chat if it
    declares none; video if the kind has a video adapter in ``VIDEO``). An unknown kind serves
    none."""
    dialect = DIALECTS.get(kind)
    if dialect is None or dialect.provider is None:
        return ()
    modes = tuple(getattr(dialect.provider, "modes", ("chat",)))
    return (*modes, "video") if kind in VIDEO and "video" not in modes else modes


def ingress(name: str) -> Ingress:
    """The client side of dialect ``name`` (one that callers may speak)."""
    client = DIALECTS[name].client
    if client is None:
        raise ValueError(f"callers do not speak {name!r}")
    return client


def default_base_url(kind: str) -> str:
    """The base URL of a provider of ``kind`` that configures none (empty: it has none)."""
    dialect = DIALECTS.get(kind)
    return dialect.default_base_url if dialect is not None else ""


def needs_base_url(kind: str) -> bool:
    """Whether a provider of ``kind`` must configure ``base_url`` (no default, not the mock)."""
    return kind != "mock" and not default_base_url(kind)
