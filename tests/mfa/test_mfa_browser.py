"""TOTP and passkeys in a real browser: Debian's Chromium, headless, driven by Playwright.

The MFA app of ``mfa_app.py`` runs under uvicorn on loopback and is browsed at
``http://localhost:<port>`` (WebAuthn needs a domain as RP id; localhost is a secure
context over http). The passkey is held by Chromium's virtual authenticator, added through
the DevTools protocol (``WebAuthn.addVirtualAuthenticator``) on Playwright's CDP session.
Never ``playwright install``: the browser is /usr/bin/chromium. Screenshots of each step
go to ``test-artifacts/mfa/``.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyotp
import pytest

ROOT = Path(__file__).resolve().parents[2]
for _path in (Path(__file__).resolve().parent, ROOT / "tests"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from demo_support import add_virtual_authenticator, free_port, loopback_context, screenshot, serve  # noqa: E402
from mfa_app import MfaApp, create_app  # noqa: E402

pytestmark = pytest.mark.browser

TIMEOUT_MS = 15_000


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, MfaApp]]:
    port = free_port()
    url = f"http://localhost:{port}"
    mfa = create_app(url)
    with serve(mfa.app, port):
        yield url, mfa


def shot(page: Any, name: str) -> Path:
    return screenshot(page, "mfa", name)


def sign_in(page: Any, url: str) -> None:
    page.goto(f"{url}/login")
    page.fill("#username", "ada")
    page.fill("#password", "correct horse battery staple")
    page.click("#login-button")
    page.wait_for_url(f"{url}/account")


def session_cookie(context: Any) -> str:
    return next(c["value"] for c in context.cookies() if c["name"] == "session_id")


def test_totp_and_passkey_in_chromium(server: tuple[str, MfaApp], chromium: Any) -> None:
    url, _ = server
    context = loopback_context(chromium, url, timeout_ms=TIMEOUT_MS)
    page = context.new_page()
    cdp = context.new_cdp_session(page)
    authenticator = add_virtual_authenticator(cdp)
    try:
        # 1. Password sign-in; the security page wants a second factor.
        sign_in(page, url)
        page.goto(f"{url}/account/security")
        page.wait_for_url(f"{url}/step-up?next=/account/security")
        shot(page, "01-step-up-required")

        # 2. TOTP enrolment from the key the page shows, as an authenticator app would.
        page.goto(f"{url}/account/totp")
        assert page.locator("svg").count() == 1  # the QR code
        secret = page.inner_text("#totp-secret")
        app = pyotp.TOTP(secret)
        shot(page, "02-totp-enrolment")
        page.fill("#totp-code", app.now())
        page.click("#totp-confirm")
        assert page.inner_text("#totp-status") == "enrolled"
        assert page.locator("#recovery-codes li").count() == 10
        shot(page, "03-totp-enrolled")

        # 3. Step-up with a TOTP code: the session id rotates, the page opens.
        before = session_cookie(context)
        page.goto(f"{url}/account/security")
        page.wait_for_url(f"{url}/step-up?next=/account/security")
        page.fill("#step-up-code", app.at(time.time(), counter_offset=1))
        page.click("#step-up-totp")
        page.wait_for_url(f"{url}/account/security")
        assert page.inner_text("#factors") == "otp pwd"
        assert session_cookie(context) != before
        shot(page, "04-stepped-up-with-totp")

        # 4. A passkey, created by Chromium's virtual authenticator.
        page.goto(f"{url}/account/passkey")
        page.click("#add-passkey")
        page.wait_for_function("document.getElementById('passkey-status').textContent !== ''")
        assert page.inner_text("#passkey-status") == "registered"
        held = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator})
        assert len(held["credentials"]) == 1 and held["credentials"][0]["isResidentCredential"]
        shot(page, "05-passkey-registered")

        # 5. Sign out, then sign in with the passkey alone (user-verified: no step-up).
        page.goto(f"{url}/account")
        page.click("#logout")
        page.wait_for_url(f"{url}/login")
        page.click("#passkey-login")
        page.wait_for_url(f"{url}/account")
        page.goto(f"{url}/account/security")
        assert page.url == f"{url}/account/security"
        assert page.inner_text("#factors") == "hwk"
        shot(page, "06-passwordless")

        # 6. A password session steps up with the passkey.
        page.goto(f"{url}/account")
        page.click("#logout")
        page.wait_for_url(f"{url}/login")
        sign_in(page, url)
        before = session_cookie(context)
        page.goto(f"{url}/account/security")
        page.wait_for_url(f"{url}/step-up?next=/account/security")
        page.click("#step-up-passkey")
        page.wait_for_url(f"{url}/account/security")
        assert page.inner_text("#factors") == "hwk pwd"
        assert session_cookie(context) != before
        shot(page, "07-stepped-up-with-passkey")
        held = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator})
        assert held["credentials"][0]["signCount"] >= 2
    finally:
        cdp.send("WebAuthn.removeVirtualAuthenticator", {"authenticatorId": authenticator})
        context.close()
