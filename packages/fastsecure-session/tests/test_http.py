"""The provider behind a real FastAPI app: cookie, CSRF, cookie attributes, 503, OpenAPI."""

import asyncio
from collections.abc import Callable
from datetime import datetime
from typing import Any

import httpx
import pytest
from fastapi import Depends, FastAPI, WebSocket
from fastapi.testclient import TestClient
from starlette.responses import Response
from starlette.websockets import WebSocketDisconnect

from fastsecure import AuthenticationManager, AuthenticationResult, StoreUnavailableError
from fastsecure.stores import SessionRecord, SessionStore
from fastsecure_session import (
    MemorySessionStore,
    SessionAuthenticationProvider,
    clear_session_cookie,
    csrf_token,
    set_session_cookie,
)
from fastsecure_session.csrf import normalize_origin

Make = Callable[..., SessionAuthenticationProvider]
AppFor = Callable[[SessionAuthenticationProvider], tuple[FastAPI, AuthenticationManager]]
ClientFor = Callable[[FastAPI], httpx.AsyncClient]
ORIGIN = "http://testserver"


async def logged_in(client: httpx.AsyncClient, user_id: Any = 42) -> str:
    response = await client.post("/login", json={"user_id": user_id, "scopes": ["user:read"]})
    assert response.status_code == 200, response.text
    session_id = client.cookies.get("session_id")
    assert session_id
    return session_id


async def test_cookie_flow(make_provider: Make, app_for: AppFor, client_for: ClientFor) -> None:
    provider = make_provider(cookie_secure=False)  # plain http test client
    app, _ = app_for(provider)
    client = client_for(app)
    assert (await client.get("/api/user/profile")).status_code == 401
    await logged_in(client)
    profile = await client.get("/api/user/profile")
    assert profile.status_code == 200
    assert profile.json() == {"user_id": 42, "scopes": ["user:read"]}
    out = await client.delete("/api/user/session", headers={"Origin": ORIGIN})
    assert out.json() == {"revoked": True}
    assert "session_id" not in client.cookies
    assert (await client.get("/api/user/profile")).status_code == 401


async def test_unknown_cookie_is_401_with_challenge(
    provider: SessionAuthenticationProvider, app_for: AppFor, client_for: ClientFor
) -> None:
    app, _ = app_for(provider)
    client = client_for(app)
    client.cookies.set("session_id", "forged")
    response = await client.get("/api/user/profile")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Cookie realm="session"'


async def test_custom_cookie_name(
    make_provider: Make, app_for: AppFor, client_for: ClientFor
) -> None:
    provider = make_provider(cookie_name="my_sid", cookie_secure=False)
    app, _ = app_for(provider)
    client = client_for(app)
    await client.post("/login", json={"user_id": 1})
    assert client.cookies.get("my_sid")
    assert (await client.get("/api/user/profile")).status_code == 200
    sid = client.cookies["my_sid"]
    client.cookies.clear()
    client.cookies.set("session_id", sid)
    assert (await client.get("/api/user/profile")).status_code == 401


# --- CSRF -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 403),
        ({"Origin": ORIGIN}, 200),
        ({"Origin": "http://TESTSERVER:80"}, 200),
        ({"Origin": "https://testserver"}, 403),
        ({"Origin": "http://testserver:8080"}, 403),
        ({"Origin": "http://evil.example"}, 403),
        ({"Origin": "null"}, 403),
        ({"Origin": "http://testserver.evil.example"}, 403),
        ({"Referer": f"{ORIGIN}/settings?x=1"}, 200),
        ({"Referer": "http://evil.example/testserver"}, 403),
        ({"Origin": "http://evil.example", "Referer": f"{ORIGIN}/"}, 403),
        ({"Origin": "https://app.example.com"}, 200),  # trusted
    ],
)
async def test_csrf_origin_check(
    make_provider: Make,
    app_for: AppFor,
    client_for: ClientFor,
    headers: dict[str, str],
    status: int,
) -> None:
    provider = make_provider(cookie_secure=False, csrf_trusted_origins=["https://app.example.com"])
    app, _ = app_for(provider)
    client = client_for(app)
    await logged_in(client)
    response = await client.post("/api/user/profile", headers=headers)
    assert response.status_code == status, response.text
    if status == 403:
        assert response.json() == {"detail": "CSRF check failed"}


# Every method but the safe ones (RFC 9110 section 9.2.1): a route may accept PURGE or a
# WebDAV method, and an allow-list of safe methods cannot forget one.
@pytest.mark.parametrize(
    "method", ["POST", "PUT", "PATCH", "DELETE", "PURGE", "PROPPATCH", "MKCOL", "LOCK"]
)
async def test_every_unsafe_method_is_checked(
    make_provider: Make, client_for: ClientFor, method: str
) -> None:
    provider = make_provider(cookie_secure=False)
    manager = AuthenticationManager(autoload=False)
    manager.register_provider("session", provider)
    app = FastAPI()

    session_only = manager.requires("session")

    @app.api_route("/thing", methods=[method])
    async def thing(auth: AuthenticationResult = Depends(session_only)) -> str:
        return "ok"

    result = await provider.authenticate({"user_id": 1})
    client = client_for(app)
    client.cookies.set("session_id", str(result.session_id))
    assert (await client.request(method, "/thing")).status_code == 403
    ok = await client.request(method, "/thing", headers={"Origin": ORIGIN})
    assert ok.status_code == 200


async def test_safe_methods_and_cookieless_requests_skip_csrf(
    make_provider: Make, app_for: AppFor, client_for: ClientFor
) -> None:
    provider = make_provider(cookie_secure=False)
    app, _ = app_for(provider)
    client = client_for(app)
    assert (await client.post("/api/user/profile")).status_code == 401  # no cookie: not CSRF
    await logged_in(client)
    assert (await client.get("/api/user/profile")).status_code == 200


async def test_csrf_can_be_disabled(
    make_provider: Make, app_for: AppFor, client_for: ClientFor
) -> None:
    provider = make_provider(cookie_secure=False, csrf_protection=False)
    app, _ = app_for(provider)
    client = client_for(app)
    await logged_in(client)
    assert (await client.post("/api/user/profile")).status_code == 200


async def test_csrf_double_submit(
    make_provider: Make, app_for: AppFor, client_for: ClientFor
) -> None:
    provider = make_provider(cookie_secure=False, csrf_mode="double_submit")
    app, _ = app_for(provider)
    client = client_for(app)
    session_id = await logged_in(client)
    token = client.cookies.get("csrf_token")
    assert token == csrf_token(session_id)
    assert token != session_id
    assert (await client.post("/api/user/profile")).status_code == 403
    assert (await client.post("/api/user/profile", headers={"Origin": ORIGIN})).status_code == 403
    tampered = token[:-1] + ("B" if token.endswith("A") else "A")  # never the token itself
    bad = await client.post("/api/user/profile", headers={"X-CSRF-Token": tampered})
    assert bad.status_code == 403
    other = await client.post("/api/user/profile", headers={"X-CSRF-Token": csrf_token("other")})
    assert other.status_code == 403
    assert (
        await client.post("/api/user/profile", headers={"X-CSRF-Token": token})
    ).status_code == 200


def test_websocket_origin_is_checked(make_provider: Make) -> None:
    provider = make_provider(cookie_secure=False)
    manager = AuthenticationManager(autoload=False)
    manager.register_provider("session", provider)
    manager.add_requirement("/ws", providers=["session"])
    app = FastAPI()

    @app.websocket("/ws")
    async def ws(
        websocket: WebSocket, auth: AuthenticationResult = Depends(manager.requires_auth_websocket)
    ) -> None:
        await websocket.accept()
        await websocket.send_json({"user_id": auth.user_id})
        await websocket.close()

    session_id = asyncio.run(provider.authenticate({"user_id": 5})).session_id
    client = TestClient(app, cookies={"session_id": str(session_id)})
    with client.websocket_connect("/ws") as conn:
        assert conn.receive_json() == {"user_id": 5}
    with client.websocket_connect("/ws", headers={"Origin": ORIGIN}) as conn:
        assert conn.receive_json() == {"user_id": 5}
    with (
        pytest.raises(WebSocketDisconnect) as info,
        client.websocket_connect("/ws", headers={"Origin": "http://evil.example"}) as conn,
    ):
        conn.receive_json()
    assert info.value.code == 1008


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("https://Example.com:443/path", "https://example.com"),
        ("http://example.com:8000", "http://example.com:8000"),
        ("http://[::1]:8000/x", "http://[::1]:8000"),
        ("null", None),
        ("ftp://example.com", None),
        ("http://", None),
        ("http://example.com:99999", None),
        ("", None),
    ],
)
def test_normalize_origin(value: str, expected: str | None) -> None:
    assert normalize_origin(value) == expected


# --- cookies ----------------------------------------------------------------------------------


def _set_cookies(response: Response) -> list[str]:
    return [v.decode() for k, v in response.raw_headers if k == b"set-cookie"]


async def test_cookie_defaults_are_secure(provider: SessionAuthenticationProvider) -> None:
    result = await provider.authenticate({"user_id": 1})
    response = Response()
    set_session_cookie(response, result)
    (cookie,) = _set_cookies(response)
    attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
    assert cookie.startswith(f"__Host-session_id={result.session_id};")
    assert {"httponly", "secure", "samesite", "path", "max-age", "expires"} <= attributes
    assert "domain" not in attributes  # __Host- forbids it
    assert "SameSite=lax" in cookie
    assert "Path=/" in cookie
    max_age = int(cookie.split("Max-Age=")[1].split(";")[0])
    assert 30 * 60 - 5 <= max_age <= 30 * 60


async def test_cookie_for_local_development(provider: SessionAuthenticationProvider) -> None:
    result = await provider.authenticate({"user_id": 1})
    response = Response()
    set_session_cookie(
        response, result, secure=False, samesite="strict", cookie_name="sid", path="/app"
    )
    (cookie,) = _set_cookies(response)
    assert cookie.startswith("sid=")
    assert "Secure" not in cookie
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    assert "Path=/app" in cookie


async def test_cookie_helper_refuses_failures_and_insecure_none() -> None:
    with pytest.raises(ValueError):
        set_session_cookie(Response(), AuthenticationResult.failure("no"))
    ok = AuthenticationResult(
        success=True, session_id="x" * 43, expires_at=datetime.now().astimezone()
    )
    with pytest.raises(ValueError):
        set_session_cookie(Response(), ok, secure=False, samesite="none")


def test_clear_cookie() -> None:
    response = Response()
    clear_session_cookie(response, csrf_cookie_name="csrf_token")
    cookies = _set_cookies(response)
    assert len(cookies) == 2
    assert cookies[0].startswith('__Host-session_id="";')
    assert all("Max-Age=0" in c for c in cookies)


async def test_provider_cookie_settings(make_provider: Make) -> None:
    provider = make_provider(cookie_name="sid", cookie_domain="example.com", cookie_path="/api")
    result = await provider.authenticate({"user_id": 1})
    response = Response()
    provider.set_cookie(response, result)
    (cookie,) = _set_cookies(response)
    assert cookie.startswith("sid=")
    assert "Domain=example.com" in cookie
    assert "Path=/api" in cookie
    assert "Secure" in cookie


# --- a failing store: 503 ---------------------------------------------------------------------


class DownStore(MemorySessionStore):
    """A store whose backend is down: every call raises StoreUnavailableError."""

    down = False

    async def get_session(self, session_id: str) -> SessionRecord | None:
        if self.down:
            raise StoreUnavailableError("session store unreachable")
        return await super().get_session(session_id)

    async def create_session_limited(self, *args: Any, **kwargs: Any) -> Any:
        if self.down:
            raise StoreUnavailableError("session store unreachable")
        return await super().create_session_limited(*args, **kwargs)

    async def touch_session(self, session_id: str, last_seen: datetime) -> bool:
        raise StoreUnavailableError("session store unreachable")


async def test_store_down_is_503(
    make_provider: Make, app_for: AppFor, client_for: ClientFor
) -> None:
    store = DownStore()
    provider = make_provider(session_store=store, cookie_secure=False)
    app, manager = app_for(provider)
    client = client_for(app)
    await logged_in(client)
    store.down = True
    response = await client.get("/api/user/profile")
    assert response.status_code == 503
    assert response.headers.get("retry-after")
    with pytest.raises(StoreUnavailableError):
        await manager.authenticate("/api/user/profile", {"session": {"user_id": 1}})


async def test_lost_touch_does_not_fail_a_valid_request(make_provider: Make) -> None:
    provider = make_provider(session_store=DownStore(), touch_interval_seconds=0)
    result = await provider.authenticate({"user_id": 1})
    assert (await provider.authenticate({"session_id": result.session_id})).success


# --- OpenAPI ----------------------------------------------------------------------------------


def test_openapi_lists_the_cookie_scheme(make_provider: Make, app_for: AppFor) -> None:
    app, _ = app_for(make_provider(cookie_name="sid"))
    schemes = app.openapi()["components"]["securitySchemes"]
    assert schemes == {"session": {"type": "apiKey", "in": "cookie", "name": "sid"}}


def test_store_contract_is_respected() -> None:
    assert issubclass(DownStore, SessionStore)


async def test_revoking_a_device_with_a_hostile_key_is_a_clean_no(
    make_provider: Make, app_for: AppFor, client_for: ClientFor
) -> None:
    # The README's device route passes the path parameter straight to revoke_session;
    # hmac.compare_digest refuses non-ASCII str, which used to surface as a 500.
    provider = make_provider(cookie_secure=False)  # plain http test client
    app, manager = app_for(provider)
    manager.add_requirement("/api/user/sessions/*", providers=["session"])

    @app.delete("/api/user/sessions/{key}")
    async def revoke_device(
        key: str, auth: AuthenticationResult = Depends(manager.requires_auth)
    ) -> dict[str, bool]:
        assert auth.user_id is not None
        return {"revoked": await provider.revoke_session(auth.user_id, key)}

    client = client_for(app)
    await logged_in(client)
    origin = {"Origin": ORIGIN}
    for key in ("%C3%A9", "%E2%82%AC" * 20, "%F0%9F%94%91"):
        response = await client.delete(f"/api/user/sessions/{key}", headers=origin)
        assert response.status_code == 200, response.text
        assert response.json() == {"revoked": False}
    assert (await client.get("/api/user/profile")).status_code == 200
    for bad in ("é", 1, None, b"key"):
        assert await provider.revoke_session(42, bad) is False  # type: ignore[arg-type]
