"""The app the fault suites serve with uvicorn (2 workers): sessions and JWT on one store.

Configured by environment variables so every worker is identical:

- ``FAULT_STORE``: ``sql`` or ``redis``; ``FAULT_URL``: the database or Redis URL;
  ``FAULT_PREFIX``: table or key prefix; ``FAULT_TIMEOUT``: the store's bound in seconds
  (``operation_timeout`` / ``socket_timeout``); ``FAULT_CLUSTER=1`` for Redis Cluster;
- ``FAULT_JWT_SECRET``: the JWT signing key.

The lifespan calls ``create_tables()`` in every worker, as the SQL store's README says an
app without migrations should.
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


def _store() -> SessionStore:
    timeout = float(os.environ["FAULT_TIMEOUT"])
    if os.environ["FAULT_STORE"] == "redis":
        from fastsecure_redis import RedisSessionStore

        return RedisSessionStore(
            os.environ["FAULT_URL"],
            prefix=os.environ["FAULT_PREFIX"],
            cluster=os.environ.get("FAULT_CLUSTER") == "1",
            socket_timeout=timeout,
            socket_connect_timeout=min(timeout, 1.0),
        )
    from fastsecure_sqlalchemy import DatabaseSessionStore

    return DatabaseSessionStore(
        os.environ["FAULT_URL"],
        table_prefix=os.environ["FAULT_PREFIX"],
        operation_timeout=timeout,
        connect_timeout=min(timeout, 1.0),
        pool_timeout=min(timeout, 1.0),
    )


def create_app() -> FastAPI:
    """One store, a session provider and a JWT provider sharing it."""
    store = _store()
    sessions = SessionAuthenticationProvider(
        session_store=store, cookie_secure=False, touch_interval_seconds=1
    )
    tokens = JWTAuthenticationProvider(
        secret_key=os.environ["FAULT_JWT_SECRET"],
        token_store=store,  # type: ignore[arg-type]
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
            await create_tables()
        yield
        await manager.aclose()

    app = FastAPI(lifespan=lifespan)
    manager.install(app)  # StoreUnavailableError from the routes below answers 503

    @app.get("/health")
    async def health() -> dict[str, int]:
        return {"pid": os.getpid()}

    @app.get("/cookie-name")
    async def cookie_name() -> dict[str, str]:
        return {"name": sessions.cookie_name}

    @app.post("/login/session")
    async def login_session(body: dict[str, Any], response: Response) -> dict[str, Any]:
        result = await sessions.authenticate({"user_id": body["user_id"]})
        if not result.success:
            response.status_code = 403
            return {"error": result.metadata.get("error")}
        return {"session_id": result.session_id}

    @app.post("/logout/session")
    async def logout_session(body: dict[str, Any]) -> dict[str, bool]:
        return {"revoked": await sessions.revoke_authentication({"session_id": body["session_id"]})}

    @app.get("/session/me")
    async def session_me(
        auth: AuthenticationResult = Depends(manager.requires_auth),
    ) -> dict[str, Any]:
        return {"user_id": auth.user_id}

    @app.post("/login/jwt")
    async def login_jwt(body: dict[str, Any]) -> dict[str, Any]:
        result = await tokens.authenticate({"user_id": body["user_id"]})
        return {"access_token": result.access_token, "refresh_token": result.refresh_token}

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

    @app.get("/jwt/me")
    async def jwt_me(auth: AuthenticationResult = Depends(manager.requires_auth)) -> dict[str, Any]:
        return {"user_id": auth.user_id}

    return app
