"""RedisSessionStore behind the session provider and requires_auth: limits, outage, cost."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import Depends, FastAPI, Request, Response
from redis.asyncio import Redis

from fastsecure import AuthenticationManager, AuthenticationResult
from fastsecure.stores import utcnow
from fastsecure_redis import RedisSessionStore
from fastsecure_redis.testing import delete_prefix
from fastsecure_redis.testing import redis_cluster as redis_cluster
from fastsecure_redis.testing import redis_server as redis_server
from fastsecure_redis.testing import redis_url as redis_url
from fastsecure_session import SessionAuthenticationProvider

BASE_URL = "http://testserver"
pytestmark = pytest.mark.services


@pytest.fixture
def prefix() -> str:
    """A key prefix no other test uses."""
    return f"fstest-{secrets.token_hex(4)}:"


@pytest.fixture
async def store(redis_url: str, prefix: str) -> AsyncIterator[RedisSessionStore]:
    """A RedisSessionStore on the shared Redis under a private prefix, cleaned up after."""
    store = RedisSessionStore(redis_url, prefix=prefix)
    yield store
    await delete_prefix(store.client, prefix)
    await store.aclose()


def build_app(provider: SessionAuthenticationProvider) -> FastAPI:
    """Login sets the cookie; /api/* requires the session."""
    manager = AuthenticationManager(autoload=False)
    manager.register_provider("session", provider)
    manager.add_requirement("/api/*", providers=["session"])
    app = FastAPI()

    @app.post("/login")
    async def login(body: dict[str, Any], request: Request, response: Response) -> dict[str, Any]:
        result = await manager.authenticate(
            "/api/me",
            {
                "session": {
                    "user_id": body["user_id"],
                    "user_agent": request.headers.get("user-agent"),
                }
            },
        )
        if not result.success:
            response.status_code = 403
            return {"error": result.metadata.get("error")}
        provider.set_cookie(response, result)
        return {"user_id": result.user_id}

    @app.get("/api/me")
    async def me(auth: AuthenticationResult = Depends(manager.requires_auth)) -> dict[str, Any]:
        return {"user_id": auth.user_id}

    return app


def client_for(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL)


# --- the per-user limit through the provider ------------------------------------------------


async def concurrent_logins(
    store: RedisSessionStore, user_id: Any, policy: str
) -> list[AuthenticationResult]:
    provider = SessionAuthenticationProvider(
        session_store=store,
        max_sessions_per_user=3,
        limit_policy=policy,  # type: ignore[arg-type]
    )
    return await asyncio.gather(*(provider.authenticate({"user_id": user_id}) for _ in range(200)))


@pytest.mark.parametrize("policy", ["evict_oldest", "refuse"])
async def test_200_concurrent_logins_leave_exactly_3(store: RedisSessionStore, policy: str) -> None:
    results = await concurrent_logins(store, 501, policy)
    live = await store.get_user_sessions(501)
    assert len(live) == 3
    succeeded = [r for r in results if r.success]
    assert len(succeeded) == (3 if policy == "refuse" else 200)
    alive = [r for r in succeeded if await store.get_session(r.session_id or "") is not None]
    assert len(alive) == 3


@pytest.fixture
async def cluster_store(redis_cluster: Any, prefix: str) -> AsyncIterator[RedisSessionStore]:
    store = RedisSessionStore(redis_cluster.url, cluster=True, prefix=prefix)
    yield store
    await delete_prefix(store.client, prefix)
    await store.aclose()


@pytest.mark.parametrize("policy", ["evict_oldest", "refuse"])
async def test_200_concurrent_logins_on_cluster(
    cluster_store: RedisSessionStore, policy: str
) -> None:
    results = await concurrent_logins(cluster_store, "carol", policy)
    assert len(await cluster_store.get_user_sessions("carol")) == 3
    assert sum(r.success for r in results) == (3 if policy == "refuse" else 200)


# --- outage: 200 while up, 503 while down, the same session afterwards ---------------------


async def test_outage_answers_503_then_recovers_without_losing_sessions(redis_server: Any) -> None:
    # The server keeps an fsync-always append-only file, so a crash (SIGKILL) and restart
    # on the same port is a real outage that loses no acknowledged write.
    store = RedisSessionStore(
        redis_server.url, prefix="fs-test-outage:", socket_timeout=0.5, socket_connect_timeout=0.5
    )
    provider = SessionAuthenticationProvider(session_store=store, cookie_secure=False)
    async with client_for(build_app(provider)) as client:
        assert (await client.post("/login", json={"user_id": 7})).status_code == 200
        assert (await client.get("/api/me")).json() == {"user_id": 7}

        redis_server.stop()
        for _ in range(3):
            down = await client.get("/api/me")
            assert down.status_code == 503, down.text
            assert down.headers.get("retry-after")

        redis_server.start()
        up = await client.get("/api/me")
        assert up.status_code == 200, up.text
        assert up.json() == {"user_id": 7}, "the session survived the outage"
        client.cookies.clear()
        assert (await client.get("/api/me")).status_code == 401
    await store.aclose()


async def test_paused_redis_answers_503_not_401(redis_server: Any) -> None:
    store = RedisSessionStore(redis_server.url, prefix="fs-test-slow:", socket_timeout=0.3)
    provider = SessionAuthenticationProvider(session_store=store, cookie_secure=False)
    admin = Redis.from_url(redis_server.url)
    async with client_for(build_app(provider)) as client:
        await client.post("/login", json={"user_id": "dave"})
        await admin.execute_command("CLIENT", "PAUSE", "1200", "ALL")
        assert (await client.get("/api/me")).status_code == 503
        await asyncio.sleep(1.2)
        assert (await client.get("/api/me")).json() == {"user_id": "dave"}
    await admin.aclose()
    await store.aclose()


# --- cost of an authenticated request -------------------------------------------------------


async def commandstats(client: Redis) -> dict[str, int]:
    info = await client.info("commandstats")
    return {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in info.items()}


async def measure(
    client: httpx.AsyncClient, observer: Redis, requests: int
) -> tuple[dict[str, int], float]:
    before = await commandstats(observer)
    started = time.perf_counter()
    for _ in range(requests):
        assert (await client.get("/api/me")).status_code == 200
    elapsed = time.perf_counter() - started
    after = await commandstats(observer)
    calls = {k: after[k] - before.get(k, 0) for k in after if after[k] != before.get(k, 0)}
    calls.pop("info", None)
    return calls, elapsed / requests * 1e6


async def test_an_authenticated_request_is_one_get_and_no_write(
    redis_server: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    store = RedisSessionStore(redis_server.url, prefix="fs-test-down:")
    provider = SessionAuthenticationProvider(
        session_store=store, cookie_secure=False, idle_timeout_minutes=30
    )
    observer = Redis.from_url(redis_server.url)
    requests = 500
    async with client_for(build_app(provider)) as client:
        await client.post("/login", json={"user_id": 1})
        await client.get("/api/me")  # warm up the pool and the app
        calls, per_request = await measure(client, observer, requests)
        assert calls == {"get": requests}, calls

        # Once the touch interval has passed, one request writes last_seen, the rest read.
        provider.touch_interval = timedelta(seconds=0.2)
        await asyncio.sleep(0.25)
        calls, _ = await measure(client, observer, 20)
        # commandstats counts the commands inside the TOUCH script: its GET and its SET.
        assert calls["get"] == 20 + 1, calls
        assert calls["set"] == 1, calls

    # Direct store read, to separate Redis from FastAPI's own cost.
    session_id = store.generate_session_id(2)
    await store.create_session(2, session_id, utcnow() + timedelta(hours=1), {})
    started = time.perf_counter()
    for _ in range(requests):
        await store.get_session(session_id)
    direct = (time.perf_counter() - started) / requests * 1e6
    await observer.aclose()
    await store.aclose()
    with capsys.disabled():
        print(
            f"\n[fastsecure-redis] authenticated request: 1 GET, 0 writes; "
            f"{per_request:.0f} µs/request through FastAPI (ASGI, in-process), "
            f"{direct:.0f} µs per get_session"
        )
