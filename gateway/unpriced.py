"""Models without a price are not served on the operator's provider keys.

A model the configuration gives no price (``routers.catalog.Model.priced`` is False) would
be recorded at $0 and one credit however much it costs the operator. The caller may still use
it with their own provider key (BYOK); on the operator's key it is refused with a 403 that names
the settings that price it, and it is dropped from fallback chains.
"""

from __future__ import annotations

from collections.abc import Container

from gateway.errors import PermissionDenied
from routers.plan import Plan

# The keys that price a model of each mode (see gateway.config.checks).
_HOW_TO_PRICE = {
    "chat": "input_price/output_price",
    "embeddings": "input_price",
    "rerank": "input_price",
    "moderation": "input_price",
    "images": "price_per_image",
    "video": "price_per_second or price_per_video",
}


def _defaults(mode: str, provider: str) -> str:
    """The provider-wide defaults that would price a model of ``mode`` (token modes only)."""
    if mode in ("images", "video"):
        return ""
    return f", or default_input_price/default_output_price in [providers.{provider}]"


def drop_unpriced(plan: Plan, byok: Container[str]) -> None:
    """Remove the targets ``plan`` may not call; refuse if its first choice is one of them."""
    targets = plan.targets
    for target in targets:
        if not target.priced and target.provider not in byok:
            break
    else:
        return  # the usual case: one loop, no allocation
    first = targets[0]
    if not (first.priced or first.provider in byok):
        raise PermissionDenied(
            f"Model '{first.id}' has no price, so this gateway does not serve it on its own "
            f"provider key. The operator can set {_HOW_TO_PRICE[first.mode]} for it in "
            f"[[models]]{_defaults(first.mode, first.provider)}; or call it with your own "
            "provider key",
            param="model",
            code="model_unpriced",
        )
    keep = [i for i, t in enumerate(targets) if t.priced or t.provider in byok]
    plan.levels = [plan.level(i) for i in keep]
    plan.targets = [targets[i] for i in keep]
