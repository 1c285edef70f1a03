"""The platform APIs of issue 12: plugin catalog, update feed, credit prices, anonymous
telemetry and signed webhooks (docs/platform.md).

- ``catalog``: plugins, releases (in ``gateway.semver`` order) and credit prices, read from
  the config.
- ``telemetry``: the bounded anonymous endpoints and their stats.
- ``webhooks``, ``outbox``, ``ssrf``, ``signing``, ``balance_watch``: endpoints, the durable
  outbox and its deliveries, the ``balance.low`` check.
- ``service``: the above for one process, started and stopped by ``gateway.wiring``.
- ``routes``, ``webhook_routes``: the HTTP routes.
"""
