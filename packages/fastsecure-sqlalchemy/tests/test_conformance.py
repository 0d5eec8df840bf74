"""The core's store conformance suites, on SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import delete, func, select

from fastsecure import SessionStore, TokenStore
from fastsecure.stores import hash_session_id
from fastsecure.testing.conformance import SessionStoreConformance, TokenStoreConformance
from fastsecure_sqlalchemy import DatabaseSessionStore


async def empty_tables(store: Any) -> Any:
    """The store's data lost: every row of its own tables deleted (a truncate)."""
    assert isinstance(store, DatabaseSessionStore)
    async with store.engine.begin() as conn:
        for table in store.tables.all:
            await conn.execute(delete(table))
    return store


class TestDatabaseSessionStore(SessionStoreConformance):
    @pytest.fixture
    async def session_store(self, backend: str, make_store: Any) -> DatabaseSessionStore:
        return await make_store(backend)

    async def lose_session_data(self, store: SessionStore) -> SessionStore:
        return await empty_tables(store)  # type: ignore[no-any-return]

    async def stored_text(self, store: SessionStore) -> str:
        assert isinstance(store, DatabaseSessionStore)
        return await self._dump(store)

    @pytest.fixture(autouse=True)
    def _bind_dump(self, dump: Any) -> None:
        self._dump = dump


class TestDatabaseTokenStore(TokenStoreConformance):
    async def lose_token_data(self, store: TokenStore) -> TokenStore:
        return await empty_tables(store)  # type: ignore[no-any-return]

    async def indexed_families(self, store: TokenStore, user_id: str) -> int:
        assert isinstance(store, DatabaseSessionStore)
        owners = store.tables.user_families
        stmt = (
            select(func.count())
            .select_from(owners)
            .where(owners.c.user_hash == hash_session_id(user_id))
        )
        async with store.engine.connect() as conn:
            return int((await conn.execute(stmt)).scalar_one())

    @pytest.fixture
    async def token_store(self, backend: str, make_store: Any) -> DatabaseSessionStore:
        return await make_store(backend)
