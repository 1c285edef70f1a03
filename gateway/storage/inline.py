"""One SQLite statement committed on the event loop's own thread when the file's write lock is
free at that instant (``InlineWriter``): for the response store's single rows, which an answer's
end waits for.

Through aiosqlite a row costs a trip to its thread and back: on the server's one core, five more
context switches per stream, and in process (``bench.micro``) 157 µs of a 572 µs translated
stream against ~80 µs written here. The statement itself is ~30 µs alone and ~55-75 µs on a
loaded server (partly because every ledger commit on another connection empties this one's
page cache; bench/README.md, "Surfaces (round three)"). The statement runs at once if
SQLite's write lock is free and fails at once if not (``busy_timeout`` 0): the caller then
takes the thread, which waits its turn. So the loop never waits on a lock, a checkpoint or
``fsync``:

- ``synchronous=NORMAL`` in WAL mode: a commit appends to the ``-wal`` file (the page cache),
  with no ``fsync``; a file not in WAL mode (a commit would ``fsync``) is never written here.
- ``wal_autocheckpoint=0``: this connection never checkpoints; the pool's connections do, on
  aiosqlite's thread, as before.

Nothing else goes this way: the ledger's batches and every other write stay on the thread.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

import structlog

log = structlog.get_logger("gateway.storage")


class InlineWriter:
    """A private connection to one SQLite file, opened at the first write."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = None
        self._usable = True  # False once the file turned out not to be in WAL mode

    def try_execute(self, sql: str, params: Sequence[Any]) -> bool:
        """Run and commit one statement now; False if it could not run at once (the write
        lock is taken, or the database refused): nothing was written, the caller's other path
        writes it."""
        if not self._usable:
            return False
        try:
            conn = self._conn or self._open()
            if conn is None:
                return False
            conn.execute(sql, params)
            return True
        except sqlite3.OperationalError:  # busy or locked: the thread's path waits its turn
            self._rollback()
            return False
        except sqlite3.Error as exc:  # anything else: start again with a new connection
            log.warning("inline_write_failed", error=str(exc))
            self.close()
            return False

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def _open(self) -> sqlite3.Connection | None:
        conn = sqlite3.connect(self.path, timeout=0, isolation_level=None,
                               check_same_thread=False)
        if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            conn.close()
            self._usable = False
            return None
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA wal_autocheckpoint=0")
        self._conn = conn
        return conn

    def _rollback(self) -> None:
        conn = self._conn
        if conn is not None and conn.in_transaction:  # an autocommit statement leaves none
            conn.rollback()
