"""Provider wire dialects: the canonical types, one package per dialect, the upstream client.

Layout of a dialect package (``adapters/<dialect>/``)::

    wire.py       its wire Structs, for both directions, and what both sides share
    client.py     client side (a caller speaks it): parse, to canonical, overlay, features
    encode.py     client side: answers, stream encoder, pass-through inspection, error frames
    texts.py      client side: the text of a body and of an answer, for usage estimates
    upstream.py   provider side: canonical -> provider body (a Struct), answers and chunks back
    provider.py   the small provider class (HTTP through ``adapters.upstream``)

``registry.DIALECTS`` maps each name to its provider class and client side. A new provider of
an existing dialect is configuration; a new dialect is a new package plus one line there.
Shared, dialect-neutral pieces: ``canonical`` (the union of the dialects), ``client`` (the
``Ingress`` protocol, ``Parsed``, name and chain checks), ``features``, ``overlay``, ``errors``,
``sse``, ``upstream`` (timeouts, error mapping, SSE relay) over ``http1`` (the keep-alive pool
and HTTP/1.1 client every provider call goes through). Nothing here imports ``gateway`` or
``routers``.
"""
