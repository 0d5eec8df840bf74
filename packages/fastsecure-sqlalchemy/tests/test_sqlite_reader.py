"""Session reads from a SQLite file run on the event loop, and fall back to the engine.

The fast read must never change an answer: a lock, a missing table or a closed store
sends the read through the engine (which waits, or answers 503), never to "no session".
"""

from __future__ import annotations

import asyncio
import secrets
import sqlite3
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import event
from sqlalchemy.engine import make_url

from fastsecure import StoreUnavailableError
from fastsecure.stores import utcnow
from fastsecure_sqlalchemy import DatabaseSessionStore
from fastsecure_sqlalchemy.sqlite_reader import MISS, sqlite_file


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[DatabaseSessionStore]:
    store = DatabaseSessionStore(f"sqlite+aiosqlite:///{tmp_path / 'sessions.db'}")
    await store.create_tables()
    yield store
    await store.aclose()


def checkouts(store: DatabaseSessionStore) -> list[object]:
    """Connections the engine's pool hands out (what every engine-side read needs)."""
    seen: list[object] = []
    event.listen(store.engine.sync_engine.pool, "checkout", lambda *args: seen.append(args))
    return seen


async def login(store: DatabaseSessionStore, user: object = 7) -> str:
    session_id = secrets.token_urlsafe(32)
    assert await store.create_session(user, session_id, utcnow() + timedelta(hours=1), {"k": 1})
    return session_id


async def test_a_session_read_takes_no_pooled_connection(
    sqlite_store: DatabaseSessionStore,
) -> None:
    session_id = await login(sqlite_store)
    seen = checkouts(sqlite_store)
    for _ in range(5):
        record = await sqlite_store.get_session(session_id)
        assert record is not None and record["user_id"] == 7 and record["metadata"] == {"k": 1}
        assert record["expires_at"].utcoffset() == timedelta(0)
    assert await sqlite_store.get_session("no-such-session") is None
    assert seen == []  # no thread hop: aiosqlite was never asked


async def test_the_fast_read_and_the_engine_read_agree(sqlite_store: DatabaseSessionStore) -> None:
    session_id = await login(sqlite_store, "alice")
    await sqlite_store.touch_session(session_id, utcnow())
    fast = await sqlite_store.get_session(session_id)
    event.listen(sqlite_store.engine.sync_engine, "before_cursor_execute", lambda *a: None)
    seen = checkouts(sqlite_store)
    through_engine = await sqlite_store.get_session(session_id)
    assert seen  # a listener on the engine's statements sends reads through the engine
    assert fast == through_engine and fast is not None and fast["last_seen"] is not None


async def test_what_a_write_ends_is_gone_on_the_next_read(
    sqlite_store: DatabaseSessionStore,
) -> None:
    session_id = await login(sqlite_store)
    assert await sqlite_store.get_session(session_id) is not None
    assert await sqlite_store.delete_session(session_id)
    assert await sqlite_store.get_session(session_id) is None
    rotated = secrets.token_urlsafe(32)
    again = await login(sqlite_store)
    assert await sqlite_store.rotate_session(again, rotated)
    assert await sqlite_store.get_session(again) is None
    assert await sqlite_store.get_session(rotated) is not None


async def test_a_writers_lock_sends_the_read_through_the_engine(
    sqlite_store: DatabaseSessionStore, tmp_path: Path
) -> None:
    """Locked out, the read waits in the engine's thread; it never reads as "no session"."""
    session_id = await login(sqlite_store)
    writer = sqlite3.connect(tmp_path / "sessions.db", isolation_level=None)
    writer.execute("BEGIN EXCLUSIVE")
    seen = checkouts(sqlite_store)
    reading = asyncio.ensure_future(sqlite_store.get_session(session_id))
    await asyncio.sleep(0.3)
    assert not reading.done()  # waiting for the lock, in the engine's thread
    writer.execute("COMMIT")
    writer.close()
    record = await reading
    assert record is not None and record["user_id"] == 7
    assert seen


async def test_a_missing_table_is_503_not_no_session(sqlite_store: DatabaseSessionStore) -> None:
    session_id = await login(sqlite_store)
    assert await sqlite_store.get_session(session_id) is not None
    await sqlite_store.drop_tables()
    with pytest.raises(StoreUnavailableError):
        await sqlite_store.get_session(session_id)


async def test_after_aclose_reads_go_through_the_engine(tmp_path: Path) -> None:
    store = DatabaseSessionStore(f"sqlite+aiosqlite:///{tmp_path / 's.db'}")
    await store.create_tables()
    session_id = await login(store)
    assert await store.get_session(session_id) is not None
    await store.aclose()
    assert store._reader is not None
    assert store._reader.fetch("x") is MISS  # closed: never "no session"
    assert await store.get_session(session_id) is not None  # the engine reopens a pool


@pytest.mark.parametrize(
    ("url", "fast"),
    [
        ("sqlite+aiosqlite:///sessions.db", True),
        ("sqlite+aiosqlite:////var/lib/app/sessions.db", True),
        ("sqlite+aiosqlite://", False),
        ("sqlite+aiosqlite:///:memory:", False),
        ("sqlite+aiosqlite:///file:x.db?mode=ro&uri=true", False),
        ("sqlite+pysqlite:///sessions.db", False),
        ("postgresql+asyncpg://postgres@127.0.0.1/test", False),
    ],
)
def test_which_urls_read_on_the_event_loop(url: str, fast: bool) -> None:
    """Only a plain file can be opened a second time with the same meaning."""
    path = sqlite_file(make_url(url))
    assert (path is not None) is fast
    if path is not None:
        assert path.is_absolute()


async def test_a_forked_child_opens_its_own_connection(sqlite_store: DatabaseSessionStore) -> None:
    """SQLite forbids using a connection across a fork (uvicorn/gunicorn workers fork)."""
    import os

    session_id = await login(sqlite_store)
    assert await sqlite_store.get_session(session_id) is not None
    reader = sqlite_store._reader
    assert reader is not None
    parent = reader._connection()
    child = os.fork()
    if child == 0:  # the child: a connection of its own, and it still reads
        mine = reader._connection()
        os._exit(0 if mine is not None and mine is not parent else 1)
    _, status = await asyncio.to_thread(os.waitpid, child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert reader._connection() is parent  # the parent keeps its own
