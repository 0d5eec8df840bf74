"""The SQL rate limiter and user store: conformance on SQLite, PostgreSQL and MariaDB,
an adapter over an app's own users table, and outages."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import Boolean, Column, Integer, MetaData, String, Table, Uuid, text

from fastsecure import StoreUnavailableError
from fastsecure.accounts import UserStore
from fastsecure.ratelimit import Backoff, RateLimit, RateLimiter
from fastsecure.testing import assert_plugin_discovered
from fastsecure.testing.conformance_accounts import RateLimiterConformance, UserStoreConformance
from fastsecure_sqlalchemy.limiter import DatabaseRateLimiter
from fastsecure_sqlalchemy.testing import backend_url, unique_prefix
from fastsecure_sqlalchemy.users import (
    DatabaseUserStore,
    UserColumns,
    define_user_tables,
    login_key,
)


def test_types_are_registered() -> None:
    assert_plugin_discovered(
        "sqlalchemy",
        kinds={"rate_limiter": ["sqlalchemy", "database"], "user_store": ["sqlalchemy"]},
    )


class TestDatabaseRateLimiter(RateLimiterConformance):
    @pytest.fixture
    async def rate_limiter(self, backend: str, tmp_path: Path) -> AsyncIterator[RateLimiter]:
        limiter = DatabaseRateLimiter(backend_url(backend, tmp_path), table_prefix=unique_prefix())
        await limiter.create_tables()
        yield limiter
        await limiter.drop_tables()
        await limiter.aclose()


class TestDatabaseUserStore(UserStoreConformance):
    @pytest.fixture
    async def user_store(self, backend: str, tmp_path: Path) -> AsyncIterator[UserStore]:
        store = DatabaseUserStore(backend_url(backend, tmp_path), table_prefix=unique_prefix())
        await store.create_tables()
        yield store
        await store.drop_tables()
        await store.aclose()


def _app_table(prefix: str, *, username: bool = True) -> Table:
    """A users table like fastapi-users' (UUID ids), plus the version column."""
    login = [Column("username", String(100), unique=True, nullable=False)] if username else []
    return Table(
        f"{prefix}app_user",
        MetaData(),
        Column("id", Uuid, primary_key=True),
        *login,
        Column("email", String(320), unique=not username, nullable=username),
        Column("hashed_password", String(1024), nullable=True),
        Column("is_active", Boolean, nullable=False, default=True),
        Column("is_verified", Boolean, nullable=False, default=False),
        Column("credential_version", Integer, nullable=False, default=0),
    )


class TestAdapterOverAnAppTable(UserStoreConformance):
    @pytest.fixture(params=["sqlite", "postgresql"])
    async def user_store(
        self, request: pytest.FixtureRequest, tmp_path: Path
    ) -> AsyncIterator[UserStore]:
        prefix = unique_prefix()
        app_users = _app_table(prefix)
        columns = UserColumns(
            id="id",
            login="username",
            login_key=None,
            password_hash="hashed_password",
            email="email",
            verified="is_verified",
            data_json=None,
            data=("is_active",),
        )
        tables = define_user_tables(
            app_users.metadata, prefix=prefix, users=app_users, columns=columns
        )
        store = DatabaseUserStore(backend_url(request.param, tmp_path), tables=tables)
        await store.db.create_tables([app_users])  # the app's migration
        await store.create_tables()
        yield store
        await store.db.drop_tables([app_users, tables.tokens])
        await store.aclose()

    # The app's table keeps its own columns: no JSON data column, so "data" holds is_active.
    @pytest.mark.asyncio
    async def test_create_then_get(self, user_store: UserStore) -> None:
        created = await user_store.create_user("zoe@example.org", "h", email="zoe@example.org")
        assert isinstance(created.user_id, str) and uuid.UUID(created.user_id)
        assert created.data == {"is_active": True}
        assert await user_store.get_user(created.user_id) == created
        assert await user_store.get_by_login("zoe@example.org") == created
        assert await user_store.get_user("not-a-uuid") is None


async def test_fastapi_users_table_with_the_address_as_login(tmp_path: Path) -> None:
    prefix = unique_prefix()
    app_users = _app_table(prefix, username=False)
    columns = UserColumns(
        login="email",
        login_key=None,
        password_hash="hashed_password",
        email="email",
        verified="is_verified",
        data_json=None,
    )
    tables = define_user_tables(app_users.metadata, users=app_users, columns=columns)
    store = DatabaseUserStore(backend_url("sqlite", tmp_path), tables=tables)
    await store.db.create_tables([app_users, tables.tokens])
    try:
        created = await store.create_user("zoe@example.org", "h", email=None)
        assert created.email == created.login == "zoe@example.org"
        assert await store.get_by_login("zoe@example.org") == created
    finally:
        await store.aclose()


def test_an_app_table_must_have_the_columns() -> None:
    table = Table("users", MetaData(), Column("id", Integer, primary_key=True))
    with pytest.raises(ValueError, match="credential_version"):
        define_user_tables(table.metadata, users=table, columns=UserColumns(login_key=None))
    with pytest.raises(ValueError):
        define_user_tables(table.metadata, users=table)


async def test_no_login_or_address_is_stored_in_clear_where_not_needed(tmp_path: Path) -> None:
    url = backend_url("sqlite", tmp_path)
    limiter = DatabaseRateLimiter(url, auto_create_tables=True)
    store = DatabaseUserStore(url)
    await store.create_tables()
    try:
        await limiter.attempt("login:address:203.0.113.9", Backoff())
        await limiter.hit("register:address:203.0.113.9", RateLimit(3, 60))
        await store.create_user("zoe@example.org", "h")
        async with limiter.db.engine.connect() as conn:
            rows = (await conn.execute(text("SELECT key_hash FROM fastsecure_rate_limits"))).all()
            key = (await conn.execute(text("SELECT login_key FROM fastsecure_users"))).scalar()
        assert len(rows) == 2 and not any("203.0.113" in r[0] for r in rows)
        assert key == login_key("zoe@example.org")
        assert await limiter.cleanup_expired() == 0
    finally:
        await limiter.aclose()
        await store.aclose()


async def test_an_unreachable_database_is_store_unavailable() -> None:
    url = "postgresql+asyncpg://postgres@127.0.0.1:1/test"
    limiter = DatabaseRateLimiter(url, operation_timeout=2)
    store = DatabaseUserStore(url, operation_timeout=2)
    try:
        with pytest.raises(StoreUnavailableError):
            await limiter.attempt("k", Backoff())
        with pytest.raises(StoreUnavailableError):
            await limiter.hit("k", RateLimit(1, 1))
        with pytest.raises(StoreUnavailableError):
            await store.get_by_login("zoe@example.org")
        with pytest.raises(StoreUnavailableError):
            await store.create_user("zoe@example.org", "h")
    finally:
        await limiter.aclose()
        await store.aclose()


async def test_a_missing_table_is_store_unavailable(tmp_path: Path) -> None:
    limiter = DatabaseRateLimiter(backend_url("sqlite", tmp_path), table_prefix="never_created_")
    try:
        with pytest.raises(StoreUnavailableError):
            await limiter.attempt("k", Backoff())
    finally:
        await limiter.aclose()
