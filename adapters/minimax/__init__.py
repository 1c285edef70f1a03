"""MiniMax's own API (``kind = "minimax"``, base_url ``https://api.minimax.io``)."""
