"""The request pipeline: one path for every operation (chat today; responses, embeddings,
images and video next), each operation supplying only its parse, encodings and usage
(``operation.Operation``).

::

    endpoint.Endpoint          ASGI shell, ONE error boundary
      │
      ├─ intake.Intake         headers → key → body → parse → plan → admit  ⇒ Admitted
      ├─ dispatch.Dispatcher   ONE attempt loop (fallbacks, retries, health) ⇒ Outcome
      │    ├─ WholeAnswer      reply encoded for the caller (the response cache decorates
      │    │                   the function that returns it: gateway/cache.py)
      │    └─ streaming        commit point, keep-alive, relay, disconnects
      └─ settle.Settler        Outcome ⇒ Settlement (priced once by ``price``) ⇒ ledger row,
                               metrics, log line; response headers read the same price

Values passed between stages are frozen msgspec Structs (``outcome.Facts``, ``Admitted``,
``Outcome``, ``settle.Settlement``). The services each stage needs are given to its
constructor by ``gateway.wiring``.
"""
