"""Test helpers: a store on each backend, under a table prefix unique to the test.

Test against real databases, never a fake. PostgreSQL and MariaDB are loopback services
(``FASTSECURE_TEST_POSTGRES_URL`` / ``FASTSECURE_TEST_MARIADB_URL`` override the URLs);
when one is down the test is skipped, or fails when CI=true (a skipped backend must never
pass CI silently). Import the fixtures into a ``conftest.py``; needs pytest.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, select
from sqlalchemy.engine import URL

from fastsecure.testing import service_unavailable

from .store import DatabaseSessionStore

PG_URL = os.environ.get(
    "FASTSECURE_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
MARIADB_URL = os.environ.get(
    "FASTSECURE_TEST_MARIADB_URL", "mysql+aiomysql://root@127.0.0.1:3306/test"
)
BACKENDS = ("sqlite", "postgresql", "mariadb")
_PORTS = {"postgresql": 5432, "mariadb": 3306}
_reachable: dict[str, bool] = {}


def require_service(backend: str) -> None:
    """Skip (or fail under CI) when the backend's loopback service does not answer."""
    port = _PORTS.get(backend)
    if port is None:
        return
    if backend not in _reachable:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                _reachable[backend] = True
        except OSError:
            _reachable[backend] = False
    if not _reachable[backend]:
        service_unavailable(f"{backend} is not reachable at 127.0.0.1:{port} (.ci/run starts it)")


def backend_url(backend: str, tmp_path: Path) -> str | URL:
    """The database URL of a backend (SQLite in ``tmp_path``); checks the service first."""
    require_service(backend)
    if backend == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'sessions.db'}"
    return PG_URL if backend == "postgresql" else MARIADB_URL


def unique_prefix() -> str:
    """A table prefix no other test uses."""
    return f"t{uuid.uuid4().hex[:10]}_"


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """Each backend in turn: sqlite, postgresql, mariadb."""
    return str(request.param)


@pytest.fixture
async def store(backend: str, tmp_path: Path) -> AsyncIterator[DatabaseSessionStore]:
    """A store with fresh tables on the current backend, dropped after."""
    db = DatabaseSessionStore(backend_url(backend, tmp_path), table_prefix=unique_prefix())
    await db.create_tables()
    try:
        yield db
    finally:
        await db.drop_tables()
        await db.aclose()


async def dump_rows(store: DatabaseSessionStore) -> str:
    """Every row of every table of the store, as text."""
    parts: list[str] = []
    async with store.engine.connect() as conn:
        for table in store.tables.all:
            for row in (await conn.execute(select(table))).all():
                parts.append(repr(tuple(row)))
    return "\n".join(parts)


class StatementLog:
    """Statements the engine sent, via ``before_cursor_execute`` (what the driver saw)."""

    def __init__(self) -> None:
        self.statements: list[str] = []

    def __call__(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        """Record one statement (the event listener)."""
        self.statements.append(" ".join(statement.split()))

    def clear(self) -> None:
        """Forget what was recorded."""
        self.statements.clear()


@pytest.fixture
def statement_log() -> Iterator[Callable[[DatabaseSessionStore], StatementLog]]:
    """``statement_log(store)`` starts recording the statements the store's engine sends."""
    attached: list[tuple[Any, StatementLog]] = []

    def attach(db: DatabaseSessionStore) -> StatementLog:
        log = StatementLog()
        event.listen(db.engine.sync_engine, "before_cursor_execute", log)
        attached.append((db.engine.sync_engine, log))
        return log

    yield attach
    for engine, log in attached:
        event.remove(engine, "before_cursor_execute", log)


@pytest.fixture
def dump() -> Callable[[DatabaseSessionStore], Any]:
    """A coroutine function: every row the store holds, as text."""
    return dump_rows


@pytest.fixture
def service() -> Callable[[str], None]:
    """``service("postgresql")``: skip, or fail under CI, when the service is down."""
    return require_service


@pytest.fixture
async def make_store(tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    """A factory ``make_store(backend, **options)``: fresh stores with tables, dropped after."""
    made: list[DatabaseSessionStore] = []

    async def make(backend: str, **options: Any) -> DatabaseSessionStore:
        options.setdefault("table_prefix", unique_prefix())
        db = DatabaseSessionStore(backend_url(backend, tmp_path), **options)
        await db.create_tables()
        made.append(db)
        return db

    yield make
    for db in made:
        try:
            await db.drop_tables()
        finally:
            await db.aclose()
