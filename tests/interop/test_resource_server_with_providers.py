"""The resource server next to our own JWTs: ANY in both orders, explain(), an issuer outage."""

from __future__ import annotations

import secrets
from typing import Any

import httpx
from fastapi import Depends, FastAPI

from fastsecure import AuthenticationManager, AuthenticationResult
from fastsecure_jwt import JWTAuthenticationProvider
from fastsecure_resource.testing import LocalIssuer

API = "https://api.example.test"


def setup(
    order: tuple[str, str],
) -> tuple[AuthenticationManager, LocalIssuer, JWTAuthenticationProvider, FastAPI]:
    issuer = LocalIssuer("https://login.example.test/")
    manager = AuthenticationManager()
    own = JWTAuthenticationProvider(secret_key=secrets.token_urlsafe(32))
    manager.register_provider("jwt", own)
    manager.register_provider("idp", issuer.provider(API))
    manager.add_requirement("/api/**", providers=list(order), strategy="any", scopes=["read"])
    app = FastAPI()

    @app.get("/api/me")
    async def me(result: AuthenticationResult = Depends(manager.requires_auth)) -> dict[str, Any]:
        return {"user": result.user_id, "provider": result.provider}

    return manager, issuer, own, app


async def test_any_accepts_either_token_in_either_order() -> None:
    for order in (("jwt", "idp"), ("idp", "jwt")):
        manager, issuer, own, app = setup(order)
        external = issuer.token_for(
            issuer.attach(manager.get_provider("idp")), sub="ext", scopes=["read"]
        )  # type: ignore[arg-type]
        ours = (await own.authenticate({"user_id": "me", "scopes": ["read"]})).access_token
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://api"
        ) as http:
            for token, expected in (
                (external, {"user": "ext", "provider": "idp"}),
                (ours, {"user": "me", "provider": "jwt"}),
            ):
                response = await http.get("/api/me", headers={"Authorization": f"Bearer {token}"})
                assert response.status_code == 200, (order, response.text)
                assert response.json() == expected
            assert (
                await http.get("/api/me", headers={"Authorization": "Bearer x.y.z"})
            ).status_code == 401


async def test_our_own_tokens_pass_while_the_issuer_is_down() -> None:
    # The resource server refuses a token of another issuer before looking for keys, so
    # an unreachable issuer does not turn our own valid JWTs into 503s.
    manager, issuer, own, app = setup(("idp", "jwt"))
    issuer.available = False
    ours = (await own.authenticate({"user_id": "me", "scopes": ["read"]})).access_token
    external = issuer.token_for(manager.get_provider("idp"), scopes=["read"])  # type: ignore[arg-type]
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://api"
    ) as http:
        assert (
            await http.get("/api/me", headers={"Authorization": f"Bearer {ours}"})
        ).status_code == 200
        assert (
            await http.get("/api/me", headers={"Authorization": f"Bearer {external}"})
        ).status_code == 503
    assert sum(issuer.requests.values()) == 2  # the external token's discovery attempts only


async def test_explain_shows_each_providers_outcome() -> None:
    manager, issuer, _, _ = setup(("jwt", "idp"))
    external = issuer.token_for(manager.get_provider("idp"), sub="ext", scopes=["read"])  # type: ignore[arg-type]
    trace = await manager.explain(
        "/api/x", {"jwt": {"access_token": external}, "idp": {"access_token": external}}
    )
    assert {p.provider: p.outcome for p in trace.providers} == {
        "jwt": "rejected",
        "idp": "authenticated",
    }
