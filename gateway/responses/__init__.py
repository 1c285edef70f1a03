"""Stored Responses API answers: ``previous_response_id``, ``GET``/``DELETE
/v1/responses/{id}`` and ``GET /v1/responses/{id}/input_items`` (docs/responses.md).

- ``keeper``: the group-commit writer, the reads and the retention purge (``ResponseKeeper``).
- ``memory``: what the Responses endpoint does with them: expand ``previous_response_id`` at
  intake, keep each answer before its end is released (``ResponseMemory``).
- ``routes``: the HTTP routes over the store.

The rows are ``gateway.storage.responses``.
"""
