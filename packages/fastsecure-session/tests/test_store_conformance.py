from collections.abc import AsyncIterator

import pytest

from fastsecure import MemoryTokenStore
from fastsecure.stores import SessionStore, TokenStore
from fastsecure.testing.conformance import SessionStoreConformance, TokenStoreConformance
from fastsecure_session import MemorySessionStore


class TestMemorySessionStore(SessionStoreConformance):
    @pytest.fixture
    async def session_store(self) -> AsyncIterator[SessionStore]:
        store = MemorySessionStore()
        yield store
        await store.aclose()

    async def stored_text(self, store: SessionStore) -> str:
        assert isinstance(store, MemorySessionStore)
        return repr(store._sessions) + repr(store._by_user)


class TestMemoryTokenStore(TokenStoreConformance):
    @pytest.fixture
    async def token_store(self) -> AsyncIterator[TokenStore]:
        store = MemoryTokenStore()
        yield store
        await store.aclose()
