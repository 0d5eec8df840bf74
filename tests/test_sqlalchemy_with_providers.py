"""Through the session provider and a FastAPI app: limits, hot path, restart, outage."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import Depends, FastAPI

from fastsecure import AuthenticationManager, AuthenticationResult, StoreUnavailableError
from fastsecure.stores import utcnow
from fastsecure_session import SessionAuthenticationProvider
from fastsecure_sqlalchemy import DatabaseSessionStore
from fastsecure_sqlalchemy.testing import backend as backend
from fastsecure_sqlalchemy.testing import service as service
from fastsecure_sqlalchemy.testing import statement_log as statement_log
from fastsecure_sqlalchemy.testing import store as store

pytestmark = pytest.mark.services


def build_app(
    store: DatabaseSessionStore, **options: Any
) -> tuple[FastAPI, SessionAuthenticationProvider]:
    provider = SessionAuthenticationProvider(session_store=store, **options)
    manager = AuthenticationManager(autoload=False)
    manager.register_provider("session", provider)
    manager.add_requirement("/api/**", ["session"])
    app = FastAPI()

    @app.get("/api/me")
    async def me(auth: AuthenticationResult = Depends(manager.requires_auth)) -> dict[str, Any]:
        return {"user_id": auth.user_id}

    return app, provider


async def login(provider: SessionAuthenticationProvider, user_id: Any) -> str:
    result = await provider.authenticate({"user_id": user_id})
    assert result.success and result.session_id
    return result.session_id


def client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")


@pytest.mark.parametrize("policy", ["evict_oldest", "refuse"])
async def test_200_concurrent_logins_through_the_provider(
    store: DatabaseSessionStore, policy: str
) -> None:
    # 200 logins at once are queued for the pool; what is tested is the limit's atomicity,
    # not how long a loaded 2-core machine takes to serialise SQLite writes, so the queue
    # gets time (the default bounds answer 503 under such a load, as they should).
    patient = DatabaseSessionStore(
        store.engine.url.render_as_string(hide_password=False),
        table_prefix=store.tables.prefix,
        operation_timeout=60.0,
        pool_timeout=60.0,
    )
    provider = SessionAuthenticationProvider(
        session_store=patient, max_sessions_per_user=3, limit_policy=policy
    )  # type: ignore[arg-type]
    try:
        results = await asyncio.gather(
            *(provider.authenticate({"user_id": 1234}) for _ in range(200))
        )
        assert len(await store.get_user_sessions(1234)) == 3
        assert sum(r.success for r in results) == (200 if policy == "evict_oldest" else 3)
    finally:
        await patient.aclose()


async def test_session_check_is_one_select_and_no_write(
    store: DatabaseSessionStore, statement_log
) -> None:
    app, provider = build_app(store)
    session_id = await login(provider, 7)
    log = statement_log(store)
    async with client(app) as http:
        for _ in range(5):
            response = await http.get(
                "/api/me", headers={"Cookie": f"__Host-session_id={session_id}"}
            )
            assert response.status_code == 200 and response.json() == {"user_id": 7}
    assert len(log.statements) == 5, log.statements
    for statement in log.statements:
        assert (
            statement.startswith("SELECT ")
            and f"{store.tables.sessions.name}.id_hash = " in statement
        )
    log.clear()
    async with client(app) as http:
        response = await http.get("/api/me", headers={"Cookie": "__Host-session_id=" + "x" * 43})
    assert response.status_code == 401
    assert len(log.statements) == 1


async def test_sqlite_sessions_survive_a_restart(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'restart.db'}"
    first = DatabaseSessionStore(url)
    await first.create_tables()
    app, provider = build_app(first)
    session_id = await login(provider, 99)
    await first.revoke_token("revoked-jti", utcnow() + timedelta(hours=1))
    await first.aclose()

    second = DatabaseSessionStore(url)  # a new process would build exactly this
    app, _ = build_app(second)
    async with client(app) as http:
        response = await http.get("/api/me", headers={"Cookie": f"__Host-session_id={session_id}"})
    assert response.status_code == 200 and response.json() == {"user_id": 99}
    assert await second.is_revoked("revoked-jti")
    await second.aclose()


class CuttableProxy:
    """A TCP proxy on a loopback port in front of a real server; ``cut`` makes it unreachable.

    ``cut()`` stops listening and drops every open connection (connects are then refused);
    ``blackhole()`` keeps accepting but forwards nothing (connections hang); ``restore()``
    forwards again.
    """

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.port = 0
        self.server: asyncio.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()
        self.tasks: set[asyncio.Task[None]] = set()
        self.hold = False

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.add(writer)
        if self.hold:
            return  # accepted, never answered
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            writer.close()
            return
        self.writers.add(up_writer)
        for task in (
            asyncio.create_task(self._pipe(reader, up_writer)),
            asyncio.create_task(self._pipe(up_reader, writer)),
        ):
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def _drop_all(self) -> None:
        for writer in list(self.writers):
            writer.close()
        self.writers.clear()
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)

    async def cut(self) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()
        self.server = None
        await self._drop_all()

    async def blackhole(self) -> None:
        self.hold = True
        await self._drop_all()

    async def restore(self) -> None:
        self.hold = False
        if self.server is None:
            await self.start()

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
        await self._drop_all()


@pytest.fixture
async def pg_proxy(service: Any) -> AsyncIterator[CuttableProxy]:
    service("postgresql")
    proxy = CuttableProxy(5432)
    await proxy.start()
    yield proxy
    await proxy.close()


@pytest.fixture
async def proxied_store(pg_proxy: CuttableProxy) -> AsyncIterator[DatabaseSessionStore]:
    store = DatabaseSessionStore(
        f"postgresql+asyncpg://postgres@127.0.0.1:{pg_proxy.port}/test",
        table_prefix=f"t{uuid.uuid4().hex[:10]}_",
        operation_timeout=1.5,
        connect_timeout=1.0,
        pool_timeout=1.0,
    )
    await store.create_tables()
    yield store
    await pg_proxy.restore()
    await store.drop_tables()
    await store.aclose()


async def timed_get(http: httpx.AsyncClient, session_id: str) -> tuple[int, float]:
    started = time.perf_counter()
    response = await asyncio.wait_for(
        http.get("/api/me", headers={"Cookie": f"__Host-session_id={session_id}"}), timeout=10
    )
    return response.status_code, time.perf_counter() - started


async def test_outage_answers_503_quickly_then_recovers(
    pg_proxy: CuttableProxy, proxied_store: DatabaseSessionStore
) -> None:
    app, provider = build_app(proxied_store)
    session_id = await login(provider, 1)
    async with client(app) as http:
        assert (await timed_get(http, session_id))[0] == 200

        await pg_proxy.cut()  # listener closed, live connections dropped mid-pool
        for _ in range(3):
            status, elapsed = await timed_get(http, session_id)
            assert status == 503
            assert elapsed < 1.0, f"took {elapsed:.2f}s to answer 503"
        with pytest.raises(StoreUnavailableError):
            await provider.authenticate({"user_id": 1})

        await pg_proxy.restore()
        status, _ = await timed_get(http, session_id)
        assert status == 200, "the pool must heal by itself after the outage"
        assert (await timed_get(http, session_id))[0] == 200


async def test_hanging_database_is_bounded_by_the_operation_timeout(
    pg_proxy: CuttableProxy, proxied_store: DatabaseSessionStore
) -> None:
    app, provider = build_app(proxied_store)
    session_id = await login(provider, 2)
    async with client(app) as http:
        await pg_proxy.blackhole()  # connections accepted, never answered
        status, elapsed = await timed_get(http, session_id)
        assert status == 503
        assert elapsed < 1.5 + 1.0, f"took {elapsed:.2f}s: the operation timeout must bound it"
        await pg_proxy.restore()
        assert (await timed_get(http, session_id))[0] == 200
