"""Configuring image generation: the ``minimax`` provider kind and its default base URL."""

from __future__ import annotations

import pytest

from adapters.minimax.provider import MiniMaxProvider
from adapters.upstream import Timeouts, UpstreamClient
from gateway.config import parse_config
from gateway.wiring import build_adapters

pytestmark = pytest.mark.unit

MINIMAX = """
[providers.minimax]
kind = "minimax"
api_key = "mm-key"
"""


def test_a_minimax_provider_needs_no_base_url() -> None:
    config = parse_config(MINIMAX)
    adapter = build_adapters(config, UpstreamClient(Timeouts()))["minimax"]
    assert isinstance(adapter, MiniMaxProvider)
    assert adapter.image_url == "https://api.minimax.io/v1/image_generation"


def test_a_configured_base_url_wins() -> None:
    config = parse_config(MINIMAX + 'base_url = "https://api.minimaxi.com/"\n')
    adapter = build_adapters(config, UpstreamClient(Timeouts()))["minimax"]
    assert isinstance(adapter, MiniMaxProvider)
    assert adapter.image_url == "https://api.minimaxi.com/v1/image_generation"
