"""The OpenAI chat-completions dialect: client side (callers of /v1/chat/completions) and
provider side (OpenAI and every OpenAI-compatible upstream)."""
