"""Second factors in the demo: TOTP and passkeys, enrolled on the account page, and step-up.

``/account/security/**`` asks for a password and a second factor used within 5 minutes
(``fastsecure.toml``: ``factors = ["pwd", ["otp", "hwk", "swk"]]``, ``max_age = 300``).
An under-assured page request is sent to ``/step-up``, which offers what is missing; each
factor checked there is added to the session by ``SessionAuthenticationProvider.step_up``
(the session id rotates). Removing a factor lives under ``/account/security/`` too, so a
stolen session alone cannot strip the account's second factor.
"""

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Form, Request, status
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel
from webauthn.helpers import bytes_to_base64url

from fastsecure import AuthenticationManager, AuthenticationResult, RateLimitedError
from fastsecure.decision import INSUFFICIENT_USER_AUTHENTICATION
from fastsecure.fastapi.openapi import auth_responses
from fastsecure.fastapi.responses import DETAILS, step_up_challenge
from fastsecure.results import UserId
from fastsecure_password import LoginRefusedError, PasswordAccounts
from fastsecure_redis import RedisSessionStore
from fastsecure_session import SessionAuthenticationProvider
from fastsecure_sqlalchemy import DatabaseSessionStore
from fastsecure_totp import MemoryTotpStore, TotpProvider, TotpStore
from fastsecure_totp.redis import RedisTotpStore
from fastsecure_totp.sql import SqlTotpStore
from fastsecure_webauthn import MemoryWebAuthnStore, RegistrationError, WebAuthnProvider
from fastsecure_webauthn.sql import SqlWebAuthnStore
from fastsecure_webauthn.store import WebAuthnStore

from .settings import DemoSecrets, DemoSettings

# No ``from __future__ import annotations``: FastAPI must see the ``Annotated`` alias
# defined inside add_routes as an object (as in app.py).

SECOND_FACTORS = ("otp", "hwk", "swk")
STEP_UP_MAX_AGE = 300  # seconds; the same figure as fastsecure.toml's requirement
ENROL_STEP_UP = "/step-up?next=/account"  # where adding a factor sends an unproven session
STEP_UP_DETAIL = DETAILS[INSUFFICIENT_USER_AUTHENTICATION]  # core's 401 detail (RFC 9470)
FACTOR_NAMES = {
    "pwd": "password",
    "otp": "authenticator app (TOTP)",
    "hwk": "passkey (this device)",
    "swk": "passkey (synced)",
}


class CeremonyBody(BaseModel):
    """The browser's answer to a passkey ceremony: ``credential.toJSON()``."""

    ceremony_id: str
    response: dict[str, Any]
    name: str | None = None


def _when(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M UTC")


@dataclass
class Factors:
    """The demo's factor providers and the stores they keep enrolments in."""

    totp: TotpProvider
    passkeys: WebAuthnProvider
    create_tables: Callable[[], Awaitable[None]] | None = None

    async def summary(self, user_id: UserId) -> dict[str, Any]:
        """The user's factors, for the account, step-up and security pages."""
        return {
            "totp_enrolled": await self.totp.is_enrolled(user_id),
            "recovery_left": await self.totp.remaining_recovery_codes(user_id),
            "passkeys": [
                {
                    "id": bytes_to_base64url(p.credential_id),
                    "name": p.name or "Passkey",
                    "kind": "synced" if p.device_type == "multi_device" else "this device",
                    "added": _when(p.created_at),
                    "last_used": _when(p.last_used_at),
                }
                for p in await self.passkeys.list_credentials(user_id)
            ],
        }


def build_factors(
    settings: DemoSettings, secrets: DemoSecrets, sessions: SessionAuthenticationProvider
) -> Factors:
    """TOTP and passkeys on the demo's own database (the session store's engine).

    With Redis configured, TOTP enrolments go to Redis under the demo's prefix, and
    passkeys stay in memory (fastsecure-webauthn has no Redis store). Both providers count
    every check per user before judging it (their default in-process limiter: the demo is
    one process).
    """
    totp_store: TotpStore
    passkey_store: WebAuthnStore
    create_tables: Callable[[], Awaitable[None]] | None = None
    store = sessions.store
    if isinstance(store, DatabaseSessionStore):
        sql_totp, sql_passkeys = SqlTotpStore(store.engine), SqlWebAuthnStore(store.engine)
        totp_store, passkey_store = sql_totp, sql_passkeys

        async def create_sql_tables() -> None:
            await sql_totp.create_tables()
            await sql_passkeys.create_tables()

        create_tables = create_sql_tables

    elif isinstance(store, RedisSessionStore):
        totp_store = RedisTotpStore(store.client, key_prefix=f"{settings.redis_prefix}totp:")
        passkey_store = MemoryWebAuthnStore()
    else:
        totp_store, passkey_store = MemoryTotpStore(), MemoryWebAuthnStore()
    totp = TotpProvider(secrets.totp_key, issuer="FastSecure demo", store=totp_store)
    passkeys = WebAuthnProvider(
        rp_id=settings.passkey_rp_id,
        rp_name="FastSecure demo",
        origins=settings.passkey_origin,
        store=passkey_store,
    )
    return Factors(totp, passkeys, create_tables)


def password_factor(user_id: str) -> AuthenticationResult:
    """A password check that just passed, as the factor the session records (``pwd``)."""
    return AuthenticationResult(
        success=True,
        user_id=user_id,
        provider="password",
        metadata={"amr": ["pwd"], "auth_time": int(time.time())},
    )


def fresh_factors(auth: AuthenticationResult) -> set[str]:
    """The methods of this session used within the step-up window."""
    times = auth.metadata.get("amr_times")
    if not isinstance(times, dict):
        return set()
    oldest = time.time() - STEP_UP_MAX_AGE
    return {m for m, t in times.items() if isinstance(t, int | float) and t >= oldest}


def safe_target(target: str) -> str:
    """A same-site path to return to after the step-up, never another site."""
    if target.startswith("/") and not target.startswith(("//", "/\\")):
        return target
    return "/account/security"


def add_routes(
    app: FastAPI,
    *,
    manager: AuthenticationManager,
    factors: Factors,
    sessions: SessionAuthenticationProvider,
    accounts: PasswordAccounts,
    settings: DemoSettings,
    page: Callable[..., HTMLResponse],
    client_ip: Callable[[Request], str],
) -> None:
    """The enrolment, step-up and security routes; each needs the session (fastsecure.toml)."""
    totp, passkeys = factors.totp, factors.passkeys
    Auth = Annotated[AuthenticationResult, Depends(manager.requires_auth)]
    no_store = {"Cache-Control": "no-store"}
    # The factor checks count every attempt per user (429 with Retry-After past the limit).
    limited_form = auth_responses(429)

    def passkeys_here(request: Request) -> bool:
        return request.url.hostname == settings.passkey_rp_id

    async def enrolled(auth: AuthenticationResult) -> dict[str, Any]:
        assert auth.user_id is not None
        return await factors.summary(auth.user_id)

    async def may_enrol(auth: AuthenticationResult) -> bool:
        """Adding a factor asks what removing one asks, once there is one to protect.

        A stolen session must not add its holder's passkey or swap the authenticator app's
        key: either would pass every later step-up. So a password from the last 5 minutes,
        and, once the user has a second factor, a fresh one of those too.
        """
        fresh = fresh_factors(auth)
        if "pwd" not in fresh:
            return False
        summary = await enrolled(auth)
        has_second = bool(summary["totp_enrolled"] or summary["passkeys"])
        return not has_second or bool(fresh & set(SECOND_FACTORS))

    def step_up_first() -> RedirectResponse:
        return RedirectResponse(ENROL_STEP_UP, status.HTTP_303_SEE_OTHER)

    def step_up_first_json() -> JSONResponse:
        # The answer core gives an under-assured session (RFC 9470), plus where to step up.
        challenge = step_up_challenge(sessions.challenge(), STEP_UP_MAX_AGE)
        return JSONResponse(
            {"detail": STEP_UP_DETAIL, "step_up": ENROL_STEP_UP},
            401,
            headers={"WWW-Authenticate": challenge},
        )

    async def limited(request: Request, name: str, exc: RateLimitedError, **ctx: Any) -> Response:
        answer = page(
            request,
            name,
            status_code=status.HTTP_429_TOO_MANY_REQUESTS,
            error=f"Too many attempts. Try again in {exc.retry_after:.0f} seconds.",
            **ctx,
        )
        answer.headers["Retry-After"] = str(max(1, round(exc.retry_after)))
        return answer

    def stepped_up(result: AuthenticationResult, response: Response) -> Response:
        if not result.success:  # the session ended meanwhile: log in again
            return RedirectResponse("/login?reason=session_ended", status.HTTP_303_SEE_OTHER)
        sessions.set_cookie(response, result)
        return response

    # --- enrolment, from the account page ------------------------------------------------

    @app.post("/account/totp/setup", response_class=HTMLResponse, include_in_schema=False)
    async def totp_setup(request: Request, auth: Auth) -> Response:
        """A new secret: the QR code and the key, until a code from the app confirms it."""
        assert auth.user_id is not None
        if not await may_enrol(auth):
            return step_up_first()
        # What the authenticator app lists; ':' separates the issuer in the otpauth URI.
        account_name = str(auth.user_id).replace(":", "/")
        enrolment = await totp.begin_enrolment(auth.user_id, account_name)
        qr_svg, secret = enrolment.qr_svg(), enrolment.secret
        answer = page(request, "totp_setup.html", auth=auth, qr_svg=qr_svg, secret=secret)
        answer.headers.update(no_store)  # the page holds the secret
        return answer

    @app.post("/account/totp/confirm", include_in_schema=False, responses=limited_form)
    async def totp_confirm(request: Request, auth: Auth, code: Annotated[str, Form()]) -> Response:
        assert auth.user_id is not None
        if not await may_enrol(auth):
            return step_up_first()
        try:
            confirmed = await totp.confirm_enrolment(auth.user_id, code)
        except RateLimitedError as exc:
            return await limited(request, "totp_setup.html", exc, auth=auth)
        if not confirmed:
            return page(
                request,
                "totp_setup.html",
                status_code=status.HTTP_400_BAD_REQUEST,
                auth=auth,
                error="That code does not match (or the set-up expired): start again.",
            )
        codes = await totp.generate_recovery_codes(auth.user_id)
        answer = page(request, "totp_enrolled.html", auth=auth, recovery_codes=codes)
        answer.headers.update(no_store)  # shown once
        return answer

    @app.post("/account/passkey/options", include_in_schema=False)
    async def passkey_options(auth: Auth) -> Any:
        assert auth.user_id is not None
        if not await may_enrol(auth):
            return step_up_first_json()
        ceremony = await passkeys.registration_options(auth.user_id, str(auth.user_id))
        return {"id": ceremony.id, "options": ceremony.options}

    @app.post("/account/passkey/register", include_in_schema=False)
    async def passkey_register(body: CeremonyBody, auth: Auth) -> Response:
        assert auth.user_id is not None
        if not await may_enrol(auth):
            return step_up_first_json()
        try:
            await passkeys.register(
                auth.user_id, body.ceremony_id, body.response, name=body.name or "Passkey"
            )
        except RegistrationError:
            return JSONResponse({"detail": "The passkey could not be registered."}, 400)
        return JSONResponse({"ok": True})

    # --- step-up ------------------------------------------------------------------------

    @app.get("/step-up", response_class=HTMLResponse, include_in_schema=False)
    async def step_up_page(
        request: Request, auth: Auth, next: str = "/account/security"
    ) -> HTMLResponse:
        """What the protected page still needs, and the forms that provide it."""
        fresh = fresh_factors(auth)
        return page(
            request,
            "step_up.html",
            auth=auth,
            next=safe_target(next),
            need_password="pwd" not in fresh,
            need_second=not fresh & set(SECOND_FACTORS),
            passkeys_here=passkeys_here(request),
            passkey_origin=settings.passkey_origin,
            max_age_minutes=STEP_UP_MAX_AGE // 60,
            **(await enrolled(auth)),
        )

    async def step_up_again(
        request: Request, auth: AuthenticationResult, target: str, error: str, code: int
    ) -> HTMLResponse:
        fresh = fresh_factors(auth)
        return page(
            request,
            "step_up.html",
            status_code=code,
            auth=auth,
            next=target,
            error=error,
            need_password="pwd" not in fresh,
            need_second=not fresh & set(SECOND_FACTORS),
            passkeys_here=passkeys_here(request),
            passkey_origin=settings.passkey_origin,
            max_age_minutes=STEP_UP_MAX_AGE // 60,
            **(await enrolled(auth)),
        )

    @app.post("/step-up/totp", include_in_schema=False, responses=limited_form)
    async def step_up_totp(
        request: Request,
        auth: Auth,
        code: Annotated[str, Form()],
        next: Annotated[str, Form()] = "/account/security",
    ) -> Response:
        """A code from the authenticator app (or a recovery code) steps the session up."""
        target = safe_target(next)
        code = code.strip()
        credentials: dict[str, Any] = {"user_id": auth.user_id}
        credentials["recovery_code" if "-" in code else "code"] = code
        try:
            factor = await totp.authenticate(credentials)
        except RateLimitedError as exc:
            answer = await step_up_again(request, auth, target, "Too many attempts.", 429)
            answer.headers["Retry-After"] = str(max(1, round(exc.retry_after)))
            return answer
        if not factor.success:
            return await step_up_again(request, auth, target, "That code is not valid.", 401)
        assert auth.session_id is not None
        result = await sessions.step_up(auth.session_id, factor)
        return stepped_up(result, RedirectResponse(target, status.HTTP_303_SEE_OTHER))

    @app.post("/step-up/password", include_in_schema=False, responses=limited_form)
    async def step_up_password(
        request: Request,
        auth: Auth,
        password: Annotated[str, Form()],
        next: Annotated[str, Form()] = "/account/security",
    ) -> Response:
        """The password again: the security pages want it fresh as well."""
        target = safe_target(next)
        assert auth.user_id is not None and auth.session_id is not None
        try:
            checked = await accounts.check_password(
                str(auth.user_id), password, client_ip=client_ip(request)
            )
        except RateLimitedError as exc:
            answer = await step_up_again(request, auth, target, "Too many attempts.", 429)
            answer.headers["Retry-After"] = str(max(1, round(exc.retry_after)))
            return answer
        except LoginRefusedError:
            return await step_up_again(request, auth, target, "Wrong password.", 401)
        if str(checked.user_id) != str(auth.user_id):  # the login named someone else
            return await step_up_again(request, auth, target, "Wrong password.", 401)
        result = await sessions.step_up(auth.session_id, password_factor(str(auth.user_id)))
        return stepped_up(result, RedirectResponse(target, status.HTTP_303_SEE_OTHER))

    @app.post("/step-up/passkey/options", include_in_schema=False)
    async def step_up_passkey_options(auth: Auth) -> dict[str, Any]:
        """A challenge only this user's passkeys can answer."""
        assert auth.user_id is not None
        ceremony = await passkeys.authentication_options(auth.user_id)
        return {"id": ceremony.id, "options": ceremony.options}

    @app.post("/step-up/passkey", include_in_schema=False, responses=limited_form)
    async def step_up_passkey(body: CeremonyBody, auth: Auth) -> Response:
        assert auth.user_id is not None and auth.session_id is not None
        factor = await passkeys.authenticate(
            {"ceremony_id": body.ceremony_id, "response": body.response, "user_id": auth.user_id}
        )
        if not factor.success:
            return JSONResponse({"detail": "The passkey was not accepted."}, 401)
        result = await sessions.step_up(auth.session_id, factor)
        return stepped_up(result, JSONResponse({"ok": True}))

    # --- the step-up-protected pages ----------------------------------------------------

    @app.get("/account/security", response_class=HTMLResponse, include_in_schema=False)
    async def security(request: Request, auth: Auth) -> HTMLResponse:
        """Reached only with a password and a second factor from the last 5 minutes."""
        times = auth.metadata.get("amr_times") or {}
        now = time.time()
        used = [
            (FACTOR_NAMES.get(m, m), m, int(now - t))
            for m, t in sorted(times.items(), key=lambda item: -item[1])
        ]
        return page(request, "security.html", auth=auth, used=used, **(await enrolled(auth)))

    @app.post("/account/security/totp/remove", include_in_schema=False)
    async def remove_totp(auth: Auth) -> Response:
        assert auth.user_id is not None
        await totp.disable(auth.user_id)
        return RedirectResponse("/account", status.HTTP_303_SEE_OTHER)

    @app.post("/account/security/passkeys/remove", include_in_schema=False)
    async def remove_passkey(auth: Auth, credential_id: Annotated[str, Form()]) -> Response:
        assert auth.user_id is not None
        await passkeys.delete_credential(auth.user_id, credential_id)
        return RedirectResponse("/account", status.HTTP_303_SEE_OTHER)

    # --- the same requirement on the API --------------------------------------------------

    @app.get("/api/account/security", tags=["step-up"])
    async def api_security(auth: Auth) -> dict[str, Any]:
        """The factors of this login (step-up: password and a second factor, 5 minutes).

        Without them: 401 with ``error="insufficient_user_authentication"`` (RFC 9470).
        """
        return {
            "user_id": auth.user_id,
            "amr": auth.metadata.get("amr", []),
            "amr_times": auth.metadata.get("amr_times", {}),
            "auth_time": auth.metadata.get("auth_time"),
        }
