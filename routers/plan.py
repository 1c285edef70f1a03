"""Plans: the ordered targets that may serve one request, and the planner that makes them.

A name resolves, in order, to: a catalog model (id, alias or ``<provider>/<model>``) with its
configured fallbacks; a persona (its overlay on its target's plan); a named router, as ``name``
or ``<prefix>/name``. A request may instead carry its own chain (``models`` with
``route: "fallback"``), of at most ``MAX_MODELS`` models.

When a plan has alternatives (a chain, fallbacks, a router), models that cannot serve the
request (images to a text-only model, tools, a prompt over the context window) are dropped
before any call. A plain model name is one dict lookup and is sent as asked: the upstream has
the last word on what it accepts.

Each model expands into its deployments, ordered by the model's strategy (``weighted``,
``least_busy`` or ``latency``); ``levels`` says which model of the plan each target serves
(0 = the first choice).

Each endpoint plans within its ``mode`` (``routers.catalog.MODES``): a name of another mode
is refused with ``WrongMode``, and no fallback leaves the mode (the configuration check
refuses cross-mode fallbacks and routers; what is left out here is only what it cannot see).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from adapters.features import RequestFeatures
from adapters.overlay import Overlay
from routers.catalog import Catalog, Deployment, Model
from routers.health import Health, MemoryHealth
from routers.named import Router, unfit_reason
from routers.personas import Persona
from routers.refusals import BadChain, Unavailable, UnknownModel, Unservable, WrongMode

MAX_MODELS = 5

__all__ = ["MAX_MODELS", "Plan", "Planner"]


@dataclass(slots=True)
class Plan:
    """Targets to try in order; ``router`` names the router that chose them."""

    requested: str
    targets: list[Deployment]
    router: str | None = None
    levels: list[int] | None = None  # fallback level of each target; None means [0, 1, 2, ...]
    overlay: Overlay | None = None
    persona: str | None = None
    rule: str | None = None

    def level(self, index: int) -> int:
        return self.levels[index] if self.levels is not None else index


class Planner:
    """Turns the model name a client sent (or its chain) into a plan."""

    def __init__(
        self,
        catalog: Catalog,
        routers: Iterable[Router] = (),
        personas: Iterable[Persona] = (),
        health: Health | None = None,
        router_prefixes: Iterable[str] = (),
    ) -> None:
        self.catalog = catalog
        self.health: Health = health or MemoryHealth()
        self.routers: dict[str, Router] = {}
        for router in routers:
            self.routers[router.name] = router
            for prefix in router_prefixes:
                self.routers[f"{prefix}/{router.name}"] = router
        self.personas = {persona.name: persona for persona in personas}
        # Names that plan to one target with nothing to decide: the hot path.
        self._direct: dict[str, Model] = {}
        for model in catalog:
            if not model.fallbacks and not model.deployments:
                self._direct[model.id] = model
                for alias in model.aliases:
                    self._direct[alias] = model
        # Catalog models with fallbacks, by (name, mode): the chain as first planned, None when
        # a model of it has deployments to order per request (the catalog is fixed, and only
        # configured models have fallbacks, so this stays bounded).
        self._fixed: dict[tuple[str, str], tuple[Model, ...] | None] = {}
        self._rng = random.Random()

    def plan(
        self,
        name: str,
        features: Callable[[], RequestFeatures],
        chain: list[str] | None = None,
        mode: str = "chat",
    ) -> Plan | None:
        """The plan for ``name`` (or ``chain``) at an endpoint of ``mode``; None when nothing
        by that name exists.

        Raises a ``routers.refusals.RoutingRefused`` for a request that names things but
        cannot be routed.
        """
        if chain is None:
            known = self._known(name, features, mode)
            if known is not None:
                return known
        overlay: Overlay | None = None
        persona: Persona | None = None
        router: Router | None = None
        rule: str | None = None
        fixed_chain = False
        if chain is not None:
            models = self._chain(name, chain, mode)
        else:
            persona = self.personas.get(name)
            target = name
            if persona is not None:
                target, overlay = persona.target, persona.overlay
            router = self.routers.get(target)
            if router is not None:
                models, rule = router.choose(features(), self.health)
                if router.overlay is not None:
                    overlay = overlay.over(router.overlay) if overlay else router.overlay
            else:
                model = self.catalog.get(target)
                if model is None:
                    self._refuse_unavailable(name, target, persona)
                    return None
                models = [model, *self._fallbacks(model)]
                fixed_chain = persona is None and bool(model.fallbacks)
            models = _within(mode, target, models)
            if fixed_chain and (name, mode) not in self._fixed:
                kept = tuple(models[:MAX_MODELS])
                self._fixed[(name, mode)] = None if any(m.deployments for m in kept) else kept
        if len(models) > 1 or router is not None:
            models = self._fit(models, features(), router.name if router else None)
        plan = self._expand(name, models)
        plan.router = router.name if router else None
        plan.overlay, plan.persona, plan.rule = overlay, persona.name if persona else None, rule
        return plan

    def _expand(self, name: str, models: list[Model]) -> Plan:
        """The plan of ``models``: each as its deployments, in its strategy's order."""
        targets: list[Deployment] = []
        levels: list[int] = []
        for level, model in enumerate(models[:MAX_MODELS]):
            for deployment in self._deployments(model):
                targets.append(deployment)
                levels.append(level)
        return Plan(requested=name, targets=targets, levels=levels)

    def _known(
        self, name: str, features: Callable[[], RequestFeatures], mode: str
    ) -> Plan | None:
        """The hot path: a plain model name (one lookup), or a catalog model with fallbacks
        whose kept chain fits this request whole; None for everything else (the general path
        then decides, dropping what does not fit)."""
        direct = self._direct.get(name)
        if direct is not None:
            if direct.mode != mode:
                raise WrongMode(name, direct.mode, mode)
            return Plan(requested=name, targets=[direct])
        fixed = self._fixed.get((name, mode))
        if fixed is None:
            return None
        found = features()
        if any(unfit_reason(model, found) is not None for model in fixed):
            return None
        return Plan(requested=name, targets=list(fixed), levels=list(range(len(fixed))))

    def listing(self) -> list[dict[str, object]]:
        """Routers and personas as ``/v1/models`` entries (catalog models are listed apart)."""
        entries: list[dict[str, object]] = []
        seen: set[int] = set()
        for router in self.routers.values():
            if id(router) in seen:
                continue
            seen.add(id(router))
            entries.append({
                "id": router.name, "object": "model", "created": 0, "owned_by": "gateway",
                "type": "router", "router_kind": router.kind, "description": router.description,
                "models": [m.id for m in router.models],
            })
        for persona in self.personas.values():
            overlay = persona.overlay
            entries.append({
                "id": persona.name, "object": "model", "created": 0, "owned_by": "gateway",
                "type": "persona", "target": persona.target, "description": persona.description,
                "max_output_tokens": overlay.max_tokens, "temperature": overlay.temperature,
            })
        return entries

    # --- pieces ---

    def _chain(self, name: str, chain: list[str], mode: str) -> list[Model]:
        names = list(chain)
        if name and name not in names:
            names.insert(0, name)
        if not names:
            raise BadChain("'models' is empty: list the models to try in order",
                                 param="models")
        if len(names) > MAX_MODELS:
            extra = " (with 'model', which is tried first)" if len(names) > len(chain) else ""
            raise BadChain(
                f"A fallback chain takes at most {MAX_MODELS} models; this one has "
                f"{len(names)}{extra}: drop some from 'models'",
                param="models",
            )
        models: list[Model] = []
        unavailable: list[str] = []
        for entry in names:
            where = f"models[{chain.index(entry)}]" if entry in chain else "model"
            if entry in self.routers or entry in self.personas:
                raise BadChain(
                    f"{where}: '{entry}' is a router or persona; a fallback chain lists models",
                    param=where,
                )
            model = self.catalog.get(entry)
            if model is None:
                reason = self.catalog.why_unavailable(entry)
                if reason is not None:
                    # A chain is there to survive unavailable models: skip this one.
                    unavailable.append(f"'{entry}': {reason}")
                    continue
                raise UnknownModel(
                    f"{where}: unknown model '{entry}': GET /v1/models lists the models you "
                    "can use",
                    param=where,
                )
            if not model.serves(mode):
                raise WrongMode(entry, model.mode, mode, param=where)
            if model not in models:
                models.append(model)
        if not models:
            raise Unavailable(
                f"No model of the chain is available here ({'; '.join(unavailable)}): "
                "tell the operator"
            )
        return models

    def _refuse_unavailable(self, name: str, target: str, persona: Persona | None) -> None:
        """Refuse a name the configuration knows but cannot serve now (a switched-off model, a
        persona whose target is one); return for a name nobody knows."""
        reason = self.catalog.why_unavailable(target)
        if reason is not None:
            raise Unavailable(
                f"Model '{target}' is not available here: {reason}; tell the operator"
            )
        if persona is not None:
            raise Unavailable(
                f"Persona '{name}' points at '{target}', which is not available (is its "
                "provider switched off?): tell the operator"
            )

    def _fallbacks(self, model: Model) -> list[Model]:
        found = []
        for name in model.fallbacks:
            fallback = self.catalog.get(name)
            if fallback is not None and fallback is not model:
                found.append(fallback)
        return found

    @staticmethod
    def _fit(models: list[Model], features: RequestFeatures,
             router: str | None) -> list[Model]:
        fit = [m for m in models if unfit_reason(m, features) is None]
        if fit:
            return fit
        if not models:
            raise Unavailable(f"The '{router}' router has no model configured: tell the operator")
        reasons = "; ".join(f"{m.id} {unfit_reason(m, features)}" for m in models)
        raise Unservable(f"No model of this request can serve it: {reasons}", param="model")

    def _deployments(self, model: Model) -> list[Deployment]:
        deployments = model.deployments
        if not deployments:
            return [model]
        health = self.health
        rng = self._rng
        if model.strategy == "least_busy":
            return sorted(deployments, key=lambda d: (health.in_flight(d.health_key), rng.random()))
        if model.strategy == "latency":
            # Unmeasured deployments sort first, so each gets measured.
            return sorted(deployments, key=lambda d: (health.latency(d.health_key) or 0.0,
                                                      rng.random()))
        # Weighted random order without replacement (Efraimidis-Spirakis keys).
        return sorted(deployments,
                      key=lambda d: -(rng.random() ** (1.0 / d.weight)) if d.weight > 0 else 1.0)


def _within(mode: str, name: str, models: list[Model]) -> list[Model]:
    """The models of ``mode``; a first choice of another mode (the model or router asked
    for) is refused, a fallback of another mode left out."""
    if models and not models[0].serves(mode):
        raise WrongMode(name, models[0].mode, mode)
    return [m for m in models if m.serves(mode)]
