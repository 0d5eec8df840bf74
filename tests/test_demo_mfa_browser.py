"""The demo's second factors: enrolment on the account page, and the step-up page.

Over HTTP (httpx on the ASGI app, lifespan included) and in Debian's Chromium through
Playwright. The browser registers, confirms its address from the development outbox, logs
in with the password, meets the step-up on ``/account/security``, enrols TOTP from the key
the page shows (pyotp computes the codes), steps up, then adds a passkey held by
Chromium's virtual authenticator (DevTools ``WebAuthn.addVirtualAuthenticator`` on
Playwright's CDP session) and steps up with it after logging in again. The demo is
browsed at ``http://localhost:<port>``: a WebAuthn RP id is a domain name, and localhost
is a secure context over http. Screenshots go to ``test-artifacts/demo-mfa/``.
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pyotp
import pytest
import time_machine
from asgi_lifespan import LifespanManager

from fastsecure_webauthn.testing import SoftAuthenticator

for _path in (Path(__file__).resolve().parent.parent / "examples", Path(__file__).resolve().parent):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from demo import DemoSettings, create_app  # noqa: E402
from demo_support import add_virtual_authenticator, free_port, loopback_context, screenshot, serve  # noqa: E402

COOKIE = "fastsecure_session"
ORIGIN = "http://localhost:8000"
STEP_UP_CHALLENGE = 'error="insufficient_user_authentication", max_age=300'


# --- over HTTP ----------------------------------------------------------------------------


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(DemoSettings(data_dir=tmp_path / "data", public_url=ORIGIN))
    async with (
        LifespanManager(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, client=("203.0.113.7", 4711)),
            base_url=ORIGIN,
            headers={"Origin": ORIGIN},
        ) as c,
    ):
        yield c


async def log_in(client: httpx.AsyncClient, user: str = "alice") -> str:
    answer = await client.post("/login", data={"username": user, "password": f"{user}-password"})
    assert answer.status_code == 303, answer.text
    return client.cookies[COOKIE]


def page_get(client: httpx.AsyncClient, path: str) -> Any:
    return client.get(path, headers={"Accept": "text/html"})


async def enrol_totp(client: httpx.AsyncClient) -> pyotp.TOTP:
    setup = await client.post("/account/totp/setup")
    assert setup.status_code == 200 and setup.headers["cache-control"] == "no-store"
    assert "<svg" in setup.text
    secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', setup.text)
    assert secret is not None
    phone = pyotp.TOTP(secret.group(1))
    done = await client.post("/account/totp/confirm", data={"code": phone.now()})
    assert done.status_code == 200 and done.headers["cache-control"] == "no-store"
    assert len(re.findall(r"<li><code>[a-z2-9-]{19}</code></li>", done.text)) == 10
    return phone


def next_code(phone: pyotp.TOTP) -> str:
    """The next time step's code: enrolment spent the current one."""
    return phone.at(time.time(), counter_offset=1)


async def test_step_up_redirects_pages_and_answers_the_api_with_401(
    client: httpx.AsyncClient,
) -> None:
    anonymous = await page_get(client, "/account/security")
    assert anonymous.headers["location"].startswith("/login?")  # no session: log in first
    api = await client.get("/api/account/security")
    assert api.status_code == 401 and "insufficient_user_authentication" not in api.text

    before = await log_in(client)
    page = await page_get(client, "/account/security")
    assert page.status_code == 303
    assert page.headers["location"] == "/step-up?next=/account/security"
    api = await client.get("/api/account/security")
    assert api.status_code == 401
    assert api.json() == {"detail": "Additional authentication required"}
    assert f"Bearer {STEP_UP_CHALLENGE}" in api.headers["www-authenticate"]
    # The session's own challenge says so too: a cookie-only client needs no Bearer scheme.
    assert f'Cookie realm="session", {STEP_UP_CHALLENGE}' in api.headers["www-authenticate"]

    step_up = await page_get(client, "/step-up?next=/account/security")
    assert 'id="no-second-factor"' in step_up.text  # nothing enrolled yet
    assert 'id="password-fresh"' in step_up.text  # the login's password counts

    phone = await enrol_totp(client)
    wrong = await client.post(
        "/step-up/totp", data={"code": "000000" if next_code(phone) != "000000" else "111111"}
    )
    assert wrong.status_code == 401 and client.cookies[COOKIE] == before
    stepped = await client.post(
        "/step-up/totp", data={"code": next_code(phone), "next": "/account/security"}
    )
    assert stepped.status_code == 303 and stepped.headers["location"] == "/account/security"
    after = client.cookies[COOKIE]
    assert after != before
    shown = await page_get(client, "/account/security")
    assert shown.status_code == 200 and '<p id="amr">otp pwd</p>' in shown.text
    api = await client.get("/api/account/security")
    assert api.status_code == 200 and api.json()["amr"] == ["otp", "pwd"]

    # The pre-step-up id is dead: fixed or stolen before, it gains nothing.
    domain = next(c.domain for c in client.cookies.jar if c.name == COOKIE)
    client.cookies.set(COOKIE, before, domain=domain)
    assert (await page_get(client, "/account/security")).headers["location"].startswith("/login?")
    client.cookies.set(COOKIE, after, domain=domain)

    # Five minutes on, the step-up is stale: both factors are asked for again.
    with time_machine.travel(time.time() + 301, tick=True):
        stale = await page_get(client, "/account/security")
        assert stale.headers["location"] == "/step-up?next=/account/security"
        asked = await page_get(client, stale.headers["location"])
        assert 'id="step-up-password"' in asked.text and 'id="step-up-code"' in asked.text
        refused = await client.post("/step-up/password", data={"password": "bob-password"})
        assert refused.status_code == 401
        again = await client.post("/step-up/password", data={"password": "alice-password"})
        assert again.status_code == 303
        assert (await page_get(client, "/account/security")).status_code == 303  # otp too old
        code = phone.at(time.time(), counter_offset=1)
        assert (await client.post("/step-up/totp", data={"code": code})).status_code == 303
        assert (await page_get(client, "/account/security")).status_code == 200


async def test_removing_a_factor_needs_the_step_up(client: httpx.AsyncClient) -> None:
    await log_in(client)
    phone = await enrol_totp(client)
    account = await page_get(client, "/account")
    assert 'id="factor-totp"' in account.text
    removal = await client.post("/account/security/totp/remove")
    assert removal.status_code == 303 and removal.headers["location"] == "/step-up?next=/account"
    assert 'id="factor-totp"' in (await page_get(client, "/account")).text  # still there

    await client.post("/step-up/totp", data={"code": next_code(phone)})
    removed = await client.post("/account/security/totp/remove")
    assert removed.status_code == 303 and removed.headers["location"] == "/account"
    assert 'id="no-factors"' in (await page_get(client, "/account")).text


async def test_passkey_enrolment_and_step_up(client: httpx.AsyncClient) -> None:
    before = await log_in(client)
    device = SoftAuthenticator(ORIGIN)
    begin = (await client.post("/account/passkey/options")).json()
    registered = await client.post(
        "/account/passkey/register",
        json={
            "ceremony_id": begin["id"],
            "response": device.create(begin["options"]),
            "name": "Key",
        },
    )
    assert registered.status_code == 200
    assert "Passkey “Key”" in (await page_get(client, "/account")).text

    begin = (await client.post("/step-up/passkey/options")).json()
    assert len(begin["options"]["allowCredentials"]) == 1  # this user's passkey only
    stepped = await client.post(
        "/step-up/passkey",
        json={"ceremony_id": begin["id"], "response": device.get(begin["options"])},
    )
    assert stepped.status_code == 200 and client.cookies[COOKIE] != before
    assert (await client.get("/api/account/security")).json()["amr"] == ["hwk", "pwd"]

    # Another user's session cannot use alice's passkey, and a cross-site post is refused.
    client.cookies.clear()
    await log_in(client, "bob")
    begin = (await client.post("/step-up/passkey/options")).json()
    assert begin["options"]["allowCredentials"] == []
    (credential_id,) = device.credentials
    refused = await client.post(
        "/step-up/passkey",
        json={"ceremony_id": begin["id"], "response": device.get(begin["options"], credential_id)},
    )
    assert refused.status_code == 401
    forged = await client.post(
        "/step-up/totp", data={"code": "123456"}, headers={"Origin": "https://evil.example"}
    )
    assert forged.status_code == 403


async def test_a_session_alone_cannot_add_a_factor(client: httpx.AsyncClient) -> None:
    """A stolen session must not add its holder's passkey or swap the app's key.

    Either would pass every later step-up, so adding a factor asks what removing one asks:
    a fresh password and, once a second factor exists, a fresh one of those.
    """
    await log_in(client)
    phone = await enrol_totp(client)  # right after the login: the password is fresh
    device = SoftAuthenticator(ORIGIN)

    # A second factor exists and none is fresh: no new passkey, no new TOTP key.
    options = await client.post("/account/passkey/options")
    assert options.status_code == 401 and options.json()["step_up"] == "/step-up?next=/account"
    assert options.headers["www-authenticate"] == f'Cookie realm="session", {STEP_UP_CHALLENGE}'
    setup = await client.post("/account/totp/setup")
    assert setup.status_code == 303 and setup.headers["location"] == "/step-up?next=/account"
    assert (await client.post("/account/totp/confirm", data={"code": "123456"})).status_code == 303
    account = await page_get(client, "/account")
    assert "passkey-row" not in account.text and 'id="factor-totp"' in account.text

    # Stepped up with the app: the passkey can be added.
    assert (await client.post("/step-up/totp", data={"code": next_code(phone)})).status_code == 303
    begin = (await client.post("/account/passkey/options")).json()
    registered = await client.post(
        "/account/passkey/register",
        json={"ceremony_id": begin["id"], "response": device.create(begin["options"])},
    )
    assert registered.status_code == 200

    # Later, with the password no longer fresh, not even that.
    with time_machine.travel(time.time() + 301, tick=True):
        assert (await client.post("/account/passkey/options")).status_code == 401
        assert (await client.post("/account/totp/setup")).status_code == 303

    # A user with no factor yet needs a fresh password to add the first one.
    client.cookies.clear()
    await log_in(client, "bob")
    with time_machine.travel(time.time() + 301, tick=True):
        assert (await client.post("/account/totp/setup")).status_code == 303
    assert (await client.post("/account/totp/setup")).status_code == 200


# --- in Chromium --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    url = f"http://localhost:{port}"
    settings = DemoSettings(data_dir=tmp_path_factory.mktemp("demo-mfa"), public_url=url)
    with serve(create_app(settings), port):
        yield url


def shot(page: Any, name: str) -> Path:
    return screenshot(page, "demo-mfa", name)


def session_cookie(context: Any) -> str:
    return str(next(c["value"] for c in context.cookies() if c["name"] == COOKIE))


def browser_log_in(page: Any, url: str, login: str, password: str) -> None:
    page.goto(f"{url}/login")
    page.fill("#username", login)
    page.fill("#password", password)
    page.click("#login-button")
    page.wait_for_url(f"{url}/account")


@pytest.mark.browser
def test_totp_and_passkey_step_up_in_chromium(demo_url: str, chromium: Any) -> None:
    from playwright.sync_api import expect

    url = demo_url
    context = loopback_context(chromium, url)
    page = context.new_page()
    cdp = context.new_cdp_session(page)
    authenticator = add_virtual_authenticator(cdp)
    try:
        # 1. Register, confirm the address from the development outbox, log in.
        page.goto(f"{url}/register")
        page.fill("#email", "mia@example.org")
        page.fill("#password", "correct horse battery")
        page.click("#register-button")
        expect(page.locator("#sent")).to_have_text("Check your mail")
        page.goto(f"{url}/dev/outbox")
        link = re.search(
            rf"{re.escape(url)}/verify\?token=[A-Za-z0-9_-]+",
            page.locator(".mail-body").first.inner_text(),
        )
        assert link is not None
        page.goto(link.group(0))
        page.click("#verify-button")
        expect(page.locator("#notice")).to_contain_text("confirmed")
        browser_log_in(page, url, "mia@example.org", "correct horse battery")

        # 2. The security page wants a second factor; none is enrolled yet.
        page.goto(f"{url}/account/security")
        page.wait_for_url(f"{url}/step-up?next=/account/security")
        expect(page.locator("#no-second-factor")).to_be_visible()
        shot(page, "01-step-up-without-a-factor")

        # 3. TOTP from the key the account page shows, as an authenticator app would.
        page.goto(f"{url}/account")
        page.click("#totp-setup")
        expect(page.locator("#totp-qr svg")).to_have_count(1)
        phone = pyotp.TOTP(page.inner_text("#totp-secret"))
        shot(page, "02-totp-setup")
        page.fill("#totp-code", phone.now())
        page.click("#totp-confirm")
        expect(page.locator("#totp-status")).to_have_text("Authenticator app set up")
        expect(page.locator("#recovery-codes li")).to_have_count(10)
        shot(page, "03-recovery-codes")

        # 4. Step up with a code: the page opens, under a new session id.
        before = session_cookie(context)
        page.goto(f"{url}/account/security")
        page.wait_for_url(f"{url}/step-up?next=/account/security")
        page.fill("#step-up-code", next_code(phone))
        page.click("#step-up-totp")
        page.wait_for_url(f"{url}/account/security")
        expect(page.locator("#amr")).to_have_text("otp pwd")
        assert session_cookie(context) != before
        shot(page, "04-stepped-up-with-totp")

        # 5. A passkey, created by Chromium's virtual authenticator, from the account page.
        page.goto(f"{url}/account")
        page.fill("#passkey-name", "Virtual key")
        page.click("#add-passkey")
        expect(page.locator(".passkey-row")).to_have_count(1)
        expect(page.locator(".passkey-row").first).to_contain_text("Virtual key")
        held = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator})
        assert len(held["credentials"]) == 1 and held["credentials"][0]["isResidentCredential"]
        shot(page, "05-passkey-added")

        # 6. Log out, log in with the password again, step up with the passkey.
        page.click("#logout-button")
        page.wait_for_url(f"{url}/")
        browser_log_in(page, url, "mia@example.org", "correct horse battery")
        before = session_cookie(context)
        page.goto(f"{url}/account/security")
        page.wait_for_url(f"{url}/step-up?next=/account/security")
        shot(page, "06-step-up-offers-both")
        page.click("#step-up-passkey")
        page.wait_for_url(f"{url}/account/security")
        expect(page.locator("#amr")).to_have_text("hwk pwd")
        assert session_cookie(context) != before
        shot(page, "07-stepped-up-with-passkey")
        held = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator})
        assert held["credentials"][0]["signCount"] >= 2
    finally:
        cdp.send("WebAuthn.removeVirtualAuthenticator", {"authenticatorId": authenticator})
        context.close()
