"""A database that cannot serve is a 503 on every method: unreachable, or answering but refusing.

Issue 12/25: a database that answered but refused (missing tables, read-only, permission
denied) raised the raw driver error, which read as 401 for a valid credential and 500 for
a logout. The read-only and permission cases need a server of our own (tests/faults).
"""

from __future__ import annotations

import logging
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from fastsecure import StoreUnavailableError
from fastsecure.testing.conformance import StoreFailureConformance
from fastsecure_sqlalchemy import DatabaseSessionStore
from fastsecure_sqlalchemy.testing import backend_url, unique_prefix

pytestmark = pytest.mark.services


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
async def tableless_store(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[DatabaseSessionStore]:
    """A reachable database without the store's tables (never created, or dropped)."""
    store = DatabaseSessionStore(
        backend_url(str(request.param), tmp_path), table_prefix=unique_prefix()
    )
    yield store
    await store.aclose()


class TestMissingTables(StoreFailureConformance):
    """SQLSTATE 42P01, MariaDB 1146, SQLite "no such table": the schema is missing."""

    failure_bound = 5.0 + 1.0

    @pytest.fixture
    async def failing_store(self, tableless_store: DatabaseSessionStore) -> DatabaseSessionStore:
        return tableless_store


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(params=["postgresql", "mariadb"])
async def unreachable_store(request: pytest.FixtureRequest) -> AsyncIterator[DatabaseSessionStore]:
    port = _closed_port()
    url = (
        f"postgresql+asyncpg://postgres@127.0.0.1:{port}/test"
        if request.param == "postgresql"
        else f"mysql+aiomysql://root@127.0.0.1:{port}/test"
    )
    store = DatabaseSessionStore(url, operation_timeout=1.0, connect_timeout=0.5)
    yield store
    await store.aclose()


class TestUnreachableServer(StoreFailureConformance):
    """Connection refused: 503 at once, well within operation_timeout."""

    failure_bound = 1.0 + 0.5

    @pytest.fixture
    async def failing_store(self, unreachable_store: DatabaseSessionStore) -> DatabaseSessionStore:
        return unreachable_store


async def test_a_failure_is_logged_once_without_ids_or_statements(
    tableless_store: DatabaseSessionStore, caplog: pytest.LogCaptureFixture
) -> None:
    session_id = "secret-session-id-" + "q" * 30
    caplog.set_level(logging.DEBUG, logger="fastsecure.sqlalchemy")
    for _ in range(3):
        with pytest.raises(StoreUnavailableError) as raised:
            await tableless_store.get_session(session_id)
    assert "schema missing" in str(raised.value)
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1, "an outage is logged once, repeats go to DEBUG"
    assert "schema missing" in warnings[0].getMessage()
    text = caplog.text + str(raised.value)
    for leak in (session_id, "SELECT", tableless_store.tables.sessions.name):
        assert leak not in text
