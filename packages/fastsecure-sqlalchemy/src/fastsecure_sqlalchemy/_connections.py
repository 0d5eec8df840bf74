"""How the stores check a connection out: one statement, or one READ COMMITTED transaction.

A cancelled call (the store's deadline, a client gone) can stop inside any driver round
trip: a statement, a commit, or aiomysql's ``SET AUTOCOMMIT`` when a transaction switches
isolation level. The driver's connection is then half-used: aiomysql closes it
("Cancelled during execution"), asyncpg still has the statement in flight. Returned to the
pool as it is, the pool's rollback-on-return fails (SQLAlchemy logs that with a traceback)
or waits on a frozen server. :func:`connection` invalidates it instead, which terminates
it at once; the pool opens a fresh one for the next call.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine


@asynccontextmanager
async def connection(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """``engine.connect()`` for one unit of work, committed if it left a transaction open.

    A connection whose call was cut off (cancelled, not failed) is dropped, never reused.
    The session check runs through here: one context manager, nothing nested.
    """
    async with engine.connect() as conn:
        try:
            yield conn
            if conn.in_transaction():
                await conn.commit()
        except BaseException as exc:
            if not isinstance(exc, Exception):
                # The sync form: it terminates the driver's connection without awaiting,
                # so a frozen server cannot hold the cancelled call up here.
                conn.sync_connection.invalidate(exc)  # type: ignore[union-attr]
            raise


@asynccontextmanager
async def transaction(
    engine: AsyncEngine, *, immediate: bool = False
) -> AsyncIterator[AsyncConnection]:
    """A READ COMMITTED transaction: each statement sees what earlier lock holders committed.

    ``immediate`` takes SQLite's write lock up front (BEGIN IMMEDIATE), which serializes
    writers across processes without the read-then-upgrade deadlock. A failure rolls back;
    a cancellation does not try (no round trip): :func:`connection` drops the connection.
    """
    dialect = engine.dialect.name
    async with connection(engine) as conn:
        if dialect in ("postgresql", "mysql", "mariadb"):
            await conn.execution_options(isolation_level="READ COMMITTED")
        if immediate and dialect == "sqlite":
            await conn.exec_driver_sql("BEGIN IMMEDIATE")
        try:
            yield conn
        except Exception:
            await conn.rollback()
            raise
        await conn.commit()
