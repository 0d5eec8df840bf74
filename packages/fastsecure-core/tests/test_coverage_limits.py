"""``fastsecure coverage`` names login-like routes that nothing rate-limits."""

from __future__ import annotations

from typing import Any

from fastapi import Depends, FastAPI

from fastsecure import AuthenticationManager
from fastsecure.coverage import requirement_coverage
from fastsecure.ratelimit import RateLimit


def test_login_like_routes_without_a_limit_are_reported(manager: AuthenticationManager) -> None:
    manager.add_requirement("/auth/token", ["token"], rate_limit=RateLimit(5, 60))
    app = FastAPI()
    limited_dep = manager.requires("token", rate_limit=RateLimit(5, 60))

    @app.post("/auth/login")
    async def login() -> dict[str, Any]:  # hand-written, no limit anywhere
        return {}

    @app.post("/auth/token")
    async def token(auth: Any = Depends(manager.requires_auth)) -> dict[str, Any]:
        return {}

    @app.post("/auth/reset", responses={429: {"description": "limited by the app"}})
    async def reset() -> dict[str, Any]:
        return {}

    @app.post("/auth/signin")
    async def signin(auth: Any = Depends(limited_dep)) -> dict[str, Any]:
        return {}

    @app.get("/auth/login")
    async def login_page() -> dict[str, Any]:  # a page, not an attempt
        return {}

    report = requirement_coverage(app, manager)
    assert [(r.path, r.methods) for r in report.unlimited_login_routes] == [
        ("/auth/login", ("POST",))
    ]
    assert report.as_dict()["unlimited_login_routes"][0]["path"] == "/auth/login"
