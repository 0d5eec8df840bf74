"""Checking a connection out so that a call cut off mid-statement never hands it back.

A cancelled call (the store's deadline, a client gone) can stop inside any driver round
trip: a statement, a commit, or aiomysql's ``SET AUTOCOMMIT`` when a transaction switches
isolation level. The driver's connection is then half-used: aiomysql closes it
("Cancelled during execution"), asyncpg still has the statement in flight. Returned to the
pool as it is, the pool's rollback-on-return fails (SQLAlchemy logs that with a traceback)
or waits on a frozen server. Invalidating it instead terminates it at once and the pool
opens a fresh one for the next call.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine


def drop_if_cut_off(conn: AsyncConnection, exc: BaseException) -> None:
    """Invalidate ``conn`` when ``exc`` cut its call off (a cancellation, an exit)."""
    if not isinstance(exc, Exception):
        # The sync form: it terminates the driver's connection without awaiting, so a
        # frozen server cannot hold the cancelled call up here.
        conn.sync_connection.invalidate(exc)  # type: ignore[union-attr]


@asynccontextmanager
async def connection(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """``engine.connect()``; a connection whose call was cancelled is dropped, not reused."""
    async with engine.connect() as conn:
        try:
            yield conn
        except BaseException as exc:
            drop_if_cut_off(conn, exc)
            raise
