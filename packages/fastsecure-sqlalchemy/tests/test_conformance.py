"""The core's store conformance suites, on SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

from typing import Any

import pytest

from fastsecure import SessionStore
from fastsecure.testing.conformance import SessionStoreConformance, TokenStoreConformance
from fastsecure_sqlalchemy import DatabaseSessionStore


class TestDatabaseSessionStore(SessionStoreConformance):
    @pytest.fixture
    async def session_store(self, backend: str, make_store: Any) -> DatabaseSessionStore:
        return await make_store(backend)

    async def stored_text(self, store: SessionStore) -> str:
        assert isinstance(store, DatabaseSessionStore)
        return await self._dump(store)

    @pytest.fixture(autouse=True)
    def _bind_dump(self, dump: Any) -> None:
        self._dump = dump


class TestDatabaseTokenStore(TokenStoreConformance):
    @pytest.fixture
    async def token_store(self, backend: str, make_store: Any) -> DatabaseSessionStore:
        return await make_store(backend)
