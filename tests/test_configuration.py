"""Configuration by name across distributions: one store object serves several providers."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import pytest

from fastsecure import AuthenticationManager
from fastsecure_redis import RedisSessionStore
from fastsecure_redis.testing import delete_prefix
from fastsecure_redis.testing import redis_url as redis_url
from fastsecure_sqlalchemy import DatabaseSessionStore

pytestmark = pytest.mark.services


async def exercise(manager: AuthenticationManager) -> Any:
    session, jwt = manager.get_provider("session"), manager.get_provider("jwt")
    store = session.store  # type: ignore[attr-defined]
    assert jwt.token_store is store  # type: ignore[attr-defined]  # one object, both roles
    login = await manager.authenticate(
        "/api/me", {"session": {"user_id": 3}, "jwt": {"user_id": 3}}
    )
    assert login.success and login.provider == "all"
    assert (await store.get_session(login.session_id) or {})["user_id"] == 3
    assert await manager.revoke_authentication("jwt", {"access_token": login.access_token})
    verify = await manager.authenticate(
        "/api/me",
        {"session": {"session_id": login.session_id}, "jwt": {"access_token": login.access_token}},
    )
    assert not verify.success  # the revocation went to the shared store
    return store


def config(store: dict[str, Any]) -> dict[str, Any]:
    return {
        "stores": {"main": store},
        "providers": {
            "session": {"session_store": "main"},
            "jwt": {"secret_key": secrets.token_urlsafe(32), "token_store": "main"},
        },
        "requirements": [{"path": "/api/**", "providers": ["session", "jwt"], "strategy": "all"}],
    }


async def test_sqlalchemy_store_serves_sessions_and_tokens(tmp_path: Path) -> None:
    manager = AuthenticationManager.from_config(
        config(
            {
                "type": "database",
                "url": f"sqlite+aiosqlite:///{tmp_path / 'c.db'}",
                "auto_create_tables": True,
            }
        )
    )
    try:
        assert isinstance(await exercise(manager), DatabaseSessionStore)
    finally:
        await manager.aclose()


async def test_redis_store_serves_sessions_and_tokens(redis_url: str) -> None:
    prefix = f"fstest-{secrets.token_hex(4)}:"
    manager = AuthenticationManager.from_config(
        config({"type": "redis", "url": redis_url, "prefix": prefix})
    )
    try:
        store = await exercise(manager)
        assert isinstance(store, RedisSessionStore)
        await delete_prefix(store.client, prefix)
    finally:
        await manager.aclose()
