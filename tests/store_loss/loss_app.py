"""The app the store-loss suites serve: sessions and JWT sharing one store.

Built in-process by the tests, or by uvicorn workers from the environment:
``LOSS_STORE`` (``memory``, ``redis``, ``sql``), ``LOSS_URL``, ``LOSS_PREFIX``,
``LOSS_CLUSTER=1`` for Redis Cluster, ``LOSS_JWT_SECRET``.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, Response

from fastsecure import AuthenticationManager, AuthenticationResult, MemoryTokenStore, TokenStore
from fastsecure_jwt import JWTAuthenticationProvider
from fastsecure_session import MemorySessionStore, SessionAuthenticationProvider

SECRET = "store-loss-" + "k" * 40


def build_store(kind: str, url: str = "", prefix: str = "", cluster: bool = False) -> Any:
    """The store under test: one object serving sessions and tokens (two for memory)."""
    if kind == "memory":
        return None
    if kind == "redis":
        from fastsecure_redis import RedisSessionStore

        return RedisSessionStore(url, prefix=prefix, cluster=cluster, socket_timeout=2.0)
    from fastsecure_sqlalchemy import DatabaseSessionStore

    return DatabaseSessionStore(url, table_prefix=prefix)


def create_app(store: Any = None, secret: str = SECRET) -> FastAPI:
    """Routes for login, refresh, logout, logout everywhere and two protected pages."""
    session_store = store if store is not None else MemorySessionStore()
    token_store: TokenStore = store if store is not None else MemoryTokenStore()
    sessions = SessionAuthenticationProvider(session_store=session_store, cookie_secure=False)
    tokens = JWTAuthenticationProvider(secret_key=secret, token_store=token_store)
    manager = AuthenticationManager(autoload=False)
    manager.register_provider("session", sessions)
    manager.register_provider("jwt", tokens)
    manager.add_requirement("/session/*", providers=["session"])
    manager.add_requirement("/jwt/*", providers=["jwt"])

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        create_tables = getattr(store, "create_tables", None)
        if create_tables is not None:
            await create_tables()
        yield
        if store is not None:
            await store.aclose()

    app = FastAPI(lifespan=lifespan)
    manager.install(app)
    app.state.sessions, app.state.tokens = sessions, tokens

    @app.get("/health")
    async def health() -> dict[str, int]:
        return {"pid": os.getpid()}

    @app.post("/login/session")
    async def login_session(body: dict[str, Any]) -> dict[str, Any]:
        result = await sessions.authenticate({"user_id": body["user_id"]})
        return {"session_id": result.session_id}

    @app.post("/logout/session")
    async def logout_session(body: dict[str, Any]) -> dict[str, bool]:
        return {"revoked": await sessions.revoke_authentication({"session_id": body["session_id"]})}

    @app.post("/logout/everywhere")
    async def logout_everywhere(body: dict[str, Any]) -> dict[str, int]:
        return {"ended": await sessions.revoke_user_sessions(body["user_id"])}

    @app.post("/revoke/device")
    async def revoke_device(body: dict[str, Any]) -> dict[str, bool]:
        (info,) = await sessions.list_sessions(body["user_id"])
        return {"revoked": await sessions.revoke_session(body["user_id"], info.session_key)}

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


def create_app_from_env() -> FastAPI:
    """For ``uvicorn loss_app:create_app_from_env --factory``: every worker identical."""
    store = build_store(
        os.environ["LOSS_STORE"],
        os.environ.get("LOSS_URL", ""),
        os.environ.get("LOSS_PREFIX", ""),
        os.environ.get("LOSS_CLUSTER") == "1",
    )
    return create_app(store, os.environ.get("LOSS_JWT_SECRET", SECRET))
