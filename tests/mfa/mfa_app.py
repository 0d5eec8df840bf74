"""A small app with a password, TOTP and passkeys, and one step-up-protected page.

Used by the MFA tests over HTTP (httpx) and in Chromium. A login records the factor that
proved it (``factors=[...]``: the session's ``amr`` / ``amr_times`` / ``auth_time``), and a
factor checked later is added by ``SessionAuthenticationProvider.step_up``, which rotates
the session id. The security page checks freshness by hand (``fresh_second_factor``) to
answer its own challenge; the demo (``examples/demo``) uses core's factor requirements.
"""

from __future__ import annotations

import hmac
import html
import time
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from fastsecure import AuthenticationResult, BadRequestError, ForbiddenError, RateLimitedError
from fastsecure.fastapi.responses import step_up_challenge
from fastsecure.ratelimit import Backoff
from fastsecure_session import SessionAuthenticationProvider
from fastsecure_totp import SecretCipher, TotpProvider
from fastsecure_webauthn import RegistrationError, WebAuthnProvider

SECOND_FACTORS = frozenset({"otp", "hwk", "swk"})
STEP_UP_MAX_AGE = 300  # seconds: "within the last 5 minutes"
USERS = {"ada": (1, "correct horse battery staple")}


@dataclass
class MfaApp:
    app: FastAPI
    session: SessionAuthenticationProvider
    totp: TotpProvider
    passkeys: WebAuthnProvider


PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>{title}</title></head>
<body><h1>{title}</h1>{body}
<script>
async function postJSON(url, body) {{
  const r = await fetch(url, {{method: "POST", headers: {{"Content-Type": "application/json"}},
                             body: JSON.stringify(body || {{}})}});
  return [r.status, await r.json()];
}}
async function addPasskey() {{
  const [, begin] = await postJSON("/account/passkey/options");
  const publicKey = PublicKeyCredential.parseCreationOptionsFromJSON(begin.options);
  const credential = await navigator.credentials.create({{publicKey}});
  const [status] = await postJSON("/account/passkey/register",
                                  {{ceremony_id: begin.id, response: credential.toJSON()}});
  document.getElementById("passkey-status").textContent = status === 200 ? "registered" : "refused";
}}
async function usePasskey(optionsUrl, verifyUrl, next) {{
  const [, begin] = await postJSON(optionsUrl);
  const publicKey = PublicKeyCredential.parseRequestOptionsFromJSON(begin.options);
  const credential = await navigator.credentials.get({{publicKey}});
  const [status] = await postJSON(verifyUrl, {{ceremony_id: begin.id, response: credential.toJSON()}});
  if (status === 200) {{ location.href = next; }}
  else {{ document.getElementById("passkey-status").textContent = "refused"; }}
}}
</script></body></html>"""


def page(title: str, body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(
        PAGE.format(title=html.escape(title), body=body),
        status_code=status,
        headers={"Cache-Control": "no-store"},
    )


def wants_html(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "")


def create_app(origin: str, *, rp_id: str = "localhost") -> MfaApp:
    """The app for pages served at ``origin`` (``http://localhost:<port>``)."""
    session = SessionAuthenticationProvider(cookie_secure=False, max_sessions_per_user=10)
    totp = TotpProvider(SecretCipher.generate_key(), issuer="MFA Test", backoff=Backoff(limit=20))
    passkeys = WebAuthnProvider(
        rp_id=rp_id, rp_name="MFA Test", origins=origin, backoff=Backoff(limit=20)
    )
    for name, provider in (("session", session), ("totp", totp), ("passkey", passkeys)):
        provider.provider_name = name
    app = FastAPI()

    async def current(request: Request) -> AuthenticationResult | None:
        """The request's live session, CSRF-checked, or None."""
        try:
            creds = await session.extract_credentials(request)
        except ForbiddenError:
            raise HTTPException(403, "cross-site request refused") from None
        except BadRequestError:
            raise HTTPException(400, "ambiguous session cookie") from None
        if creds is None:
            return None
        result = await session.authenticate(creds)
        return result if result.success else None

    async def signed_in(request: Request) -> AuthenticationResult:
        result = await current(request)
        if result is None:
            raise HTTPException(401, "not signed in")
        return result

    async def start_session(
        user_id: Any, factor: AuthenticationResult, previous: AuthenticationResult | None
    ) -> AuthenticationResult:
        """A login records its factor; a step-up adds it to the session, under a new id."""
        if previous is not None and previous.session_id:
            return await session.step_up(previous.session_id, factor)
        return await session.authenticate({"user_id": user_id, "factors": [factor]})

    def fresh_second_factor(result: AuthenticationResult) -> bool:
        times = result.metadata.get("amr_times", {})
        newest = max((t for m, t in times.items() if m in SECOND_FACTORS), default=None)
        return newest is not None and time.time() - newest <= STEP_UP_MAX_AGE

    def ok_with_cookie(result: AuthenticationResult, response: Response) -> Response:
        if not result.success:  # the session ended during the step-up
            return JSONResponse({"detail": "not signed in"}, 401)
        session.set_cookie(response, result)
        return response

    @app.get("/login")
    async def login_page() -> HTMLResponse:
        return page(
            "Sign in",
            '<form method="post" action="/login">'
            '<input id="username" name="username"><input id="password" name="password" '
            'type="password"><button id="login-button">Sign in</button></form>'
            '<button id="passkey-login" onclick="usePasskey(\'/login/passkey/options\', '
            "'/login/passkey', '/account')\">Sign in with a passkey</button>"
            '<p id="passkey-status"></p>',
        )

    @app.post("/login")
    async def login(username: str = Form(), password: str = Form()) -> Response:
        user = USERS.get(username)
        expected = user[1] if user else "not the password of anyone"
        if not hmac.compare_digest(password.encode(), expected.encode()) or user is None:
            return page("Sign in", "<p>Wrong username or password.</p>", 401)
        factor = AuthenticationResult(
            success=True, user_id=user[0], metadata={"amr": ["pwd"], "auth_time": int(time.time())}
        )
        result = await start_session(user[0], factor, None)
        return ok_with_cookie(result, RedirectResponse("/account", 303))

    @app.post("/login/passkey/options")
    async def passkey_login_options() -> dict[str, Any]:
        ceremony = await passkeys.authentication_options()
        return {"id": ceremony.id, "options": ceremony.options}

    @app.post("/login/passkey")
    async def passkey_login(body: dict[str, Any]) -> Response:
        factor = await passkeys.authenticate(
            {"ceremony_id": body.get("ceremony_id"), "response": body.get("response")}
        )
        if not factor.success:
            return JSONResponse({"detail": "passkey not accepted"}, 401)
        result = await start_session(factor.user_id, factor, None)
        return ok_with_cookie(result, JSONResponse({"ok": True}))

    @app.post("/logout")
    async def logout(request: Request) -> Response:
        result = await current(request)
        if result is not None and result.session_id:
            await session.revoke_authentication({"session_id": result.session_id})
        response = RedirectResponse("/login", 303)
        session.clear_cookie(response)
        return response

    @app.get("/account")
    async def account(request: Request) -> Response:
        result = await current(request)
        if result is None:
            return RedirectResponse("/login", 303)
        return page(
            "Account",
            f'<p id="methods">{" ".join(result.metadata.get("amr", []))}</p>'
            '<a href="/account/totp">Set up an authenticator app</a> '
            '<a href="/account/passkey">Passkeys</a> '
            '<a href="/account/security">Security settings</a>'
            '<form method="post" action="/logout"><button id="logout">Sign out</button></form>',
        )

    @app.get("/account/totp")
    async def totp_page(request: Request) -> Response:
        result = await signed_in(request)
        enrolment = await totp.begin_enrolment(result.user_id, "ada@example.com")  # type: ignore[arg-type]
        return page(
            "Authenticator app",
            f"{enrolment.qr_svg()}<p>Or type this key: "
            f'<code id="totp-secret">{enrolment.secret}</code></p>'
            '<form method="post" action="/account/totp"><input id="totp-code" name="code">'
            '<button id="totp-confirm">Confirm</button></form>',
        )

    @app.post("/account/totp")
    async def totp_confirm(request: Request, code: str = Form()) -> Response:
        result = await signed_in(request)
        confirmed = await totp.confirm_enrolment(result.user_id, code)  # type: ignore[arg-type]
        if not confirmed:
            return page("Authenticator app", '<p id="totp-status">wrong code</p>', 400)
        codes = await totp.generate_recovery_codes(result.user_id)  # type: ignore[arg-type]
        items = "".join(f"<li>{c}</li>" for c in codes)
        return page(
            "Authenticator app",
            f'<p id="totp-status">enrolled</p><ol id="recovery-codes">{items}</ol>',
        )

    @app.get("/account/passkey")
    async def passkey_page(request: Request) -> Response:
        await signed_in(request)
        return page(
            "Passkeys",
            '<button id="add-passkey" onclick="addPasskey()">Add a passkey</button>'
            '<p id="passkey-status"></p>',
        )

    @app.post("/account/passkey/options")
    async def passkey_options(request: Request) -> dict[str, Any]:
        result = await signed_in(request)
        assert result.user_id is not None
        ceremony = await passkeys.registration_options(result.user_id, "ada@example.com")
        return {"id": ceremony.id, "options": ceremony.options}

    @app.post("/account/passkey/register")
    async def passkey_register(request: Request, body: dict[str, Any]) -> Response:
        result = await signed_in(request)
        assert result.user_id is not None
        try:
            await passkeys.register(
                result.user_id, body.get("ceremony_id", ""), body.get("response")
            )
        except RegistrationError:
            return JSONResponse({"detail": "the passkey could not be registered"}, 400)
        return JSONResponse({"ok": True})

    @app.get("/account/security")
    async def security(request: Request) -> Response:
        result = await current(request)
        if result is None:
            return RedirectResponse("/login", 303)
        if not fresh_second_factor(result):
            if wants_html(request):
                return RedirectResponse("/step-up?next=/account/security", 303)
            return JSONResponse(
                {"detail": "a fresh second factor is required"},
                401,
                headers={
                    "WWW-Authenticate": step_up_challenge(session.challenge(), STEP_UP_MAX_AGE)
                },
            )
        return page("Security settings", f'<p id="factors">{" ".join(result.metadata["amr"])}</p>')

    @app.get("/step-up")
    async def step_up_page(request: Request, next: str = "/account") -> Response:
        await signed_in(request)
        target = next if next.startswith("/") and not next.startswith("//") else "/account"
        return page(
            "Confirm it is you",
            f'<form method="post" action="/step-up/totp?next={html.escape(target)}">'
            '<input id="step-up-code" name="code"><button id="step-up-totp">Verify</button>'
            "</form>"
            f'<button id="step-up-passkey" onclick="usePasskey(\'/step-up/passkey/options\', '
            f"'/step-up/passkey', '{html.escape(target)}')\">Use a passkey</button>"
            '<p id="passkey-status"></p>',
        )

    @app.post("/step-up/totp")
    async def step_up_totp(
        request: Request, code: str = Form(), next: str = "/account"
    ) -> Response:
        result = await signed_in(request)
        factor = await totp.authenticate({"user_id": result.user_id, "code": code})
        if not factor.success:
            return page("Confirm it is you", '<p id="step-up-status">wrong code</p>', 401)
        target = next if next.startswith("/") and not next.startswith("//") else "/account"
        new = await start_session(result.user_id, factor, result)
        return ok_with_cookie(new, RedirectResponse(target, 303))

    @app.post("/step-up/passkey/options")
    async def step_up_passkey_options(request: Request) -> dict[str, Any]:
        result = await signed_in(request)
        ceremony = await passkeys.authentication_options(result.user_id)
        return {"id": ceremony.id, "options": ceremony.options}

    @app.post("/step-up/passkey")
    async def step_up_passkey(request: Request, body: dict[str, Any]) -> Response:
        result = await signed_in(request)
        factor = await passkeys.authenticate(
            {
                "ceremony_id": body.get("ceremony_id"),
                "response": body.get("response"),
                "user_id": result.user_id,
            }
        )
        if not factor.success:
            return JSONResponse({"detail": "passkey not accepted"}, 401)
        new = await start_session(result.user_id, factor, result)
        return ok_with_cookie(new, JSONResponse({"ok": True}))

    @app.exception_handler(RateLimitedError)
    async def rate_limited(request: Request, exc: RateLimitedError) -> Response:
        return JSONResponse(
            {"detail": "too many attempts"},
            429,
            headers={"Retry-After": str(int(exc.retry_after) or 1)},
        )

    return MfaApp(app, session, totp, passkeys)
