from typing import Any

import httpx
from fastapi import FastAPI

from fastsecure import AuthenticationManager
from fastsecure.fastapi import debug_router


async def test_explain_records_each_provider_and_the_verdict(
    manager: AuthenticationManager, cookie_provider: Any
) -> None:
    manager.add_requirement("/api/**", ["token", "cookie"], scopes=["admin"])
    login = await manager.get_provider("token").authenticate({"user_id": 4, "scopes": ["read"]})
    trace = await manager.explain(
        "/api/x", {"token": {"token": login.access_token}, "cookie": {"token": "forged"}}
    )
    assert trace.pattern == "/api/**" and trace.strategy == "any"
    assert [(p.provider, p.outcome) for p in trace.providers] == [
        ("token", "authenticated"),
        ("cookie", "rejected"),
    ]
    assert trace.providers[0].scopes == ["read"]
    assert (trace.status, trace.detail) == (403, "insufficient_scope")
    assert str(login.access_token) not in repr(trace.as_dict())
    cookie_provider.down = True
    outage = await manager.explain("/api/x", {"cookie": {"token": "x"}})
    assert outage.providers[1].outcome == "error" and outage.status == 503
    nothing = await manager.explain("/elsewhere", {})
    assert (nothing.pattern, nothing.status) == (None, 401)


async def test_debug_router_only_when_enabled(manager: AuthenticationManager) -> None:
    manager.add_requirement("/api/**", ["apikey"])
    app = FastAPI()
    app.include_router(debug_router(manager, enabled=False))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        assert (await c.get("/-/fastsecure/explain")).status_code == 404
    app = FastAPI()
    app.include_router(debug_router(manager, enabled=True))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        r = await c.get(
            "/-/fastsecure/explain", params={"path": "/api/x"}, headers={"X-API-Key": "key1"}
        )
        body = r.json()
        assert body["status"] == 200 and body["user_id"] == "user1"
        assert "key1" not in r.text
        r = await c.get("/-/fastsecure/explain", params={"path": "/api/x"})
        assert r.json()["providers"] == [
            {
                "provider": "apikey",
                "required": True,
                "outcome": "not_applicable",
                "user_id": None,
                "scopes": [],
                "reason": "no credential presented",
            }
        ]
        assert "/-/fastsecure/explain" not in app.openapi()["paths"]
