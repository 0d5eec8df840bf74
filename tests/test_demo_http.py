"""The demo app over HTTP (httpx's ASGI transport, lifespan included): every route it shows.

The local OpenID provider, SQLite and Redis are real; nothing is mocked.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from asgi_lifespan import LifespanManager

for _path in (Path(__file__).resolve().parent.parent / "examples", Path(__file__).resolve().parent):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from demo import DemoSettings, create_app  # noqa: E402
from demo.local_oidc import local_openid_provider  # noqa: E402
from demo.settings import OAuthClient  # noqa: E402
from demo_support import EXAMPLES, free_port, require_service  # noqa: E402

# The local OpenID provider's authlib warns about its own API; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:get_jwt_config:DeprecationWarning")

BASE = "http://demo.test"
Client = httpx.AsyncClient


@pytest.fixture(scope="module")
def oidc_issuer() -> Iterator[str]:
    with local_openid_provider() as issuer:
        yield issuer


@pytest.fixture
def settings(tmp_path: Path, oidc_issuer: str) -> DemoSettings:
    return DemoSettings(data_dir=tmp_path / "data", public_url=BASE, oidc_issuer=oidc_issuer)


@asynccontextmanager
async def running(settings: DemoSettings) -> AsyncIterator[Callable[[], Client]]:
    """Start the app (lifespan) and hand out clients: each one is a separate browser."""
    app = create_app(settings)
    clients: list[Client] = []
    # The requests go to ``app``, not to ``LifespanManager(...).app``: asgi-lifespan puts ONE
    # state dict in every request's scope, where ASGI servers give each request a copy, and
    # core caches a request's authentication result in that dict (reported to the lead).
    async with LifespanManager(app):

        def new_client() -> Client:
            client = httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app, client=("203.0.113.7", 4711)),
                base_url=BASE,
                headers={"Origin": BASE, "User-Agent": f"demo-test/{len(clients)}"},
            )
            clients.append(client)
            return client

        try:
            yield new_client
        finally:
            for client in clients:
                await client.aclose()


@pytest.fixture
async def new_client(settings: DemoSettings) -> AsyncIterator[Callable[[], Client]]:
    async with running(settings) as factory:
        yield factory


async def form_login(
    client: Client, username: str, password: str, next: str = "/account"
) -> httpx.Response:
    return await client.post(
        "/login", data={"username": username, "password": password, "next": next}
    )


async def api_login(client: Client, username: str, password: str) -> dict[str, Any]:
    response = await client.post(
        "/api/auth/login", json={"username": username, "password": password}
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# --- pages and the session cookie -------------------------------------------------------


async def test_home_is_public_and_says_who_is_logged_in(new_client: Callable[[], Client]) -> None:
    client = new_client()
    response = await client.get("/")
    assert response.status_code == 200
    assert "Nobody is logged in" in response.text
    assert "/auth/local/login" in response.text  # the local OpenID sign-in is offered
    await form_login(client, "alice", "alice-password")
    home = await client.get("/")
    assert "You are logged in as <strong>Alice (admin)</strong>" in home.text
    assert "by the <strong>session</strong> provider, signed in with password" in home.text


async def test_protected_page_redirects_to_the_login_form(new_client: Callable[[], Client]) -> None:
    client = new_client()
    response = await client.get("/account")
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=/account&reason=login_required"
    form = await client.get("/login?next=/sessions")
    assert 'name="next" value="/sessions"' in form.text


async def test_form_login_sets_a_hardened_cookie(new_client: Callable[[], Client]) -> None:
    client = new_client()
    wrong = await form_login(client, "alice", "not-her-password")
    assert wrong.status_code == 401
    assert "Wrong user name or password" in wrong.text
    unknown = await form_login(client, "mallory", "alice-password")
    assert unknown.status_code == 401
    assert "fastsecure_session" not in client.cookies

    response = await form_login(client, "alice", "alice-password", next="/sessions")
    assert response.status_code == 303
    assert response.headers["location"] == "/sessions"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("fastsecure_session=")
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie
    assert "Secure" not in cookie  # http://, cookie_secure off by default there
    page = await client.get("/account")
    assert page.status_code == 200
    assert '<td id="user-id">alice</td>' in page.text


async def test_login_refuses_an_open_redirect(new_client: Callable[[], Client]) -> None:
    response = await form_login(new_client(), "bob", "bob-password", next="https://evil.example/")
    assert response.status_code == 303
    assert response.headers["location"] == "/account"


async def test_login_issues_a_new_session_id_and_revokes_the_old_one(
    new_client: Callable[[], Client],
) -> None:
    client = new_client()
    await form_login(client, "alice", "alice-password")
    first = client.cookies["fastsecure_session"]
    await form_login(client, "alice", "alice-password")
    second = client.cookies["fastsecure_session"]
    assert first != second
    stale = new_client()
    stale.cookies.set("fastsecure_session", first)
    assert (await stale.get("/account")).status_code == 303  # the old id no longer works
    assert (await client.get("/account")).status_code == 200
    sessions = await client.get("/sessions")
    assert sessions.text.count('class="session-row') == 1


async def test_rotate_gives_this_browser_a_new_id(new_client: Callable[[], Client]) -> None:
    client = new_client()
    await form_login(client, "bob", "bob-password")
    before = client.cookies["fastsecure_session"]
    response = await client.post("/sessions/rotate")
    assert response.status_code == 303
    after = client.cookies["fastsecure_session"]
    assert after != before
    assert (await client.get("/account")).status_code == 200
    old = new_client()
    old.cookies.set("fastsecure_session", before)
    assert (await old.get("/account")).status_code == 303


async def test_sessions_page_lists_revokes_and_logs_out_everywhere(
    new_client: Callable[[], Client],
) -> None:
    laptop, phone = new_client(), new_client()
    await form_login(laptop, "alice", "alice-password")
    await form_login(phone, "alice", "alice-password")
    page = await laptop.get("/sessions")
    assert page.status_code == 200
    rows = re.findall(r'<tr class="session-row( current-row)?">(.*?)</tr>', page.text, re.S)
    assert len(rows) == 2
    assert sum(1 for current, _ in rows if current) == 1
    assert "203.0.113.7" in page.text
    assert "demo-test/0" in page.text and "demo-test/1" in page.text
    assert "this browser" in page.text
    other = next(body for current, body in rows if not current)
    key = re.search(r'name="session_key" value="([^"]+)"', other)
    assert key is not None
    revoked = await laptop.post("/sessions/revoke", data={"session_key": key.group(1)})
    assert revoked.status_code == 303 and revoked.headers["location"] == "/sessions"
    assert (await phone.get("/account")).status_code == 303  # the phone is logged out
    assert (await laptop.get("/account")).status_code == 200

    await form_login(phone, "alice", "alice-password")
    everywhere = await laptop.post("/sessions/revoke-all")
    assert everywhere.status_code == 303 and everywhere.headers["location"] == "/login"
    assert (await laptop.get("/account")).status_code == 303
    assert (await phone.get("/account")).status_code == 303


async def test_a_session_key_of_another_user_revokes_nothing(
    new_client: Callable[[], Client],
) -> None:
    alice, bob = new_client(), new_client()
    await form_login(alice, "alice", "alice-password")
    await form_login(bob, "bob", "bob-password")
    page = await alice.get("/sessions")
    key = re.search(r'name="session_key" value="([^"]+)"', page.text)
    assert key is not None
    await bob.post("/sessions/revoke", data={"session_key": key.group(1)})
    assert (await alice.get("/account")).status_code == 200


async def test_logout(new_client: Callable[[], Client]) -> None:
    client = new_client()
    await form_login(client, "bob", "bob-password")
    cookie = client.cookies["fastsecure_session"]
    response = await client.post("/logout")
    assert response.status_code == 303 and response.headers["location"] == "/"
    assert 'fastsecure_session=""' in response.headers["set-cookie"]
    replay = new_client()
    replay.cookies.set("fastsecure_session", cookie)
    assert (await replay.get("/account")).status_code == 303  # revoked server-side too


async def test_cross_site_posts_are_refused(new_client: Callable[[], Client]) -> None:
    client = new_client()
    foreign = {"Origin": "https://evil.example"}
    login = await client.post(
        "/login", data={"username": "alice", "password": "alice-password"}, headers=foreign
    )
    assert login.status_code == 403
    await form_login(client, "alice", "alice-password")
    assert (await client.post("/logout", headers=foreign)).status_code == 403
    assert (await client.post("/sessions/revoke-all", headers=foreign)).status_code == 403
    assert (await client.get("/account")).status_code == 200  # nothing was done


# --- JWT --------------------------------------------------------------------------------


async def test_jwt_login_refresh_and_reuse_detection(new_client: Callable[[], Client]) -> None:
    client = new_client()
    bad = await client.post("/api/auth/login", json={"username": "alice", "password": "nope"})
    assert bad.status_code == 401
    assert bad.headers["www-authenticate"] == "Bearer"
    tokens = await api_login(client, "alice", "alice-password")
    assert tokens["token_type"] == "bearer"
    me = await client.get("/api/me", headers=bearer(tokens["access_token"]))
    assert me.status_code == 200
    assert me.json() == {
        "user_id": "alice",
        "provider": "jwt",
        "scopes": ["admin", "user"],
        "name": "Alice (admin)",
    }

    refreshed = await client.post(
        "/api/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
    )
    assert refreshed.status_code == 200
    fresh = refreshed.json()
    assert (await client.get("/api/me", headers=bearer(fresh["access_token"]))).status_code == 200
    reused = await client.post("/api/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert reused.status_code == 401
    # Reuse revokes the whole login: the token issued by the first refresh dies too.
    assert (await client.get("/api/me", headers=bearer(fresh["access_token"]))).status_code == 401


async def test_jwt_logout_revokes_access_and_refresh_tokens(
    new_client: Callable[[], Client],
) -> None:
    client = new_client()
    assert (await client.post("/api/auth/logout")).status_code == 401
    tokens = await api_login(client, "bob", "bob-password")
    out = await client.post(
        "/api/auth/logout",
        headers=bearer(tokens["access_token"]),
        json={"refresh_token": tokens["refresh_token"]},
    )
    assert out.status_code == 200 and out.json() == {"revoked": True}
    assert (await client.get("/api/me", headers=bearer(tokens["access_token"]))).status_code == 401
    again = await client.post("/api/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert again.status_code == 401


# --- strategies -------------------------------------------------------------------------


async def test_any_route_accepts_a_token_or_the_cookie(new_client: Callable[[], Client]) -> None:
    client = new_client()
    anonymous = await client.get("/api/me")
    assert anonymous.status_code == 401
    assert "Bearer" in anonymous.headers["www-authenticate"]
    assert (await client.get("/api/me", headers=bearer("not-a-token"))).status_code == 401
    await form_login(client, "bob", "bob-password")
    by_cookie = await client.get("/api/me")
    assert by_cookie.status_code == 200
    assert by_cookie.json()["provider"] == "session"


async def test_public_route_with_optional_authentication(new_client: Callable[[], Client]) -> None:
    client = new_client()
    assert (await client.get("/api/public")).json() == {
        "authenticated": False,
        "message": "Hello, stranger",
    }
    # A refused token on an optional route is a 401 (RFC 6750 invalid_token): a client
    # whose token expired is told to refresh instead of being served anonymous content.
    refused = await client.get("/api/public", headers=bearer("garbage"))
    assert refused.status_code == 401
    assert 'error="invalid_token"' in refused.headers["www-authenticate"]
    tokens = await api_login(client, "bob", "bob-password")
    known = (await client.get("/api/public", headers=bearer(tokens["access_token"]))).json()
    assert (
        known["authenticated"] is True and known["user_id"] == "bob" and known["provider"] == "jwt"
    )


async def test_admin_route_needs_token_and_cookie_and_scope(
    new_client: Callable[[], Client],
) -> None:
    alice, bob = new_client(), new_client()
    alice_tokens = await api_login(alice, "alice", "alice-password")
    only_token = await alice.get("/api/admin/stats", headers=bearer(alice_tokens["access_token"]))
    assert only_token.status_code == 401  # ALL: the session is missing
    await form_login(alice, "alice", "alice-password")
    assert (await alice.get("/api/admin/stats")).status_code == 401  # ALL: the token is missing
    both = await alice.get("/api/admin/stats", headers=bearer(alice_tokens["access_token"]))
    assert both.status_code == 200
    body = both.json()
    assert body["user_id"] == "alice" and body["provider"] == "all"
    assert body["providers"] == ["jwt", "session"]
    assert body["sessions"] == 1

    bob_tokens = await api_login(bob, "bob", "bob-password")
    await form_login(bob, "bob", "bob-password")
    forbidden = await bob.get("/api/admin/stats", headers=bearer(bob_tokens["access_token"]))
    assert forbidden.status_code == 403
    assert forbidden.json() == {"detail": "Insufficient scope"}
    # Alice's token with Bob's cookie: two users, so no.
    mixed = await bob.get("/api/admin/stats", headers=bearer(alice_tokens["access_token"]))
    assert mixed.status_code == 401


async def test_forbidden_page_is_html_for_browsers(new_client: Callable[[], Client]) -> None:
    client = new_client()
    await form_login(client, "bob", "bob-password")
    response = await client.post("/logout", headers={"Origin": "https://evil.example"})
    assert response.status_code == 403
    assert response.headers["content-type"].startswith("text/html")
    assert '<h1 id="error-status">403</h1>' in response.text


# --- the API-key plugin -----------------------------------------------------------------


async def test_api_key_plugin_is_discovered_and_guards_service_routes(
    new_client: Callable[[], Client],
) -> None:
    from fastsecure.testing import assert_plugin_discovered

    assert_plugin_discovered("apikey", kinds={"provider": ["apikey"]})
    client = new_client()
    ok = await client.get("/api/service/reports", headers={"X-API-Key": "demo-service-key"})
    assert ok.status_code == 200
    assert ok.json()["user_id"] == "reporting-service"
    assert ok.json()["provider"] == "apikey"
    assert (
        await client.get("/api/service/reports", headers={"X-API-Key": "wrong"})
    ).status_code == 401
    assert (await client.get("/api/service/reports")).status_code == 401
    # A user's bearer token is not an API key.
    tokens = await api_login(client, "alice", "alice-password")
    assert (
        await client.get("/api/service/reports", headers=bearer(tokens["access_token"]))
    ).status_code == 401


# --- OpenAPI and Swagger UI -------------------------------------------------------------


async def test_openapi_has_the_providers_schemes_and_docs_need_no_cdn(
    new_client: Callable[[], Client],
) -> None:
    client = new_client()
    schema = (await client.get("/openapi.json")).json()
    schemes = schema["components"]["securitySchemes"]
    assert schemes["jwt"] == {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    assert schemes["session"] == {"type": "apiKey", "in": "cookie", "name": "fastsecure_session"}
    assert schemes["apikey"] == {"type": "apiKey", "in": "header", "name": "X-API-Key"}
    assert {"jwt": []} in schema["paths"]["/api/me"]["get"]["security"]
    docs = await client.get("/docs")
    assert docs.status_code == 200
    scripts = re.findall(r'<script src="([^"]+)"', docs.text)
    assert scripts and all(src.startswith("/") for src in scripts)  # served by the app itself
    for src in scripts:
        assert (await client.get(src)).status_code == 200


# --- OAuth ------------------------------------------------------------------------------


async def test_sign_in_with_the_local_openid_provider(new_client: Callable[[], Client]) -> None:
    client = new_client()
    start = await client.get("/auth/local/login", params={"next": "/sessions"})
    assert start.status_code == 302
    authorize_url = start.headers["location"]
    query = parse_qs(urlsplit(authorize_url).query)
    assert query["code_challenge_method"] == ["S256"] and query["nonce"] and query["state"]
    async with httpx.AsyncClient() as browser_at_provider:
        page = await browser_at_provider.get(authorize_url)
        assert page.status_code == 200 and 'name="sub"' in page.text
        answer = await browser_at_provider.post(authorize_url, data={"sub": "carol"})
    assert answer.status_code == 302
    callback = answer.headers["location"]
    assert callback.startswith(f"{BASE}/auth/local/callback?")
    landed = await client.get(callback.removeprefix(BASE))
    assert landed.status_code == 303 and landed.headers["location"] == "/sessions"
    assert "HttpOnly" in landed.headers["set-cookie"]
    home = await client.get("/")
    assert "Carol (OpenID)" in home.text
    assert "signed in with OAuth: the local OpenID provider" in home.text
    me = (await client.get("/api/me")).json()
    assert me["user_id"] == "local:carol" and me["provider"] == "session"
    # The state is single-use: replaying the callback does not log anyone in again.
    replay = new_client()
    replayed = await replay.get(callback.removeprefix(BASE))
    assert replayed.status_code == 400
    assert "fastsecure_session" not in replay.cookies


async def test_google_and_github_buttons_only_with_credentials(
    tmp_path: Path, oidc_issuer: str
) -> None:
    bare = DemoSettings(data_dir=tmp_path / "a", public_url=BASE, oidc_issuer=oidc_issuer)
    async with running(bare) as new_client:
        page = (await new_client().get("/login")).text
        assert "Sign in with the local OpenID provider" in page
        assert "Google" not in page and "GitHub" not in page
        assert (await new_client().get("/auth/google/login")).status_code == 404
    configured = DemoSettings(
        data_dir=tmp_path / "b",
        public_url=BASE,
        google=OAuthClient("google-id", "google-secret"),
        github=OAuthClient("github-id", "github-secret"),
    )
    async with running(configured) as new_client:
        page = (await new_client().get("/login")).text
        assert "Sign in with Google" in page and "Sign in with GitHub" in page
        assert "local OpenID" not in page
        github = await new_client().get("/auth/github/login")
        assert github.status_code == 302
        target = urlsplit(github.headers["location"])
        assert target.netloc == "github.com"
        assert parse_qs(target.query)["redirect_uri"] == [f"{BASE}/auth/github/callback"]


def test_oauth_credentials_come_from_the_environment(tmp_path: Path) -> None:
    env = {
        "FASTSECURE_GOOGLE_CLIENT_ID": "gid",
        "FASTSECURE_GOOGLE_CLIENT_SECRET": "gsecret",
        "FASTSECURE_GITHUB_CLIENT_ID": "only-an-id",
        "FASTSECURE_DEMO_DATA_DIR": str(tmp_path),
        "FASTSECURE_DEMO_COOKIE_SECURE": "true",
    }
    settings = DemoSettings.from_env(env)
    assert settings.google == OAuthClient("gid", "gsecret")
    assert settings.github is None  # a client id without its secret is not enough
    assert settings.data_dir == tmp_path
    assert settings.secure_cookies is True
    assert (
        DemoSettings.from_env({"FASTSECURE_DEMO_DATA_DIR": str(tmp_path)}).secure_cookies is False
    )
    https = DemoSettings.from_env({}, public_url="https://demo.example", data_dir=tmp_path)
    assert https.secure_cookies is True


async def test_secure_cookie_setting_reaches_the_cookie(tmp_path: Path) -> None:
    settings = DemoSettings(data_dir=tmp_path, public_url=BASE, cookie_secure=True)
    async with running(settings) as new_client:
        response = await form_login(new_client(), "alice", "alice-password")
        assert response.status_code == 303
        assert "Secure" in response.headers["set-cookie"]


# --- state: SQLite across restarts, Redis, outages --------------------------------------


async def test_sessions_and_revocations_survive_a_restart(tmp_path: Path) -> None:
    settings = DemoSettings(data_dir=tmp_path / "data", public_url=BASE)
    async with running(settings) as new_client:
        client = new_client()
        await form_login(client, "alice", "alice-password")
        cookie = client.cookies["fastsecure_session"]
        kept = await api_login(client, "alice", "alice-password")
        dropped = await api_login(client, "alice", "alice-password")
        out = await client.post("/api/auth/logout", headers=bearer(dropped["access_token"]))
        assert out.json() == {"revoked": True}
    assert settings.database_path.exists()
    assert (settings.data_dir / "secrets.json").stat().st_mode & 0o777 == 0o600

    async with running(settings) as new_client:
        client = new_client()
        client.cookies.set("fastsecure_session", cookie)
        page = await client.get("/account")
        assert page.status_code == 200 and '<td id="user-id">alice</td>' in page.text
        token_client = new_client()
        assert (
            await token_client.get("/api/me", headers=bearer(kept["access_token"]))
        ).status_code == 200
        assert (
            await token_client.get("/api/me", headers=bearer(dropped["access_token"]))
        ).status_code == 401
        refreshed = await token_client.post(
            "/api/auth/refresh", json={"refresh_token": kept["refresh_token"]}
        )
        assert refreshed.status_code == 200


async def test_jwt_secret_from_the_environment_wins(tmp_path: Path) -> None:
    first = DemoSettings(data_dir=tmp_path, public_url=BASE)
    async with running(first) as new_client:
        tokens = await api_login(new_client(), "bob", "bob-password")
    other = DemoSettings(data_dir=tmp_path, public_url=BASE, jwt_secret="x" * 64)
    async with running(other) as new_client:
        assert (
            await new_client().get("/api/me", headers=bearer(tokens["access_token"]))
        ).status_code == 401


@pytest.mark.services
async def test_redis_store_when_a_redis_url_is_set(tmp_path: Path) -> None:
    require_service("127.0.0.1", 6379, "Redis")
    import redis.asyncio as redis

    prefix = f"fastsecure-demo-test-{uuid.uuid4().hex}:"
    settings = DemoSettings.from_env(
        {"FASTSECURE_REDIS_URL": "redis://127.0.0.1:6379/0"}, public_url=BASE, data_dir=tmp_path
    )
    settings = DemoSettings(**{**settings.__dict__, "redis_prefix": prefix})
    client_redis = redis.Redis.from_url("redis://127.0.0.1:6379/0")
    try:
        async with running(settings) as new_client:
            client = new_client()
            await form_login(client, "alice", "alice-password")
            assert (await client.get("/account")).status_code == 200
            assert "Sessions live in Redis" in (await client.get("/sessions")).text
            api = new_client()  # no session cookie: ANY would fall back to it
            tokens = await api_login(api, "alice", "alice-password")
            await api.post("/api/auth/logout", headers=bearer(tokens["access_token"]))
            assert (
                await api.get("/api/me", headers=bearer(tokens["access_token"]))
            ).status_code == 401
        keys = [key async for key in client_redis.scan_iter(match=f"{prefix}*")]
        assert keys, "the demo wrote nothing under its Redis prefix"
        assert not settings.database_path.exists()  # SQLite was not used
    finally:
        async for key in client_redis.scan_iter(match=f"{prefix}*"):
            await client_redis.delete(key)
        await client_redis.aclose()


async def test_store_outage_answers_503_not_500(tmp_path: Path) -> None:
    dead = f"redis://127.0.0.1:{free_port()}/0"
    settings = DemoSettings(data_dir=tmp_path, public_url=BASE, redis_url=dead)
    async with running(settings) as new_client:
        client = new_client()
        client.cookies.set("fastsecure_session", "x" * 43)
        response = await client.get("/api/me")
        assert response.status_code == 503
        assert response.headers["retry-after"] == "5"


# --- the one command --------------------------------------------------------------------


def test_python_m_demo_serves_and_prints_the_credentials(tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(EXAMPLES),
        "FASTSECURE_DEMO_DATA_DIR": str(tmp_path),
        "FASTSECURE_DEMO_PORT": str(port),
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("FASTSECURE_REDIS_URL", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "demo"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output: list[str] = []
    try:
        assert process.stdout is not None
        for line in process.stdout:
            output.append(line)
            if "Uvicorn running" in line or "Application startup complete" in line:
                break
        text = "".join(output)
        assert f"FastSecure demo: http://127.0.0.1:{port}" in text
        assert "alice / alice-password" in text and "bob / bob-password" in text
        assert "Local OpenID provider: http://127.0.0.1:" in text
        base = f"http://127.0.0.1:{port}"
        response = httpx.get(f"{base}/", timeout=10)
        assert response.status_code == 200 and "FastSecure demo" in response.text
        login = httpx.post(
            f"{base}/login",
            data={"username": "bob", "password": "bob-password"},
            headers={"Origin": base},
            timeout=10,
        )
        assert login.status_code == 303 and "fastsecure_session=" in login.headers["set-cookie"]
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
    assert (tmp_path / "fastsecure-demo.db").exists()


def test_every_requirement_is_enforced_and_public_routes_are_deliberate(
    settings: DemoSettings,
) -> None:
    from fastsecure.coverage import requirement_coverage

    app = create_app(settings)
    report = requirement_coverage(app, app.state.auth_manager)
    assert report.ok and not report.unenforced_routes
    assert not report.dependency_without_requirement  # no requires_auth route that always 401s
    assert not report.unused_patterns
    public = {route.path for route in report.uncovered_routes}
    assert public <= {
        "/openapi.json",
        "/docs",
        "/docs/oauth2-redirect",
        "/redoc",
        "/login",
        "/auth/{name}/login",
        "/auth/{name}/callback",
        "/api/auth/login",
        "/api/auth/refresh",
        # fastsecure-password's pages: for people who are not logged in, by design
        "/register",
        "/verify",
        "/forgot",
        "/reset",
        "/dev/outbox",
    }, public
