"""Accounts: who may call, what they may spend, and the routes that manage it.

One concept per module:

- ``ttl``: the one TTL cache every part below keeps its memory in;
- ``keys``: API keys, their permissions, and the key cache of the request path;
- ``sessions``: login sessions; ``users``: signup, verification, login, password reset;
- ``passwords``: checks and Argon2id with bounded concurrency; ``throttle``: attempt windows;
- ``userstate``: the cached users, key policies and balances admission reads;
- ``balances``: the batched debit writer; ``billing``: usage and invoice views;
- ``secretbox``: provider keys at rest (BYOK); ``notifier``: email, webhook or log;
- ``maintenance``: the operator's switch; ``services``: all of it built for one process;
- ``routes`` (with ``auth_routes``, ``admin_routes`` and ``http``): the HTTP API.
"""
