"""The app each soak process serves: sessions and JWT (refresh, revocation) on one store.

Configured by environment variables so every process is identical:

- ``SOAK_STORE``: ``redis``, ``cluster``, ``postgresql`` or ``sqlite``; ``SOAK_URL``: the
  Redis or database URL; ``SOAK_PREFIX``: key or table prefix;
- ``SOAK_TIMEOUT``: the store's bound in seconds (``socket_timeout`` / ``operation_timeout``);
- ``SOAK_POOL``: connections per process (Redis ``max_connections``, SQL pool size);
- ``SOAK_MAX_SESSIONS``: the per-user session limit (evict the oldest);
- ``SOAK_JWT_SECRET``: the JWT signing key, shared by every process;
- ``SOAK_WAIT_REPLICAS``: Redis ``wait_replicas`` (``WAIT`` after logouts and revocations).

Reads go through ``requires_auth`` (the path every real request takes); logins, refreshes
and logouts call the providers, and ``manager.install(app)`` answers their store failures
with 503 and ``Retry-After``. The admin routes (log a user out everywhere) trust the
caller: the app listens on loopback for the harness only.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, Response

from fastsecure import AuthenticationManager, AuthenticationResult, SessionStore
from fastsecure_jwt import JWTAuthenticationProvider
from fastsecure_session import SessionAuthenticationProvider


def build_store() -> SessionStore:
    """The store named by ``SOAK_STORE``, bounded by ``SOAK_TIMEOUT``."""
    kind = os.environ["SOAK_STORE"]
    timeout = float(os.environ.get("SOAK_TIMEOUT", "2"))
    pool = int(os.environ.get("SOAK_POOL", "20"))
    if kind in ("redis", "cluster"):
        from fastsecure_redis import RedisSessionStore

        return RedisSessionStore(
            os.environ["SOAK_URL"],
            prefix=os.environ["SOAK_PREFIX"],
            cluster=kind == "cluster",
            socket_timeout=timeout,
            socket_connect_timeout=min(timeout, 1.0),
            max_connections=pool,
            wait_replicas=int(os.environ.get("SOAK_WAIT_REPLICAS", "0")),
            wait_timeout=timeout / 2,  # inside socket_timeout, as the store requires
        )
    from fastsecure_sqlalchemy import DatabaseSessionStore

    options: dict[str, Any] = {}
    if kind == "postgresql":
        options = {"pool_size": pool, "max_overflow": 0}
    return DatabaseSessionStore(
        os.environ["SOAK_URL"],
        table_prefix=os.environ["SOAK_PREFIX"],
        operation_timeout=timeout,
        connect_timeout=min(timeout, 1.0),
        pool_timeout=timeout,
        engine_options=options,
    )


def create_app() -> FastAPI:
    """One store shared by a session provider and a JWT provider, behind one manager."""
    store = build_store()
    sessions = SessionAuthenticationProvider(
        session_store=store,
        cookie_secure=False,
        session_timeout_minutes=240,  # outlives the longest soak: no expiry mid-run
        max_sessions_per_user=int(os.environ.get("SOAK_MAX_SESSIONS", "3")),
        touch_interval_seconds=5,
    )
    tokens = JWTAuthenticationProvider(
        secret_key=os.environ["SOAK_JWT_SECRET"],
        access_token_expire_minutes=240,
        token_store=store,  # type: ignore[arg-type]  # the first-party stores are both
    )
    manager = AuthenticationManager(autoload=False)
    manager.register_provider("session", sessions)
    manager.register_provider("jwt", tokens)
    manager.add_requirement("/session/*", providers=["session"])
    manager.add_requirement("/jwt/*", providers=["jwt"])
    manager.add_closable(store)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        create_tables = getattr(store, "create_tables", None)
        if create_tables is not None:
            await create_tables()  # safe in every process (the SQL store's README)
        yield
        await manager.aclose()

    app = FastAPI(lifespan=lifespan)
    manager.install(app)

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {"pid": os.getpid(), "cookie": sessions.cookie_name}

    @app.post("/login/session")
    async def login_session(body: dict[str, Any], response: Response) -> dict[str, Any]:
        result = await sessions.authenticate({"user_id": body["user_id"]})
        if not result.success:
            response.status_code = 403
            return {"error": result.metadata.get("error")}
        return {"session_id": result.session_id}

    @app.get("/session/me")
    async def session_me(
        auth: AuthenticationResult = Depends(manager.requires_auth),
    ) -> dict[str, Any]:
        return {"user_id": auth.user_id}

    @app.post("/logout/session")
    async def logout_session(body: dict[str, Any]) -> dict[str, bool]:
        return {"revoked": await sessions.revoke_authentication({"session_id": body["session_id"]})}

    @app.post("/admin/logout-everywhere")
    async def logout_everywhere(body: dict[str, Any]) -> dict[str, int]:
        return {"revoked": await sessions.revoke_user_sessions(body["user_id"])}

    @app.post("/login/jwt")
    async def login_jwt(body: dict[str, Any]) -> dict[str, Any]:
        result = await tokens.authenticate({"user_id": body["user_id"]})
        return {"access_token": result.access_token, "refresh_token": result.refresh_token}

    @app.get("/jwt/me")
    async def jwt_me(auth: AuthenticationResult = Depends(manager.requires_auth)) -> dict[str, Any]:
        return {"user_id": auth.user_id}

    @app.post("/refresh/jwt")
    async def refresh_jwt(body: dict[str, Any], response: Response) -> dict[str, Any]:
        result = await tokens.refresh_authentication({"refresh_token": body["refresh_token"]})
        if not result.success:
            response.status_code = 401
            return {"error": result.metadata.get("error")}
        return {"access_token": result.access_token, "refresh_token": result.refresh_token}

    @app.post("/logout/jwt")
    async def logout_jwt(body: dict[str, Any]) -> dict[str, bool]:
        return {"revoked": await tokens.revoke_authentication(body)}

    @app.post("/revoke/jwt")
    async def revoke_jwt(body: dict[str, Any]) -> dict[str, bool]:
        return {"revoked": await tokens.revoke_access_token(body["access_token"])}

    return app
