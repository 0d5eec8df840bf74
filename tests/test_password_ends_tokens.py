"""A password reset or change ends the user's JWT logins too (issue 15), on each token store.

Through the password router over HTTP, as an app runs it: the old access tokens get 401 and
the old refresh tokens are refused; another user's tokens and the logins made with the new
password work.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import Depends, FastAPI
from pwdlib.hashers.argon2 import Argon2Hasher

from fastsecure import (
    AuthenticationManager,
    AuthenticationResult,
    MemoryTokenStore,
    TokenStore,
    hookimpl,
)
from fastsecure.events import AuthEvent
from fastsecure_jwt import JWTAuthenticationProvider
from fastsecure_password import (
    MailTemplates,
    OutboxMailer,
    PasswordAccounts,
    PasswordAuthenticationProvider,
    PasswordHasher,
)
from fastsecure_password.fastapi import password_router
from fastsecure_redis import RedisSessionStore
from fastsecure_redis.testing import delete_prefix
from fastsecure_redis.testing import redis_url as redis_url
from fastsecure_sqlalchemy import DatabaseSessionStore

# Real argon2id at cheap parameters: the flows are under test here, not the work factor.
FAST = PasswordHasher((Argon2Hasher(time_cost=1, memory_cost=1024, parallelism=1),))
PASSWORD = "correct horse battery"
NEW_PASSWORD = "a brand new passphrase"
TEMPLATES = MailTemplates(
    sender="no-reply@example.org",
    app_name="Test",
    verify_url="http://app/verify",
    reset_url="http://app/reset",
    login_url="http://app/login",
)


class _Events:
    def __init__(self) -> None:
        self.seen: list[AuthEvent] = []

    @hookimpl
    def fastsecure_on_event(self, event: AuthEvent) -> None:
        self.seen.append(event)


@pytest.fixture(params=["memory", "redis", "sqlite"])
async def token_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[TokenStore]:
    if request.param == "memory":
        yield MemoryTokenStore()
    elif request.param == "redis":
        request.applymarker(pytest.mark.services)
        prefix = f"fstest-{secrets.token_hex(4)}:"
        store = RedisSessionStore(request.getfixturevalue("redis_url"), prefix=prefix)
        yield store
        await delete_prefix(store.client, prefix)
        await store.aclose()
    else:
        store = DatabaseSessionStore(f"sqlite+aiosqlite:///{tmp_path / 'tokens.db'}")
        await store.create_tables()
        yield store
        await store.aclose()


class App:
    """The router's app with JWT as the issuing provider, and a browser-less client."""

    def __init__(self, token_store: TokenStore) -> None:
        self.events = _Events()
        self.manager = AuthenticationManager(autoload=False, extra_plugins=[self.events])
        self.manager.register_provider(
            "password", PasswordAuthenticationProvider(hasher=FAST, device_secret="d" * 32)
        )
        self.jwt = JWTAuthenticationProvider(secret_key="s" * 32, token_store=token_store)
        self.manager.register_provider("jwt", self.jwt)
        self.manager.add_requirement("/auth/change", ["jwt"])
        self.manager.add_requirement("/me", ["jwt"])
        self.outbox = OutboxMailer()
        self.accounts = PasswordAccounts(
            self.manager, mailer=self.outbox, templates=TEMPLATES, issue_with="jwt"
        )
        app = FastAPI()
        app.include_router(password_router(self.accounts, secure_cookies=False), prefix="/auth")

        @app.get("/me")
        async def me(auth: AuthenticationResult = Depends(self.manager.requires_auth)) -> Any:
            return {"user_id": str(auth.user_id)}

        transport = httpx.ASGITransport(app=app, client=("192.0.2.10", 5000))
        self.http = httpx.AsyncClient(transport=transport, base_url="http://app")

    async def mailed_token(self, address: str) -> str:
        await self.accounts.flush()
        text = self.outbox.last_to(address).get_body(("plain",)).get_content()
        return str(text.split("token=")[1].split()[0])

    async def account(self, login: str) -> None:
        body = {"login": login, "password": PASSWORD}
        assert (await self.http.post("/auth/register", json=body)).status_code == 202
        token = await self.mailed_token(login)
        assert (await self.http.post("/auth/verify", json={"token": token})).status_code == 200

    async def log_in(self, login: str, password: str = PASSWORD) -> dict[str, Any]:
        answer = await self.http.post("/auth/login", json={"login": login, "password": password})
        assert answer.status_code == 200, answer.text
        tokens: dict[str, Any] = answer.json()
        assert await self.me(tokens) == 200
        return tokens

    async def me(self, tokens: dict[str, Any]) -> int:
        bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
        return (await self.http.get("/me", headers=bearer)).status_code

    async def refreshes(self, tokens: dict[str, Any]) -> bool:
        """Whether the refresh token still mints tokens (and then its new pair is kept)."""
        result = await self.jwt.refresh_authentication({"refresh_token": tokens["refresh_token"]})
        if result.success:
            tokens.update(access_token=result.access_token, refresh_token=result.refresh_token)
        return result.success

    def ended(self) -> dict[str, int]:
        changed = [e for e in self.events.seen if e.name == "password.changed"]
        return dict(changed[-1].detail["ended"])

    async def aclose(self) -> None:
        await self.http.aclose()
        await self.accounts.aclose()


@pytest.fixture
async def app(token_store: TokenStore) -> AsyncIterator[App]:
    built = App(token_store)
    yield built
    await built.aclose()


async def test_a_reset_ends_every_jwt_login_of_the_user(app: App) -> None:
    await app.account("zoe@example.org")
    await app.account("bob@example.org")
    phone, laptop = await app.log_in("zoe@example.org"), await app.log_in("zoe@example.org")
    assert await app.refreshes(laptop)  # a rotated login is still the user's
    bob = await app.log_in("bob@example.org")

    await app.http.post("/auth/forgot", json={"login": "zoe@example.org"})
    reset = {"token": await app.mailed_token("zoe@example.org"), "password": NEW_PASSWORD}
    assert (await app.http.post("/auth/reset", json=reset)).json() == {"reset": True}

    assert app.ended() == {"jwt.revoke_user_tokens": 2}
    for tokens in (phone, laptop):
        assert await app.me(tokens) == 401, "an access token outlived the reset"
        assert not await app.refreshes(tokens), "a refresh token outlived the reset"
    assert await app.me(bob) == 200
    assert await app.refreshes(bob)
    fresh = await app.log_in("zoe@example.org", NEW_PASSWORD)
    assert await app.refreshes(fresh)
    assert await app.me(fresh) == 200


async def test_a_change_ends_every_jwt_login_of_the_user(app: App) -> None:
    await app.account("zoe@example.org")
    current, other = await app.log_in("zoe@example.org"), await app.log_in("zoe@example.org")
    change = {"current_password": PASSWORD, "new_password": NEW_PASSWORD}
    bearer = {"Authorization": f"Bearer {current['access_token']}"}
    answer = await app.http.post("/auth/change", json=change, headers=bearer)
    assert answer.json() == {"changed": True}

    assert app.ended() == {"jwt.revoke_user_tokens": 2}
    for tokens in (current, other):  # the login that made the change ends too
        assert await app.me(tokens) == 401
        assert not await app.refreshes(tokens)
    again = await app.http.post("/auth/change", json=change, headers=bearer)
    assert again.status_code == 401
    assert await app.me(await app.log_in("zoe@example.org", NEW_PASSWORD)) == 200


async def test_a_change_racing_a_login_ends_the_token_it_issues(
    app: App, token_store: TokenStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The login checked the old password; the change ended every login before it issued.

    Its token family starts after that revoke, so the login itself must see the new
    credential version, revoke its family and refuse: no token outlives the change.
    """
    await app.account("zoe@example.org")
    start = token_store.start_family
    started: list[str] = []

    async def change_first(family_id: str, *args: Any, **kwargs: Any) -> str:
        user = await app.accounts.users.get_by_login("zoe@example.org")
        assert user is not None
        await app.accounts.change_password(user.user_id, PASSWORD, NEW_PASSWORD)
        started.append(family_id)
        return await start(family_id, *args, **kwargs)

    monkeypatch.setattr(token_store, "start_family", change_first)
    body = {"login": "zoe@example.org", "password": PASSWORD}
    refused = await app.http.post("/auth/login", json=body)
    monkeypatch.undo()
    assert refused.status_code == 401 and "access_token" not in refused.text
    assert started and await token_store.is_revoked("any-jti", started[0])
    assert await app.me(await app.log_in("zoe@example.org", NEW_PASSWORD)) == 200
