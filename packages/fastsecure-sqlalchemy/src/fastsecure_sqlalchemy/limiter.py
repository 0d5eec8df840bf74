"""The SQL rate limiter: one row per key, changed under a row lock in one transaction.

Each decision is one short transaction: make sure the key's row exists (an insert that
ignores a conflict), lock it (``SELECT ... FOR UPDATE`` on PostgreSQL and MariaDB/MySQL;
SQLite's write lock, taken by ``BEGIN IMMEDIATE``), decide, write back. Parallel
attempts on one key queue on that lock, so no more than the limit get through. Rows hold
the SHA-256 of the key, never an address or an e-mail; times are the app's clock (epoch
seconds), so keep the app servers' clocks in sync (NTP).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from sqlalchemy import Column, Double, Index, Integer, MetaData, String, Table, delete, select
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import mysql as mysql_dialect
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from fastsecure import StoreUnavailableError
from fastsecure.ratelimit import Backoff, LimitState, RateLimit, RateLimiter, hashed_key

from ._connections import transaction

logger = logging.getLogger("fastsecure.sqlalchemy")

T = TypeVar("T")

DEFAULT_PREFIX = "fastsecure_"
_RETRIES = 20
# Deadlock / serialization codes a retry resolves: MySQL 1213, PostgreSQL 40P01 / 40001.
_RETRYABLE = ("1213", "40P01", "40001", "database is locked")


def engine_for(url: str | URL | AsyncEngine, timeout: float) -> tuple[AsyncEngine, bool]:
    """An engine for ``url`` (owned, bounded waits) or the given one (not owned)."""
    if isinstance(url, AsyncEngine):
        return url, False
    parsed = make_url(url)
    backend, driver = parsed.get_backend_name(), parsed.get_driver_name()
    connect_args: dict[str, Any] = {}
    if backend == "sqlite":
        connect_args["timeout"] = timeout
    elif driver == "asyncpg":
        connect_args.update(timeout=timeout, command_timeout=timeout)
    elif driver in ("aiomysql", "asyncmy"):
        connect_args["connect_timeout"] = timeout
    options: dict[str, Any] = {"pool_pre_ping": backend != "sqlite", "connect_args": connect_args}
    if backend != "sqlite":
        options["pool_timeout"] = timeout
    return create_async_engine(parsed, **options), True


def _retryable(exc: sa_exc.DBAPIError) -> bool:
    text = f"{getattr(exc.orig, 'sqlstate', '')} {getattr(exc.orig, 'args', '')} {exc.orig}"
    return any(code in text for code in _RETRYABLE)


class Database:
    """The plumbing shared by the SQL limiter and user store: bounded, classified calls.

    Every failure to get an answer (timeout, connection, a refused or missing table) is
    :class:`~fastsecure.StoreUnavailableError`; deadlocks are retried. Only an integrity
    error (a unique key taken) reaches the caller as is.
    """

    def __init__(self, url: str | URL | AsyncEngine, metadata: MetaData, timeout: float) -> None:
        self.engine, self._owns_engine = engine_for(url, timeout)
        self.metadata = metadata
        self.dialect: str = self.engine.dialect.name
        self.timeout = timeout

    async def run(
        self,
        what: str,
        work: Callable[[AsyncConnection], Awaitable[T]],
        *,
        lock: bool = False,
        retry_duplicates: bool = False,
    ) -> T:
        """Run ``work`` in one READ COMMITTED transaction (``lock``: SQLite's write lock).

        Deadlocks are retried (with jitter) within the timeout; so are duplicate keys when
        ``retry_duplicates`` says a second pass resolves them.
        """
        try:
            async with asyncio.timeout(self.timeout):
                for attempt in range(_RETRIES):
                    last = attempt == _RETRIES - 1
                    try:
                        async with transaction(self.engine, immediate=lock) as conn:
                            return await work(conn)
                    except sa_exc.IntegrityError:
                        if retry_duplicates and not last:
                            continue
                        raise
                    except sa_exc.DBAPIError as exc:
                        if not last and _retryable(exc):
                            await asyncio.sleep(random.uniform(0, 0.005 * (attempt + 1)))  # noqa: S311
                            continue
                        self._unavailable(what, exc)
                    except (OSError, sa_exc.SQLAlchemyError) as exc:
                        self._unavailable(what, exc)
        except TimeoutError as exc:
            self._unavailable(what, exc)
        raise AssertionError("unreachable")  # pragma: no cover

    def _unavailable(self, what: str, exc: BaseException) -> None:
        cause = getattr(exc, "orig", None) or exc
        logger.warning("%s %s failed: %s", self.dialect, what, type(cause).__name__)
        raise StoreUnavailableError(
            f"{self.dialect} {what} failed ({type(cause).__name__})"
        ) from exc

    def insert_ignore(self, table: Table, values: Mapping[str, Any]) -> Any:
        """An INSERT that does nothing when the primary key exists."""
        if self.dialect == "postgresql":
            return pg_dialect.insert(table).values(**values).on_conflict_do_nothing()
        if self.dialect == "sqlite":
            return sqlite_dialect.insert(table).values(**values).on_conflict_do_nothing()
        if self.dialect in ("mysql", "mariadb"):
            return mysql_dialect.insert(table).values(**values).prefix_with("IGNORE")
        raise StoreUnavailableError(f"unsupported dialect {self.dialect}")

    async def create_tables(self, tables: list[Table]) -> None:
        """Create ``tables`` where missing."""

        async def work(conn: AsyncConnection) -> None:
            await conn.run_sync(self.metadata.create_all, tables=tables)

        await self.run("create_tables", work)

    async def drop_tables(self, tables: list[Table]) -> None:
        """Drop ``tables``."""

        async def work(conn: AsyncConnection) -> None:
            await conn.run_sync(self.metadata.drop_all, tables=tables)

        await self.run("drop_tables", work)

    async def aclose(self) -> None:
        """Dispose of the engine when it was built here."""
        if self._owns_engine:
            await self.engine.dispose()


@dataclass(frozen=True)
class LimiterTables:
    """The limiter's one table, on the app's ``MetaData`` (for Alembic)."""

    metadata: MetaData
    rate_limits: Table


def define_limiter_tables(metadata: MetaData, *, prefix: str = DEFAULT_PREFIX) -> LimiterTables:
    """Define ``<prefix>rate_limits`` on ``metadata``.

    Columns: ``key_hash`` (SHA-256 hex of the key), ``count``, ``blocked_until`` and
    ``expires_at`` (epoch seconds; expired rows are dead and are reused or swept).
    """
    table = Table(
        f"{prefix}rate_limits",
        metadata,
        Column("key_hash", String(64), primary_key=True),
        Column("count", Integer, nullable=False),
        Column("blocked_until", Double, nullable=False),
        Column("expires_at", Double, nullable=False),
        Index(f"ix_{prefix}rate_limits_expires_at", "expires_at"),
    )
    return LimiterTables(metadata, table)


class DatabaseRateLimiter(RateLimiter):
    """Rate limits in a SQL table, shared by every process using the database.

    Args:
        url: a database URL or an ``AsyncEngine`` (share the session store's:
            ``DatabaseRateLimiter(store.engine)``).
        table_prefix: prefix of the table name (ignored when ``tables`` is given).
        tables: from :func:`define_limiter_tables`, when the app keeps them on its metadata.
        operation_timeout: seconds a call may take before it is ``StoreUnavailableError``.
        auto_create_tables: create the table on first use.
    """

    limiter_type: ClassVar[str] = "sqlalchemy"

    def __init__(
        self,
        url: str | URL | AsyncEngine,
        *,
        table_prefix: str = DEFAULT_PREFIX,
        tables: LimiterTables | None = None,
        operation_timeout: float = 5.0,
        auto_create_tables: bool = False,
    ) -> None:
        self.tables = tables or define_limiter_tables(MetaData(), prefix=table_prefix)
        self.db = Database(url, self.tables.metadata, operation_timeout)
        self._auto_create = auto_create_tables
        self._create_lock = asyncio.Lock()

    async def create_tables(self) -> None:
        """Create the table where missing (or include the tables in your migrations)."""
        await self.db.create_tables([self.tables.rate_limits])

    async def drop_tables(self) -> None:
        """Drop the table (tests, uninstall)."""
        await self.db.drop_tables([self.tables.rate_limits])

    async def _ready(self) -> None:
        if self._auto_create:
            async with self._create_lock:
                if self._auto_create:
                    await self.create_tables()
                    self._auto_create = False

    async def _locked(
        self, what: str, key: str, decide: Callable[[int, float, float, float], Any]
    ) -> Any:
        """Lock the key's row and let ``decide(count, blocked, expires, now)`` change it.

        ``decide`` returns ``(result, new_row_or_None)``; ``None`` leaves the row alone.
        """
        await self._ready()
        table = self.tables.rate_limits
        key_hash = hashed_key(key)

        query = select(table.c.count, table.c.blocked_until, table.c.expires_at).where(
            table.c.key_hash == key_hash
        )
        if self.db.dialect != "sqlite":
            query = query.with_for_update()

        async def work(conn: AsyncConnection) -> Any:
            # Lock an existing row first: an INSERT ... IGNORE on an existing row takes a
            # shared lock on MariaDB that the FOR UPDATE then deadlocks on.
            row = (await conn.execute(query)).first()
            now = time.time()
            if row is None or float(row[2]) <= now:
                count, blocked, expires = 0, 0.0, 0.0
            else:  # by position: Row.count is the sequence method, not the column
                count, blocked, expires = int(row[0]), float(row[1]), float(row[2])
            result, new = decide(count, blocked, expires, now)
            if new is None:
                return result
            values = {"count": new[0], "blocked_until": new[1], "expires_at": new[2]}
            if row is None:
                # Two first attempts insert at once: the loser's duplicate key is retried
                # and then finds the row.
                await conn.execute(table.insert().values(key_hash=key_hash, **values))
            else:
                await conn.execute(
                    table.update().where(table.c.key_hash == key_hash).values(**values)
                )
            return result

        return await self.db.run(f"rate limiter {what}", work, lock=True, retry_duplicates=True)

    async def hit(self, key: str, rate: RateLimit) -> LimitState:
        def decide(count: int, blocked: float, expires: float, now: float) -> Any:
            count += 1
            expires = expires or now + rate.window
            if count <= rate.limit:
                state = LimitState(True, count, rate.limit - count)
            else:
                state = LimitState(False, count, 0, expires - now)
            return state, (count, 0.0, expires)

        result: LimitState = await self._locked("hit", f"h:{key}", decide)
        return result

    async def attempt(self, key: str, backoff: Backoff) -> LimitState:
        def decide(count: int, blocked: float, expires: float, now: float) -> Any:
            if blocked > now:
                return LimitState(False, count, 0, blocked - now), None
            count += 1
            delay = backoff.delay(count)
            until = now + delay if delay else 0.0
            state = LimitState(True, count, max(0, backoff.limit - count))
            return state, (count, until, now + max(backoff.window, delay))

        result: LimitState = await self._locked("attempt", f"b:{key}", decide)
        return result

    async def refund(self, key: str, backoff: Backoff) -> None:
        def decide(count: int, blocked: float, expires: float, now: float) -> Any:
            if count <= 0:
                return None, None
            count -= 1
            return None, (count, 0.0 if count < backoff.limit else blocked, expires)

        await self._locked("refund", f"b:{key}", decide)

    async def reset(self, key: str) -> None:
        await self._ready()
        table = self.tables.rate_limits
        hashes = [hashed_key(f"b:{key}"), hashed_key(f"h:{key}")]

        async def work(conn: AsyncConnection) -> None:
            await conn.execute(delete(table).where(table.c.key_hash.in_(hashes)))

        await self.db.run("rate limiter reset", work)

    async def cleanup_expired(self) -> int:
        """Delete rows whose window has passed; run it now and then (a cron, a startup)."""
        table = self.tables.rate_limits

        async def work(conn: AsyncConnection) -> int:
            done = await conn.execute(delete(table).where(table.c.expires_at <= time.time()))
            return int(done.rowcount or 0)

        return await self.db.run("rate limiter cleanup", work)

    async def aclose(self) -> None:
        await self.db.aclose()


__all__ = [
    "Database",
    "DatabaseRateLimiter",
    "LimiterTables",
    "define_limiter_tables",
    "engine_for",
]
