"""Password accounts in SQL: a users table to add to your metadata, or an adapter over yours.

:func:`define_user_tables` puts ``<prefix>users`` and ``<prefix>account_tokens`` on a
``MetaData`` (for ``create_all`` or Alembic). An app that already has a user model keeps
it: pass its ``Table`` (``User.__table__``) and which columns mean what
(:class:`UserColumns`); only the token table is added. Either way
:class:`DatabaseUserStore` implements :class:`fastsecure.accounts.UserStore`.

The default table looks logins up by ``login_key``, the SHA-256 of the normalized login,
so the match is exact on every database (MariaDB's default collations ignore case,
accents and trailing spaces). Over an app's own table the login column is compared as the
database compares it.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    delete,
    insert,
    select,
    update,
)
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from fastsecure.accounts import AccountToken, UserExistsError, UserRecord, UserStore
from fastsecure.results import UserId

from .limiter import DEFAULT_PREFIX, Database

Timestamp = DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def login_key(login: str) -> str:
    """The default table's lookup key of a login: SHA-256 hex (exact match everywhere)."""
    return hashlib.sha256(login.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class UserColumns:
    """Which column of the users table holds what (the defaults are the built-in table's).

    ``credential_version`` must exist (an integer, default 0): add it to your table in a
    migration. ``login_key`` is ``None`` over an app's own table (the login column is
    compared directly); ``data`` names columns copied into ``UserRecord.data``
    (``("scopes",)`` for a JSON scopes column), or ``None`` for the built-in JSON column.
    """

    id: str = "id"
    login: str = "login"
    login_key: str | None = "login_key"
    password_hash: str = "password_hash"  # noqa: S105 - a column name
    email: str | None = "email"
    verified: str = "verified"
    credential_version: str = "credential_version"
    data: Sequence[str] | None = None
    data_json: str | None = "data"


@dataclass(frozen=True)
class UserTables:
    """The users table (built-in or the app's) and the token table, on one ``MetaData``."""

    metadata: MetaData
    users: Table
    tokens: Table
    columns: UserColumns = field(default_factory=UserColumns)

    @property
    def owned(self) -> list[Table]:
        """The tables this package creates (never an app's own users table)."""
        if self.columns.login_key is None:
            return [self.tokens]
        return [self.users, self.tokens]


def _tokens_table(metadata: MetaData, prefix: str) -> Table:
    return Table(
        f"{prefix}account_tokens",
        metadata,
        Column("token_hash", String(64), primary_key=True),
        Column("purpose", String(16), nullable=False),
        Column("user_id", String(255), nullable=False),
        Column("user_id_type", String(8), nullable=False),
        Column("credential_version", Integer, nullable=False),
        Column("expires_at", Timestamp, nullable=False),
        Index(f"ix_{prefix}account_tokens_expires_at", "expires_at"),
    )


def define_user_tables(
    metadata: MetaData,
    *,
    prefix: str = DEFAULT_PREFIX,
    users: Table | None = None,
    columns: UserColumns | None = None,
) -> UserTables:
    """Define the user tables on ``metadata`` (or adopt the app's ``users`` table).

    Args:
        metadata: the app's ``MetaData``; over an app's own table, the one it is on.
        prefix: prefix of the table names.
        users: the app's users table (``User.__table__``); ``None`` defines
            ``<prefix>users``.
        columns: the app table's column names (required with ``users``).
    """
    if users is not None:
        if columns is None:
            raise ValueError("an app's own users table needs columns=UserColumns(...)")
        missing = [
            name
            for name in (
                columns.id,
                columns.login,
                columns.password_hash,
                columns.verified,
                columns.credential_version,
                *(columns.data or ()),
                *(c for c in (columns.email, columns.data_json) if c),
            )
            if name not in users.c
        ]
        if missing:
            raise ValueError(f"the users table has no column(s) {', '.join(missing)}")
        return UserTables(metadata, users, _tokens_table(metadata, prefix), columns)
    table = Table(
        f"{prefix}users",
        metadata,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("login_key", String(64), nullable=False, unique=True),
        Column("login", String(320), nullable=False),
        Column("password_hash", String(255), nullable=True),
        Column("email", String(320), nullable=True),
        Column("verified", Boolean, nullable=False, default=False),
        Column("credential_version", Integer, nullable=False, default=0),
        Column("data", Text().with_variant(mysql.MEDIUMTEXT(), "mysql", "mariadb"), nullable=False),
    )
    return UserTables(metadata, table, _tokens_table(metadata, prefix), UserColumns())


class DatabaseUserStore(UserStore):
    """Password accounts in SQLite, PostgreSQL or MariaDB/MySQL.

    Args:
        url: a database URL or an ``AsyncEngine`` (the session store's ``store.engine``).
        tables: from :func:`define_user_tables`; the built-in tables under
            ``table_prefix`` by default.
        table_prefix: prefix of the built-in tables.
        operation_timeout: seconds a call may take before it is ``StoreUnavailableError``.
    """

    user_store_type: ClassVar[str] = "sqlalchemy"

    def __init__(
        self,
        url: str | URL | AsyncEngine,
        *,
        tables: UserTables | None = None,
        table_prefix: str = DEFAULT_PREFIX,
        operation_timeout: float = 5.0,
    ) -> None:
        self.tables = tables or define_user_tables(MetaData(), prefix=table_prefix)
        self.db = Database(url, self.tables.metadata, operation_timeout)
        self._c = self.tables.columns
        users = self.tables.users
        self._id_col = users.c[self._c.id]
        self._int_ids = self._python_type(self._id_col) is int

    @staticmethod
    def _python_type(column: Column[Any]) -> type | None:
        try:
            return column.type.python_type
        except NotImplementedError:
            return None

    async def create_tables(self) -> None:
        """Create the package's tables where missing (never an app's own users table)."""
        await self.db.create_tables(self.tables.owned)

    async def drop_tables(self) -> None:
        """Drop the package's tables (tests, uninstall)."""
        await self.db.drop_tables(self.tables.owned)

    async def aclose(self) -> None:
        await self.db.aclose()

    # --- conversions ---------------------------------------------------------------------

    def _id_value(self, user_id: UserId) -> Any:
        """``user_id`` as the id column wants it; ``None`` when it cannot be one."""
        kind = self._python_type(self._id_col)
        try:
            if kind is int:
                return None if isinstance(user_id, bool) else int(user_id)
            if kind is uuid.UUID:
                return uuid.UUID(str(user_id))
        except ValueError:
            return None
        return str(user_id)

    def _user_id(self, value: Any) -> UserId:
        return value if isinstance(value, int) and not isinstance(value, bool) else str(value)

    def _record(self, row: Any) -> UserRecord:
        c = self._c
        mapping = row._mapping
        data: dict[str, Any] = {}
        if c.data_json:
            raw = mapping[c.data_json]
            data.update(json.loads(raw) if isinstance(raw, str) and raw else raw or {})
        for name in c.data or ():
            data[name] = mapping[name]
        return UserRecord(
            user_id=self._user_id(mapping[c.id]),
            login=mapping[c.login],
            password_hash=mapping[c.password_hash],
            email=mapping[c.email] if c.email else None,
            verified=bool(mapping[c.verified]),
            credential_version=int(mapping[c.credential_version] or 0),
            data=data,
        )

    def _login_clause(self, login: str) -> Any:
        users, c = self.tables.users, self._c
        if c.login_key:
            return users.c[c.login_key] == login_key(login)
        return users.c[c.login] == login

    async def _select(self, conn: AsyncConnection, clause: Any) -> UserRecord | None:
        row = (await conn.execute(select(self.tables.users).where(clause))).first()
        return self._record(row) if row is not None else None

    # --- the contract --------------------------------------------------------------------

    async def get_user(self, user_id: UserId) -> UserRecord | None:
        value = self._id_value(user_id)
        if value is None:
            return None

        async def work(conn: AsyncConnection) -> UserRecord | None:
            return await self._select(conn, self._id_col == value)

        return await self.db.run("get_user", work)

    async def get_by_login(self, login: str) -> UserRecord | None:
        async def work(conn: AsyncConnection) -> UserRecord | None:
            found = await self._select(conn, self._login_clause(login))
            return found if found is not None and found.login == login else None

        return await self.db.run("get_by_login", work)

    async def create_user(
        self,
        login: str,
        password_hash: str | None,
        *,
        email: str | None = None,
        verified: bool = False,
        data: Mapping[str, Any] | None = None,
    ) -> UserRecord:
        c = self._c
        values: dict[str, Any] = {
            c.login: login,
            c.password_hash: password_hash,
            c.verified: verified,
            c.credential_version: 0,
        }
        if c.login_key:
            values[c.login_key] = login_key(login)
        if c.email and c.email != c.login:  # a table whose login is the address keeps it
            values[c.email] = email
        if c.data_json:
            values[c.data_json] = json.dumps(dict(data or {}))
        for name in c.data or ():
            if data and name in data:
                values[name] = data[name]
        if self._python_type(self._id_col) is uuid.UUID:
            values[c.id] = uuid.uuid4()

        async def work(conn: AsyncConnection) -> UserRecord:
            # An app's table may lack a unique index on the login: check first.
            exists = c.login_key is None and await self._select(conn, self._login_clause(login))
            if exists:
                raise UserExistsError("login taken")
            await conn.execute(insert(self.tables.users).values(**values))
            created = await self._select(conn, self._login_clause(login))
            assert created is not None
            return created

        try:
            return await self.db.run("create_user", work, lock=True)
        except sa_exc.IntegrityError:
            raise UserExistsError("login taken") from None

    async def _change(self, user_id: UserId, what: str, changes: Any) -> UserRecord | None:
        """Apply ``changes(record) -> values`` under the row's lock; the updated record."""
        value = self._id_value(user_id)
        if value is None:
            return None
        users = self.tables.users

        async def work(conn: AsyncConnection) -> UserRecord | None:
            query = select(users).where(self._id_col == value)
            if self.db.dialect != "sqlite":
                query = query.with_for_update()
            row = (await conn.execute(query)).first()
            if row is None:
                return None
            new = changes(self._record(row))
            if new is None:
                return None
            await conn.execute(update(users).where(self._id_col == value).values(**new))
            return await self._select(conn, self._id_col == value)

        return await self.db.run(what, work, lock=True)

    async def set_password_hash(
        self, user_id: UserId, password_hash: str, *, bump_version: bool
    ) -> UserRecord | None:
        c = self._c
        return await self._change(
            user_id,
            "set_password_hash",
            lambda r: {
                c.password_hash: password_hash,
                c.credential_version: r.credential_version + (1 if bump_version else 0),
            },
        )

    async def set_email(self, user_id: UserId, email: str | None) -> UserRecord | None:
        c = self._c
        if not c.email:
            raise NotImplementedError("this users table has no e-mail column")
        return await self._change(
            user_id,
            "set_email",
            lambda r: {
                c.email: email,
                c.verified: False,
                c.credential_version: r.credential_version + 1,
            },
        )

    async def mark_verified(self, user_id: UserId, credential_version: int) -> bool:
        c = self._c
        done = await self._change(
            user_id,
            "mark_verified",
            lambda r: {c.verified: True} if r.credential_version == credential_version else None,
        )
        return done is not None

    async def bump_credential_version(self, user_id: UserId) -> int | None:
        c = self._c
        done = await self._change(
            user_id,
            "bump_credential_version",
            lambda r: {c.credential_version: r.credential_version + 1},
        )
        return done.credential_version if done is not None else None

    async def save_token(self, token: AccountToken) -> None:
        user, kind = (
            (str(token.user_id), "int")
            if isinstance(token.user_id, int)
            else (token.user_id, "str")
        )
        values = {
            "token_hash": token.token_hash,
            "purpose": token.purpose,
            "user_id": user,
            "user_id_type": kind,
            "credential_version": token.credential_version,
            "expires_at": token.expires_at.astimezone(UTC),
        }

        async def work(conn: AsyncConnection) -> None:
            await conn.execute(insert(self.tables.tokens).values(**values))

        await self.db.run("save_token", work)

    async def consume_token(self, token_hash: str) -> AccountToken | None:
        tokens = self.tables.tokens

        async def work(conn: AsyncConnection) -> AccountToken | None:
            row = (
                await conn.execute(select(tokens).where(tokens.c.token_hash == token_hash))
            ).first()
            if row is None:
                return None
            # Only the caller whose DELETE removed the row gets the token: single use.
            gone = await conn.execute(delete(tokens).where(tokens.c.token_hash == token_hash))
            if gone.rowcount != 1:
                return None
            expires = row.expires_at
            return AccountToken(
                token_hash=row.token_hash,
                purpose=row.purpose,
                user_id=int(row.user_id) if row.user_id_type == "int" else row.user_id,
                credential_version=int(row.credential_version),
                expires_at=expires.replace(tzinfo=UTC) if expires.tzinfo is None else expires,
            )

        return await self.db.run("consume_token", work)

    async def cleanup_expired_tokens(self) -> int:
        """Delete expired account tokens; run it now and then."""
        tokens = self.tables.tokens

        async def work(conn: AsyncConnection) -> int:
            done = await conn.execute(
                delete(tokens).where(tokens.c.expires_at <= datetime.now(UTC))
            )
            return int(done.rowcount or 0)

        return await self.db.run("cleanup_expired_tokens", work)


__all__ = [
    "DatabaseUserStore",
    "UserColumns",
    "UserTables",
    "define_user_tables",
    "login_key",
]
