"""The whole authorization code flow with PKCE against oidc-provider-mock, as a browser does it."""

from typing import Any

import pytest
from fastapi import Depends, FastAPI

from fastsecure import AuthenticationManager, AuthenticationResult
from fastsecure_oauth import GoogleAuthProvider, OpenIDConnectProvider

APP = "http://app.test"
CLIENT_ID = "test-client"
CLIENT_SECRET = "test-client-secret-value"


def oidc(issuer: str, **kw: Any) -> OpenIDConnectProvider:
    return OpenIDConnectProvider(CLIENT_ID, CLIENT_SECRET, f"{APP}/callback", issuer=issuer, **kw)


def google_at(issuer: str) -> GoogleAuthProvider:
    return GoogleAuthProvider(
        CLIENT_ID,
        CLIENT_SECRET,
        f"{APP}/callback",
        issuer=issuer,
        authorize_endpoint=f"{issuer}/oauth2/authorize",
        access_token_endpoint=f"{issuer}/oauth2/token",
        userinfo_endpoint=f"{issuer}/userinfo",
        jwks_uri=f"{issuer}/jwks",
        revocation_endpoint=None,
        # Google accepts both; the mock's refresh grant only client_secret_basic.
        token_endpoint_auth_method="client_secret_basic",
    )


async def login_through_app(h, browser, next_url="/dashboard") -> dict[str, Any]:
    start = await browser.get(f"{APP}/login", params={"next": next_url})
    assert start.status_code == 302
    authorize_url = start.headers["location"]
    assert "code_challenge_method=S256" in authorize_url
    assert "nonce=" in authorize_url
    back = await h.approve_at_mock(browser, authorize_url)
    assert back.startswith(f"{APP}/callback?")
    answer = await browser.get(back)
    assert answer.status_code == 200, answer.text
    return answer.json()


@pytest.mark.parametrize("kind", ["oidc", "google"])
async def test_full_flow_with_pkce_and_nonce(kind, h, oidc_mock, make_app, browser_for):
    provider = oidc(oidc_mock) if kind == "oidc" else google_at(oidc_mock)
    test_app = make_app(provider)
    body = await login_through_app(h, browser_for(test_app.app))
    info = body["user_info"]
    assert body["user_id"] == "alice"
    assert info["id"] == "alice"
    assert info["email"] == "alice@example.org"
    assert info["email_verified"] is True
    assert info["name"] == "Alice Liddell"
    assert info["picture"] == "https://example.org/alice.png"
    assert info["provider"] == kind
    assert info["raw_user_info"]["sub"] == "alice"
    assert body["next"] == "/dashboard"
    assert body["scopes"] == []  # no app scopes without a scope_mapping
    assert body["provider_scopes"] == ["email", "openid", "profile"]
    assert body["nonce"]  # the ID token echoed the nonce the flow generated, and it was checked
    assert body["access_token"] and body["refresh_token"]
    # the access token is a real one: the provider validates and refreshes with it
    assert await provider.validate_authentication({"access_token": body["access_token"]}) is True
    assert await provider.validate_authentication({"access_token": "forged"}) is False
    refreshed = await provider.refresh_authentication({"refresh_token": body["refresh_token"]})
    assert refreshed.success, refreshed.metadata
    assert refreshed.user_id == "alice"
    assert refreshed.access_token != body["access_token"]
    await provider.aclose()


async def test_discovery_fills_endpoints_once(oidc_mock):
    provider = oidc(oidc_mock)
    assert provider.authorize_endpoint is None
    await provider.discover()
    assert provider.authorize_endpoint == f"{oidc_mock}/oauth2/authorize"
    assert provider.access_token_endpoint == f"{oidc_mock}/oauth2/token"
    assert provider.jwks_uri == f"{oidc_mock}/jwks"
    first = provider.metadata
    await provider.discover()
    assert provider.metadata is first
    assert provider.revocation_endpoint is None
    assert await provider.revoke_authentication({"access_token": "x"}) is False  # mock has none
    await provider.aclose()


async def test_readme_flow_without_pkce_or_nonce(h, oidc_mock, browser_for):
    """The README: get_authorization_url(state=...) then manager.authenticate({"google": {"code"}})."""
    google_auth = google_at(oidc_mock)
    auth_manager = AuthenticationManager()
    auth_manager.register_provider("google", google_auth)
    auth_manager.add_requirement("/api/user/profile", providers=["google"])
    authorization_url = google_auth.get_authorization_url(state="random-secure-state")
    assert "nonce" not in authorization_url and "code_challenge" not in authorization_url
    browser = browser_for(FastAPI())
    code, state = h.code_and_state(await h.approve_at_mock(browser, authorization_url))
    assert state == "random-secure-state"
    result = await auth_manager.authenticate("/api/user/profile", {"google": {"code": code}})
    assert result.success, result.metadata
    user_info = result.metadata["user_info"]
    assert user_info["email"] == "alice@example.org"
    assert user_info["name"] == "Alice Liddell"
    assert result.access_token
    assert result.user_id == "alice"
    # the code is single use: replaying it is a failed login
    again = await auth_manager.authenticate("/api/user/profile", {"google": {"code": code}})
    assert not again.success
    await auth_manager.aclose()


async def test_replayed_callback_is_refused(h, oidc_mock, make_app, browser_for):
    test_app = make_app(oidc(oidc_mock))
    browser = browser_for(test_app.app)
    start = await browser.get(f"{APP}/login")
    back = await h.approve_at_mock(browser, start.headers["location"])
    cookie = browser.cookies.get(test_app.flow.cookie_name)
    assert (await browser.get(back)).status_code == 200
    # an attacker replays the same callback with the same (captured) cookie
    browser.cookies.set(test_app.flow.cookie_name, cookie, domain="app.test")
    replay = await browser.get(back)
    assert replay.status_code == 401
    assert "invalid_grant" in replay.json()["detail"]


async def test_bearer_access_token_behind_requires_auth(h, oidc_mock, make_app, browser_for):
    provider = oidc(oidc_mock)
    test_app = make_app(provider)
    token = (await login_through_app(h, browser_for(test_app.app)))["access_token"]

    manager = AuthenticationManager()
    manager.register_provider("corp", provider)
    manager.add_requirement("/me", providers=["corp"])
    anonymous = FastAPI()

    @anonymous.get("/me")
    async def refused(
        auth: AuthenticationResult = Depends(manager.requires_auth),
    ) -> dict[str, Any]:
        return {"user": auth.user_id}

    # By default a request's Bearer token is never forwarded to the provider.
    assert (
        await browser_for(anonymous).get(f"{APP}/me", headers={"Authorization": f"Bearer {token}"})
    ).status_code == 401
    provider.accept_bearer_tokens = True
    api = FastAPI()

    @api.get("/me")
    async def me(auth: AuthenticationResult = Depends(manager.requires_auth)) -> dict[str, Any]:
        return {"user": auth.user_id, "email": auth.metadata["user_info"]["email"]}

    client = browser_for(api)
    ok = await client.get(f"{APP}/me", headers={"Authorization": f"Bearer {token}"})
    assert ok.status_code == 200
    assert ok.json() == {"user": "alice", "email": "alice@example.org"}
    bad = await client.get(f"{APP}/me", headers={"Authorization": "Bearer not-a-token"})
    assert bad.status_code == 401
    # RFC 6750 section 3: a presented, refused token adds error="invalid_token".
    assert bad.headers["www-authenticate"].startswith('Bearer realm="corp"')
    assert (await client.get(f"{APP}/me")).status_code == 401
    schema = api.openapi()["components"]["securitySchemes"]["corp"]
    assert schema["type"] == "oauth2"
    assert schema["flows"]["authorizationCode"]["tokenUrl"] == f"{oidc_mock}/oauth2/token"
