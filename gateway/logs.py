"""Structured logging: one JSON object per line on stdout, via structlog and msgspec."""

from __future__ import annotations

import logging
import sys

import msgspec
import structlog

_LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40}
_encoder = msgspec.json.Encoder(enc_hook=str)


def _render_json(logger: object, method: str, event: structlog.typing.EventDict) -> bytes:
    return _encoder.encode(event)


def configure_logging(level: str = "info") -> None:
    """JSON lines with a timestamp and level; never configured twice in one process."""
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            _render_json,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS.get(level, 20)),
        logger_factory=structlog.BytesLoggerFactory(sys.stdout.buffer),
        cache_logger_on_first_use=True,
    )
    logging.basicConfig(level=_LEVELS.get(level, 20), stream=sys.stderr, format="%(message)s")
