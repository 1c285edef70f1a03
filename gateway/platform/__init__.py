"""The platform APIs of issue 12: plugin catalog, update feed, credit prices, anonymous
telemetry and signed webhooks (docs/platform.md).

- ``versions``: semantic-version parsing and order (imported by ``gateway.config``, so this
  package's ``__init__`` imports nothing).
- ``catalog``: plugins, releases and credit prices, read from the config.
- ``telemetry``: the bounded anonymous endpoints and their stats.
- ``webhooks``, ``outbox``, ``ssrf``, ``signing``: endpoints, the durable outbox and its
  deliveries.
- ``routes``: the HTTP routes of all of the above.
"""
