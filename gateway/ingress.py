"""Request ids for the chat endpoints. (The dialects' client sides, which parse a caller's
body and write answers back, are ``adapters/<dialect>/client.py``.)"""

from __future__ import annotations

import random

_bits = random.getrandbits


def new_request_id() -> str:
    """``req_`` and 96 random bits in hex, from ``random`` (seeded from ``os.urandom``,
    reseeded in forked children), not ``os.urandom``: an id must be unique, not secret (a
    usage lookup by id is scoped to the caller's own rows), and a system call per request
    showed in the server's profile (bench/README.md, "Measurements behind the code")."""
    return f"req_{_bits(96):024x}"
