"""Issue 12 regressions, against the loopback servers of conftest.py: credentials presented
twice are refused, Google's ``hd`` holds on every path, a provider's own scopes are never the
app's, and a store failure while completing a login is StoreUnavailableError (503)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi import Depends, FastAPI

from fastsecure import AuthenticationManager, AuthenticationResult, StoreUnavailableError
from fastsecure.testing import raw_request
from fastsecure_oauth import (
    GitHubAuthProvider,
    GoogleAuthProvider,
    MemoryAccountStore,
    OAuthConfigurationError,
    OAuthFlowUnavailableError,
)

APP = "http://app.test"
SECRET = "test-client-secret-value"


def github_provider(gh: Any, **options: Any) -> GitHubAuthProvider:
    return GitHubAuthProvider(
        "test-client",
        SECRET,
        f"{APP}/callback",
        base_url=gh.url,
        api_base_url=gh.url + "/api",
        **options,
    )


async def github_token(gh: Any, provider: GitHubAuthProvider, login: str = "octocat") -> str:
    """A real token from the GitHub look-alike, through the authorization code flow."""
    async with httpx.AsyncClient() as browser:
        answer = await browser.get(
            provider.get_authorization_url(state="s", extras={"login": login})
        )
    code = answer.headers["location"].split("code=")[1].split("&")[0]
    result = await provider.authenticate({"code": code})
    assert result.success and result.access_token
    return result.access_token


def protected_app(
    provider: Any, scopes: list[str] | None = None
) -> tuple[FastAPI, AuthenticationManager]:
    manager = AuthenticationManager(autoload=False)
    manager.register_provider(provider.provider_type, provider)
    manager.add_requirement("/api/*", providers=[provider.provider_type], scopes=scopes or [])
    app = FastAPI()

    @app.get("/api/me")
    async def me(auth: AuthenticationResult = Depends(manager.requires_auth)) -> dict[str, Any]:
        return {"user": auth.user_id, "scopes": sorted(auth.scopes)}

    return app, manager


# --- credentials presented twice ----------------------------------------------------------

AMBIGUOUS: dict[str, Callable[[str], list[bytes]]] = {
    "two headers, same valid token": lambda t: [f"Bearer {t}".encode()] * 2,
    "two headers, valid first": lambda t: [f"Bearer {t}".encode(), b"Bearer gho_other"],
    "two headers, valid last": lambda t: [b"Bearer gho_other", f"Bearer {t}".encode()],
    "two credentials in one header": lambda t: [f"Bearer {t}, Bearer {t}".encode()],
    "two tokens in one header": lambda t: [f"Bearer {t} {t}".encode()],
}


@pytest.mark.parametrize("case", list(AMBIGUOUS))
async def test_bearer_tokens_presented_twice_are_400(case: str, github: Any) -> None:
    provider = github_provider(github, accept_bearer_tokens=True)
    token = await github_token(github, provider)
    app, _ = protected_app(provider)
    single = [(b"authorization", f"Bearer {token}".encode())]
    assert await raw_request(app, "/api/me", single) == 200
    lines = [(b"authorization", value) for value in AMBIGUOUS[case](token)]
    assert await raw_request(app, "/api/me", lines) == 400
    await provider.aclose()


async def test_the_flow_cookie_sent_twice_is_400(
    github: Any, make_app: Any, browser_for: Any
) -> None:
    flow_app = make_app(github_provider(github))
    browser = browser_for(flow_app.app)
    start = await browser.get(f"{APP}/login")
    back = (await browser.get(start.headers["location"])).headers["location"]
    name = flow_app.flow.cookie_name
    state = browser.cookies[name]
    browser.cookies.clear()
    for lines in (
        [f"{name}={state}; {name}={state}"],  # one header
        [f"{name}={state}", f"{name}={state}"],  # two headers
    ):
        answer = await browser.get(back, headers=[("cookie", line) for line in lines])
        assert answer.status_code == 400
        assert "sent twice" in answer.json()["detail"]
    # The same cookie once completes the login.
    answer = await browser.get(back, headers={"cookie": f"{name}={state}"})
    assert answer.status_code == 200, answer.text


# --- Google's hd, on every path ------------------------------------------------------------


def google_at(op: Any, **options: Any) -> GoogleAuthProvider:
    """Google, pointed at the strict test OP, restricted to the example.org Workspace."""
    base = op.issuer
    return GoogleAuthProvider(
        "test-client",
        SECRET,
        f"{APP}/callback",
        issuer=base,
        authorize_endpoint=base + "/authorize",
        access_token_endpoint=base + "/token",
        userinfo_endpoint=base + "/userinfo",
        revocation_endpoint=base + "/revoke",
        jwks_uri=base + "/jwks",
        authorization_params={"hd": "example.org"},
        **options,
    )


@pytest.fixture
def workspace(test_op: Any) -> Any:
    """bob is in the example.org Workspace; mallory has a consumer account; eve another one."""
    test_op.users["bob"]["hd"] = "example.org"
    test_op.users["eve"] = {
        "email": "eve@evil.example",
        "email_verified": True,
        "hd": "evil.example",
    }
    return test_op


@pytest.mark.parametrize(("user", "allowed"), [("bob", True), ("mallory", False), ("eve", False)])
async def test_hd_holds_for_bearer_tokens(user: str, allowed: bool, workspace: Any) -> None:
    provider = google_at(workspace, accept_bearer_tokens=True)
    token = workspace.issue(user, "openid email profile", None)["access_token"]
    result = await provider.authenticate({"access_token": token})
    assert result.success is allowed
    assert await provider.validate_authentication({"access_token": token}) is allowed
    app, _ = protected_app(provider)
    bearer = [(b"authorization", f"Bearer {token}".encode())]
    assert await raw_request(app, "/api/me", bearer) == (200 if allowed else 401)
    await provider.aclose()


@pytest.mark.parametrize(("user", "allowed"), [("bob", True), ("mallory", False)])
async def test_hd_holds_for_refresh_without_an_id_token(
    user: str, allowed: bool, workspace: Any
) -> None:
    provider = google_at(workspace)
    refresh_token = workspace.issue(user, "openid email profile", None)["refresh_token"]
    workspace.id_token_mode = "omit"  # a refresh may omit the ID token (OIDC Core 12.2)
    result = await provider.refresh_authentication({"refresh_token": refresh_token})
    assert result.success is allowed
    await provider.aclose()


@pytest.mark.parametrize(("user", "allowed"), [("bob", True), ("mallory", False)])
async def test_hd_holds_for_a_login_without_openid(
    user: str, allowed: bool, workspace: Any
) -> None:
    provider = google_at(workspace, scopes=["email", "profile"])  # no ID token comes back
    workspace.id_token_mode = "omit"
    workspace.login_as = user
    async with httpx.AsyncClient() as browser:
        answer = await browser.get(provider.get_authorization_url(state="s"))
    code = answer.headers["location"].split("code=")[1].split("&")[0]
    result = await provider.authenticate({"code": code})
    assert result.success is allowed, result.metadata
    await provider.aclose()


# --- a provider's scopes are not the app's ----------------------------------------------------


async def test_github_token_scopes_are_github_s_not_the_app_s(github: Any) -> None:
    """A stranger's personal token with scope ``user`` must not pass ``scopes=["user"]``."""
    github.scopes = "repo, user"
    provider = github_provider(github, accept_bearer_tokens=True)
    token = await github_token(github, provider)
    presented = await provider.authenticate({"access_token": token})
    assert presented.metadata["github"]["scopes"] == ["repo", "user"]
    assert presented.scopes == set()
    app, _ = protected_app(provider, scopes=["user"])
    bearer = [(b"authorization", f"Bearer {token}".encode())]
    assert await raw_request(app, "/api/me", bearer) == 403
    await provider.aclose()


@pytest.mark.parametrize(
    "mapping",
    [
        {"repo": ["code:read"], "admin:org": ["admin"]},
        lambda granted: ["code:read"] * ("repo" in granted),
    ],
    ids=["dict", "callable"],
)
async def test_app_scopes_come_from_the_documented_mapping(mapping: Any, github: Any) -> None:
    github.scopes = "repo, user"
    provider = github_provider(github, accept_bearer_tokens=True, scope_mapping=mapping)
    token = await github_token(github, provider)
    login_scopes = (await provider.authenticate({"access_token": token})).metadata["scopes"]
    assert login_scopes == ["code:read"]
    app, _ = protected_app(provider, scopes=["code:read"])
    bearer = [(b"authorization", f"Bearer {token}".encode())]
    assert await raw_request(app, "/api/me", bearer) == 200
    app, _ = protected_app(provider, scopes=["admin"])
    assert await raw_request(app, "/api/me", bearer) == 403
    await provider.aclose()


async def test_login_scopes_stay_under_the_provider_name(github: Any) -> None:
    provider = github_provider(github)
    provider.provider_name = "gh"  # as registered under another name
    async with httpx.AsyncClient() as browser:
        answer = await browser.get(provider.get_authorization_url(state="s"))
    code = answer.headers["location"].split("code=")[1].split("&")[0]
    result = await provider.authenticate({"code": code})
    assert result.metadata["gh"] == {"scopes": ["read:user", "user:email"]}
    assert result.metadata["scopes"] == []
    await provider.aclose()


def test_a_scope_mapping_of_another_kind_is_refused(github: Any) -> None:
    with pytest.raises(OAuthConfigurationError):
        github_provider(github, scope_mapping="repo")


# --- store failures while completing a login ------------------------------------------------


class ConnectionLost(Exception):
    """A raw driver error from the app's own account store."""


class FailingAccounts(MemoryAccountStore):
    def __init__(self, error: Exception) -> None:
        super().__init__()
        self.error = error

    async def get_user_by_identity(self, provider: str, subject: str) -> Any:
        raise self.error


@pytest.mark.parametrize(
    "error",
    [StoreUnavailableError("accounts down"), ConnectionLost("server closed the connection")],
    ids=["unavailable", "raw"],
)
async def test_completing_a_login_during_an_outage_is_503(
    error: Exception, github: Any, make_app: Any, browser_for: Any
) -> None:
    flow_app = make_app(github_provider(github), accounts=FailingAccounts(error))
    browser = browser_for(flow_app.app)
    start = await browser.get(f"{APP}/login")
    back = (await browser.get(start.headers["location"])).headers["location"]
    answer = await browser.get(back.replace("/callback", "/complete"))
    assert answer.status_code == 503
    assert answer.headers["retry-after"] == "5"
    assert "closed" not in answer.text and "down" not in answer.json()["detail"]
    assert flow_app.issued == []


def test_the_flow_outage_error_is_a_store_outage() -> None:
    error = OAuthFlowUnavailableError("try later", provider="github")
    assert isinstance(error, StoreUnavailableError)
    assert error.status_code == 503 and error.headers == {"Retry-After": "5"}
