"""requires_auth through real requests to a FastAPI app (httpx ASGITransport)."""

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import Depends, FastAPI, WebSocket
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.websockets import WebSocketDisconnect

from fastsecure import AuthenticationManager, AuthenticationRequirement, AuthenticationResult
from fastsecure.fastapi import AuthenticationMiddleware, route_path
from fastsecure.testing import authenticated_as, raw_request


def build_app(manager: AuthenticationManager) -> FastAPI:
    manager.add_requirement("/api/service/*", providers=["apikey"])
    manager.add_requirement("/api/user/**", providers=["token", "cookie"])
    manager.add_requirement(
        "/api/admin/**", providers=["token", "cookie"], strategy="all", scopes=["admin"]
    )
    manager.add_requirement("/api/scoped", providers=["token"], scopes=["read"])
    app = FastAPI()

    @app.get("/api/service/data")
    async def service(
        auth: AuthenticationResult = Depends(manager.requires_auth),
    ) -> dict[str, Any]:
        return {"user_id": auth.user_id, "provider": auth.provider}

    @app.get("/api/user/profile")
    async def profile(
        auth: AuthenticationResult = Depends(manager.requires_auth),
    ) -> dict[str, Any]:
        return {
            "user_id": auth.user_id,
            "provider": auth.provider,
            "scopes": auth.metadata.get("scopes", []),
        }

    @app.post("/api/admin/action")
    async def admin(auth: AuthenticationResult = Depends(manager.requires_auth)) -> dict[str, Any]:
        return {"user_id": auth.user_id, "provider": auth.provider}

    @app.get("/api/scoped")
    async def scoped(auth: AuthenticationResult = Depends(manager.requires_auth)) -> dict[str, Any]:
        return {"user_id": auth.user_id}

    @app.get("/unmatched")
    async def unmatched(
        auth: AuthenticationResult = Depends(manager.requires_auth),
    ) -> dict[str, Any]:
        return {"user_id": auth.user_id}

    @app.get("/{first}/{second}")
    async def catch_all(
        first: str, second: str, auth: AuthenticationResult = Depends(manager.requires_auth)
    ) -> dict[str, Any]:
        return {"user_id": auth.user_id}

    @app.get("/public")
    async def public(
        auth: AuthenticationResult | None = Depends(manager.optional_auth),
    ) -> dict[str, Any]:
        return {"user_id": auth.user_id if auth else None}

    write_access = manager.requires("token", scopes=["write"])

    @app.get("/per-route")
    async def per_route(auth: AuthenticationResult = Depends(write_access)) -> dict[str, Any]:
        return {"user_id": auth.user_id}

    @app.websocket("/api/user/ws")
    async def ws(
        websocket: WebSocket, auth: AuthenticationResult = Depends(manager.requires_auth_websocket)
    ) -> None:
        await websocket.accept()
        await websocket.send_json({"user_id": auth.user_id})
        await websocket.close()

    return app


@pytest.fixture
async def client(manager: AuthenticationManager) -> AsyncIterator[httpx.AsyncClient]:
    app = build_app(manager)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as c:
        yield c


async def token(
    manager: AuthenticationManager,
    user_id: Any = 1,
    scopes: list[str] | None = None,
    name: str = "token",
) -> str:
    result = await manager.get_provider(name).authenticate(
        {"user_id": user_id, "scopes": scopes or []}
    )
    value = result.access_token or result.session_id
    assert value
    return value


async def test_readme_custom_provider_behind_requires_auth(client: httpx.AsyncClient) -> None:
    ok = await client.get("/api/service/data", headers={"X-API-Key": "key1"})
    assert ok.status_code == 200
    assert ok.json() == {"user_id": "user1", "provider": "apikey"}
    bad = await client.get("/api/service/data", headers={"X-API-Key": "wrong"})
    assert bad.status_code == 401
    assert bad.headers["www-authenticate"] == 'APIKey realm="apikey"'
    assert bad.json() == {"detail": "Invalid authentication credentials"}
    missing = await client.get("/api/service/data")
    assert missing.status_code == 401
    assert missing.json() == {"detail": "Not authenticated"}


async def test_any_via_header_or_cookie(
    client: httpx.AsyncClient, manager: AuthenticationManager
) -> None:
    t = await token(manager, 7)
    c = await token(manager, 8, name="cookie")
    r = await client.get("/api/user/profile", headers={"Authorization": f"Token {t}"})
    assert r.json()["user_id"] == 7 and r.json()["provider"] == "token"
    r = await client.get("/api/user/profile", cookies={"sid": c})
    assert r.json()["user_id"] == 8 and r.json()["provider"] == "cookie"
    r = await client.get(
        "/api/user/profile", headers={"Authorization": "Token forged"}, cookies={"sid": c}
    )
    assert r.status_code == 200 and r.json()["provider"] == "cookie"
    r = await client.get("/api/user/profile", headers={"Authorization": "Token forged"})
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == 'Token, Cookie realm="sid"'


async def test_all_with_scope_403_and_200(
    client: httpx.AsyncClient, manager: AuthenticationManager
) -> None:
    t = await token(manager, 1, ["admin"])
    c = await token(manager, 1, name="cookie")
    r = await client.post(
        "/api/admin/action", headers={"Authorization": f"Token {t}"}, cookies={"sid": c}
    )
    assert r.status_code == 200 and r.json() == {"user_id": 1, "provider": "all"}
    r = await client.post("/api/admin/action", headers={"Authorization": f"Token {t}"})
    assert r.status_code == 401
    weak = await token(manager, 1, ["read"])
    r = await client.post(
        "/api/admin/action", headers={"Authorization": f"Token {weak}"}, cookies={"sid": c}
    )
    assert r.status_code == 403
    assert "www-authenticate" not in r.headers
    other = await token(manager, 2, name="cookie")
    r = await client.post(
        "/api/admin/action", headers={"Authorization": f"Token {t}"}, cookies={"sid": other}
    )
    assert r.status_code == 401


async def test_scope_failure_is_403(
    client: httpx.AsyncClient, manager: AuthenticationManager
) -> None:
    r = await client.get(
        "/api/scoped", headers={"Authorization": f"Token {await token(manager, 1, ['write'])}"}
    )
    assert r.status_code == 403 and r.json() == {"detail": "Insufficient scope"}
    r = await client.get(
        "/api/scoped", headers={"Authorization": f"Token {await token(manager, 1, ['read'])}"}
    )
    assert r.status_code == 200


async def test_a_request_cannot_mint_credentials(client: httpx.AsyncClient) -> None:
    # The token provider logs in from {"user_id": ...}; nothing in a request may supply that.
    r = await client.get("/api/user/profile", headers={"X-User-Id": "1", "X-Scopes": "admin"})
    assert r.status_code == 401


async def test_unmatched_path_fails_closed(
    client: httpx.AsyncClient, manager: AuthenticationManager
) -> None:
    t = await token(manager)
    r = await client.get("/unmatched", headers={"Authorization": f"Token {t}"})
    assert r.status_code == 401
    manager.set_default_requirement(AuthenticationRequirement(["token"]))
    r = await client.get("/unmatched", headers={"Authorization": f"Token {t}"})
    assert r.status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        "//api/admin/action",
        "/api/admin/./action",
        "/api/user/../admin/action",
        "/api/user/..//admin/x",
    ],
)
async def test_non_canonical_paths_cannot_slip_past(
    manager: AuthenticationManager, path: str
) -> None:
    # Raw ASGI requests: an HTTP client would normalize these paths before sending them.
    manager.add_requirement("/api/admin/**", providers=["token"], scopes=["admin"])
    manager.add_requirement("/api/user/**", providers=["token"])
    app = FastAPI()

    @app.get("/{rest:path}")
    async def anything(
        rest: str, auth: AuthenticationResult = Depends(manager.requires_auth)
    ) -> dict[str, Any]:
        return {"user_id": auth.user_id}

    t = await token(manager)
    code = await raw_request(app, path, [(b"authorization", f"Token {t}".encode())])
    assert code in (400, 403)  # 400 where the canonical form names another requirement
    assert (
        await raw_request(app, "/api/user/profile", [(b"authorization", f"Token {t}".encode())])
        == 200
    )


async def test_encoded_separator_and_trailing_slash(
    client: httpx.AsyncClient, manager: AuthenticationManager
) -> None:
    r = await client.get("/api/service%2Fdata")
    assert r.status_code in (401, 404)
    r = await client.get("/api/service/data/", headers={"X-API-Key": "nope"})
    assert r.status_code in (401, 307)
    r = await client.head("/api/service/data")
    assert r.status_code in (401, 405)


async def test_store_outage_is_503(
    client: httpx.AsyncClient, manager: AuthenticationManager, cookie_provider: Any
) -> None:
    c = await token(manager, name="cookie")
    cookie_provider.down = True
    r = await client.get("/api/user/profile", cookies={"sid": c})
    assert r.status_code == 503
    assert r.json() == {"detail": "Authentication service unavailable"}
    cookie_provider.down = False
    r = await client.get("/api/user/profile", cookies={"sid": c})
    assert r.status_code == 200


async def test_optional_auth(client: httpx.AsyncClient, manager: AuthenticationManager) -> None:
    manager.add_requirement("/public", ["token"])
    assert (await client.get("/public")).json() == {"user_id": None}
    t = await token(manager, 3)
    assert (await client.get("/public", headers={"Authorization": f"Token {t}"})).json() == {
        "user_id": 3
    }
    # One rule for optional routes: a presented credential that is refused is a 401, so a
    # client whose token expired is told so instead of being served anonymous.
    refused = await client.get("/public", headers={"Authorization": "Token bad"})
    assert refused.status_code == 401 and refused.json() == {
        "detail": "Invalid authentication credentials"
    }
    # ...unless the requirement asks for lenient pages.
    manager.add_requirement("/public", ["token"], ignore_invalid=True)
    assert (await client.get("/public", headers={"Authorization": "Token bad"})).json() == {
        "user_id": None
    }


async def test_per_route_dependency(
    client: httpx.AsyncClient, manager: AuthenticationManager
) -> None:
    r = await client.get(
        "/per-route", headers={"Authorization": f"Token {await token(manager, 1, ['write'])}"}
    )
    assert r.status_code == 200
    r = await client.get(
        "/per-route", headers={"Authorization": f"Token {await token(manager, 1, ['read'])}"}
    )
    assert r.status_code == 403


async def test_authenticated_as_helper(
    client: httpx.AsyncClient, manager: AuthenticationManager
) -> None:
    with authenticated_as(manager, 42, scopes=["admin"]):
        r = await client.post("/api/admin/action")
        assert r.status_code == 200 and r.json()["user_id"] == 42
    with authenticated_as(manager, 42, scopes=["read"]):
        assert (await client.post("/api/admin/action")).status_code == 403
    assert (await client.post("/api/admin/action")).status_code == 401


def test_websocket(manager: AuthenticationManager) -> None:
    import asyncio

    app = build_app(manager)
    t = asyncio.run(token(manager, 11))
    with TestClient(app) as tc:
        with tc.websocket_connect("/api/user/ws", headers={"Authorization": f"Token {t}"}) as ws:
            assert ws.receive_json() == {"user_id": 11}
        with (
            pytest.raises(WebSocketDisconnect) as info,
            tc.websocket_connect("/api/user/ws", headers={"Authorization": "Token nope"}) as ws,
        ):
            ws.receive_json()
        assert info.value.code == 1008


async def test_middleware_enforces_app_wide(manager: AuthenticationManager) -> None:
    manager.add_requirement("/guarded/**", providers=["apikey"])
    app = FastAPI()
    app.add_middleware(AuthenticationMiddleware, manager=manager)

    @app.get("/guarded/data")
    async def data() -> dict[str, str]:  # no dependency: the middleware alone protects it
        return {"ok": "yes"}

    @app.get("/open")
    async def open_route() -> dict[str, str]:
        return {"ok": "open"}

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        assert (await c.get("/guarded/data")).status_code == 401
        assert (await c.get("/guarded/data", headers={"X-API-Key": "key1"})).status_code == 200
        assert (await c.get("/open")).status_code == 200
        assert (await c.get("//guarded/data")).status_code in (400, 401, 404)


def test_openapi_security_schemes(manager: AuthenticationManager) -> None:
    app = build_app(manager)
    spec = app.openapi()
    assert spec["components"]["securitySchemes"] == {
        "token": {"type": "apiKey", "in": "header", "name": "Authorization"},
        "cookie": {"type": "apiKey", "in": "cookie", "name": "sid"},
        "apikey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
    }
    assert spec["paths"]["/api/user/profile"]["get"]["security"] == [
        {"token": []},
        {"cookie": []},
        {"apikey": []},
    ]
    assert spec["paths"]["/per-route"]["get"]["security"] == [{"token": []}]
    params = spec["paths"]["/api/user/profile"]["get"].get("parameters", [])
    assert all(not p["name"].startswith("fastsecure") for p in params)


header_values = st.one_of(
    st.text(max_size=300),
    st.binary(max_size=300).map(lambda b: b.decode("latin-1")),
    st.sampled_from(["", " ", "Token", "Token ", "Bearer x", "Token " + "a" * 10000, "token\tx"]),
)


@settings(
    max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None
)
@given(authorization=header_values, cookie=header_values, api_key=header_values)
def test_garbage_never_500_never_pass(
    manager: AuthenticationManager, authorization: str, cookie: str, api_key: str
) -> None:
    import asyncio

    if not manager.get_requirement("/api/user/profile"):
        build_app(manager)

    async def go() -> list[int]:
        app = FastAPI()
        app.router.routes.extend(build_app_routes(manager))
        headers = []
        for name, value in (
            ("authorization", authorization),
            ("x-api-key", api_key),
            ("cookie", f"sid={cookie}"),
        ):
            try:
                headers.append((name.encode(), value.encode("latin-1")))
            except UnicodeEncodeError:
                headers.append((name.encode(), value.encode("utf-8")))
        codes = []
        for path in ("/api/user/profile", "/api/service/data", "/api/admin/action"):
            scope_headers = [(k, v.replace(b"\r", b"").replace(b"\n", b"")) for k, v in headers]
            codes.append(await raw_request(app, path, scope_headers))
        return codes

    for code in asyncio.run(go()):
        assert code in (401, 403, 405), code


def build_app_routes(manager: AuthenticationManager) -> list[Any]:
    app = FastAPI()

    @app.get("/api/user/profile")
    async def profile(
        auth: AuthenticationResult = Depends(manager.requires_auth),
    ) -> dict[str, Any]:
        return {"user_id": auth.user_id}

    @app.get("/api/service/data")
    async def service(
        auth: AuthenticationResult = Depends(manager.requires_auth),
    ) -> dict[str, Any]:
        return {"user_id": auth.user_id}

    @app.get("/api/admin/action")
    async def admin(auth: AuthenticationResult = Depends(manager.requires_auth)) -> dict[str, Any]:
        return {"user_id": auth.user_id}

    return list(app.router.routes)


async def test_a_result_never_leaks_into_another_request_sharing_lifespan_state(
    manager: AuthenticationManager,
) -> None:
    """asgi-lifespan hands every request the same state dict: nothing may be cached there."""
    from contextlib import asynccontextmanager

    from asgi_lifespan import LifespanManager

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        yield {"shared": True}

    manager.add_requirement("/me", ["token"])
    app = FastAPI(lifespan=lifespan)

    @app.get("/me")
    async def me(auth: AuthenticationResult = Depends(manager.requires_auth)) -> dict[str, Any]:
        return {"user": auth.user_id}

    t = await token(manager, "alice")
    async with LifespanManager(app) as lm:
        transport = httpx.ASGITransport(app=lm.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            first = await c.get("/me", headers={"Authorization": f"Token {t}"})
            assert first.json() == {"user": "alice"}
            anonymous = await c.get("/me")
            assert anonymous.status_code == 401


async def test_a_mounted_sub_app_is_judged_by_its_full_path(manager: AuthenticationManager) -> None:
    """Patterns name full URL paths: a sub-app mounted at /admin must get /admin/**'s rule.

    Starlette puts the mount prefix into ``root_path``; stripping it made ``/admin/users``
    look like ``/users`` and matched the weaker ``/**`` requirement (a non-admin got 200).
    """
    manager.add_requirement("/admin/**", ["token"], scopes=["admin"])
    manager.add_requirement("/**", ["token"])
    admin = FastAPI()

    @admin.get("/users")
    async def users(auth: AuthenticationResult = Depends(manager.requires_auth)) -> dict[str, Any]:
        return {"user": auth.user_id}

    app = FastAPI()
    app.mount("/admin", admin)
    plain = await token(manager, "bob", scopes=["read"])
    boss = await token(manager, "alice", scopes=["admin"])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        denied = await c.get("/admin/users", headers={"Authorization": f"Token {plain}"})
        assert denied.status_code == 403
        allowed = await c.get("/admin/users", headers={"Authorization": f"Token {boss}"})
        assert allowed.json() == {"user": "alice"}
    # A server root_path (a proxy prefix) is still not part of the pattern.
    scope_root = {"path": "/prefix/admin/users", "root_path": "/prefix"}
    assert route_path(scope_root) == "/admin/users"
    assert route_path({"path": "/prefixed/x", "root_path": "/prefix"}) == "/prefixed/x"
    assert route_path({**scope_root, "app_root_path": "/prefix", "root_path": "/prefix/admin"}) == (
        "/admin/users"
    )


async def test_a_protected_route_no_pattern_matches_is_logged_once(
    manager: AuthenticationManager, caplog: pytest.LogCaptureFixture
) -> None:
    app = FastAPI()

    @app.get("/orphan/{item}")
    async def orphan(item: str, auth: Any = Depends(manager.requires_auth)) -> dict[str, Any]:
        return {}

    caplog.set_level("WARNING", logger="fastsecure")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        for item in ("a", "b", "c"):
            assert (await client.get(f"/orphan/{item}")).status_code == 401
    warnings = [r for r in caplog.records if "no requirement pattern matches" in r.message]
    assert len(warnings) == 1 and "/orphan/{item}" in warnings[0].getMessage()


def test_one_dependant_per_protected_route(manager: AuthenticationManager) -> None:
    """FastAPI solves a fixed, minimal tree: the dependency is its own first scheme."""
    from fastapi.routing import APIRoute

    manager.add_requirement("/only-token", ["token"])
    app = FastAPI()

    token_only = manager.requires("token")

    @app.get("/only-token")
    async def only_token(auth: Any = Depends(token_only)) -> dict[str, Any]:
        return {}

    route = next(r for r in app.routes if isinstance(r, APIRoute) and r.path == "/only-token")
    (dependency,) = route.dependant.dependencies
    assert dependency.dependencies == []  # no per-request scheme sub-dependency
    assert app.openapi()["paths"]["/only-token"]["get"]["security"]


@pytest.mark.parametrize("strategy", ["any", "all"])
@pytest.mark.parametrize("installed", [False, True])
def test_several_schemes_same_document_one_dependant_once_installed(
    manager: AuthenticationManager, strategy: str, installed: bool
) -> None:
    """After ``install(app)`` a route accepting two providers costs FastAPI one dependant.

    The second scheme is then documented by FastSecure's OpenAPI post-processing instead
    of a per-request sub-dependency; the document is the same either way.
    """
    from fastapi.routing import APIRoute

    manager.add_requirement("/either/**", ["cookie", "token"], strategy=strategy)
    app = FastAPI()
    if installed:
        manager.install(app)

    @app.get("/either/path")
    async def by_path(auth: Any = Depends(manager.requires_auth)) -> dict[str, Any]:
        return {"user": auth.user_id}

    either = manager.requires("cookie", "token", strategy=strategy)

    @app.get("/either/declared")
    async def declared(auth: Any = Depends(either)) -> dict[str, Any]:
        return {"user": auth.user_id}

    if not installed:
        manager.install(app)  # the document is completed either way; the tree is not
    spec = app.openapi()
    expected = (
        [{"cookie": []}, {"token": []}] if strategy == "any" else [{"cookie": [], "token": []}]
    )
    for path in ("/either/path", "/either/declared"):
        route = next(r for r in app.routes if isinstance(r, APIRoute) and r.path == path)
        (dependency,) = route.dependant.dependencies
        assert (dependency.dependencies == []) is installed
        assert spec["paths"][path]["get"]["security"] == expected
    assert {"cookie", "token"} <= set(spec["components"]["securitySchemes"])
