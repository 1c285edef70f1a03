"""``GET /openapi.json`` and the ``/docs`` page that renders it.

The document is built from the routes the app really mounts (``build``), each described by its
``Operation`` in ``operations``: adding a route means adding one ``Operation`` there, with
msgspec Structs for its bodies. The page is a small renderer served from this package (no CDN),
under a strict Content-Security-Policy.
"""

from gateway.openapi.routes import openapi_routes

__all__ = ["openapi_routes"]
