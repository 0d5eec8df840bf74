"""The demo in a real browser: Debian's Chromium driven by Playwright, headless.

One flow, step by step, with a screenshot of each step in ``test-artifacts/demo/``:
password login through the form, the protected page, the session cookie's flags, a second
browser's session listed and revoked, logout, sign-in through the local OpenID provider's
own login page, and Swagger UI's Authorize button with a token from the API, ending in a
200 from a protected route. Never ``playwright install``: the browser is /usr/bin/chromium.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

for _path in (Path(__file__).resolve().parent.parent / "examples", Path(__file__).resolve().parent):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from demo import DemoSettings, create_app  # noqa: E402
from demo.local_oidc import local_openid_provider  # noqa: E402
from demo_support import free_port, loopback_context, screenshot, serve  # noqa: E402

pytestmark = [
    pytest.mark.browser,
    pytest.mark.filterwarnings("ignore:get_jwt_config:DeprecationWarning"),
]

TIMEOUT_MS = 15_000


@dataclass
class Demo:
    url: str
    issuer: str
    settings: DemoSettings


@pytest.fixture(scope="module")
def demo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with local_openid_provider() as issuer:
        settings = DemoSettings(
            data_dir=tmp_path_factory.mktemp("demo-browser"), public_url=url, oidc_issuer=issuer
        )
        with serve(create_app(settings), port):
            yield Demo(url, issuer, settings)


def new_context(browser: object, demo: Demo) -> object:
    """A fresh browser profile that may only talk to the two loopback servers."""
    # The mock provider's page links a CDN stylesheet; the machine has no such access.
    return loopback_context(browser, demo.url, demo.issuer, width=1280, timeout_ms=TIMEOUT_MS)


def shot(page: Any, name: str) -> Path:
    return screenshot(page, "demo", name)


def login_with_form(page: object, demo: Demo, username: str, password: str) -> None:
    from playwright.sync_api import Page

    assert isinstance(page, Page)
    page.goto(f"{demo.url}/account")
    page.wait_for_url(f"{demo.url}/login?next=/account&reason=login_required")
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("#login-button")
    page.wait_for_url(f"{demo.url}/account")


def test_demo_in_a_real_browser(chromium: object, demo_server: Demo) -> None:
    from playwright.sync_api import BrowserContext, Page, expect

    demo = demo_server
    laptop = new_context(chromium, demo)
    assert isinstance(laptop, BrowserContext)
    page = laptop.new_page()
    assert isinstance(page, Page)

    # 1. A protected page sends the browser to the login form.
    page.goto(f"{demo.url}/account")
    page.wait_for_url(f"{demo.url}/login?next=/account&reason=login_required")
    expect(page.locator("h1")).to_have_text("Log in")
    expect(page.locator("#why")).to_have_text("Log in to see that page.")
    expect(page.locator("#signin-local")).to_be_visible()
    shot(page, "01-login-form")

    # 2. Logging in through the form lands on the protected page.
    page.fill("#username", "alice")
    page.fill("#password", "alice-password")
    page.click("#login-button")
    page.wait_for_url(f"{demo.url}/account")
    expect(page.locator("#user-id")).to_have_text("alice")
    expect(page.locator("#who")).to_contain_text("Alice (admin)")
    shot(page, "02-account-after-login")

    # 3. The session cookie's flags.
    cookies = {c["name"]: c for c in laptop.cookies()}
    session = cookies["fastsecure_session"]
    assert session["httpOnly"] is True
    assert session["sameSite"] == "Lax"
    assert session["secure"] is demo.settings.secure_cookies
    assert demo.settings.secure_cookies is False  # http://127.0.0.1 needs it off (documented)
    assert page.evaluate("document.cookie").find("fastsecure_session") == -1  # HttpOnly

    # 4. A second browser logs in; the first lists both sessions and revokes the other.
    phone = new_context(chromium, demo)
    assert isinstance(phone, BrowserContext)
    phone_page = phone.new_page()
    login_with_form(phone_page, demo, "alice", "alice-password")
    page.goto(f"{demo.url}/sessions")
    rows = page.locator("tr.session-row")
    expect(rows).to_have_count(2)
    expect(page.locator("tr.current-row")).to_have_count(1)
    expect(page.locator("tr.current-row")).to_contain_text("this browser")
    expect(page.locator("#sessions")).to_contain_text("127.0.0.1")
    # Browser and system, read from the user agent (the raw string is the cell's tooltip).
    expect(page.locator("#sessions")).to_contain_text("Chrome (headless)")
    expect(page.locator("#sessions")).to_contain_text("on Linux")
    shot(page, "03-sessions-two-browsers")
    page.locator("tr.session-row:not(.current-row) button.revoke").click()
    page.wait_for_url(f"{demo.url}/sessions")
    expect(rows).to_have_count(1)
    expect(page.locator("tr.current-row")).to_have_count(1)
    shot(page, "04-sessions-after-revoke")
    phone_page.goto(f"{demo.url}/account")
    # The revoked browser still sends its cookie: the login form says the session ended.
    phone_page.wait_for_url(f"{demo.url}/login?next=/account&reason=session_ended")
    expect(phone_page.locator("#why")).to_contain_text("Your session has ended")
    shot(phone_page, "05-revoked-browser-is-logged-out")
    phone.close()

    # 5. Log out.
    page.goto(f"{demo.url}/account")
    page.click("#logout-button")
    page.wait_for_url(f"{demo.url}/")
    expect(page.locator("#status")).to_contain_text("Nobody is logged in")
    assert "fastsecure_session" not in {c["name"] for c in laptop.cookies()}
    shot(page, "06-logged-out")

    # 6. Sign in through the local OpenID provider's own login page.
    page.goto(f"{demo.url}/login")
    page.click("#signin-local")
    page.wait_for_url(f"{demo.issuer}/oauth2/authorize?**")
    expect(page.locator("h1")).to_have_text("Authorize Client")
    page.fill("input[name=sub]", "carol")
    shot(page, "07-openid-provider-login-page")
    page.get_by_role("button", name="Authorize", exact=True).click()
    page.wait_for_url(f"{demo.url}/account")
    expect(page.locator("#user-id")).to_have_text("local:carol")
    expect(page.locator("#who")).to_contain_text("Carol (OpenID)")
    expect(page.locator("#who")).to_contain_text("OAuth: the local OpenID provider")
    carol_cookie = {c["name"]: c for c in laptop.cookies()}["fastsecure_session"]
    assert carol_cookie["httpOnly"] is True and carol_cookie["sameSite"] == "Lax"
    shot(page, "08-signed-in-with-openid")
    laptop.close()

    # 7. Swagger UI: paste a token from the API into Authorize, then call a protected route.
    token = httpx.post(
        f"{demo.url}/api/auth/login",
        json={"username": "bob", "password": "bob-password"},
        timeout=10,
    ).json()["access_token"]
    clean = new_context(chromium, demo)  # no session cookie: only the token can succeed
    assert isinstance(clean, BrowserContext)
    docs = clean.new_page()
    docs.goto(f"{demo.url}/docs")
    expect(docs.locator(".swagger-ui .info .title")).to_contain_text("FastSecure demo")
    docs.locator(".swagger-ui .auth-wrapper button.authorize").click()
    jwt_scheme = docs.locator(".modal-ux .auth-container").filter(has_text="jwt")
    jwt_scheme.locator("input").fill(token)
    shot(docs, "09-swagger-authorize-dialog")
    jwt_scheme.locator("button.authorize").click()  # labelled "Apply credentials"
    expect(jwt_scheme).to_contain_text("Authorized")
    docs.locator(".modal-ux-header button.close-modal").click()

    operation = docs.locator("#operations-strategies-me_api_me_get")
    operation.locator(".opblock-summary").click()
    operation.get_by_role("button", name="Try it out").click()
    with docs.expect_response(lambda r: r.url == f"{demo.url}/api/me") as answer:
        operation.get_by_role("button", name="Execute").click()
    response = answer.value
    assert response.status == 200
    assert response.request.headers.get("authorization") == f"Bearer {token}"
    assert response.json()["user_id"] == "bob"
    live = operation.locator(".live-responses-table tbody tr.response .response-col_status")
    expect(live).to_contain_text("200")
    operation.scroll_into_view_if_needed()
    shot(docs, "10-swagger-try-it-out-200")
    clean.close()
