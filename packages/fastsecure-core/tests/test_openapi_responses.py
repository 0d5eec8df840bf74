"""The OpenAPI document lists every answer the security dependency can give on each route."""

from __future__ import annotations

from typing import Any

from fastapi import Depends, FastAPI
from fastapi.security import OAuth2AuthorizationCodeBearer
from fastapi.security.base import SecurityBase

from fastsecure import AuthenticationManager, AuthenticationProvider, AuthenticationResult
from fastsecure.fastapi import AuthenticationMiddleware
from fastsecure.memory_tokens import MemoryTokenStore


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
