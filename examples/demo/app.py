"""The demo application: JWT API, session pages, strategies, an API-key plugin and OAuth.

``create_app(settings)`` builds everything from :class:`~demo.settings.DemoSettings`, so a
test can run the app on a temporary directory and free ports. FastSecure itself is
configured by name from ``fastsecure.toml``; this module only adds what depends on where
the app runs (database path, secrets, OAuth redirect URIs).
"""

import copy
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any, cast
from urllib.parse import quote

from fastapi import Body, Depends, FastAPI, Form, HTTPException, Request, status
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from fastapi_offline import FastAPIOffline
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException as StarletteHTTPException

from fastsecure import AuthenticationManager, AuthenticationResult, ForbiddenError, RateLimitedError
from fastsecure.config import load_toml
from fastsecure.fastapi.openapi import auth_responses
from fastsecure.fastapi.responses import is_step_up
from fastsecure.ratelimit import ClientAddress
from fastsecure_jwt import JWTAuthenticationProvider
from fastsecure_oauth import OAuth2Provider, OAuthFlow, safe_next
from fastsecure_password import (
    ConsoleMailer,
    InvalidTokenError,
    LoginRefusedError,
    MailTemplates,
    PasswordAccounts,
    PasswordAuthenticationProvider,
    PasswordRejectedError,
)
from fastsecure_password.provider import user_of
from fastsecure_session import SessionAuthenticationProvider

from . import mfa
from .settings import HERE, DemoSecrets, DemoSettings, load_secrets
from .useragent import describe as describe_user_agent
from .users import UserDirectory

OAUTH_LABELS = {"local": "the local OpenID provider", "google": "Google", "github": "GitHub"}
# What each provider of the demo's requirements reads, for the pages that explain a 401/403.
CREDENTIALS = {
    "jwt": "a bearer token (Authorization header)",
    "session": "the session cookie (log in)",
    "apikey": "an API key (X-API-Key header)",
}
LOGIN_REASONS = {
    "login_required": "Log in to see that page.",
    "session_ended": "Your session has ended (it expired, or was revoked or logged out "
    "elsewhere): log in again.",
}
OIDC_CLIENT_ID = "fastsecure-demo"


# No ``from __future__ import annotations`` here: FastAPI must see the ``Annotated`` aliases
# defined inside create_app as objects, not as strings it would resolve in module globals.

# --- configuration ----------------------------------------------------------------------


def build_config(settings: DemoSettings, secrets: DemoSecrets) -> dict[str, Any]:
    """The by-name configuration: ``fastsecure.toml`` plus what depends on this run."""
    config = copy.deepcopy(load_toml(settings.config_file))
    stores = config.setdefault("stores", {})
    if settings.redis_url:
        stores["main"] = {
            "type": "redis",
            "url": settings.redis_url,
            "prefix": settings.redis_prefix,
        }
    else:
        stores["main"]["url"] = f"sqlite+aiosqlite:///{settings.database_path}"
    providers = config.setdefault("providers", {})
    providers["jwt"]["secret_key"] = secrets.jwt_secret
    providers["session"]["cookie_secure"] = settings.secure_cookies
    base = settings.public_url.rstrip("/")
    if settings.oidc_issuer:
        providers["local"] = {
            "type": "oidc",
            "issuer": settings.oidc_issuer,
            "client_id": OIDC_CLIENT_ID,
            "client_secret": secrets.oidc_client_secret,
            "redirect_uri": f"{base}/auth/local/callback",
        }
    for name, client in (("google", settings.google), ("github", settings.github)):
        if client is not None:
            providers[name] = {
                "type": name,
                "client_id": client.client_id,
                "client_secret": client.client_secret,
                "redirect_uri": f"{base}/auth/{name}/callback",
            }
    return config


# --- request and response bodies ----------------------------------------------------------


class LoginBody(BaseModel):
    # The README's demo user, so Swagger's "Try it out" and Schemathesis' examples log in.
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"username": "alice", "password": "alice-password"}]}
    )

    username: str
    password: str


class RefreshBody(BaseModel):
    refresh_token: str


class LogoutBody(BaseModel):
    refresh_token: str | None = None


class TokenPair(BaseModel):
    access_token: str
    refresh_token: str
    token_type: str = "bearer"
    expires_at: str


def _token_responses(*codes: int) -> dict[int | str, Any]:
    """Refusals (FastSecure's, and FastAPI's 400 for a body that is not JSON) and links.

    The links lead from a token pair to what it is used for: login -> refresh -> logout,
    login -> me, so Schemathesis' stateful phase follows them.
    """
    body = {"refresh_token": "$response.body#/refresh_token"}
    links = {
        "Refresh": {"operationRef": "#/paths/~1api~1auth~1refresh/post", "requestBody": body},
        "Logout": {"operationRef": "#/paths/~1api~1auth~1logout/post", "requestBody": body},
        "Me": {"operationRef": "#/paths/~1api~1me/get"},
    }
    not_json = {**auth_responses(400)[400], "description": "The body is not valid JSON."}
    return {
        **auth_responses(*codes),
        400: not_json,
        200: {"description": "A new token pair", "links": links},
    }


def _tokens(result: AuthenticationResult) -> TokenPair:
    assert result.access_token and result.refresh_token and result.expires_at
    return TokenPair(
        access_token=result.access_token,
        refresh_token=result.refresh_token,
        expires_at=result.expires_at.isoformat(),
    )


def _who(result: AuthenticationResult) -> dict[str, Any]:
    return {"user_id": result.user_id, "provider": result.provider, "scopes": sorted(result.scopes)}


# --- the application ----------------------------------------------------------------------


def create_app(settings: DemoSettings) -> FastAPI:
    """Build the demo app; its lifespan closes FastSecure's stores and HTTP clients."""
    secrets = load_secrets(settings)
    manager = AuthenticationManager.from_config(build_config(settings, secrets))
    users = UserDirectory()
    templates = Jinja2Templates(directory=HERE / "templates")

    # Password accounts: fastsecure-password checks passwords (argon2id, rate-limited) and
    # runs registration, verification and reset; mail goes to the console and to the
    # development outbox page.
    password_provider = PasswordAuthenticationProvider(
        users.accounts, device_secret=secrets.device_secret
    )
    manager.register_provider("password", password_provider)
    mailer = ConsoleMailer()
    base_url = settings.public_url.rstrip("/")
    accounts = PasswordAccounts(
        manager,
        mailer=mailer,
        templates=MailTemplates(
            sender="FastSecure demo <no-reply@demo.invalid>",
            app_name="the FastSecure demo",
            verify_url=f"{base_url}/verify",
            reset_url=f"{base_url}/reset",
            login_url=f"{base_url}/login",
        ),
        issue_with="session",
    )
    client_address = ClientAddress()  # the socket peer: the demo runs behind no proxy
    device_cookie = "__Host-fastsecure_device" if settings.secure_cookies else "fastsecure_device"

    jwt_provider = manager.get_provider("jwt")
    session_provider = manager.get_provider("session")
    assert isinstance(jwt_provider, JWTAuthenticationProvider)
    assert isinstance(session_provider, SessionAuthenticationProvider)
    flows: dict[str, OAuthFlow] = {}
    for name in OAUTH_LABELS:
        if name in manager.get_available_providers():
            oauth = manager.get_provider(name)
            assert isinstance(oauth, OAuth2Provider)
            flows[name] = OAuthFlow(
                oauth, secret=secrets.oauth_flow_secret, cookie_secure=settings.secure_cookies
            )

    # Second factors: TOTP and passkeys, in the demo's database (see demo/mfa.py).
    factors = mfa.build_factors(settings, secrets, session_provider)
    manager.register_provider("totp", factors.totp)
    manager.register_provider("passkey", factors.passkeys)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await users.seed(password_provider.hasher)
        if factors.create_tables is not None:
            await factors.create_tables()
        try:
            yield
        finally:
            await accounts.aclose()
            await manager.aclose()

    # Swagger UI's files ship in fastapi-offline: /docs works with no CDN.
    app = FastAPIOffline(
        title="FastSecure demo",
        description="Every FastSecure capability on embedded defaults. Log in with "
        "`POST /api/auth/login`, then paste the access token into **Authorize** (jwt).",
        lifespan=lifespan,
    )
    # Store outages in our own login/refresh/logout routes answer 503, and /openapi.json
    # documents every answer FastSecure gives on each route.
    manager.install(app)
    app.state.auth_manager = manager
    app.state.settings = settings
    app.state.users = users
    app.state.accounts = accounts
    app.state.outbox = mailer

    # The form posts run the password flows, which rate-limit every attempt (429); said so
    # here, so that `fastsecure coverage` sees the limit.
    LIMITED_FORM = auth_responses(429)
    requires_auth = Depends(manager.requires_auth)
    optional_auth = Depends(manager.optional_auth)
    Auth = Annotated[AuthenticationResult, requires_auth]
    MaybeAuth = Annotated[AuthenticationResult | None, optional_auth]

    def page(request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
        auth = context.pop("auth", None)
        user = users.get(auth.user_id) if auth is not None else None
        return templates.TemplateResponse(
            request,
            name,
            {
                "auth": auth,
                "user": user,
                "display_name": _display_name(auth, user),
                "login_method": _login_method(auth),
                "oauth": [(n, OAUTH_LABELS[n]) for n in flows],
                **context,
            },
            status_code=status_code,
        )

    def presented(request: Request) -> dict[str, bool]:
        """Which credentials the request carries, by provider name (never their values)."""
        return {
            "jwt": "authorization" in request.headers,
            "session": session_provider.cookie_name in request.cookies,
            "apikey": "x-api-key" in request.headers,
        }

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        """Where pages are chosen: the API answers come from core's Decision table.

        API clients get that JSON answer unchanged. A browser that navigates to an API
        route (a link on the home page) gets the same status as a page that says what the
        route needs and which of those credentials the browser sent. A page that needs a
        login redirects to the login form, which says why.
        """
        path = request.url.path
        browser = request.method == "GET" and "text/html" in request.headers.get("accept", "")
        if path.startswith(("/api/", "/openapi")):
            requirement = manager.get_requirement(path)
            if not browser or requirement is None or exc.status_code not in (401, 403):
                return await http_exception_handler(request, exc)
            sent = presented(request)
            answer = page(
                request,
                "api_error.html",
                status_code=exc.status_code,
                status=exc.status_code,
                detail=exc.detail,
                path=path,
                strategy=requirement.strategy_name,
                scopes=sorted(requirement.scopes),
                needs=[(CREDENTIALS.get(p, p), sent.get(p, False)) for p in requirement.providers],
            )
            for name, value in (exc.headers or {}).items():
                answer.headers[name] = value
            return answer
        challenge = (exc.headers or {}).get("WWW-Authenticate", "")
        if exc.status_code == status.HTTP_401_UNAUTHORIZED and is_step_up(challenge):
            # Logged in, but this page wants fresher or more factors: the step-up page asks
            # for them and comes back (a form post comes back to the account page).
            back = path + (f"?{request.url.query}" if request.url.query else "")
            if request.method != "GET":
                back = "/account"
            return RedirectResponse(f"/step-up?next={quote(back)}", status.HTTP_303_SEE_OTHER)
        if exc.status_code == status.HTTP_401_UNAUTHORIZED and request.method == "GET":
            target = path + (f"?{request.url.query}" if request.url.query else "")
            # A presented cookie that no longer works is an ended session, not a missing one.
            reason = "session_ended" if presented(request)["session"] else "login_required"
            return RedirectResponse(
                f"/login?next={quote(target)}&reason={reason}", status.HTTP_303_SEE_OTHER
            )
        return page(
            request,
            "error.html",
            status_code=exc.status_code,
            status=exc.status_code,
            detail=exc.detail,
        )

    # --- HTML pages -------------------------------------------------------------------

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def home(request: Request, auth: MaybeAuth) -> HTMLResponse:
        return page(request, "home.html", auth=auth)

    @app.get("/login", response_class=HTMLResponse, include_in_schema=False)
    async def login_form(
        request: Request, next: str = "/account", reason: str = ""
    ) -> HTMLResponse:
        # Only our own fixed sentences: the query string is never echoed into the page.
        return page(request, "login.html", next=_next(request, next), why=LOGIN_REASONS.get(reason))

    @app.post("/login", include_in_schema=False, responses=LIMITED_FORM)
    async def login(
        request: Request,
        username: Annotated[str, Form()],
        password: Annotated[str, Form()],
        next: Annotated[str, Form()] = "/account",
    ) -> Response:
        csrf = session_provider.csrf
        if csrf is not None and csrf.mode == "origin":
            # Login CSRF: a foreign page must not log the browser into the attacker's account.
            # (The double-submit mode needs a session to bind its token to: none exists yet.)
            try:
                csrf.check(request, "")
            except ForbiddenError:
                raise HTTPException(status.HTTP_403_FORBIDDEN, "CSRF check failed") from None
        target = _next(request, next)
        response = RedirectResponse(target, status.HTTP_303_SEE_OTHER)
        try:
            checked = await accounts.check_password(
                username,
                password,
                client_ip=client_address(request),
                device=request.cookies.get(device_cookie),
            )
            user = users.remember(user_of(checked))
            issued = await _start_session(
                request,
                response,
                user.user_id,
                user.scopes,
                "password",
                user.name,
                factors=[mfa.password_factor(user.user_id)],
            )
            # A password reset that ran while this session was being made ends it too.
            await accounts.ensure_unchanged(checked, issued, issuer=session_provider.provider_name)
        except (LoginRefusedError, RateLimitedError) as refused:
            limited = isinstance(refused, RateLimitedError)
            if isinstance(refused, RateLimitedError):
                error = f"Too many attempts. Try again in {refused.retry_after:.0f} seconds."
            elif refused.unverified:
                error = "Confirm your e-mail address first: the link is in your mail."
            else:
                error = "Wrong user name or password."
            answer = page(
                request,
                "login.html",
                status_code=status.HTTP_429_TOO_MANY_REQUESTS
                if limited
                else status.HTTP_401_UNAUTHORIZED,
                next=target,
                error=error,
                username=username,
            )
            if isinstance(refused, RateLimitedError):
                answer.headers["Retry-After"] = str(max(1, round(refused.retry_after)))
            return answer
        device = accounts.device_token(username)
        if device is not None:
            response.set_cookie(
                device_cookie,
                device,
                max_age=90 * 86400,
                path="/",
                secure=settings.secure_cookies,
                httponly=True,
                samesite="strict",
            )
        return response

    # --- password accounts: register, verify, forgot, reset, the development outbox -----

    def _form_page(
        request: Request, name: str, status_code: int = 200, **context: Any
    ) -> HTMLResponse:
        answer = page(request, name, status_code=status_code, **context)
        answer.headers["Referrer-Policy"] = "no-referrer"  # links carry one-use tokens
        return answer

    def _refusal(request: Request, name: str, exc: Exception, **context: Any) -> HTMLResponse:
        """A flow's refusal as the form page again, with the status the API would answer."""
        if isinstance(exc, RateLimitedError):
            answer = _form_page(
                request,
                name,
                status.HTTP_429_TOO_MANY_REQUESTS,
                error=f"Too many attempts. Try again in {exc.retry_after:.0f} seconds.",
                **context,
            )
            answer.headers["Retry-After"] = str(max(1, round(exc.retry_after)))
            return answer
        if isinstance(exc, PasswordRejectedError):
            return _form_page(request, name, 422, error=str(exc), **context)
        if isinstance(exc, InvalidTokenError):
            return _form_page(request, name, status.HTTP_400_BAD_REQUEST, error=str(exc), **context)
        raise exc

    @app.get("/register", response_class=HTMLResponse, include_in_schema=False)
    async def register_form(request: Request) -> HTMLResponse:
        return _form_page(request, "register.html")

    @app.post("/register", include_in_schema=False, responses=LIMITED_FORM)
    async def register(
        request: Request, email: Annotated[str, Form()], password: Annotated[str, Form()]
    ) -> Response:
        try:
            await accounts.register(email, password, client_ip=client_address(request))
        except (RateLimitedError, PasswordRejectedError) as exc:
            return _refusal(request, "register.html", exc, email=email)
        return _form_page(request, "sent.html", status.HTTP_202_ACCEPTED, what="registration")

    @app.get("/verify", response_class=HTMLResponse, include_in_schema=False)
    async def verify_form(request: Request, token: str = "") -> HTMLResponse:
        # A GET never uses the token up: mail scanners open links too.
        return _form_page(request, "verify.html", token=token)

    @app.post("/verify", include_in_schema=False, responses=LIMITED_FORM)
    async def verify(request: Request, token: Annotated[str, Form()]) -> Response:
        try:
            await accounts.verify_email(token, client_ip=client_address(request))
        except (RateLimitedError, InvalidTokenError) as exc:
            return _refusal(request, "verify.html", exc, token="")
        return RedirectResponse("/login?verified=1", status.HTTP_303_SEE_OTHER)

    @app.get("/forgot", response_class=HTMLResponse, include_in_schema=False)
    async def forgot_form(request: Request) -> HTMLResponse:
        return _form_page(request, "forgot.html")

    @app.post("/forgot", include_in_schema=False, responses=LIMITED_FORM)
    async def forgot(request: Request, email: Annotated[str, Form()]) -> Response:
        try:
            await accounts.forgot_password(email, client_ip=client_address(request))
        except RateLimitedError as exc:
            return _refusal(request, "forgot.html", exc, email=email)
        return _form_page(request, "sent.html", status.HTTP_202_ACCEPTED, what="reset")

    @app.get("/reset", response_class=HTMLResponse, include_in_schema=False)
    async def reset_form(request: Request, token: str = "") -> HTMLResponse:
        return _form_page(request, "reset.html", token=token)

    @app.post("/reset", include_in_schema=False, responses=LIMITED_FORM)
    async def reset(
        request: Request, token: Annotated[str, Form()], password: Annotated[str, Form()]
    ) -> Response:
        try:
            await accounts.reset_password(token, password, client_ip=client_address(request))
        except (RateLimitedError, InvalidTokenError, PasswordRejectedError) as exc:
            return _refusal(request, "reset.html", exc, token=token)
        return _logged_out("/login?reset=1")  # every session ended, this browser's too

    @app.get("/dev/outbox", response_class=HTMLResponse, include_in_schema=False)
    async def outbox(request: Request) -> HTMLResponse:
        """The mail the demo sent (development only: a real app sends it with SMTPMailer)."""
        await accounts.flush()
        messages = [
            {
                "to": m["To"],
                "subject": m["Subject"],
                "body": m.get_body(("plain",)).get_content() if m.get_body(("plain",)) else "",
            }
            for m in reversed(mailer.messages)
        ]
        return _form_page(request, "outbox.html", messages=messages)

    async def _start_session(
        request: Request,
        response: Response,
        user_id: str,
        scopes: list[str],
        method: str,
        name: str,
        factors: list[AuthenticationResult] | None = None,
    ) -> AuthenticationResult:
        """A fresh session id on every login; the id the browser held before is revoked.

        Never re-using a presented id is what defeats session fixation. ``factors`` are
        the checks that proved the login (the password's), recorded for step-up.
        """
        previous = request.cookies.get(session_provider.cookie_name)
        if previous:
            await session_provider.revoke_authentication({"session_id": previous})
        result = await session_provider.authenticate(
            {
                "user_id": user_id,
                "scopes": scopes,
                "ip_address": request.client.host if request.client else None,
                "user_agent": request.headers.get("user-agent"),
                "metadata": {"login_method": method, "display_name": name},
                "factors": factors or [],
            }
        )
        if not result.success:
            raise HTTPException(status.HTTP_403_FORBIDDEN, str(result.metadata.get("error")))
        session_provider.set_cookie(response, result)
        return result

    @app.get("/account", response_class=HTMLResponse, include_in_schema=False)
    async def account(request: Request, auth: Auth) -> HTMLResponse:
        assert auth.user_id is not None
        return page(
            request,
            "account.html",
            auth=auth,
            passkeys_here=request.url.hostname == settings.passkey_rp_id,
            passkey_origin=settings.passkey_origin,
            **(await factors.summary(auth.user_id)),
        )

    @app.get("/sessions", response_class=HTMLResponse, include_in_schema=False)
    async def sessions(request: Request, auth: Auth) -> HTMLResponse:
        assert auth.user_id is not None
        listed = await session_provider.list_sessions(auth.user_id, auth.session_id)
        rows = [(info, describe_user_agent(info.user_agent)) for info in listed]
        return page(request, "sessions.html", auth=auth, sessions=rows)

    @app.post("/sessions/revoke", include_in_schema=False)
    async def revoke_session(
        request: Request, auth: Auth, session_key: Annotated[str, Form()]
    ) -> Response:
        assert auth.user_id is not None and auth.session_id is not None
        await session_provider.revoke_session(auth.user_id, session_key)
        if await session_provider.validate_authentication({"session_id": auth.session_id}):
            return RedirectResponse("/sessions", status.HTTP_303_SEE_OTHER)
        return _logged_out("/login")  # the user revoked the session they were using

    @app.post("/sessions/revoke-all", include_in_schema=False)
    async def revoke_all(auth: Auth) -> Response:
        assert auth.user_id is not None
        await session_provider.revoke_user_sessions(auth.user_id)
        return _logged_out("/login")

    @app.post("/sessions/rotate", include_in_schema=False)
    async def rotate(auth: Auth) -> Response:
        assert auth.session_id is not None
        result = await session_provider.rotate_session(auth.session_id)
        if not result.success:
            return _logged_out("/login")
        response = RedirectResponse("/sessions", status.HTTP_303_SEE_OTHER)
        session_provider.set_cookie(response, result)
        return response

    @app.post("/logout", include_in_schema=False)
    async def logout(auth: Auth) -> Response:
        await session_provider.revoke_authentication({"session_id": auth.session_id})
        return _logged_out("/")

    def _logged_out(target: str) -> Response:
        response = RedirectResponse(target, status.HTTP_303_SEE_OTHER)
        session_provider.clear_cookie(response)
        return response

    def _next(request: Request, target: str | None) -> str:
        try:
            return safe_next(target, own_origins=[settings.public_url], default="/account")
        except ValueError:
            return "/account"

    # --- second factors: enrolment, step-up, the step-up-protected pages -----------------

    mfa.add_routes(
        app,
        manager=manager,
        factors=factors,
        sessions=session_provider,
        accounts=accounts,
        settings=settings,
        page=page,
        client_ip=client_address,
    )

    # --- OAuth sign-in ------------------------------------------------------------------

    def _flow(name: str) -> OAuthFlow:
        flow = flows.get(name)
        if flow is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"No sign-in with {name!r} here")
        return flow

    @app.get("/auth/{name}/login", include_in_schema=False)
    async def oauth_login(request: Request, name: str, next: str = "/account") -> Response:
        return await _flow(name).login_redirect(request, next=_next(request, next))

    @app.get("/auth/{name}/callback", include_in_schema=False)
    async def oauth_callback(request: Request, name: str) -> Response:
        async def issue(user_id: Any, oauth: AuthenticationResult, response: Response) -> None:
            info = oauth.metadata.get("user_info") or {}
            display = str(info.get("name") or info.get("email") or user_id)
            await _start_session(request, response, str(user_id), ["user"], name, display)

        return await _flow(name).complete_login(request, accounts=users, issue=issue)

    # --- the JWT API --------------------------------------------------------------------

    # 401 wrong password, 429 rate limit (Retry-After), 503 token store down (install()).
    @app.post("/api/auth/login", tags=["jwt"], responses=_token_responses(401, 429, 503))
    async def api_login(body: LoginBody, request: Request) -> TokenPair:
        """Exchange a user name and password for an access and a refresh token."""
        try:
            checked = await accounts.check_password(
                body.username, body.password, client_ip=client_address(request)
            )
            user = users.remember(user_of(checked))
            result = await jwt_provider.authenticate(
                {"user_id": user.user_id, "scopes": user.scopes, "metadata": {"name": user.name}}
            )
            # A password reset that ran while the tokens were being made ends them too.
            await accounts.ensure_unchanged(checked, result, issuer=jwt_provider.provider_name)
        except RateLimitedError as exc:
            raise HTTPException(
                status.HTTP_429_TOO_MANY_REQUESTS,
                "Too many attempts",
                headers={"Retry-After": str(max(1, round(exc.retry_after)))},
            ) from None
        except LoginRefusedError:
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                "Wrong user name or password",
                headers={"WWW-Authenticate": "Bearer"},
            ) from None
        return _tokens(result)

    @app.post("/api/auth/refresh", tags=["jwt"], responses=_token_responses(401, 503))
    async def api_refresh(body: RefreshBody) -> TokenPair:
        """A new token pair for a refresh token; each refresh token works once."""
        result = await manager.refresh_authentication("jwt", {"refresh_token": body.refresh_token})
        if not result.success:
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                str(result.metadata.get("error", "Invalid refresh token")),
                headers={"WWW-Authenticate": "Bearer"},
            )
        return _tokens(result)

    @app.post("/api/auth/logout", tags=["jwt"])
    async def api_logout(
        request: Request, auth: Auth, body: Annotated[LogoutBody | None, Body()] = None
    ) -> dict[str, bool]:
        """Revoke the bearer token used for this call and, when given, its refresh token."""
        presented = await jwt_provider.extract_credentials(request) or {}
        data = {"access_token": presented.get("access_token")}
        if body is not None and body.refresh_token:
            data["refresh_token"] = body.refresh_token
        return {"revoked": await manager.revoke_authentication("jwt", data)}

    # --- strategies ---------------------------------------------------------------------

    @app.get("/api/me", tags=["strategies"])
    async def me(auth: Auth) -> dict[str, Any]:
        """ANY: a bearer token or the session cookie."""
        user = users.get(auth.user_id)
        return {**_who(auth), "name": user.name if user else None}

    @app.get("/api/public", tags=["strategies"])
    async def public(auth: MaybeAuth) -> dict[str, Any]:
        """Optional authentication: everyone gets an answer, logged-in users a personal one."""
        if auth is None:
            return {"authenticated": False, "message": "Hello, stranger"}
        return {"authenticated": True, "message": f"Hello, {auth.user_id}", **_who(auth)}

    @app.get("/api/admin/stats", tags=["strategies"])
    async def admin_stats(auth: Auth) -> dict[str, Any]:
        """ALL: a bearer token AND the session cookie of the same user, with scope admin."""
        assert auth.user_id is not None
        live = await session_provider.list_sessions(auth.user_id)
        return {**_who(auth), "providers": auth.metadata.get("providers"), "sessions": len(live)}

    # --- the API-key plugin -------------------------------------------------------------

    @app.get("/api/service/reports", tags=["apikey"])
    async def service_reports(auth: Auth) -> dict[str, Any]:
        """For service clients: the key in ``X-API-Key`` (the fastsecure-apikey plugin)."""
        return {**_who(auth), "reports": ["daily-logins", "active-sessions"]}

    return app


def _display_name(auth: AuthenticationResult | None, user: Any) -> str | None:
    if auth is None:
        return None
    name = auth.metadata.get("display_name")
    if isinstance(name, str) and name:
        return name
    return cast(str, user.name) if user is not None else str(auth.user_id)


def _login_method(auth: AuthenticationResult | None) -> str | None:
    if auth is None:
        return None
    method = auth.metadata.get("login_method")
    if method == "password":
        return "password"
    if isinstance(method, str):
        return f"OAuth: {OAUTH_LABELS.get(method, method)}"
    return None
