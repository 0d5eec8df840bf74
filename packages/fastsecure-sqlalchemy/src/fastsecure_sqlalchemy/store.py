"""``DatabaseSessionStore``: sessions and token state in SQLite, PostgreSQL or MariaDB/MySQL."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import math
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime
from typing import Any, ClassVar, TypeVar

from sqlalchemy import (
    MetaData,
    Table,
    bindparam,
    delete,
    exists,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import mysql as mysql_dialect
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import AsyncAdaptedQueuePool
from sqlalchemy.sql import ColumnElement

from fastsecure import SessionStore, StoreUnavailableError, TokenStore
from fastsecure.results import UserId
from fastsecure.stores import (
    AccessCheck,
    Rotation,
    SessionCreation,
    SessionRecord,
    as_utc,
    hash_session_id,
    new_generation_id,
    utcnow,
)

from ._connections import connection, transaction
from ._errors import MY_DEADLOCK, FailureLog, error_code, is_already_exists, is_unique_violation
from .schema import DEFAULT_PREFIX, USER_ID_LENGTH, StoreTables, define_tables
from .schema import tables as default_tables
from .sqlite_reader import MISS, SQLiteReader, sqlite_file

logger = logging.getLogger("fastsecure.sqlalchemy")

T = TypeVar("T")

_DEADLOCK_RETRIES = 5
# create_tables may wait for another process's DDL, so it gets a longer bound than a call.
_DDL_TIMEOUT = 60.0
# One advisory-lock id for every store's DDL: the first 8 bytes of a fixed SHA-256.
_DDL_LOCK_ID = int.from_bytes(
    hashlib.sha256(b"fastsecure_sqlalchemy.create_tables").digest()[:8], "big", signed=True
)
# PostgreSQL's synchronous_commit values (SET LOCAL takes no bind parameter: only these).
SYNCHRONOUS_COMMIT = frozenset(("on", "off", "local", "remote_write", "remote_apply"))
_GENERATION_ROW = 1
# Families ended per statement by revoke_user_families (bind parameters stay well below
# every driver's limit).
_CHUNK = 500
# Exceptions from these packages are database failures even if SQLAlchemy did not wrap them.
_DRIVER_MODULES = frozenset(
    ("asyncpg", "psycopg", "psycopg2", "aiomysql", "pymysql", "asyncmy", "aiosqlite", "sqlite3")
)


def _utc(value: datetime) -> datetime:
    """Every timestamp is written in UTC: MySQL and SQLite keep no zone, so they compare as text."""
    return as_utc(value).astimezone(UTC)


def _encode_user(user_id: UserId) -> tuple[str, str]:
    if isinstance(user_id, bool) or not isinstance(user_id, (int, str)):
        raise TypeError("user_id must be an int or a str")
    value, kind = (str(user_id), "int") if isinstance(user_id, int) else (user_id, "str")
    if len(value) > USER_ID_LENGTH:
        raise ValueError(f"user_id longer than {USER_ID_LENGTH} characters")
    return value, kind


def _user_hash(user_id: UserId) -> str:
    """The key of a user's token families: ``str(user_id)`` hashed, as the tokens' ``sub``."""
    return hash_session_id(str(user_id))


def _decode_user(value: str, kind: str) -> UserId:
    return int(value) if kind == "int" else value


def _lock_key(user: str, kind: str) -> bytes:
    return hashlib.sha256(f"{kind}:{user}".encode("utf-8", "surrogatepass")).digest()


class DatabaseSessionStore(SessionStore, TokenStore):
    """Server-side sessions and JWT revocation state in one relational database.

    One object serves both contracts, so an app that already runs a database needs no
    other store. SQLite (a file) needs no server; PostgreSQL and MariaDB/MySQL are for
    several processes. Session ids are stored as their SHA-256 only.

    Args:
        url: a database URL (``"sqlite+aiosqlite:///sessions.db"``,
            ``"postgresql+asyncpg://..."``, ``"mysql+aiomysql://..."``), an ``AsyncEngine``
            or an ``async_sessionmaker`` bound to one. An engine built here from a URL is
            disposed by :meth:`aclose`; one passed in belongs to the caller.
        table_prefix: prefix of every table name (ignored when ``tables`` is given).
        tables: tables from :func:`~fastsecure_sqlalchemy.define_tables`, when the app
            keeps them on its own ``MetaData``.
        operation_timeout: seconds any one store call may take, pool wait included; past
            it the call raises :class:`~fastsecure.StoreUnavailableError` (HTTP 503).
        connect_timeout: seconds to open a connection (engines built from a URL).
        pool_timeout: seconds to wait for a free pooled connection (engines built from a URL).
        auto_create_tables: create missing tables on first use, for configuration-built
            stores that nobody calls :meth:`create_tables` on.
        engine_options: extra keyword arguments for ``create_async_engine``.
        synchronous_commit: PostgreSQL only: the ``synchronous_commit`` for writes that
            end something (logout, revocation, refresh rotation, deleted or rotated
            sessions, a new generation), set per transaction. ``None`` (the default)
            keeps the server's setting, whose default ``on`` flushes the commit to the
            primary's WAL before the call returns; ``"remote_apply"`` (with
            ``synchronous_standby_names``) also waits for standbys, so a fail-over cannot
            undo a logout. ``"off"``/``"local"`` trade that for latency.
    """

    store_type: ClassVar[str] = "sqlalchemy"
    loss_safe: ClassVar[bool] = True
    tracks_users: ClassVar[bool] = True

    def __init__(
        self,
        url: str | URL | AsyncEngine | async_sessionmaker[AsyncSession],
        *,
        table_prefix: str = DEFAULT_PREFIX,
        tables: StoreTables | None = None,
        operation_timeout: float = 5.0,
        connect_timeout: float = 3.0,
        pool_timeout: float = 3.0,
        auto_create_tables: bool = False,
        engine_options: Mapping[str, Any] | None = None,
        synchronous_commit: str | None = None,
    ) -> None:
        if operation_timeout <= 0:
            raise ValueError("operation_timeout must be positive")
        if synchronous_commit is not None and synchronous_commit not in SYNCHRONOUS_COMMIT:
            raise ValueError(f"synchronous_commit must be one of {sorted(SYNCHRONOUS_COMMIT)}")
        self._timeout = operation_timeout
        if isinstance(url, AsyncEngine):
            self.engine, self._owns_engine = url, False
        elif isinstance(url, async_sessionmaker):
            bind = url.kw.get("bind")
            if not isinstance(bind, AsyncEngine):
                raise ValueError(
                    "the async_sessionmaker must be bound to an AsyncEngine (bind=engine)"
                )
            self.engine, self._owns_engine = bind, False
        else:
            self.engine = _create_engine(
                make_url(url),
                operation_timeout,
                connect_timeout,
                pool_timeout,
                engine_options or {},
            )
            self._owns_engine = True
        if tables is None:
            tables = (
                default_tables
                if table_prefix == DEFAULT_PREFIX
                else define_tables(MetaData(), prefix=table_prefix)
            )
        self.tables = tables
        self.dialect: str = self.engine.dialect.name
        if synchronous_commit is not None and self.dialect != "postgresql":
            raise ValueError("synchronous_commit is a PostgreSQL setting")
        self.synchronous_commit = synchronous_commit
        self._auto_create = auto_create_tables
        self._create_lock = asyncio.Lock()
        self._ddl_timeout = max(operation_timeout, _DDL_TIMEOUT)
        self._failures = FailureLog(self.dialect)
        self._abandoned: set[asyncio.Future[Any]] = set()
        s = tables.sessions
        self._session_columns = (
            s.c.user_id,
            s.c.user_id_type,
            s.c.created_at,
            s.c.expires_at,
            s.c.last_seen,
            s.c.data,
        )
        # Built once: the hot path only binds parameters.
        self._get_stmt = select(*self._session_columns).where(s.c.id_hash == bindparam("id_hash"))
        # A SQLite file: session reads run on the event loop, without aiosqlite's thread hop.
        path = sqlite_file(self.engine.url)
        self._reader = (
            SQLiteReader(path, self._get_stmt, self.engine.dialect) if path is not None else None
        )

    # --- plumbing ------------------------------------------------------------------------

    async def _bounded(
        self,
        operation: str,
        work: Callable[[], Awaitable[T]],
        *,
        budget: float | None = None,
    ) -> T:
        """Run ``work`` within the operation timeout; every database failure is 503.

        The work runs in a task of its own so the deadline is when the caller gets its
        answer, retries, pool wait and connection cleanup included: on a frozen server the
        cleanup of a cancelled call (rolling back, closing the connection) can hang too, so
        the cancelled task finishes it in the background instead of inside the budget.
        """
        task = asyncio.ensure_future(self._prepared(work))
        try:
            done, _ = await asyncio.wait((task,), timeout=budget or self._timeout)
        except asyncio.CancelledError:
            self._abandon(task)
            raise
        if not done:
            self._abandon(task)
            raise self._failures.unavailable(operation, TimeoutError())
        try:
            result = task.result()
        except StoreUnavailableError:
            raise
        except Exception as exc:
            if not _is_store_failure(exc):
                raise
            raise self._failures.unavailable(operation, exc) from exc
        if self._failures.failing:
            self._failures.recovered()
        return result

    async def _prepared(self, work: Callable[[], Awaitable[T]]) -> T:
        if self._auto_create:
            await self._create_once()
        return await work()

    def _abandon(self, task: asyncio.Future[Any]) -> None:
        task.cancel()
        self._abandoned.add(task)
        task.add_done_callback(self._forget)

    def _forget(self, task: asyncio.Future[Any]) -> None:
        self._abandoned.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.debug("abandoned %s call ended with %s", self.dialect, type(task.exception()))

    def _connect(self) -> AbstractAsyncContextManager[AsyncConnection]:
        """One connection for one statement; the statement commits on its own."""
        return connection(self.engine)

    def _transaction(
        self, *, immediate: bool = False
    ) -> AbstractAsyncContextManager[AsyncConnection]:
        """A READ COMMITTED transaction (``immediate``: SQLite's write lock up front)."""
        return transaction(self.engine, immediate=immediate)

    @asynccontextmanager
    async def _durable(self) -> AsyncIterator[AsyncConnection]:
        """A transaction for a write that ends something, under ``synchronous_commit``."""
        async with self._transaction(immediate=True) as conn:
            if self.synchronous_commit is not None:
                await conn.exec_driver_sql(
                    f"SET LOCAL synchronous_commit TO {self.synchronous_commit}"
                )
            yield conn

    async def _create_once(self) -> None:
        if not self._auto_create:
            return
        async with self._create_lock:
            if self._auto_create:
                await self._create_all()
                self._auto_create = False

    async def _create_all(self) -> None:
        """``create_all`` serialized across processes; "already exists" is success.

        ``create_all`` checks, then creates: two processes starting together both find no
        table and both create. PostgreSQL takes a transaction advisory lock (its DDL is
        transactional, so the second process sees the committed tables), MariaDB/MySQL a
        named lock (``GET_LOCK``), SQLite its write lock (``BEGIN IMMEDIATE``). A conflict
        that still happens (another tool's DDL) is retried; the retry finds the tables.
        """
        for attempt in range(3):
            try:
                await self._create_all_locked()
                return
            except sa_exc.DBAPIError as exc:
                if attempt == 2 or not is_already_exists(exc):
                    raise

    async def _create_all_locked(self) -> None:
        create = self.tables.metadata.create_all
        tables = list(self.tables.all)
        if self.dialect in ("mysql", "mariadb"):
            name = f"fastsecure:{self.engine.url.database}:{self.tables.prefix}"[:64]
            wait = max(1, math.ceil(self._ddl_timeout))
            async with connection(self.engine) as conn:
                got = (await conn.execute(select(func.get_lock(name, wait)))).scalar()
                if got != 1:
                    raise TimeoutError("another process holds the create_tables lock")
                try:
                    await conn.run_sync(create, tables=tables)
                finally:
                    await conn.execute(select(func.release_lock(name)))
            return
        async with self._transaction(immediate=True) as conn:
            if self.dialect == "postgresql":
                await conn.execute(select(func.pg_advisory_xact_lock(_DDL_LOCK_ID)))
            await conn.run_sync(create, tables=tables)

    async def create_tables(self) -> None:
        """Create the store's tables and indexes where missing; safe on every start-up.

        Any number of processes may call it at once on an empty database: the creation is
        serialized by a database lock and a table another process created counts as
        created. For apps without migrations; with Alembic, include
        :data:`~fastsecure_sqlalchemy.metadata` (or the tables from
        :func:`~fastsecure_sqlalchemy.define_tables`) instead.
        """
        await self._bounded("create_tables", self._create_all, budget=self._ddl_timeout)

    async def drop_tables(self) -> None:
        """Drop the store's tables (tests, uninstall); every session and revocation is lost."""

        async def work() -> None:
            async with self.engine.begin() as conn:
                await conn.run_sync(self.tables.metadata.drop_all, tables=list(self.tables.all))

        await self._bounded("drop_tables", work, budget=self._ddl_timeout)

    async def aclose(self) -> None:
        """Dispose of the engine when this store built it from a URL."""
        if self._reader is not None:
            self._reader.close()
        if self._owns_engine:
            await self.engine.dispose()

    def _record(self, row: Sequence[Any], id_hash: str) -> SessionRecord:
        """A session row (the columns of ``_session_columns``, in order) as a record."""
        user_id, user_id_type, created_at, expires_at, last_seen, data = row
        return {
            "user_id": _decode_user(user_id, user_id_type),
            "created_at": as_utc(created_at),
            "expires_at": as_utc(expires_at),
            "last_seen": as_utc(last_seen) if last_seen is not None else None,
            "metadata": json.loads(data),
            "session_key": id_hash,
        }

    def _row_values(
        self,
        user: str,
        kind: str,
        session_id: str,
        expires_at: datetime,
        metadata: dict[str, Any],
        now: datetime,
    ) -> dict[str, Any]:
        return {
            "id_hash": hash_session_id(session_id),
            "user_id": user,
            "user_id_type": kind,
            "created_at": now,
            "expires_at": _utc(expires_at),
            "last_seen": None,
            "data": json.dumps(metadata, separators=(",", ":")),
        }

    # --- SessionStore ------------------------------------------------------------------------

    async def create_session(
        self, user_id: UserId, session_id: str, expires_at: datetime, metadata: dict[str, Any]
    ) -> bool:
        """Insert a session; False when the id is already taken."""
        user, kind = _encode_user(user_id)
        values = self._row_values(user, kind, session_id, expires_at, metadata, utcnow())
        return await self._bounded("create_session", lambda: self._insert_session(values))

    async def _insert_session(self, values: dict[str, Any]) -> bool:
        try:
            async with self._connect() as conn:
                await conn.execute(insert(self.tables.sessions), values)
        except sa_exc.IntegrityError as exc:
            if not is_unique_violation(exc):
                raise
            return False
        return True

    async def get_session(self, session_id: str) -> SessionRecord | None:
        """The live session, by primary key: one indexed SELECT, no write."""
        id_hash = hash_session_id(session_id)
        row: Any = MISS
        if self._reader is not None and not self._auto_create and not self._traced():
            row = self._reader.fetch(id_hash)
        if row is MISS:

            async def work() -> Any:
                async with self._connect() as conn:
                    return (await conn.execute(self._get_stmt, {"id_hash": id_hash})).first()

            row = await self._bounded("get_session", work)
        elif self._failures.failing:
            self._failures.recovered()
        if row is None:
            return None
        record = self._record(row, id_hash)
        if record["expires_at"] <= utcnow():
            return None
        return record

    def _traced(self) -> bool:
        """Whether anything listens to the engine's statements (OpenTelemetry, Sentry, tests).

        Then every read goes through the engine, so each one is seen where it is expected.
        """
        return bool(self.engine.sync_engine.dispatch.before_cursor_execute)

    async def _rowcount(
        self, operation: str, stmt: Any, *, conflict: bool = False, durable: bool = False
    ) -> int:
        """Run one write statement; its row count. ``conflict``: a duplicate key counts 0.

        ``durable``: the write ends something, so it commits under ``synchronous_commit``.
        """
        connect = self._durable if durable and self.synchronous_commit else self._connect

        async def work() -> int:
            try:
                async with connect() as conn:
                    return int((await conn.execute(stmt)).rowcount)
            except sa_exc.IntegrityError as exc:
                if conflict and is_unique_violation(exc):
                    return 0
                raise

        return await self._bounded(operation, work)

    async def update_session(self, session_id: str, metadata: dict[str, Any]) -> bool:
        """Replace the metadata of a live session."""
        s = self.tables.sessions
        stmt = (
            update(s)
            .where(s.c.id_hash == hash_session_id(session_id), s.c.expires_at > _utc(utcnow()))
            .values(data=json.dumps(metadata, separators=(",", ":")))
        )
        return bool(await self._rowcount("update_session", stmt))

    async def touch_session(self, session_id: str, last_seen: datetime) -> bool:
        """Set ``last_seen`` in one UPDATE (no read first)."""
        s = self.tables.sessions
        stmt = (
            update(s)
            .where(s.c.id_hash == hash_session_id(session_id), s.c.expires_at > _utc(utcnow()))
            .values(last_seen=_utc(last_seen))
        )
        return bool(await self._rowcount("touch_session", stmt))

    async def rotate_session(self, old_session_id: str, new_session_id: str) -> bool:
        """Re-key a live session in one UPDATE, so the old id stops working at the same instant."""
        s = self.tables.sessions
        stmt = (
            update(s)
            .where(s.c.id_hash == hash_session_id(old_session_id), s.c.expires_at > _utc(utcnow()))
            .values(id_hash=hash_session_id(new_session_id))
        )
        return bool(await self._rowcount("rotate_session", stmt, conflict=True, durable=True))

    async def delete_session(self, session_id: str) -> bool:
        """Remove the session; True when it existed."""
        return await self.delete_session_by_key(hash_session_id(session_id))

    async def delete_session_by_key(self, session_key: str) -> bool:
        """Remove the session a listing named by its ``session_key`` (the id's hash)."""
        s = self.tables.sessions
        return bool(
            await self._rowcount(
                "delete_session", delete(s).where(s.c.id_hash == session_key), durable=True
            )
        )

    def _user_filter(self, user: str, kind: str) -> ColumnElement[bool]:
        s = self.tables.sessions
        return (s.c.user_id == user) & (s.c.user_id_type == kind)

    def _user_select(self, user: str, kind: str) -> Any:
        s = self.tables.sessions
        return (
            select(s.c.id_hash, *self._session_columns)
            .where(self._user_filter(user, kind))
            .order_by(s.c.created_at, s.c.id_hash)
        )

    async def get_user_sessions(self, user_id: UserId) -> list[SessionRecord]:
        """The user's live sessions, oldest first."""
        user, kind = _encode_user(user_id)
        s = self.tables.sessions
        stmt = self._user_select(user, kind).where(s.c.expires_at > _utc(utcnow()))

        async def work() -> Sequence[Any]:
            async with self._connect() as conn:
                return (await conn.execute(stmt)).all()

        rows = await self._bounded("get_user_sessions", work)
        return [self._record(row[1:], row.id_hash) for row in rows]

    async def delete_user_sessions(self, user_id: UserId) -> int:
        """Log the user out everywhere in one DELETE."""
        user, kind = _encode_user(user_id)
        s = self.tables.sessions
        stmt = delete(s).where(self._user_filter(user, kind))
        return await self._rowcount("delete_user_sessions", stmt, durable=True)

    async def cleanup_expired_sessions(self) -> int:
        """Remove every expired session in one DELETE (uses the ``expires_at`` index)."""
        s = self.tables.sessions
        stmt = delete(s).where(s.c.expires_at <= _utc(utcnow()))
        return await self._rowcount("cleanup_expired_sessions", stmt)

    async def create_session_limited(
        self,
        user_id: UserId,
        session_id: str,
        expires_at: datetime,
        metadata: dict[str, Any],
        *,
        max_sessions: int | None,
        evict_oldest: bool = True,
    ) -> SessionCreation:
        """Create a session keeping at most ``max_sessions`` live ones, atomically.

        The user's logins are serialized for the length of one transaction: a transaction
        advisory lock on PostgreSQL, a row lock on the user's ``session_locks`` row on
        MySQL/MariaDB (and other dialects), SQLite's write lock (BEGIN IMMEDIATE). Inside
        it, expired sessions are removed, then the oldest live ones make room (or the
        login is refused), then the new session is inserted. Deadlock retries count
        against the one operation timeout.
        """
        if max_sessions is None or max_sessions <= 0:
            created = await self.create_session(user_id, session_id, expires_at, metadata)
            return SessionCreation(created=created)
        user, kind = _encode_user(user_id)
        key = _lock_key(user, kind)
        values = self._row_values(user, kind, session_id, expires_at, metadata, utcnow())
        uses_lock_row = self.dialect not in ("postgresql", "sqlite")

        async def work() -> SessionCreation:
            if uses_lock_row:
                await self._ensure_lock_row(key.hex())
            for attempt in range(_DEADLOCK_RETRIES):
                try:
                    return await self._create_limited(
                        key, user, kind, values, max_sessions, evict_oldest
                    )
                except sa_exc.IntegrityError as exc:
                    if not is_unique_violation(exc):
                        raise
                    return SessionCreation(created=False)
                except sa_exc.OperationalError as exc:
                    if error_code(exc) != MY_DEADLOCK or attempt == _DEADLOCK_RETRIES - 1:
                        raise
            raise AssertionError("unreachable")  # pragma: no cover

        return await self._bounded("create_session_limited", work)

    async def _ensure_lock_row(self, user_key: str) -> None:
        """The user's lock row, inserted (committed) before any transaction locks it.

        Inserting it inside the locking transaction would let two waiters both hold a
        shared lock from the duplicate-key check and deadlock on the upgrade.
        """
        locks = self.tables.session_locks
        async with connection(self.engine) as conn:
            exists_stmt = select(locks.c.user_key).where(locks.c.user_key == user_key)
            if (await conn.execute(exists_stmt)).first() is not None:
                await conn.rollback()
                return
            try:
                await conn.execute(_insert_ignore(locks, self.dialect), {"user_key": user_key})
                await conn.commit()
            except sa_exc.IntegrityError as exc:
                await conn.rollback()
                if not is_unique_violation(exc):
                    raise

    async def _create_limited(
        self,
        key: bytes,
        user: str,
        kind: str,
        values: dict[str, Any],
        max_sessions: int,
        evict_oldest: bool,
    ) -> SessionCreation:
        s = self.tables.sessions
        async with self._transaction(immediate=True) as conn:
            if self.dialect == "postgresql":
                lock_id = int.from_bytes(key[:8], "big", signed=True)
                await conn.execute(select(func.pg_advisory_xact_lock(lock_id)))
            elif self.dialect != "sqlite":
                locks = self.tables.session_locks
                await conn.execute(
                    select(locks.c.user_key).where(locks.c.user_key == key.hex()).with_for_update()
                )
            now = utcnow()
            rows = (await conn.execute(self._user_select(user, kind))).all()
            stale = [row.id_hash for row in rows if as_utc(row.expires_at) <= now]
            live = [row for row in rows if as_utc(row.expires_at) > now]
            excess = len(live) - max_sessions + 1
            if excess > 0 and not evict_oldest:
                if stale:
                    await conn.execute(delete(s).where(s.c.id_hash.in_(stale)))
                return SessionCreation(created=False)
            victims = live[:excess] if excess > 0 else []
            doomed = stale + [row.id_hash for row in victims]
            if doomed:
                await conn.execute(delete(s).where(s.c.id_hash.in_(doomed)))
            await conn.execute(insert(s), values)
        return SessionCreation(
            created=True, evicted=tuple(self._record(row[1:], row.id_hash) for row in victims)
        )

    # --- TokenStore ---------------------------------------------------------------------------

    async def _upsert_on(
        self, conn: AsyncConnection, table: Table, key: str, expires_at: datetime
    ) -> None:
        """Insert ``hash(key)`` with its expiry, or move the expiry of the existing row."""
        await self._upsert_hashes(conn, table, [hash_session_id(key)], expires_at)

    async def _upsert_hashes(
        self, conn: AsyncConnection, table: Table, hashes: Sequence[str], expires_at: datetime
    ) -> None:
        """:meth:`_upsert_on` for keys already hashed, many in one statement."""
        key_column = table.primary_key.columns.values()[0].name
        rows = [{key_column: key, "expires_at": _utc(expires_at)} for key in hashes]
        if not rows:
            return
        if self.dialect in ("postgresql", "sqlite"):
            dialect_insert = (
                pg_dialect.insert if self.dialect == "postgresql" else sqlite_dialect.insert
            )
            stmt = dialect_insert(table).values(rows)
            await conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=[key_column],
                    set_={"expires_at": stmt.excluded.expires_at},
                )
            )
        elif self.dialect in ("mysql", "mariadb"):
            my_stmt = mysql_dialect.insert(table).values(rows)
            await conn.execute(
                my_stmt.on_duplicate_key_update(expires_at=my_stmt.inserted.expires_at)
            )
        else:
            for values in rows:
                changed = await conn.execute(
                    update(table)
                    .where(table.c[key_column] == values[key_column])
                    .values(expires_at=values["expires_at"])
                )
                if not changed.rowcount:
                    await conn.execute(insert(table), values)

    async def revoke_token(self, jti: str, expires_at: datetime) -> None:
        """Mark a token id revoked until ``expires_at`` (stored hashed)."""
        connect = self._durable if self.synchronous_commit else self._connect
        table = self.tables.revoked_tokens

        async def work() -> None:
            async with connect() as conn:
                await self._upsert_on(conn, table, jti, expires_at)

        await self._bounded("revoke_token", work)

    async def revoke_family(self, family_id: str, expires_at: datetime) -> None:
        """Forget the family as a live login and mark it revoked, in one transaction."""
        families, owners = self.tables.refresh_families, self.tables.user_families
        family_hash = hash_session_id(family_id)

        async def work() -> None:
            async with self._durable() as conn:
                await conn.execute(delete(families).where(families.c.family_hash == family_hash))
                await self._upsert_on(conn, self.tables.revoked_families, family_id, expires_at)
                await conn.execute(delete(owners).where(owners.c.family_hash == family_hash))

        await self._bounded("revoke_family", work)

    def _generation_select(self) -> Any:
        gen = self.tables.token_generation
        return select(gen.c.generation).where(gen.c.id == _GENERATION_ROW)

    async def _ensure_generation(self, conn: AsyncConnection) -> str:
        """The generation, created if absent by one insert that loses quietly to a racer."""
        gen = self.tables.token_generation
        values = {
            "id": _GENERATION_ROW,
            "generation": new_generation_id(),
            "created_at": _utc(utcnow()),
        }
        if self.dialect == "postgresql":
            await conn.execute(pg_dialect.insert(gen).values(values).on_conflict_do_nothing())
        elif self.dialect == "sqlite":
            await conn.execute(sqlite_dialect.insert(gen).values(values).on_conflict_do_nothing())
        else:
            await conn.execute(_insert_ignore(gen, self.dialect), values)
        return str((await conn.execute(self._generation_select())).scalar_one())

    async def start_family(
        self,
        family_id: str,
        refresh_jti: str,
        expires_at: datetime,
        *,
        user_id: UserId | None = None,
    ) -> str:
        """Allow-list a login's family; creates the generation row once. One transaction.

        With ``user_id`` the same transaction lists the family under its user: a
        :meth:`revoke_user_families` sees it committed, or runs before it exists.
        """
        family_hash = hash_session_id(family_id)
        values = {
            "family_hash": family_hash,
            "current_hash": hash_session_id(refresh_jti),
            "expires_at": _utc(expires_at),
        }
        owner = (
            None
            if user_id is None
            else {
                "family_hash": family_hash,
                "user_hash": _user_hash(user_id),
                "expires_at": values["expires_at"],
            }
        )

        async def work() -> str:
            async with self._transaction(immediate=True) as conn:
                generation = await self._ensure_generation(conn)
                await conn.execute(insert(self.tables.refresh_families), values)
                if owner is not None:
                    await conn.execute(insert(self.tables.user_families), owner)
            return generation

        return await self._bounded("start_family", work)

    async def revoke_user_families(self, user_id: UserId, revoked_until: datetime) -> int:
        """End every family listed for the user, in one transaction; returns how many were live.

        It ends exactly the families it read as listed: a login committed meanwhile stays
        listed, live until the next revoke. A rotation of one of them that commits first
        is seen (the row lock makes PostgreSQL and MariaDB re-read; SQLite's write lock
        serializes), one that comes later finds the family revoked. Listed families whose
        allow-list entry already expired are revoked too: no token of theirs outlives it.
        """
        user_hash = _user_hash(user_id)

        async def work() -> int:
            for attempt in range(_DEADLOCK_RETRIES):
                try:
                    return await self._revoke_user(user_hash, revoked_until)
                except sa_exc.OperationalError as exc:
                    if error_code(exc) != MY_DEADLOCK or attempt == _DEADLOCK_RETRIES - 1:
                        raise
            raise AssertionError("unreachable")  # pragma: no cover

        return await self._bounded("revoke_user_families", work)

    async def _revoke_user(self, user_hash: str, revoked_until: datetime) -> int:
        families, owners = self.tables.refresh_families, self.tables.user_families
        ended = 0
        async with self._durable() as conn:
            listed = (
                await conn.execute(
                    select(owners.c.family_hash).where(owners.c.user_hash == user_hash)
                )
            ).scalars()
            hashes = sorted(listed)  # one lock order for every writer
            now = _utc(utcnow())
            for start in range(0, len(hashes), _CHUNK):
                chunk = hashes[start : start + _CHUNK]
                result = await conn.execute(
                    delete(families).where(
                        families.c.family_hash.in_(chunk), families.c.expires_at > now
                    )
                )
                ended += int(result.rowcount)
                await self._upsert_hashes(conn, self.tables.revoked_families, chunk, revoked_until)
                await conn.execute(delete(owners).where(owners.c.family_hash.in_(chunk)))
        return ended

    async def check_access(
        self, jti: str, family_id: str | None, generation: str | None
    ) -> AccessCheck:
        """One SELECT: the generation and whether the token or its family is revoked."""
        now = _utc(utcnow())
        tokens, families = self.tables.revoked_tokens, self.tables.revoked_families
        conditions: list[ColumnElement[bool]] = [
            exists().where(tokens.c.jti_hash == hash_session_id(jti), tokens.c.expires_at > now)
        ]
        if family_id is not None:
            conditions.append(
                exists().where(
                    families.c.family_hash == hash_session_id(family_id),
                    families.c.expires_at > now,
                )
            )
        stmt = select(self._generation_select().scalar_subquery(), or_(*conditions))

        async def work() -> Any:
            async with self._connect() as conn:
                return (await conn.execute(stmt)).one()

        current, revoked = await self._bounded("check_access", work)
        if revoked:
            return AccessCheck.REVOKED
        if current is None or generation is None or current != generation:
            return AccessCheck.STALE
        return AccessCheck.VALID

    async def rotate_refresh(
        self,
        family_id: str,
        jti: str,
        new_jti: str,
        generation: str | None,
        expires_at: datetime,
        revoked_until: datetime,
    ) -> Rotation:
        """One conditional UPDATE moves the family to ``new_jti``: one winner, ever.

        It names the presented token, the generation and a live, unrevoked family, so a
        concurrent rotation that committed first makes it match nothing (the row lock
        makes PostgreSQL and MariaDB re-read; SQLite's write lock serializes). A miss is
        then classified in the same transaction, and a spent token revokes the family.
        """
        if generation is None:
            return Rotation.STALE
        families, revoked = self.tables.refresh_families, self.tables.revoked_families
        gen, owners = self.tables.token_generation, self.tables.user_families
        family_hash = hash_session_id(family_id)

        async def work() -> Rotation:
            now = _utc(utcnow())
            revoked_now = exists().where(
                revoked.c.family_hash == family_hash, revoked.c.expires_at > now
            )
            same_generation = exists().where(
                gen.c.id == _GENERATION_ROW, gen.c.generation == generation
            )
            async with self._durable() as conn:
                moved = await conn.execute(
                    update(families)
                    .where(
                        families.c.family_hash == family_hash,
                        families.c.current_hash == hash_session_id(jti),
                        families.c.expires_at > now,
                        same_generation,
                        ~revoked_now,
                    )
                    .values(current_hash=hash_session_id(new_jti), expires_at=_utc(expires_at))
                )
                if moved.rowcount == 1:
                    # The family lives on, and so does its entry in its user's index.
                    await conn.execute(
                        update(owners)
                        .where(owners.c.family_hash == family_hash)
                        .values(expires_at=_utc(expires_at))
                    )
                    return Rotation.ROTATED
                row = (
                    await conn.execute(
                        select(
                            self._generation_select().scalar_subquery(),
                            revoked_now,
                            select(families.c.expires_at)
                            .where(families.c.family_hash == family_hash)
                            .scalar_subquery(),
                        )
                    )
                ).one()
                current, is_revoked, family_expiry = row
                if current != generation:
                    return Rotation.STALE
                if is_revoked:
                    return Rotation.REVOKED
                if family_expiry is None or as_utc(family_expiry) <= utcnow():
                    return Rotation.UNKNOWN
                await conn.execute(delete(families).where(families.c.family_hash == family_hash))
                await self._upsert_on(conn, revoked, family_id, revoked_until)
                await conn.execute(delete(owners).where(owners.c.family_hash == family_hash))
                return Rotation.REUSED

        return await self._bounded("rotate_refresh", work)

    async def new_generation(self) -> str:
        """Replace the generation and end every session and live family, in one transaction.

        For a restored backup or a promoted standby that missed writes: logouts made
        since may be missing, so nothing issued before is trusted.
        """
        generation = new_generation_id()
        gen = self.tables.token_generation

        async def work() -> str:
            async with self._durable() as conn:
                await conn.execute(delete(gen))
                await conn.execute(
                    insert(gen),
                    {"id": _GENERATION_ROW, "generation": generation, "created_at": _utc(utcnow())},
                )
                await conn.execute(delete(self.tables.refresh_families))
                await conn.execute(delete(self.tables.user_families))
                await conn.execute(delete(self.tables.sessions))
            return generation

        return await self._bounded("new_generation", work)

    async def is_revoked(self, jti: str, family_id: str | None = None) -> bool:
        """One SELECT over both revocation tables."""
        now = _utc(utcnow())
        tokens, families = self.tables.revoked_tokens, self.tables.revoked_families
        conditions: list[ColumnElement[bool]] = [
            exists().where(tokens.c.jti_hash == hash_session_id(jti), tokens.c.expires_at > now)
        ]
        if family_id is not None:
            conditions.append(
                exists().where(
                    families.c.family_hash == hash_session_id(family_id),
                    families.c.expires_at > now,
                )
            )
        stmt = select(or_(*conditions))

        async def work() -> Any:
            async with self._connect() as conn:
                return (await conn.execute(stmt)).scalar()

        return bool(await self._bounded("is_revoked", work))

    async def consume_refresh_token(self, jti: str, expires_at: datetime) -> bool:
        """INSERT the id; a primary-key conflict means it was used already.

        An entry whose expiry passed (not yet cleaned up) is removed by one conditional
        DELETE and the INSERT retried once, so only one caller can ever win it.
        """
        used = self.tables.used_refresh_tokens
        values = {"jti_hash": hash_session_id(jti), "expires_at": _utc(expires_at)}

        async def work() -> bool:
            for attempt in range(2):
                try:
                    async with self._connect() as conn:
                        await conn.execute(insert(used), values)
                    return True
                except sa_exc.IntegrityError as exc:
                    if not is_unique_violation(exc):
                        raise
                    if attempt:
                        return False
                stale = delete(used).where(
                    used.c.jti_hash == values["jti_hash"], used.c.expires_at <= _utc(utcnow())
                )
                async with self._connect() as conn:
                    if not (await conn.execute(stale)).rowcount:
                        return False
            return False  # pragma: no cover

        return await self._bounded("consume_refresh_token", work)

    async def cleanup_expired_tokens(self) -> int:
        """One DELETE per token table, in one transaction."""
        now = _utc(utcnow())

        async def work() -> int:
            removed = 0
            async with self._transaction() as conn:
                for table in (
                    self.tables.revoked_tokens,
                    self.tables.revoked_families,
                    self.tables.used_refresh_tokens,
                    self.tables.refresh_families,
                    self.tables.user_families,
                ):
                    result = await conn.execute(delete(table).where(table.c.expires_at <= now))
                    removed += int(result.rowcount)
            return removed

        return await self._bounded("cleanup_expired_tokens", work)


def _is_store_failure(exc: BaseException) -> bool:
    """Raised by the database or its driver, as opposed to a bug in this package."""
    if isinstance(exc, (sa_exc.SQLAlchemyError, OSError, TimeoutError)):
        return True
    return type(exc).__module__.split(".")[0] in _DRIVER_MODULES


def _insert_ignore(table: Table, dialect: str) -> Any:
    if dialect in ("mysql", "mariadb"):
        return insert(table).prefix_with("IGNORE")
    return insert(table)


def _create_engine(
    url: URL,
    operation_timeout: float,
    connect_timeout: float,
    pool_timeout: float,
    engine_options: Mapping[str, Any],
) -> AsyncEngine:
    """An engine whose every wait is bounded and whose pool heals itself after an outage."""
    backend, driver = url.get_backend_name(), url.get_driver_name()
    connect_args: dict[str, Any] = {}
    # The pre-ping lets a server pool heal after an outage; a SQLite file has no server to
    # lose, and there the ping doubled the cost of a session check (about 420 µs).
    options: dict[str, Any] = {"pool_pre_ping": backend != "sqlite"}
    if backend == "sqlite":
        connect_args["timeout"] = operation_timeout  # how long a writer waits for the lock
    elif driver == "asyncpg":
        connect_args["timeout"] = connect_timeout
        connect_args["command_timeout"] = operation_timeout
    elif driver == "psycopg":
        connect_args["connect_timeout"] = max(1, round(connect_timeout))
    elif driver in ("aiomysql", "asyncmy"):
        connect_args["connect_timeout"] = connect_timeout
        connect_args["init_command"] = (
            f"SET SESSION innodb_lock_wait_timeout = {max(1, round(operation_timeout))}"
        )
    if backend in ("postgresql", "mysql", "mariadb"):
        # Single statements need no BEGIN/COMMIT round trips: a session check is one
        # SELECT (after the pre-ping). Multi-statement work switches to READ COMMITTED.
        options["isolation_level"] = "AUTOCOMMIT"
    in_memory = backend == "sqlite" and url.database in (None, "", ":memory:")
    if backend == "sqlite" and not in_memory:
        # SQLAlchemy 2.0 gives aiosqlite file databases a NullPool (a new connection and
        # thread per call); 2.1 pools them. Pool on both, so a check costs the same.
        options["poolclass"] = AsyncAdaptedQueuePool
    if not in_memory:
        options["pool_timeout"] = pool_timeout
    options.update(engine_options)
    if connect_args:
        options["connect_args"] = {**connect_args, **dict(options.get("connect_args") or {})}
    return create_async_engine(url, **options)
