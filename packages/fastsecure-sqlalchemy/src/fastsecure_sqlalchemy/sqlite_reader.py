"""Session reads from a SQLite file on the event loop: one indexed SELECT, no thread hop.

aiosqlite runs every statement in a thread of its own and hands the answer back through
the event loop; for a primary-key read that hop costs more than the read (about 0.8 ms of
a 0.9 ms session check). A read by primary key on a local file takes a few microseconds,
so :class:`SQLiteReader` runs it in place, on a read-only ``sqlite3`` connection of the
standard library: it blocks the loop for one indexed read and nothing more.

Only reads come here. Every write still goes through the engine (aiosqlite, in its thread,
with the busy timeout), so durability and locking are the engine's. The reader never
waits for a lock: when a writer holds one, or the file or table is missing, it answers
:data:`MISS` and the store does the read through the engine, which waits, classifies the
failure and answers 503 where it should.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote

from sqlalchemy.engine import URL, Dialect
from sqlalchemy.sql import Select

MISS: Final = object()
"""The reader could not answer; read through the engine instead."""

_forks = 0
"""Forks of this process seen from the child: a connection opened under another count is
the parent's, and SQLite forbids carrying a connection across a fork."""


def _count_fork() -> None:
    global _forks
    _forks += 1


os.register_at_fork(after_in_child=_count_fork)

Processor = Callable[[Any], Any] | None


def sqlite_file(url: URL) -> Path | None:
    """The database file of a plain ``sqlite+aiosqlite:///path`` URL; None for anything else.

    In-memory databases (a second connection would see another database), URI filenames
    and URLs with options keep the engine's path: only a plain file can be opened again,
    read-only, with the same meaning.
    """
    if url.get_backend_name() != "sqlite" or url.get_driver_name() != "aiosqlite":
        return None
    database = url.database
    if not database or database == ":memory:" or database.startswith("file:") or url.query:
        return None
    return Path(database).absolute()


class SQLiteReader:
    """A compiled SELECT and read-only connections to one SQLite file, one per thread.

    Per thread, because an app may serve from several event loops in several threads (a
    test client's portal, say); per process, because a connection must not cross a fork.
    """

    def __init__(self, path: Path, statement: Select[Any], dialect: Dialect) -> None:
        compiled = statement.compile(dialect=dialect)
        self.sql = str(compiled)
        if len(compiled.positiontup or ()) != 1:
            raise ValueError("the reader runs statements with exactly one bound parameter")
        self._processors: tuple[Processor, ...] = tuple(
            column.type.dialect_impl(dialect).result_processor(dialect, None)
            for column in statement.selected_columns
        )
        self._uri = f"file:{quote(str(path))}?mode=ro"
        self._local = threading.local()
        self._opened: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._closed = False

    def _connection(self) -> sqlite3.Connection | None:
        local = self._local
        conn: sqlite3.Connection | None = getattr(local, "conn", None)
        if conn is not None and local.forks == _forks:
            return conn
        if self._closed:
            return None
        try:
            # timeout=0: never wait for a writer's lock on the event loop thread.
            conn = sqlite3.connect(
                self._uri, uri=True, timeout=0, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error:
            return None
        local.conn, local.forks = conn, _forks
        with self._lock:
            self._opened.append(conn)
        return conn

    def fetch(self, value: Any) -> Sequence[Any] | object | None:
        """The row for ``value`` (processed as the engine would), None, or :data:`MISS`."""
        conn = self._connection()
        if conn is None:
            return MISS
        try:
            row = conn.execute(self.sql, (value,)).fetchone()
        except sqlite3.Error:
            return MISS  # a writer's lock, a missing table: the engine's path decides
        if row is None:
            return None
        return tuple(
            value if process is None or value is None else process(value)
            for value, process in zip(row, self._processors, strict=True)
        )

    def close(self) -> None:
        """Close every connection opened so far; later reads go through the engine."""
        with self._lock:
            self._closed = True
            opened, self._opened = self._opened, []
        for conn in opened:
            conn.close()  # check_same_thread=False: any thread may close it
