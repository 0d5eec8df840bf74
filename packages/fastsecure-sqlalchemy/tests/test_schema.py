from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import DateTime, MetaData, inspect
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

import fastsecure_sqlalchemy
from fastsecure.stores import AccessCheck
from fastsecure_sqlalchemy import DatabaseSessionStore, define_tables


def test_default_metadata_holds_every_table_with_its_indexes() -> None:
    names = set(fastsecure_sqlalchemy.metadata.tables)
    assert names == {
        "fastsecure_sessions",
        "fastsecure_session_locks",
        "fastsecure_revoked_tokens",
        "fastsecure_revoked_families",
        "fastsecure_used_refresh_tokens",
        "fastsecure_refresh_families",
        "fastsecure_token_generation",
        "fastsecure_user_families",
    }
    owners = fastsecure_sqlalchemy.schema.user_families_table
    assert [c.name for c in owners.primary_key.columns] == ["family_hash"]
    assert {tuple(c.name for c in i.columns) for i in owners.indexes} == {
        ("user_hash",),
        ("expires_at",),
    }
    sessions = fastsecure_sqlalchemy.sessions_table
    assert [c.name for c in sessions.primary_key.columns] == ["id_hash"]
    indexed = {tuple(c.name for c in index.columns) for index in sessions.indexes}
    assert ("user_id", "user_id_type") in indexed
    assert ("expires_at",) in indexed
    for column in ("created_at", "expires_at", "last_seen"):
        column_type = sessions.c[column].type
        assert isinstance(column_type, DateTime)
        assert column_type.timezone


def test_define_tables_on_the_apps_metadata() -> None:
    app_metadata = MetaData()
    tables = define_tables(app_metadata, prefix="auth_")
    assert tables.metadata is app_metadata
    assert "auth_sessions" in app_metadata.tables
    assert tables.sessions is app_metadata.tables["auth_sessions"]


@pytest.mark.parametrize("prefix", ["", "1x_", "a-b_", "x; drop table y", "a" * 31])
def test_bad_prefixes_are_refused(prefix: str) -> None:
    with pytest.raises(ValueError, match="prefix"):
        define_tables(MetaData(), prefix=prefix)


async def test_create_tables_on_every_backend(backend: str, make_store, statement_log) -> None:
    store = await make_store(backend)
    async with store.engine.connect() as conn:
        names, indexes = await conn.run_sync(
            lambda sync: (
                set(inspect(sync).get_table_names()),
                {i["name"] for i in inspect(sync).get_indexes(store.tables.sessions.name)},
            )
        )
    assert {t.name for t in store.tables.all} <= names
    prefix = store.tables.prefix
    assert {f"ix_{prefix}sessions_user_id", f"ix_{prefix}sessions_expires_at"} <= indexes
    await store.create_tables()  # idempotent


async def test_tables_on_app_metadata_via_app_create_all(tmp_path: Path) -> None:
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'app.db'}")
    app_metadata = MetaData()
    tables = define_tables(app_metadata, prefix="app_")
    async with engine.begin() as conn:
        await conn.run_sync(app_metadata.create_all)
    store = DatabaseSessionStore(async_sessionmaker(engine), tables=tables)
    assert store.engine is engine
    assert await store.create_session(7, "sid-" + "x" * 40, _future(), {})
    assert (await store.get_session("sid-" + "x" * 40) or {})["user_id"] == 7
    await store.aclose()  # a borrowed engine stays usable
    async with engine.connect() as conn:
        await conn.exec_driver_sql("SELECT 1")
    await engine.dispose()


async def test_create_tables_adds_user_families_to_an_older_deployment(tmp_path: Path) -> None:
    """A database created before user_families: create_tables adds it, touching nothing else."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'old.db'}"
    store = DatabaseSessionStore(url, table_prefix="old_")
    older = [t for t in store.tables.all if t is not store.tables.user_families]
    async with store.engine.begin() as conn:
        await conn.run_sync(store.tables.metadata.create_all, tables=older)
    later = _future()
    await store.start_family("before", "rt", later)  # a login of the older version
    await store.create_tables()
    async with store.engine.connect() as conn:
        names = await conn.run_sync(lambda sync: set(inspect(sync).get_table_names()))
    assert store.tables.user_families.name in names
    generation = await store.start_family("after", "rt", later, user_id=7)
    assert await store.revoke_user_families(7, later) == 1
    assert await store.check_access("jti", "before", generation) is AccessCheck.VALID
    assert await store.check_access("jti", "after", generation) is AccessCheck.REVOKED
    await store.aclose()


async def test_auto_create_tables(tmp_path: Path) -> None:
    store = DatabaseSessionStore(
        f"sqlite+aiosqlite:///{tmp_path / 'auto.db'}", table_prefix="auto_", auto_create_tables=True
    )
    assert await store.get_session("nope") is None
    assert await store.create_session("u", "s" * 43, _future(), {})
    await store.aclose()


def test_unbound_sessionmaker_is_refused() -> None:
    with pytest.raises(ValueError, match="bound"):
        DatabaseSessionStore(async_sessionmaker())


def test_non_positive_timeout_is_refused() -> None:
    with pytest.raises(ValueError, match="timeout"):
        DatabaseSessionStore("sqlite+aiosqlite://", operation_timeout=0)


def _future():
    from datetime import timedelta

    from fastsecure.stores import utcnow

    return utcnow() + timedelta(hours=1)
