"""The flow helper's checks: state, cookie, next, account linking, issuing the app's login."""

from typing import Any

import pytest
from fastapi import FastAPI, Request, Response

from fastsecure import (
    AuthenticationManager,
    AuthenticationProvider,
    AuthenticationResult,
    StoreUnavailableError,
)
from fastsecure_oauth import (
    GitHubAuthProvider,
    MemoryAccountStore,
    OAuthFlow,
    issue_with_provider,
    resolve_account,
    safe_next,
)

APP = "http://app.test"


def github_provider(gh) -> GitHubAuthProvider:
    return GitHubAuthProvider(
        "test-client",
        "test-client-secret-value",
        f"{APP}/callback",
        base_url=gh.url,
        api_base_url=gh.url + "/api",
    )


async def start(browser, path="/login", **params) -> tuple[str, str]:
    answer = await browser.get(f"{APP}{path}", params=params)
    assert answer.status_code == 302, answer.text
    back = await browser.get(answer.headers["location"])
    return answer.headers["location"], back.headers["location"]


def with_query(url: str, **changes: str | None) -> str:
    from urllib.parse import parse_qsl, urlencode, urlsplit

    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    for key, value in changes.items():
        if value is None:
            query.pop(key, None)
        else:
            query[key] = value
    return f"{parts.scheme}://{parts.netloc}{parts.path}?{urlencode(query)}"


async def test_login_cookie_attributes(github, make_app, browser_for):
    flow_app = make_app(github_provider(github), cookie_secure=True)
    answer = await browser_for(flow_app.app).get(f"{APP}/login")
    cookie = answer.headers["set-cookie"]
    # __Host-: browsers accept it only from this host over https, with Path=/ and no Domain,
    # so a sibling subdomain cannot plant a login state (cookie tossing).
    assert cookie.startswith("__Host-fastsecure_oauth_github=")
    assert "domain=" not in cookie.lower()
    for attribute in ("HttpOnly", "Max-Age=600", "Path=/", "SameSite=lax", "Secure"):
        assert attribute in cookie
    assert answer.headers["cache-control"] == "no-store"
    local_http = make_app(github_provider(github), cookie_secure=False)
    plain = await browser_for(local_http.app).get(f"{APP}/login")
    assert plain.headers["set-cookie"].startswith("fastsecure_oauth_github=")
    location = answer.headers["location"]
    assert "code_challenge=" in location and "code_challenge_method=S256" in location
    assert "state=" in location
    assert "nonce=" not in location  # GitHub is not OpenID Connect


async def test_state_mismatch_missing_and_forged(github, make_app, browser_for):
    flow_app = make_app(github_provider(github))
    browser = browser_for(flow_app.app)
    _, back = await start(browser)
    mismatch = await browser.get(with_query(back, state="attacker-state"))
    assert mismatch.status_code == 400 and "State mismatch" in mismatch.json()["detail"]
    missing = await browser.get(with_query(back, state=None))
    assert missing.status_code == 400 and "no state" in missing.json()["detail"]
    no_code = await browser.get(with_query(back, code=None))
    assert no_code.status_code == 400
    doubled = await browser.get(back + "&state=x")
    assert doubled.status_code == 400
    # the login-CSRF attack: the victim's browser has no flow cookie at all
    fresh = browser_for(flow_app.app)
    no_cookie = await fresh.get(back)
    assert no_cookie.status_code == 400 and "No login in progress" in no_cookie.json()["detail"]
    # a cookie the attacker wrote himself does not carry our signature
    payload = browser.cookies.get(flow_app.flow.cookie_name).split(".")[0]
    fresh.cookies.set(flow_app.flow.cookie_name, payload + ".forged", domain="app.test")
    forged = await fresh.get(back)
    assert forged.status_code == 400 and "invalid" in forged.json()["detail"]
    assert flow_app.issued == []
    # the real browser can still finish its own login
    done = await browser.get(back)
    assert done.status_code == 200
    assert 'fastsecure_oauth_github=""' in done.headers["set-cookie"]  # single use: cleared


async def test_expired_flow_cookie(github, make_app, browser_for):
    flow_app = make_app(github_provider(github))
    browser = browser_for(flow_app.app)
    _, back = await start(browser)
    state = back.split("state=")[1]
    stale = flow_app.flow._dump({"p": "github", "s": state, "c": "v", "n": None, "x": "/", "e": 1})
    browser.cookies.set(flow_app.flow.cookie_name, stale, domain="app.test")
    answer = await browser.get(back)
    assert answer.status_code == 400 and "too long" in answer.json()["detail"]


async def test_provider_error_answer_is_401(github, make_app, browser_for):
    flow_app = make_app(github_provider(github))
    browser = browser_for(flow_app.app)
    _, back = await start(browser)
    denied = await browser.get(with_query(back, code=None, error="access_denied"))
    assert denied.status_code == 401
    assert "access_denied" in denied.json()["detail"]


@pytest.mark.parametrize(
    "target",
    [
        "//evil.example",
        "/\\evil.example",
        "\\\\evil.example",
        "https://evil.example/",
        "http://app.test.evil.example/",
        "http://app.test@evil.example/",
        "javascript:alert(1)",
        "data:text/html,hi",
        "evil.example",
        "/\t/evil.example",
        "/\n/evil.example",
        " //evil.example",
        "https:/evil.example",
        "ftp://app.test/",
    ],
)
async def test_open_redirect_refused(target, github, make_app, browser_for):
    flow_app = make_app(github_provider(github))
    answer = await browser_for(flow_app.app).get(f"{APP}/login", params={"next": target})
    assert answer.status_code == 400
    assert "next" in answer.json()["detail"]


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        (None, "/"),
        ("/dashboard?tab=1#top", "/dashboard?tab=1#top"),
        ("http://app.test/settings", "/settings"),
        ("https://public.example/x", "/x"),
    ],
)
def test_safe_next_accepts_own_paths(target, expected):
    assert safe_next(target, own_origins=["http://app.test", "https://public.example"]) == expected


async def test_complete_login_creates_links_and_redirects(github, make_app, browser_for):
    flow_app = make_app(github_provider(github))
    browser = browser_for(flow_app.app)
    _, back = await start(browser, next="/welcome")
    done = await browser.get(back.replace("/callback", "/complete"))
    assert done.status_code == 303
    assert done.headers["location"] == "/welcome"
    assert "app_session=session-for-1" in done.headers["set-cookie"]
    assert flow_app.accounts.identities == {("github", "583231"): 1}
    user_id, result = flow_app.issued[0]
    assert user_id == 1 and result.metadata["user_info"]["login"] == "octocat"
    # the same GitHub identity logs in as the same app user
    _, back = await start(browser)
    await browser.get(back.replace("/callback", "/complete"))
    assert [uid for uid, _ in flow_app.issued] == [1, 1]


async def test_signup_closed_is_403(github, make_app, browser_for):
    flow_app = make_app(github_provider(github))
    flow_app.accounts.allow_signup = False
    browser = browser_for(flow_app.app)
    _, back = await start(browser)
    answer = await browser.get(back.replace("/callback", "/complete"))
    assert answer.status_code == 403
    assert flow_app.issued == []


async def test_email_linking_only_verified_and_opt_in():
    accounts = MemoryAccountStore()
    accounts.users[7] = {"email": "bob@example.org"}
    verified = {"id": "g-1", "email": "Bob@example.org", "email_verified": True}
    unverified = {"id": "m-1", "email": "bob@example.org", "email_verified": False}
    # default: never by email, a verified one included
    assert await resolve_account(accounts, "google", verified) != 7
    accounts = MemoryAccountStore(users={7: {"email": "bob@example.org"}})
    assert await resolve_account(accounts, "evil", unverified, link_by_verified_email=True) != 7
    assert await resolve_account(accounts, "google", verified, link_by_verified_email=True) == 7
    assert accounts.identities[("google", "g-1")] == 7
    # (provider, id) is the key, not the id alone
    assert await resolve_account(accounts, "github", {"id": "g-1", "email": None}) not in (None, 7)


class TinySessions(AuthenticationProvider):
    """The app's own session provider, as small as the contract allows."""

    provider_type = "tiny"

    def __init__(self) -> None:
        self.sessions: dict[str, Any] = {}

    def get_required_credentials(self) -> set[str]:
        return {"session_id"}

    async def authenticate(self, credentials: dict[str, Any]) -> AuthenticationResult:
        if "user_id" in credentials:
            sid = f"sid-{len(self.sessions) + 1}"
            self.sessions[sid] = (credentials["user_id"], credentials.get("metadata"))
            return AuthenticationResult(
                success=True, user_id=credentials["user_id"], session_id=sid
            )
        entry = self.sessions.get(credentials.get("session_id", ""))
        if entry is None:
            return AuthenticationResult.failure("unknown session")
        return AuthenticationResult(success=True, user_id=entry[0])

    async def validate_authentication(self, auth_data: dict[str, Any]) -> bool:
        return auth_data.get("session_id") in self.sessions


async def test_issue_with_manager_provider(github, browser_for):
    manager = AuthenticationManager()
    sessions = TinySessions()
    manager.register_provider("session", sessions)
    flow = OAuthFlow(github_provider(github), secret="x" * 40, cookie_secure=False)
    accounts = MemoryAccountStore()
    issue = issue_with_provider(manager, "session", cookie_name="sid", secure=False)
    app = FastAPI()

    @app.get("/login")
    async def login(request: Request) -> Response:
        return await flow.login_redirect(request, next="/home")

    @app.get("/callback")
    async def callback(request: Request) -> Response:
        return await flow.complete_login(request, accounts=accounts, issue=issue)

    browser = browser_for(app)
    _, back = await start(browser)
    done = await browser.get(back)
    assert done.status_code == 303 and done.headers["location"] == "/home"
    assert browser.cookies.get("sid") == "sid-1"
    assert sessions.sessions["sid-1"] == (
        1,
        {"oauth_provider": "github", "oauth_subject": "583231"},
    )


@pytest.mark.parametrize("value", ["\u00e9.x", "\u00ff.abc", "abc.\u00e9", "\u00e9"])
async def test_non_ascii_flow_cookie_is_400_not_500(value, github, make_app, browser_for):
    flow_app = make_app(github_provider(github))
    browser = browser_for(flow_app.app)
    header = f"{flow_app.flow.cookie_name}={value}".encode("latin-1")
    answer = await browser.get(f"{APP}/callback?state=s&code=c", headers={"cookie": header})
    assert answer.status_code == 400
    assert "invalid" in answer.json()["detail"]


class DownAccounts(MemoryAccountStore):
    async def get_user_by_identity(self, provider: str, subject: str) -> Any:
        raise StoreUnavailableError("accounts database down")


class DownSessions(TinySessions):
    async def authenticate(self, credentials: dict[str, Any]) -> AuthenticationResult:
        raise StoreUnavailableError("session store down")


@pytest.mark.parametrize("down", ["accounts", "sessions"])
async def test_store_outage_at_login_is_503_not_500(down, github, browser_for):
    manager = AuthenticationManager()
    manager.register_provider("session", DownSessions() if down == "sessions" else TinySessions())
    flow = OAuthFlow(github_provider(github), secret="x" * 40, cookie_secure=False)
    accounts = DownAccounts() if down == "accounts" else MemoryAccountStore()
    issue = issue_with_provider(manager, "session", cookie_name="sid", secure=False)
    app = FastAPI()

    @app.get("/login")
    async def login(request: Request) -> Response:
        return await flow.login_redirect(request)

    @app.get("/callback")
    async def callback(request: Request) -> Response:
        return await flow.complete_login(request, accounts=accounts, issue=issue)

    browser = browser_for(app)
    _, back = await start(browser)
    answer = await browser.get(back)
    assert answer.status_code == 503
    assert "down" not in answer.json()["detail"]  # the store's own message stays in the logs
    assert "sid" not in browser.cookies


async def test_memory_store_signup_never_reuses_an_existing_user_id():
    accounts = MemoryAccountStore(users={2: {"email": "victim@example.org"}})
    new = await resolve_account(accounts, "github", {"id": "attacker", "email": None})
    assert new not in (None, 2)
    assert accounts.users[2] == {"email": "victim@example.org"}
    assert accounts.identities[("github", "attacker")] == new


async def test_next_too_long_for_the_cookie_is_refused_at_login(github, make_app, browser_for):
    flow_app = make_app(github_provider(github))
    browser = browser_for(flow_app.app)
    fits = await browser.get(f"{APP}/login", params={"next": "/" + "a" * 1500})
    assert fits.status_code == 302
    assert len(fits.headers["set-cookie"]) < 4096
    # browsers drop a cookie over 4096 bytes: the login would fail later, unexplained
    answer = await browser.get(f"{APP}/login", params={"next": "/" + "\u00e9" * 1500})
    assert answer.status_code == 400 and "next" in answer.json()["detail"]
