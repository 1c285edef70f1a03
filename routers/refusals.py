"""Why a request cannot be routed as asked: the planner's refusals, by kind.

::

    RoutingRefused        the request names things but cannot be routed as asked
    ├── UnknownModel      a name in the caller's fallback chain is no model
    ├── Unavailable       what it names is configured but cannot serve now (switched off, empty)
    ├── BadChain          the caller's fallback chain itself is malformed
    ├── Unservable        no model it could reach can serve a request like this one
    └── WrongMode         what it names serves another mode (an embeddings model at chat)

The routers say what went wrong, and which field of the request (``param``) is at fault;
``gateway/errors.py`` decides what a client sees for each kind.
"""

from __future__ import annotations


class RoutingRefused(Exception):
    """The request cannot be routed as asked; ``param`` names the field at fault."""

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


class UnknownModel(RoutingRefused):
    """A name in the caller's fallback chain is neither a model nor an alias."""


class Unavailable(RoutingRefused):
    """A model, persona or router that the configuration knows cannot serve now: its provider
    is switched off, or it has no model configured."""


class BadChain(RoutingRefused):
    """The caller's fallback chain is malformed: empty, too long, or naming a router."""


class Unservable(RoutingRefused):
    """No model within reach can serve a request with these features (images, tools,
    context), or a router needs what the request lacks."""


class WrongMode(RoutingRefused):
    """The model (or router) named serves ``mode``, not the endpoint's ``wanted`` mode."""

    def __init__(self, name: str, mode: str, wanted: str, *, param: str | None = "model") -> None:
        super().__init__(f"'{name}' has mode {mode!r}, not {wanted!r}", param=param)
        self.name = name
        self.mode = mode
        self.wanted = wanted
