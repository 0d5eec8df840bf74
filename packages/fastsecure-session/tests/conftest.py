"""Shared fixtures: a provider with captured events, and an app that uses it over HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from fastapi import Depends, FastAPI, Request, Response

from fastsecure import AuthenticationManager, AuthenticationResult
from fastsecure.events import AuthEvent
from fastsecure_session import MemorySessionStore, SessionAuthenticationProvider

BASE_URL = "http://testserver"


class CountingStore(MemorySessionStore):
    """The memory store, counting calls: shows how many reads and writes a check costs."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: dict[str, int] = {}

    def _count(self, name: str) -> None:
        self.calls[name] = self.calls.get(name, 0) + 1

    async def get_session(self, session_id: str) -> Any:
        self._count("get_session")
        return await super().get_session(session_id)

    async def update_session(self, session_id: str, metadata: dict[str, Any]) -> bool:
        self._count("update_session")
        return await super().update_session(session_id, metadata)

    async def touch_session(self, session_id: str, last_seen: Any) -> bool:
        self._count("touch_session")
        return await super().touch_session(session_id, last_seen)

    def writes(self) -> int:
        return self.calls.get("update_session", 0) + self.calls.get("touch_session", 0)


@pytest.fixture
def events() -> list[AuthEvent]:
    return []


@pytest.fixture
def make_provider(events: list[AuthEvent]) -> Callable[..., SessionAuthenticationProvider]:
    def make(**options: Any) -> SessionAuthenticationProvider:
        provider = SessionAuthenticationProvider(**options)

        async def sink(event: AuthEvent) -> None:
            events.append(event)

        provider.bind_event_sink(sink)
        return provider

    return make


@pytest.fixture
def provider(
    make_provider: Callable[..., SessionAuthenticationProvider],
) -> SessionAuthenticationProvider:
    return make_provider()


def build_app(provider: SessionAuthenticationProvider) -> tuple[FastAPI, AuthenticationManager]:
    """A small app: login sets the cookie, /api/user/* requires the session."""
    manager = AuthenticationManager(autoload=False)
    manager.register_provider("session", provider)
    manager.add_requirement("/api/user/*", providers=["session"])
    app = FastAPI()

    @app.post("/login")
    async def login(body: dict[str, Any], request: Request, response: Response) -> dict[str, Any]:
        result = await manager.authenticate(
            "/api/user/profile",
            {
                "session": {
                    "user_id": body["user_id"],
                    "ip_address": request.client.host if request.client else None,
                    "user_agent": request.headers.get("user-agent"),
                    "scopes": body.get("scopes", []),
                }
            },
        )
        if not result.success:
            response.status_code = 403
            return {"error": result.metadata.get("error")}
        provider.set_cookie(response, result)
        return {"user_id": result.user_id}

    @app.get("/api/user/profile")
    async def profile(
        auth: AuthenticationResult = Depends(manager.requires_auth),
    ) -> dict[str, Any]:
        return {"user_id": auth.user_id, "scopes": auth.metadata["scopes"]}

    @app.post("/api/user/profile")
    async def update_profile(
        auth: AuthenticationResult = Depends(manager.requires_auth),
    ) -> dict[str, Any]:
        return {"updated": auth.user_id}

    @app.delete("/api/user/session")
    async def logout(
        response: Response, auth: AuthenticationResult = Depends(manager.requires_auth)
    ) -> dict[str, bool]:
        revoked = await provider.revoke_authentication({"session_id": auth.session_id})
        provider.clear_cookie(response)
        return {"revoked": revoked}

    return app, manager


@pytest.fixture
async def client_for() -> AsyncIterator[Callable[[FastAPI], httpx.AsyncClient]]:
    clients: list[httpx.AsyncClient] = []

    def make(app: FastAPI) -> httpx.AsyncClient:
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL)
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()


@pytest.fixture
def counting_store() -> CountingStore:
    return CountingStore()


@pytest.fixture
def app_for() -> Callable[[SessionAuthenticationProvider], tuple[FastAPI, AuthenticationManager]]:
    return build_app
