"""Named routers: a model name that picks its models per request.

Kinds (configured under ``[routers.<name>]``; users add their own of any kind):

* ``auto``: rules tried in order, each a condition and a chain of models; the first rule that
  matches and has a model able to serve wins, else the default chain (``models``). Conditions:
  ``images``, ``tools``, ``audio``, ``long_context`` (estimated prompt over
  ``min_prompt_tokens``), ``code`` (a code-heavy prompt) and ``always``.
* ``free``: the free models (``models``, or every chat model of the catalog marked ``free``) in
  rotation: each request starts one further along, skipping any deployment in cool-down or
  rate-limited; the others follow as fallbacks.
* ``ocr``: image input only, to a chain of vision models, with an extraction prompt put ahead of
  the caller's (Thai and English text by default).
* ``fallback``: a fixed chain of models.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from adapters.features import RequestFeatures
from adapters.overlay import Overlay
from routers.catalog import Model
from routers.health import Health
from routers.refusals import Unservable

OCR_PROMPT = (
    "You are an OCR engine. Extract all text from the image(s) exactly as written, in reading "
    "order, keeping line breaks, lists and table rows (use Markdown tables for tables). The text "
    "may be Thai, English or both: keep each in its own script, never translate or transliterate, "
    "and keep Thai tone marks and vowels exactly. Output only the extracted text, with no "
    "commentary; if there is no text, output nothing."
)


def unfit_reason(model: Model, features: RequestFeatures) -> str | None:
    """Why ``model`` cannot serve a request with ``features``, or None when it can."""
    if features.has_images and not model.can("vision"):
        return "does not accept images"
    if features.has_tools and not model.can("tools"):
        return "does not support tools"
    if features.has_audio and not model.can("audio"):
        return "does not accept audio"
    if model.listed and features.prompt_tokens > model.context:
        return (
            f"has a context of {model.context} tokens, under the prompt's "
            f"~{features.prompt_tokens}"
        )
    return None


@dataclass(frozen=True, slots=True)
class Rule:
    """One ``auto`` rule: when ``condition`` holds, try ``models`` in order."""

    condition: str
    models: tuple[Model, ...]
    min_prompt_tokens: int = 32_000

    def matches(self, features: RequestFeatures) -> bool:
        condition = self.condition
        if condition == "images":
            return features.has_images
        if condition == "tools":
            return features.has_tools
        if condition == "audio":
            return features.has_audio
        if condition == "long_context":
            return features.prompt_tokens >= self.min_prompt_tokens
        if condition == "code":
            return features.code_heavy
        return condition == "always"


@dataclass(slots=True)
class Router:
    """A named router of one of the kinds above."""

    name: str
    kind: str
    models: tuple[Model, ...] = ()
    rules: tuple[Rule, ...] = ()
    overlay: Overlay | None = None
    description: str = ""
    _turn: Callable[[], int] = field(default_factory=lambda: itertools.count().__next__)

    def choose(self, features: RequestFeatures, health: Health) -> tuple[list[Model], str]:
        """The models to try, in order, and a label saying why (the rule or the kind)."""
        if self.kind == "auto":
            for rule in self.rules:
                if rule.matches(features):
                    fit = [m for m in rule.models if unfit_reason(m, features) is None]
                    if fit:
                        return fit, rule.condition
            return list(self.models), "default"
        if self.kind == "ocr" and not features.has_images:
            raise Unservable(
                f"The '{self.name}' router reads text from images: send at least one image "
                "(an image_url content part)",
                param="messages",
            )
        if self.kind == "free":
            return self._rotation(health), "rotation"
        return list(self.models), self.kind

    def _rotation(self, health: Health) -> list[Model]:
        models = self.models
        if not models:
            return []
        start = self._turn() % len(models)
        rotated = models[start:] + models[:start]
        now = time.monotonic()
        ready = [
            m for m in rotated
            if not all(health.benched_until(d.health_key, now) for d in m.all_deployments)
        ]
        # All resting: keep the order so the dispatcher can report when the first comes back.
        return ready or list(rotated)
