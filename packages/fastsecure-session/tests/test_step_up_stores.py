"""step_up() over the shared stores: Redis, SQLite, PostgreSQL and MariaDB.

Runs where fastsecure-redis and fastsecure-sqlalchemy are installed (the whole-workspace
test run); the isolated run of this package has neither and skips the module.
"""

import secrets
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from fastsecure import AuthenticationResult
from fastsecure.stores import SessionStore
from fastsecure_session import SessionAuthenticationProvider

pytest.importorskip("fastsecure_redis")
pytest.importorskip("fastsecure_sqlalchemy")

from fastsecure_redis import RedisSessionStore
from fastsecure_redis.testing import delete_prefix
from fastsecure_redis.testing import redis_url as redis_url
from fastsecure_sqlalchemy import DatabaseSessionStore
from fastsecure_sqlalchemy.testing import backend_url, unique_prefix

pytestmark = pytest.mark.services


@pytest.fixture(params=["redis", "sqlite", "postgresql", "mariadb"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SessionStore]:
    if request.param == "redis":
        url = request.getfixturevalue("redis_url")
        prefix = f"fstest-stepup-{secrets.token_hex(4)}:"
        redis_store = RedisSessionStore(url, prefix=prefix)
        yield redis_store
        await delete_prefix(redis_store.client, prefix)
        await redis_store.aclose()
        return
    db = DatabaseSessionStore(backend_url(request.param, tmp_path), table_prefix=unique_prefix())
    await db.create_tables()
    yield db
    await db.drop_tables()
    await db.aclose()


def factor(user_id: Any, *amr: str, at: int) -> AuthenticationResult:
    return AuthenticationResult(
        success=True, user_id=user_id, metadata={"amr": list(amr), "auth_time": at}
    )


@pytest.mark.parametrize("user_id", [7, "ada"])
async def test_step_up_on_a_shared_store(store: SessionStore, user_id: Any) -> None:
    provider = SessionAuthenticationProvider(session_store=store)
    now = int(time.time())
    login = await provider.authenticate(
        {
            "user_id": user_id,
            "scopes": ["read"],
            "metadata": {"plan": "pro", "amr": ["otp"]},  # dropped: not a checked factor
            "factors": [factor(user_id, "pwd", at=now - 60)],
        }
    )
    assert login.session_id
    assert (await provider.authenticate({"session_id": login.session_id})).metadata["amr"] == [
        "pwd"
    ]
    stepped = await provider.step_up(login.session_id, factor(user_id, "hwk", at=now))
    assert stepped.success and stepped.session_id != login.session_id
    assert stepped.session_id
    assert not await provider.validate_authentication({"session_id": login.session_id})

    verified = await provider.authenticate({"session_id": stepped.session_id})
    assert verified.user_id == user_id and type(verified.user_id) is type(user_id)
    meta = verified.metadata
    assert meta["plan"] == "pro" and meta["scopes"] == ["read"]
    assert meta["amr"] == ["hwk", "pwd"]
    assert meta["amr_times"] == {"pwd": now - 60, "hwk": now}
    assert meta["auth_time"] == now
    assert [s.current for s in await provider.list_sessions(user_id, stepped.session_id)] == [True]
    assert not (await provider.step_up(login.session_id, factor(user_id, "otp", at=now))).success
