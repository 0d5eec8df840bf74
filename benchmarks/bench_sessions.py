"""Cost of a session check through ``requires_auth`` on each store, and its store traffic.

For each store (memory, Redis, SQLite, PostgreSQL) one FastAPI app with a session-protected
route is called in-process with a prepared ASGI scope. Prints µs per request over a bare
endpoint and what the store was asked per request: Redis commands from ``INFO
commandstats`` deltas, SQL statements from SQLAlchemy's ``before_cursor_execute`` event.
Asserts nothing about time. A store whose service is down is reported and skipped.

    python benchmarks/bench_sessions.py [--requests 2000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import statistics
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from asgi_timing import microseconds_per_request
from fastapi import Depends, FastAPI
from sqlalchemy import event

from fastsecure import AuthenticationManager, AuthenticationResult, SessionStore
from fastsecure_redis import RedisSessionStore
from fastsecure_session import MemorySessionStore, SessionAuthenticationProvider
from fastsecure_sqlalchemy import DatabaseSessionStore

REDIS_URL = "redis://127.0.0.1:6379/0"
PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"


def build(store: SessionStore) -> tuple[FastAPI, SessionAuthenticationProvider]:
    # Idle timeout on, so the benchmark shows the touch is not a write per hit.
    provider = SessionAuthenticationProvider(session_store=store, idle_timeout_minutes=30)
    manager = AuthenticationManager(autoload=False)
    manager.register_provider("session", provider)
    manager.add_requirement("/me", ["session"])
    app = FastAPI()

    @app.get("/bare")
    async def bare() -> dict[str, str]:
        return {"ok": "1"}

    @app.get("/me")
    async def me(auth: AuthenticationResult = Depends(manager.requires_auth)) -> dict[str, Any]:
        return {"user": auth.user_id}

    return app, provider


async def call(app: FastAPI, path: str, cookie: str, n: int) -> float:
    return await microseconds_per_request(
        app, path, [(b"cookie", f"session_id={cookie}".encode())], n
    )


async def redis_commands(client: aioredis.Redis) -> Counter[str]:
    stats = await client.info("commandstats")
    return Counter({k.removeprefix("cmdstat_"): v["calls"] for k, v in stats.items()})


async def run(name: str, store: SessionStore, args: argparse.Namespace) -> None:
    app, provider = build(store)
    login = await provider.authenticate({"user_id": "bench-" + secrets.token_hex(4)})
    assert login.session_id
    cookie = login.session_id
    await call(app, "/me", cookie, 200)
    await call(app, "/bare", cookie, 200)

    statements: list[str] = []
    if isinstance(store, DatabaseSessionStore):
        event.listen(
            store.engine.sync_engine, "before_cursor_execute", lambda *a: statements.append(a[2])
        )
    monitor = aioredis.Redis.from_url(REDIS_URL)  # one connection, so its own HELLO is not counted
    before = await redis_commands(monitor) if isinstance(store, RedisSessionStore) else None
    probe = 100
    await call(app, "/me", cookie, probe)
    traffic = ""
    if before is not None:
        delta = (await redis_commands(monitor)) - before
        delta.pop("info", None)
        traffic = (
            ", ".join(f"{v / probe:g} {k.upper()}" for k, v in sorted(delta.items()))
            + " per request"
        )
    elif isinstance(store, DatabaseSessionStore):
        kinds = Counter(s.split()[0].upper() for s in statements)
        traffic = ", ".join(f"{v / probe:g} {k}" for k, v in sorted(kinds.items())) + " per request"

    await monitor.aclose()
    bare, checked = [], []
    for _ in range(args.rounds):
        bare.append(await call(app, "/bare", cookie, args.requests))
        checked.append(await call(app, "/me", cookie, args.requests))
    b, c = statistics.median(bare), statistics.median(checked)
    print(f"{name:<11} {c:8.1f} µs/request  (+{c - b:7.1f} over bare {b:5.1f})  {traffic}")
    await store.aclose()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp())
    prefix = f"bench{secrets.token_hex(3)}_"
    candidates: list[tuple[str, Any]] = [
        ("memory", lambda: MemorySessionStore()),
        ("redis", lambda: RedisSessionStore(REDIS_URL, prefix=f"{prefix}:")),
        (
            "sqlite",
            lambda: DatabaseSessionStore(
                f"sqlite+aiosqlite:///{tmp / 'b.db'}", table_prefix=prefix
            ),
        ),
        ("postgresql", lambda: DatabaseSessionStore(PG_URL, table_prefix=prefix)),
    ]
    for name, make in candidates:
        store = make()
        try:
            if isinstance(store, DatabaseSessionStore):
                await store.create_tables()
            await run(name, store, args)
        except Exception as exc:  # a service that is down is reported, not fatal
            print(f"{name:<11} skipped: {type(exc).__name__}: {exc}")
        finally:
            if isinstance(store, DatabaseSessionStore):
                fresh = DatabaseSessionStore(
                    store.engine.url.render_as_string(hide_password=False), table_prefix=prefix
                )
                await fresh.drop_tables()
                await fresh.aclose()
            elif isinstance(store, RedisSessionStore):
                client = aioredis.Redis.from_url(REDIS_URL)
                async for key in client.scan_iter(match=f"{prefix}:*"):
                    await client.delete(key)
                await client.aclose()


if __name__ == "__main__":
    asyncio.run(main())
