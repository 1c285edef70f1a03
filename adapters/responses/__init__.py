"""The OpenAI Responses API dialect (``POST /v1/responses``), client side."""
