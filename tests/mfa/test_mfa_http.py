"""TOTP and passkeys as factors next to sessions and JWT: enrolment, step-up, rotation.

Runs the MFA app of ``mfa_app.py`` in process (httpx over ASGI); passkeys come from the
software authenticator of ``fastsecure_webauthn.testing``.
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pyotp
import pytest

from fastsecure import AuthenticationManager, AuthenticationProvider, AuthenticationResult
from fastsecure_jwt import JWTAuthenticationProvider
from fastsecure_totp import SecretCipher, TotpProvider
from fastsecure_webauthn.testing import SoftAuthenticator

sys.path.insert(0, str(Path(__file__).resolve().parent))
from mfa_app import MfaApp, create_app

ORIGIN = "http://localhost:8000"


@pytest.fixture
def mfa() -> MfaApp:
    return create_app(ORIGIN)


@pytest.fixture
async def client(mfa: MfaApp) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=mfa.app),
        base_url=ORIGIN,
        headers={"Origin": ORIGIN},
    ) as c:
        yield c


async def sign_in(client: httpx.AsyncClient) -> str:
    response = await client.post(
        "/login", data={"username": "ada", "password": "correct horse battery staple"}
    )
    assert response.status_code == 303
    return client.cookies["session_id"]


async def enrol_totp(client: httpx.AsyncClient) -> pyotp.TOTP:
    page = await client.get("/account/totp")
    assert page.headers["cache-control"] == "no-store" and "<svg" in page.text
    secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', page.text)
    assert secret is not None
    app = pyotp.TOTP(secret.group(1))
    confirmed = await client.post("/account/totp", data={"code": app.now()})
    assert confirmed.status_code == 200 and 'id="totp-status">enrolled' in confirmed.text
    assert len(re.findall(r"<li>[a-z2-9-]{19}</li>", confirmed.text)) == 10
    return app


def next_step_code(app: pyotp.TOTP) -> str:
    """The next time step's code: within the window, and after the one enrolment spent."""
    return app.at(time.time(), counter_offset=1)


async def test_security_page_needs_a_fresh_second_factor(client: httpx.AsyncClient) -> None:
    await sign_in(client)
    api = await client.get("/account/security", headers={"Accept": "application/json"})
    assert api.status_code == 401
    challenge = api.headers["www-authenticate"]
    assert 'error="insufficient_user_authentication"' in challenge and "max_age=300" in challenge
    browser = await client.get("/account/security", headers={"Accept": "text/html"})
    assert browser.status_code == 303
    assert browser.headers["location"] == "/step-up?next=/account/security"


async def test_totp_step_up_rotates_the_session(client: httpx.AsyncClient) -> None:
    before = await sign_in(client)
    app = await enrol_totp(client)
    stepped = await client.post(
        "/step-up/totp?next=/account/security", data={"code": next_step_code(app)}
    )
    assert stepped.status_code == 303 and stepped.headers["location"] == "/account/security"
    after = client.cookies["session_id"]
    assert after != before
    page = await client.get("/account/security")
    assert page.status_code == 200 and 'id="factors">otp pwd<' in page.text
    # The pre-step-up session id is dead: a fixated or stolen one gains nothing.
    client.cookies.clear()
    client.cookies.set("session_id", before)
    assert (await client.get("/account/security")).status_code == 303
    assert (await client.get("/account")).headers["location"] == "/login"


async def test_a_step_up_code_is_single_use(client: httpx.AsyncClient) -> None:
    await sign_in(client)
    app = await enrol_totp(client)
    code = next_step_code(app)
    first = await client.post("/step-up/totp", data={"code": code})
    assert first.status_code == 303
    again = await client.post("/step-up/totp", data={"code": code})
    assert again.status_code == 401 and "wrong code" in again.text


async def test_wrong_codes_are_refused_then_slowed_down(client: httpx.AsyncClient) -> None:
    await sign_in(client)
    app = await enrol_totp(client)
    statuses = []
    for _ in range(25):
        wrong = "000000" if next_step_code(app) != "000000" else "111111"
        statuses.append((await client.post("/step-up/totp", data={"code": wrong})).status_code)
    assert statuses[0] == 401 and statuses[-1] == 429
    assert "429" not in map(str, statuses[:20])


async def test_cross_site_step_up_is_refused(client: httpx.AsyncClient) -> None:
    await sign_in(client)
    app = await enrol_totp(client)
    forged = await client.post(
        "/step-up/totp",
        data={"code": next_step_code(app)},
        headers={"Origin": "https://evil.example"},
    )
    assert forged.status_code == 403


async def register_passkey(client: httpx.AsyncClient, device: SoftAuthenticator) -> None:
    begin = (await client.post("/account/passkey/options")).json()
    done = await client.post(
        "/account/passkey/register",
        json={"ceremony_id": begin["id"], "response": device.create(begin["options"])},
    )
    assert done.status_code == 200


async def test_passkey_step_up_and_passwordless_login(
    client: httpx.AsyncClient, mfa: MfaApp
) -> None:
    before = await sign_in(client)
    device = SoftAuthenticator(ORIGIN)
    await register_passkey(client, device)
    begin = (await client.post("/step-up/passkey/options")).json()
    assert len(begin["options"]["allowCredentials"]) == 1
    stepped = await client.post(
        "/step-up/passkey",
        json={"ceremony_id": begin["id"], "response": device.get(begin["options"])},
    )
    assert stepped.status_code == 200 and client.cookies["session_id"] != before
    page = await client.get("/account/security")
    assert page.status_code == 200 and 'id="factors">hwk pwd<' in page.text

    await client.post("/logout")
    client.cookies.clear()
    begin = (await client.post("/login/passkey/options")).json()
    assert begin["options"]["allowCredentials"] == []
    login = await client.post(
        "/login/passkey",
        json={"ceremony_id": begin["id"], "response": device.get(begin["options"])},
    )
    assert login.status_code == 200
    # A user-verified passkey is a multi-factor login on its own: no step-up needed.
    assert (await client.get("/account/security")).status_code == 200
    (stored,) = await mfa.passkeys.list_credentials(1)
    assert stored.sign_count == 2


async def test_someone_elses_passkey_cannot_step_up(client: httpx.AsyncClient, mfa: MfaApp) -> None:
    mallory = SoftAuthenticator(ORIGIN)
    ceremony = await mfa.passkeys.registration_options(2, "mallory")
    await mfa.passkeys.register(2, ceremony.id, mallory.create(ceremony.options))
    await sign_in(client)
    begin = (await client.post("/step-up/passkey/options")).json()
    (credential_id,) = mallory.credentials
    response = mallory.get(begin["options"], credential_id)
    refused = await client.post(
        "/step-up/passkey", json={"ceremony_id": begin["id"], "response": response}
    )
    assert refused.status_code == 401


class PasswordProvider(AuthenticationProvider):
    """The first factor of the ALL requirement below (a stand-in for fastsecure-password)."""

    provider_type = "password"

    def get_required_credentials(self) -> set[str]:
        return {"username", "password"}

    async def authenticate(self, credentials: dict[str, Any]) -> AuthenticationResult:
        if credentials.get("username") == "ada" and credentials.get("password") == "pw":
            return AuthenticationResult(
                success=True,
                user_id=1,
                provider=self.provider_name,
                metadata={"amr": ["pwd"], "auth_time": int(time.time())},
            )
        return AuthenticationResult.failure("wrong password", provider=self.provider_name)

    async def validate_authentication(self, auth_data: dict[str, Any]) -> bool:
        return False


async def test_password_and_totp_then_a_jwt_carrying_amr_and_auth_time() -> None:
    manager = AuthenticationManager()
    totp = TotpProvider(SecretCipher.generate_key(), issuer="Example")
    jwt = JWTAuthenticationProvider(secret_key="a-test-secret-of-at-least-32-bytes!!")
    manager.register_provider("password", PasswordProvider())
    manager.register_provider("totp", totp)
    manager.register_provider("jwt", jwt)
    manager.add_requirement("/login/mfa", ["password", "totp"], strategy="all")
    enrolment = await totp.begin_enrolment(1, "ada")
    app = pyotp.TOTP(enrolment.secret)
    assert await totp.confirm_enrolment(1, app.now())

    wrong_user = await manager.authenticate(
        "/login/mfa",
        {
            "password": {"username": "ada", "password": "pw"},
            "totp": {"user_id": 2, "code": next_step_code(app)},
        },
    )
    assert not wrong_user.success  # both factors must name the same user

    login = await manager.authenticate(
        "/login/mfa",
        {
            "password": {"username": "ada", "password": "pw"},
            "totp": {"user_id": 1, "code": next_step_code(app)},
        },
    )
    assert login.success and login.user_id == 1
    amr = sorted({m for name in ("password", "totp") for m in login.metadata[name]["amr"]})
    auth_time = max(login.metadata[name]["auth_time"] for name in ("password", "totp"))
    assert amr == ["otp", "pwd"]

    # The ALL result is the factor: the JWT records what its checks reported.
    issued = await jwt.authenticate({"user_id": 1, "factors": [login]})
    verified = await jwt.authenticate({"access_token": issued.access_token})
    assert verified.success
    assert verified.metadata["amr"] == ["otp", "pwd"]
    assert verified.metadata["auth_time"] == auth_time
