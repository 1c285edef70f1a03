"""The built-in mock provider: deterministic answers, no network, no key."""
