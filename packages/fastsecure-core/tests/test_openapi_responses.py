"""The OpenAPI document lists every answer the security dependency can give on each route."""

from __future__ import annotations

from typing import Any

from fastapi import Depends, FastAPI
from fastapi.security import OAuth2AuthorizationCodeBearer
from fastapi.security.base import SecurityBase

from fastsecure import AuthenticationManager, AuthenticationProvider, AuthenticationResult
from fastsecure.fastapi import AuthenticationMiddleware
from fastsecure.memory_tokens import MemoryTokenStore
from fastsecure.ratelimit import MemoryRateLimiter


class Keyed(AuthenticationProvider):
    def __init__(self, oauth: bool = False, store: bool = False) -> None:
        self.oauth = oauth
        self.token_store = MemoryTokenStore() if store else None

    def get_required_credentials(self) -> set[str]:
        return {"key"}

    async def authenticate(self, credentials: dict[str, Any]) -> AuthenticationResult:
        return AuthenticationResult(success=True, user_id=1, provider=self.provider_name)

    async def validate_authentication(self, auth_data: dict[str, Any]) -> bool:
        return True

    def security_schemes(self) -> list[SecurityBase]:
        if self.oauth:
            return [
                OAuth2AuthorizationCodeBearer(
                    authorizationUrl="https://idp/authorize",
                    tokenUrl="https://idp/token",
                    scheme_name=self.provider_name,
                    auto_error=False,
                )
            ]
        return super().security_schemes()


def make() -> tuple[AuthenticationManager, FastAPI]:
    manager = AuthenticationManager(autoload=False)
    manager.register_provider("key", Keyed())
    manager.register_provider("idp", Keyed(oauth=True, store=True))
    manager.add_requirement("/api/**", ["key"])
    manager.add_requirement("/api/admin/**", ["key", "idp"], scopes=["admin"])
    app = FastAPI()
    manager.install(app)

    @app.get("/api/items/{item_id}")
    async def item(item_id: int, auth: Any = Depends(manager.requires_auth)) -> dict[str, Any]:
        return {}

    @app.get(
        "/api/admin/stats",
        responses={403: {"description": "Our own words for 403"}},
    )
    async def stats(auth: Any = Depends(manager.requires_auth)) -> dict[str, Any]:
        return {}

    @app.get("/public")
    async def public(auth: Any = Depends(manager.optional_auth)) -> dict[str, Any]:
        return {}

    lenient_auth = manager.requires("key", auto_error=False, ignore_invalid=True)

    @app.get("/lenient")
    async def lenient(auth: Any = Depends(lenient_auth)) -> dict[str, Any]:
        return {}

    @app.get("/open")
    async def open_route() -> dict[str, Any]:
        return {}

    return manager, app


def op(schema: dict[str, Any], path: str) -> dict[str, Any]:
    return schema["paths"][path]["get"]  # type: ignore[no-any-return]


def test_each_route_lists_exactly_the_answers_its_requirement_can_give() -> None:
    _, app = make()
    schema = app.openapi()
    item = op(schema, "/api/items/{item_id}")
    assert sorted(item["responses"]) == ["200", "400", "401", "422"]  # no scopes: no 403
    assert "WWW-Authenticate" in item["responses"]["401"]["headers"]
    assert item["responses"]["401"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/AuthError"
    }
    stats = op(schema, "/api/admin/stats")
    assert sorted(stats["responses"]) == ["200", "400", "401", "403", "503"]
    assert stats["responses"]["403"]["description"] == "Our own words for 403"  # merged
    assert "Retry-After" in stats["responses"]["503"]["headers"]
    assert {"idp": ["admin"]} in stats["security"]  # OAuth 2 schemes carry the scopes
    public = op(schema, "/public")
    assert {} in public["security"]  # optional: credentials are not required
    assert "401" in public["responses"] and "403" not in public["responses"]
    lenient = op(schema, "/lenient")
    assert {} in lenient["security"] and "401" not in lenient["responses"]
    assert sorted(op(schema, "/open")["responses"]) == ["200"]
    assert schema["components"]["schemas"]["AuthError"]["required"] == ["detail"]


def test_middleware_routes_are_documented_too() -> None:
    manager = AuthenticationManager(autoload=False)
    manager.register_provider("key", Keyed())
    manager.add_requirement("/api/**", ["key"])
    app = FastAPI()
    manager.install(app)
    app.add_middleware(AuthenticationMiddleware, manager=manager)

    @app.get("/api/x")
    async def x() -> dict[str, Any]:
        return {}

    @app.get("/free")
    async def free() -> dict[str, Any]:
        return {}

    schema = app.openapi()
    assert "401" in op(schema, "/api/x")["responses"]
    assert "401" not in op(schema, "/free")["responses"]
    # No dependency declared the scheme to FastAPI: the document still names it, so a
    # client generator (and Swagger's Authorize button) knows what /api/x takes.
    assert op(schema, "/api/x")["security"] == [{"key": []}]
    assert "security" not in op(schema, "/free")
    assert schema["components"]["securitySchemes"]["key"] == {
        "type": "apiKey",
        "in": "header",
        "name": "X-Key",
    }


def test_security_lists_the_requirements_providers_only() -> None:
    # Found by Schemathesis on the demo: every guarded route listed every provider's scheme
    # as an alternative, so /api/service/* (API key only) claimed to take a bearer token and
    # the ALL route /api/admin/** claimed that either credential alone would do.
    manager = AuthenticationManager(autoload=False)
    manager.register_provider("key", Keyed())
    manager.register_provider("idp", Keyed(oauth=True))
    manager.register_provider("other", Keyed())
    manager.add_requirement("/any/**", ["key", "idp"], scopes=["read"])
    manager.add_requirement("/all/**", ["key", "idp"], strategy="all", scopes=["admin"])
    manager.add_requirement("/one/**", ["other"])
    app = FastAPI()
    manager.install(app)
    chosen = manager.requires("key", auto_error=False)

    for path in ("/any/x", "/all/x", "/one/x"):

        @app.get(path)
        async def route(auth: Any = Depends(manager.requires_auth)) -> dict[str, Any]:
            return {}

    @app.get("/chosen")
    async def chosen_route(auth: Any = Depends(chosen)) -> dict[str, Any]:
        return {}

    schema = app.openapi()
    assert op(schema, "/any/x")["security"] == [{"key": []}, {"idp": ["read"]}]
    assert op(schema, "/all/x")["security"] == [{"key": [], "idp": ["admin"]}]
    assert op(schema, "/one/x")["security"] == [{"other": []}]
    assert op(schema, "/chosen")["security"] == [{"key": []}, {}]
    # Every provider's scheme stays declared: Swagger's Authorize button offers them all.
    assert set(schema["components"]["securitySchemes"]) == {"key", "idp", "other"}


def test_auth_responses_document_a_login_route_with_the_same_error_body() -> None:
    # Found by Schemathesis on the demo: its login answered 401 and 429, its refresh 401,
    # neither documented. auth_responses() declares them; the AuthError schema they point
    # to exists even when no route of the app is guarded.
    from fastsecure.fastapi.openapi import auth_responses

    manager = AuthenticationManager(autoload=False)
    manager.register_provider("key", Keyed())
    app = FastAPI()
    manager.install(app)

    @app.post("/login", responses=auth_responses(401, 429, 503))
    async def login() -> dict[str, Any]:
        return {}

    schema = app.openapi()
    responses = op_of(schema, "/login", "post")["responses"]
    assert sorted(responses) == ["200", "401", "429", "503"]
    assert "WWW-Authenticate" in responses["401"]["headers"]
    assert "Retry-After" in responses["429"]["headers"]
    assert responses["429"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/AuthError"
    }
    assert schema["components"]["schemas"]["AuthError"]["required"] == ["detail"]
    assert auth_responses(401) is not auth_responses(401)  # each caller gets its own copy
    assert auth_responses(401)[401] is not auth_responses(401)[401]


class Limited(Keyed):
    """A provider that counts attempts, as a password or TOTP check does."""

    def __init__(self, limiter: Any) -> None:
        super().__init__()
        self.limiter = limiter


class SharedLimiter(MemoryRateLimiter):
    """Stands for a limiter kept outside the process (Redis, SQL)."""

    limiter_type = "redis"


def test_a_provider_that_counts_attempts_documents_429_and_an_outside_limiter_503() -> None:
    manager = AuthenticationManager(autoload=False)
    manager.register_provider("plain", Keyed())
    manager.register_provider("local", Limited(MemoryRateLimiter()))
    manager.register_provider("shared", Limited(SharedLimiter()))
    manager.add_requirement("/plain", ["plain"])
    manager.add_requirement("/local", ["local"])
    manager.add_requirement("/shared", ["shared"])
    app = FastAPI()
    manager.install(app)
    for path in ("/plain", "/local", "/shared"):

        @app.get(path)
        async def route(auth: Any = Depends(manager.requires_auth)) -> dict[str, Any]:
            return {}

    schema = app.openapi()
    assert sorted(op(schema, "/plain")["responses"]) == ["200", "400", "401"]
    local = op(schema, "/local")["responses"]
    assert sorted(local) == ["200", "400", "401", "429"]
    assert "Retry-After" in local["429"]["headers"]
    assert sorted(op(schema, "/shared")["responses"]) == ["200", "400", "401", "429", "503"]


def op_of(schema: dict[str, Any], path: str, method: str) -> dict[str, Any]:
    return schema["paths"][path][method]  # type: ignore[no-any-return]


class CookieWithCsrf(Keyed):
    """A cookie provider with a CSRF check, as fastsecure-session has."""

    def __init__(self) -> None:
        super().__init__()
        self.csrf = object()


def test_a_csrf_check_documents_403_on_unsafe_methods_only() -> None:
    # Found reviewing the demo's snapshot: GET /api/me listed a 403 that only a failed
    # CSRF check gives, and the check never runs on a safe method (RFC 9110 9.2.1).
    manager = AuthenticationManager(autoload=False)
    manager.register_provider("cookie", CookieWithCsrf())
    manager.add_requirement("/things", ["cookie"])
    app = FastAPI()
    manager.install(app)

    @app.get("/things")
    async def read(auth: Any = Depends(manager.requires_auth)) -> dict[str, Any]:
        return {}

    @app.post("/things")
    async def write(auth: Any = Depends(manager.requires_auth)) -> dict[str, Any]:
        return {}

    schema = app.openapi()
    assert "403" not in op_of(schema, "/things", "get")["responses"]
    assert "403" in op_of(schema, "/things", "post")["responses"]
