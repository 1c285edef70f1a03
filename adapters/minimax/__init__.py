"""MiniMax's media APIs (``kind = "minimax"``): provider side only.

``common`` holds what every MiniMax call shares (the default base URL, the ``base_resp``
error convention, the HTTP base class); ``images`` translates image generation
(``POST /v1/image_generation``) to and from OpenAI's images shapes; ``provider`` is the adapter;
``video`` runs video jobs (create, query, file retrieve).
MiniMax's chat models speak OpenAI's dialect: they are configured under a ``kind = "openai"``
provider at ``https://api.minimax.io/v1``.
"""
