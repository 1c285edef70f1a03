"""The Anthropic Messages dialect: client side (callers of /v1/messages, Claude Code) and
provider side (Anthropic upstreams)."""
