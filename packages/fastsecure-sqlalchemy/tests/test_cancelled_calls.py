"""A call cut off mid-way drops its connection instead of handing it back half-used.

A cancelled call can stop inside any driver round trip, including ones SQLAlchemy does not
watch (aiomysql's ``SET AUTOCOMMIT`` when a transaction switches isolation level). The
driver's connection is then broken, and the pool's rollback-on-return failed on it:
SQLAlchemy logged "Exception during reset or similar" with a traceback, which the fault
suite's frozen-MariaDB run found in the app log. ``connection()`` invalidates such a
connection, so the pool never resets or reuses it.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event, text

from fastsecure import StoreUnavailableError
from fastsecure.stores import utcnow
from fastsecure_sqlalchemy import DatabaseSessionStore
from fastsecure_sqlalchemy._connections import connection

pytestmark = pytest.mark.services


class PoolWatch:
    """Counts the pool's resets and invalidations of one engine."""

    def __init__(self, store: DatabaseSessionStore) -> None:
        self.resets = 0
        self.invalidated = 0
        pool = store.engine.sync_engine.pool
        event.listen(pool, "reset", self._reset)
        event.listen(pool, "invalidate", self._invalidate)

    def _reset(self, *args: Any) -> None:
        self.resets += 1

    def _invalidate(self, *args: Any) -> None:
        self.invalidated += 1


@pytest.mark.parametrize("via", ["connection", "store._connect"])
@pytest.mark.parametrize("backend_name", ["sqlite", "postgresql", "mariadb"])
async def test_a_connection_cancelled_mid_call_is_dropped_not_reset(
    make_store: Callable[..., Any], backend_name: str, via: str
) -> None:
    store: DatabaseSessionStore = await make_store(backend_name)
    watch = PoolWatch(store)
    entered = asyncio.Event()
    checkout = (lambda: connection(store.engine)) if via == "connection" else store._connect

    async def cut_off() -> None:
        async with checkout() as conn:
            await conn.execute(text("SELECT 1"))
            entered.set()
            await asyncio.sleep(60)  # stands for a driver round trip that never answers

    task = asyncio.create_task(cut_off())
    await entered.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert (watch.invalidated, watch.resets) == (1, 0)
    assert store.engine.sync_engine.pool.checkedout() == 0

    # A call that ends normally or with an error is handed back (and reset) as ever.
    async with connection(store.engine) as conn:
        await conn.execute(text("SELECT 1"))
    with pytest.raises(ZeroDivisionError):
        async with connection(store.engine) as conn:
            raise ZeroDivisionError
    assert watch.invalidated == 1 and watch.resets == 2


async def _lock_sessions(store: DatabaseSessionStore, conn: Any) -> None:
    """Hold the sessions table so the store's next statement waits on it."""
    name = store.tables.sessions.name
    if store.dialect == "postgresql":
        await conn.execution_options(isolation_level="READ COMMITTED")
        await conn.execute(text(f'LOCK TABLE "{name}" IN ACCESS EXCLUSIVE MODE'))
    else:
        await conn.execute(text(f"LOCK TABLES `{name}` WRITE"))


async def _settled(store: DatabaseSessionStore, within: float = 10.0) -> None:
    """Until the calls the store abandoned at their deadline have finished."""
    if store._abandoned:
        await asyncio.wait(set(store._abandoned), timeout=within)
    await asyncio.sleep(0)  # their done callbacks
    assert not store._abandoned, "an abandoned call never finished"


@pytest.mark.parametrize("backend_name", ["postgresql", "mariadb"])
async def test_calls_past_their_deadline_leave_no_broken_connection_behind(
    make_store: Callable[..., Any], backend_name: str, caplog: pytest.LogCaptureFixture
) -> None:
    store: DatabaseSessionStore = await make_store(backend_name, operation_timeout=0.5)
    session_id = secrets.token_urlsafe(32)
    assert await store.create_session(7, session_id, utcnow() + timedelta(hours=1), {})
    caplog.set_level(logging.INFO, logger="sqlalchemy.pool")

    async with store.engine.connect() as holder:
        await _lock_sessions(store, holder)
        with pytest.raises(StoreUnavailableError):  # a read
            await store.get_session(session_id)
        with pytest.raises(StoreUnavailableError):  # a write in a READ COMMITTED transaction
            await store.create_session_limited(
                7, secrets.token_urlsafe(32), utcnow() + timedelta(hours=1), {}, max_sessions=3
            )
        if store.dialect != "postgresql":
            await holder.execute(text("UNLOCK TABLES"))
        await holder.rollback()
    await _settled(store)

    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text[-3000:]
    # The pool heals: the next calls answer at once (the write may or may not have run).
    other = secrets.token_urlsafe(32)
    assert await store.create_session(8, other, utcnow() + timedelta(hours=1), {})
    record = await store.get_session(other)
    assert record is not None and record["user_id"] == 8
