"""Plans: the ordered targets that may serve one request."""

from __future__ import annotations

from dataclasses import dataclass

from routers.catalog import Catalog, ModelInfo


@dataclass(slots=True)
class Plan:
    """Targets to try in order (at most five); ``router`` names the router that chose them."""

    requested: str
    targets: list[ModelInfo]
    router: str | None = None


class Planner:
    """Turns the model name a client sent into a plan."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog

    def plan(self, name: str) -> Plan | None:
        """The plan for ``name``, or None when nothing by that name can be served."""
        model = self.catalog.get(name)
        if model is None:
            return None
        return Plan(requested=name, targets=[model])
