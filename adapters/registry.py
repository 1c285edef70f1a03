"""Provider kinds: the one place that maps a configured ``kind`` to its adapter class."""

from __future__ import annotations

from collections.abc import Callable

from adapters.anthropic_provider import AnthropicProvider
from adapters.base import Adapter, ProviderSettings
from adapters.gemini_provider import GeminiProvider
from adapters.mock import MockProvider
from adapters.openai_provider import OpenAIProvider
from adapters.upstream import UpstreamClient

AdapterFactory = Callable[[ProviderSettings, UpstreamClient], Adapter]

PROVIDER_KINDS: dict[str, AdapterFactory] = {
    "openai": OpenAIProvider,
    "anthropic": AnthropicProvider,
    "gemini": GeminiProvider,
    "mock": MockProvider,
}


def build_adapter(kind: str, settings: ProviderSettings, client: UpstreamClient) -> Adapter:
    """The adapter for a provider of ``kind``; unknown kinds are a configuration error."""
    try:
        factory = PROVIDER_KINDS[kind]
    except KeyError:
        raise ValueError(f"unknown provider kind {kind!r}") from None
    return factory(settings, client)
