"""Structured logging: one JSON object per line on stdout, via structlog and msgspec.

Lines are written in batches: an info or warning line joins a buffer that is written
``FLUSH_DELAY`` after the first line of the batch (or at once past ``_FLUSH_SIZE`` bytes), so a
loaded server makes one ``write`` for many requests instead of one each (per loop turn it was
still about one write per request under load: ~4% of the CPU of a request, and ~6 µs of each
fallback's failed attempt when its warning went out at the end of its turn). Errors, and any line
logged with no loop running, go out at once; what is waiting is written at exit.
Batches are cut at line boundaries into writes of at most ``PIPE_BUF`` bytes, so the lines of
several worker processes sharing one pipe never interleave.

The request line (one per request, ``FastInfo``) skips structlog's processor chain while that
chain is still ``configure_logging``'s own: it renders the same bytes directly.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import sys
import time
from typing import Any, BinaryIO

import msgspec
import structlog

_LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40}
_encoder = msgspec.json.Encoder(enc_hook=str)
_PIPE_BUF = 4096
FLUSH_DELAY = 0.02  # seconds an info line may wait for company
_FLUSH_SIZE = 64 * 1024


_second: list[Any] = [-1, ""]  # the last whole second stamped, and its ISO text


def _now() -> str:
    """``TimeStamper(fmt="iso", utc=True)``'s format (``2026-11-23T18:09:23.123456Z``) with
    the date and time formatted once a second: 0.4 µs a line instead of 1.4."""
    now = time.time()
    second = int(now)
    if second != _second[0]:
        _second[0], _second[1] = second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
    return f"{_second[1]}.{int((now - second) * 1e6):06d}Z"


def _timestamp(logger: object, method: str, event: structlog.typing.EventDict) -> Any:
    event["timestamp"] = _now()
    return event


def _render_json(logger: object, method: str, event: structlog.typing.EventDict) -> bytes:
    return _encoder.encode(event)


class BatchedLineWriter:
    """Bytes lines to a binary file, written ``FLUSH_DELAY`` after the first waits (or at
    once)."""

    __slots__ = ("_file", "_lines", "_size", "_timer_loop")

    def __init__(self, file: BinaryIO) -> None:
        self._file = file
        self._lines: list[bytes] = []
        self._size = 0
        self._timer_loop: asyncio.AbstractEventLoop | None = None  # whose timer will flush

    def add(self, line: bytes) -> None:
        """Written ``FLUSH_DELAY`` after the first line waiting, with whatever else is waiting;
        at once with no loop running."""
        self._lines.append(line)
        self._size += len(line)
        if self._size >= _FLUSH_SIZE:
            self.flush()
            return
        timer_loop = self._timer_loop
        if timer_loop is not None and timer_loop.is_running():
            return
        # No timer, or one on a loop that has stopped (asyncio.run ended) and never fires.
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.flush()
            return
        self._timer_loop = loop
        loop.call_later(FLUSH_DELAY, self.flush)

    def write_now(self, line: bytes) -> None:
        self._lines.append(line)
        self.flush()

    def flush(self) -> None:
        self._timer_loop = None
        lines, self._lines, self._size = self._lines, [], 0
        if not lines:
            return
        write = self._file.write
        try:
            piece: list[bytes] = []
            size = 0
            for line in lines:
                if size and size + len(line) > _PIPE_BUF:
                    write(b"".join(piece))
                    piece, size = [], 0
                piece.append(line)
                size += len(line)
            if piece:
                write(b"".join(piece))
            self._file.flush()
        except (OSError, ValueError):  # stdout closed or gone: logging must never raise
            pass


class BatchedBytesLogger:
    """A structlog logger over a ``BatchedLineWriter``: warnings and below batched, errors at
    once."""

    __slots__ = ("_writer",)

    def __init__(self, writer: BatchedLineWriter) -> None:
        self._writer = writer

    def _batched(self, message: bytes) -> None:
        self._writer.add(message + b"\n")

    def _immediate(self, message: bytes) -> None:
        self._writer.write_now(message + b"\n")

    debug = info = msg = log = warning = warn = _batched
    error = err = critical = fatal = exception = failure = _immediate


class BatchedBytesLoggerFactory:
    """One shared writer for every logger of the process."""

    def __init__(self, file: BinaryIO) -> None:
        self.writer = BatchedLineWriter(file)
        atexit.register(self.writer.flush)

    def __call__(self, *args: Any) -> BatchedBytesLogger:
        return BatchedBytesLogger(self.writer)


def _chain() -> list[Any]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        _timestamp,
        structlog.processors.format_exc_info,
        _render_json,
    ]


class _Configured:
    """What ``configure_logging`` gave structlog: its chain (a list structlog keeps, and
    ``structlog.testing.capture_logs`` edits in place), logger factory and wrapper class."""

    __slots__ = ("chain", "factory", "level", "own", "wrapper")

    def __init__(
        self, chain: list[Any], factory: BatchedBytesLoggerFactory, wrapper: Any, level: int
    ) -> None:
        self.chain = chain
        self.own = list(chain)
        self.factory = factory
        self.wrapper = wrapper
        self.level = level  # the lowest level written

    def in_force(self) -> bool:
        """Whether structlog still runs this configuration, unchanged."""
        config = structlog.get_config()
        return (
            config["processors"] is self.chain
            and config["logger_factory"] is self.factory
            and config["wrapper_class"] is self.wrapper
            and self.chain == self.own
        )


_configured: list[_Configured] = []
# structlog's context variables, by name (empty until something binds one); None if this
# structlog keeps them elsewhere, which turns the direct path off.
_BOUND: dict[str, Any] | None = getattr(structlog.contextvars, "_CONTEXT_VARS", None)


class FastInfo:
    """A structlog logger whose ``info`` and ``warning`` render their line themselves: the
    bytes structlog would write through ``configure_logging``'s chain (the fields in call
    order, then ``event``, ``level`` and ``timestamp``; one JSON object a line), ~1.5 µs
    instead of ~6. Anything else (another configuration, e.g. under ``capture_logs``; context
    variables bound; not configured) goes through structlog as usual."""

    __slots__ = ("_log",)

    def __init__(self, log: Any) -> None:
        self._log = log

    def __getattr__(self, name: str) -> Any:
        return getattr(self._log, name)

    def info(self, event: str, **fields: Any) -> None:
        configured = self._direct()
        if configured is None:
            self._log.info(event, **fields)
        elif configured.level <= 20:
            configured.factory.writer.add(_line(event, "info", fields))

    def warning(self, event: str, **fields: Any) -> None:
        configured = self._direct()
        if configured is None:
            self._log.warning(event, **fields)
        elif configured.level <= 30:
            configured.factory.writer.add(_line(event, "warning", fields))

    @staticmethod
    def _direct() -> _Configured | None:
        """The configuration to render for, or None to go through structlog."""
        configured = _configured[0] if _configured else None
        if configured is None or _BOUND is None or _BOUND or not configured.in_force():
            return None
        return configured


def _line(event: str, level: str, fields: dict[str, Any]) -> bytes:
    fields["event"] = event
    fields["level"] = level
    fields["timestamp"] = _now()
    return _encoder.encode(fields) + b"\n"


def configure_logging(level: str = "info") -> None:
    """JSON lines with a timestamp and level; never configured twice in one process."""
    chain = _chain()
    factory = BatchedBytesLoggerFactory(sys.stdout.buffer)
    wrapper = structlog.make_filtering_bound_logger(_LEVELS.get(level, 20))
    structlog.configure(
        processors=chain, wrapper_class=wrapper, logger_factory=factory,
        cache_logger_on_first_use=True,
    )
    _configured[:] = [_Configured(chain, factory, wrapper, _LEVELS.get(level, 20))]
    logging.basicConfig(level=_LEVELS.get(level, 20), stream=sys.stderr, format="%(message)s")
