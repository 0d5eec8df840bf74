"""The app that tests/test_redis_multiprocess.py runs in several uvicorn processes.

Configured by environment variables so every process is identical:
``FASTSECURE_TEST_REDIS_URL``, ``FASTSECURE_TEST_REDIS_PREFIX`` and
``FASTSECURE_TEST_JWT_SECRET``. One :class:`RedisSessionStore` serves as the session
store and the JWT token store.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, Response

from fastsecure import AuthenticationManager, AuthenticationResult
from fastsecure_jwt import JWTAuthenticationProvider
from fastsecure_redis import RedisSessionStore
from fastsecure_session import SessionAuthenticationProvider


def create_app() -> FastAPI:
    store = RedisSessionStore(
        os.environ["FASTSECURE_TEST_REDIS_URL"], prefix=os.environ["FASTSECURE_TEST_REDIS_PREFIX"]
    )
    sessions = SessionAuthenticationProvider(
        session_store=store, max_sessions_per_user=3, cookie_secure=False
    )
    tokens = JWTAuthenticationProvider(
        secret_key=os.environ["FASTSECURE_TEST_JWT_SECRET"], token_store=store
    )
    manager = AuthenticationManager(autoload=False)
    manager.register_provider("session", sessions)
    manager.register_provider("jwt", tokens)
    manager.add_requirement("/session/*", providers=["session"])
    manager.add_requirement("/jwt/*", providers=["jwt"])
    manager.add_closable(store)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await manager.aclose()

    app = FastAPI(lifespan=lifespan)

    @app.get("/health")
    async def health() -> dict[str, int]:
        return {"pid": os.getpid()}

    @app.post("/login/session")
    async def login_session(body: dict[str, Any], response: Response) -> dict[str, Any]:
        result = await sessions.authenticate({"user_id": body["user_id"]})
        if not result.success:
            response.status_code = 403
            return {"error": result.metadata.get("error")}
        sessions.set_cookie(response, result)
        return {"session_id": result.session_id}

    @app.post("/logout/session")
    async def logout_session(body: dict[str, Any]) -> dict[str, bool]:
        return {"revoked": await sessions.revoke_authentication({"session_id": body["session_id"]})}

    @app.get("/session/me")
    async def session_me(
        auth: AuthenticationResult = Depends(manager.requires_auth),
    ) -> dict[str, Any]:
        return {"user_id": auth.user_id, "pid": os.getpid()}

    @app.post("/login/jwt")
    async def login_jwt(body: dict[str, Any]) -> dict[str, Any]:
        result = await tokens.authenticate({"user_id": body["user_id"]})
        return {"access_token": result.access_token, "refresh_token": result.refresh_token}

    @app.post("/revoke/jwt")
    async def revoke_jwt(body: dict[str, Any]) -> dict[str, bool]:
        return {"revoked": await tokens.revoke_authentication(body)}

    @app.post("/refresh/jwt")
    async def refresh_jwt(body: dict[str, Any], response: Response) -> dict[str, Any]:
        result = await tokens.refresh_authentication(body)
        if not result.success:
            response.status_code = 401
            return {"error": result.metadata.get("error")}
        return {"access_token": result.access_token, "refresh_token": result.refresh_token}

    @app.get("/jwt/me")
    async def jwt_me(auth: AuthenticationResult = Depends(manager.requires_auth)) -> dict[str, Any]:
        return {"user_id": auth.user_id, "pid": os.getpid()}

    return app


app = create_app()
