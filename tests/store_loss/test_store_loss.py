"""Per store: revoke, log out, rotate, trigger reuse; lose the data; nothing comes back.

Each store loses its data the way it does in production: the memory store with its
process (a new app), a Redis server of our own killed and restarted without persistence
or flushed, a Redis Cluster of our own flushed, SQL tables emptied, and a PostgreSQL
store rolled back to an older copy of its tables (a restored backup), which the
operator answers with ``new_generation()``.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from loss_app import build_store, create_app
from sqlalchemy import delete, insert, select

from fastsecure.testing import service_unavailable
from fastsecure_redis.testing import Cluster, RedisServer, require_binaries, start_cluster

pytestmark = pytest.mark.asyncio

POSTGRES_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"


@dataclass
class Held:
    """What a client holds, sorted by what the server must say about it."""

    revoked_access: list[str] = field(default_factory=list)
    revoked_refresh: list[str] = field(default_factory=list)
    revoked_sessions: list[str] = field(default_factory=list)
    live_access: list[str] = field(default_factory=list)
    live_refresh: list[str] = field(default_factory=list)
    live_sessions: list[str] = field(default_factory=list)


def client_for(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def jwt_login(c: httpx.AsyncClient, user: int) -> dict[str, str]:
    response = await c.post("/login/jwt", json={"user_id": user})
    assert response.status_code == 200
    tokens: dict[str, str] = response.json()
    return tokens


async def refresh(c: httpx.AsyncClient, token: str) -> httpx.Response:
    return await c.post("/refresh/jwt", json={"refresh_token": token})


async def session_login(c: httpx.AsyncClient, user: int) -> str:
    response = await c.post("/login/session", json={"user_id": user})
    assert response.status_code == 200
    return str(response.json()["session_id"])


async def session_status(c: httpx.AsyncClient, sid: str) -> int:
    return (await c.get("/session/me", headers={"Cookie": f"session_id={sid}"})).status_code


async def do_everything(c: httpx.AsyncClient) -> Held:
    """Every way a credential ends, through the app; each checked refused before the loss."""
    held = Held()
    live = await jwt_login(c, 1)
    held.live_access.append(live["access_token"])
    held.live_refresh.append(live["refresh_token"])

    out = await jwt_login(c, 2)  # logout
    assert (await c.post("/logout/jwt", json={"access_token": out["access_token"]})).json()
    held.revoked_access.append(out["access_token"])
    held.revoked_refresh.append(out["refresh_token"])

    rotated = await jwt_login(c, 3)  # rotation: the first refresh token is spent
    response = await refresh(c, rotated["refresh_token"])
    assert response.status_code == 200
    held.revoked_refresh.append(rotated["refresh_token"])
    held.live_access.append(response.json()["access_token"])
    held.live_refresh.append(response.json()["refresh_token"])

    reused = await jwt_login(c, 4)  # reuse detection: the whole family dies
    successor = (await refresh(c, reused["refresh_token"])).json()
    assert (await refresh(c, reused["refresh_token"])).status_code == 401
    held.revoked_access += [reused["access_token"], successor["access_token"]]
    held.revoked_refresh += [reused["refresh_token"], successor["refresh_token"]]

    held.live_sessions.append(await session_login(c, 10))
    logged_out = await session_login(c, 11)
    assert (await c.post("/logout/session", json={"session_id": logged_out})).json()["revoked"]
    everywhere = [await session_login(c, 12) for _ in range(2)]
    assert (await c.post("/logout/everywhere", json={"user_id": 12})).json()["ended"] == 2
    device = await session_login(c, 13)
    assert (await c.post("/revoke/device", json={"user_id": 13})).json()["revoked"]
    held.revoked_sessions += [logged_out, *everywhere, device]

    for token in held.revoked_access:
        assert (await c.get("/jwt/me", headers=bearer(token))).status_code == 401
    for sid in held.revoked_sessions:
        assert await session_status(c, sid) == 401
    for token in held.live_access:
        assert (await c.get("/jwt/me", headers=bearer(token))).status_code == 200
    return held


async def assert_nothing_comes_back(c: httpx.AsyncClient, held: Held) -> None:
    """After the loss: every credential refused (the live ones too), a fresh login works."""
    for token in held.revoked_access + held.live_access:
        assert (await c.get("/jwt/me", headers=bearer(token))).status_code == 401
    for token in held.revoked_refresh + held.live_refresh:
        assert (await refresh(c, token)).status_code == 401
    for sid in held.revoked_sessions + held.live_sessions:
        assert await session_status(c, sid) == 401
    fresh = await jwt_login(c, 1)
    assert (await c.get("/jwt/me", headers=bearer(fresh["access_token"]))).status_code == 200
    renewed = await refresh(c, fresh["refresh_token"])
    assert renewed.status_code == 200
    assert (
        await c.get("/jwt/me", headers=bearer(renewed.json()["access_token"]))
    ).status_code == 200
    assert await session_status(c, await session_login(c, 10)) == 200


async def run(store: Any, lose: Callable[[], Awaitable[None]]) -> None:
    async with client_for(create_app(store)) as c:
        held = await do_everything(c)
        await lose()
        await assert_nothing_comes_back(c, held)


async def test_memory_restart() -> None:
    async with client_for(create_app()) as c:
        held = await do_everything(c)
    async with client_for(create_app()) as c:  # the process restarted
        await assert_nothing_comes_back(c, held)


# --- Redis: our own server ---------------------------------------------------------------


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server without persistence (the default of many images), ours to kill."""
    require_binaries()
    server = RedisServer(tmp_path / "redis", extra=("--appendonly", "no"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def redis_store(own_redis: RedisServer) -> AsyncIterator[Any]:
    store = build_store("redis", own_redis.url, "loss:")
    yield store
    await store.aclose()


async def test_redis_killed_and_restarted_empty(own_redis: RedisServer, redis_store: Any) -> None:
    async def lose() -> None:
        own_redis.stop()
        own_redis.start()

    await run(redis_store, lose)


async def test_redis_flushdb(redis_store: Any) -> None:
    async def lose() -> None:
        await redis_store.client.flushdb()

    await run(redis_store, lose)


@pytest.fixture(scope="module")
def own_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    require_binaries()
    cluster = start_cluster(tmp_path_factory.mktemp("loss-cluster"))
    yield cluster
    cluster.stop()


async def test_redis_cluster_flushed(own_cluster: Cluster) -> None:
    store = build_store("redis", own_cluster.url, "loss:", cluster=True)

    async def lose() -> None:
        for server in own_cluster.live():  # our own cluster: every node emptied
            node = redis.Redis(host="127.0.0.1", port=server.port)
            node.flushall()
            node.close()

    try:
        await run(store, lose)
    finally:
        await store.aclose()


# --- SQL: our own tables ---------------------------------------------------------------------


async def sql_store(url: str) -> Any:
    store = build_store("sql", url, "loss_" + secrets.token_hex(4) + "_")
    try:
        await store.create_tables()
    except Exception as exc:  # any failure here means the service is missing
        await store.aclose()
        service_unavailable(f"{url} is unreachable: {type(exc).__name__}")
    return store


async def empty_tables(store: Any) -> None:
    async with store.engine.begin() as conn:
        for table in store.tables.all:
            await conn.execute(delete(table))


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_sql_tables_emptied(backend: str, tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'loss.db'}" if backend == "sqlite" else POSTGRES_URL
    store = await sql_store(url)
    try:
        await run(store, lambda: empty_tables(store))
    finally:
        await store.drop_tables()
        await store.aclose()


async def test_postgres_older_backup_restored_then_new_generation() -> None:
    """A restore brings back what was live at the backup: new_generation() forgets it all."""
    store = await sql_store(POSTGRES_URL)
    try:
        snapshot: dict[Any, list[Any]] = {}

        async def take_snapshot() -> None:
            async with store.engine.connect() as conn:
                for table in store.tables.all:
                    snapshot[table] = [dict(r._mapping) for r in await conn.execute(select(table))]

        async def restore_then_new_generation() -> None:
            async with store.engine.begin() as conn:
                for table in store.tables.all:
                    await conn.execute(delete(table))
                    if snapshot[table]:
                        await conn.execute(insert(table), snapshot[table])
            await store.new_generation()

        async with client_for(create_app(store)) as c:
            early = await jwt_login(c, 20)
            early_session = await session_login(c, 21)
            await take_snapshot()  # the backup: both still live
            held = await do_everything(c)
            assert (
                await c.post("/logout/jwt", json={"access_token": early["access_token"]})
            ).json()
            assert (await c.post("/logout/session", json={"session_id": early_session})).json()
            held.revoked_access.append(early["access_token"])
            held.revoked_refresh.append(early["refresh_token"])
            held.revoked_sessions.append(early_session)
            await restore_then_new_generation()
            await assert_nothing_comes_back(c, held)
    finally:
        await store.drop_tables()
        await store.aclose()
