"""The browser side of the authorization code flow, done safely for FastAPI apps.

:class:`OAuthFlow` builds the authorization request (a random ``state``, a PKCE S256
verifier and challenge, an OIDC ``nonce``), keeps them in a short-lived cookie signed with
HMAC-SHA256, and checks them at the callback. :meth:`OAuthFlow.complete_login` then turns
the provider's user into the app's own user (account linking by provider and subject) and
the app's own session or JWT, and redirects to a ``next`` URL that can only point back
into the app.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

from fastapi.responses import RedirectResponse
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from fastsecure import AmbiguousCredentialsError, AuthenticationResult
from fastsecure.credentials import single_cookie
from fastsecure.results import UserId

from .exceptions import (
    OAuthConfigurationError,
    OAuthError,
    OAuthFlowError,
    OAuthFlowUnavailableError,
)
from .provider import OAuth2Provider

if TYPE_CHECKING:
    from fastsecure import AuthenticationManager

logger = logging.getLogger("fastsecure.oauth")

COOKIE_PREFIX = "fastsecure_oauth_"
MIN_SECRET_BYTES = 32
MAX_COOKIE_BYTES = 3800  # browsers keep cookies up to 4096 bytes, attributes included
_KEY_LABEL = b"fastsecure-oauth flow cookie v1"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def pkce_pair() -> tuple[str, str]:
    """A PKCE verifier (86 characters, RFC 7636 4.1) and its S256 challenge."""
    verifier = secrets.token_urlsafe(64)
    return verifier, _b64(hashlib.sha256(verifier.encode("ascii")).digest())


def safe_next(target: str | None, *, own_origins: Iterable[str] = (), default: str = "/") -> str:
    r"""``target`` as a path inside the app, or raise: the open-redirect guard.

    Accepted: a relative path starting with a single ``/``, or an absolute URL whose
    origin is one of ``own_origins`` (it is reduced to its path). Refused: other origins,
    scheme-relative ``//host``, backslashes (browsers read ``/\host`` as ``//host``),
    control characters and whitespace (browsers strip tabs and newlines), any scheme.

    Raises:
        ValueError: the target could lead outside the app.
    """
    if not target:
        return default
    if any(ch in target for ch in "\\") or any(ord(ch) < 0x21 or ord(ch) == 0x7F for ch in target):
        raise ValueError("next contains characters a browser may reinterpret")
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        origin = f"{parts.scheme.lower()}://{parts.netloc.lower()}"
        if parts.scheme.lower() not in ("http", "https") or origin not in {
            o.lower().rstrip("/") for o in own_origins
        }:
            raise ValueError("next points to another origin")
        target = parts.path or "/"
        if parts.query:
            target += "?" + parts.query
        if parts.fragment:
            target += "#" + parts.fragment
        parts = urlsplit(target)
    if not target.startswith("/") or target.startswith("//"):
        raise ValueError("next must be a path inside this application")
    return target


class AccountStore(Protocol):
    """What :meth:`OAuthFlow.complete_login` needs from the app to link OAuth identities.

    An identity is ``(provider, subject)``: the provider's registered name and its stable
    user id (``user_info["id"]``). Emails are never the key: they change hands.
    """

    async def get_user_by_identity(self, provider: str, subject: str) -> UserId | None:
        """The app user already linked to this identity, or None."""

    async def get_user_by_email(self, email: str) -> UserId | None:
        """The app user with this email; asked only when linking by verified email is on."""

    async def link_identity(
        self, user_id: UserId, provider: str, subject: str, user_info: Mapping[str, Any]
    ) -> None:
        """Record that ``(provider, subject)`` now logs in as ``user_id``."""

    async def create_user(self, provider: str, user_info: Mapping[str, Any]) -> UserId | None:
        """Create an app user for a first-time login; None refuses sign-up (answered 403)."""


@dataclass
class MemoryAccountStore:
    """An in-process :class:`AccountStore` for tests, demos and prototypes.

    Users get integer ids; ``users`` maps them to the user info they signed up with.
    """

    identities: dict[tuple[str, str], UserId] = field(default_factory=dict)
    users: dict[UserId, dict[str, Any]] = field(default_factory=dict)
    allow_signup: bool = True

    async def get_user_by_identity(self, provider: str, subject: str) -> UserId | None:
        """See :class:`AccountStore`."""
        return self.identities.get((provider, subject))

    async def get_user_by_email(self, email: str) -> UserId | None:
        """See :class:`AccountStore`; emails compare case-insensitively."""
        wanted = email.lower()
        return next(
            (
                uid
                for uid, info in self.users.items()
                if str(info.get("email", "")).lower() == wanted
            ),
            None,
        )

    async def link_identity(
        self, user_id: UserId, provider: str, subject: str, user_info: Mapping[str, Any]
    ) -> None:
        """See :class:`AccountStore`."""
        self.identities[(provider, subject)] = user_id

    async def create_user(self, provider: str, user_info: Mapping[str, Any]) -> UserId | None:
        """See :class:`AccountStore`."""
        if not self.allow_signup:
            return None
        user_id = len(self.users) + 1
        while user_id in self.users:  # ids given by hand need not be contiguous
            user_id += 1
        self.users[user_id] = {"email": user_info.get("email"), "name": user_info.get("name")}
        return user_id


async def resolve_account(
    accounts: AccountStore,
    provider: str,
    user_info: Mapping[str, Any],
    *,
    link_by_verified_email: bool = False,
) -> UserId | None:
    """The app user for an OAuth login: by identity, else (opt-in) by verified email, else new.

    An email links an identity to an existing user only when ``link_by_verified_email`` is
    on and the provider says the email is verified: otherwise anyone who can create a
    provider account with a victim's address would take over the victim's account.
    """
    subject = str(user_info["id"])
    user_id = await accounts.get_user_by_identity(provider, subject)
    if user_id is not None:
        return user_id
    email = user_info.get("email")
    if (
        link_by_verified_email
        and user_info.get("email_verified") is True
        and isinstance(email, str)
        and email
    ):
        user_id = await accounts.get_user_by_email(email)
    if user_id is None:
        user_id = await accounts.create_user(provider, user_info)
        if user_id is None:
            return None
    await accounts.link_identity(user_id, provider, subject, user_info)
    return user_id


IssueLogin = Callable[[UserId, AuthenticationResult, Response], Awaitable[None]]
"""``issue(app_user_id, oauth_result, response)``: put the app's own credential on ``response``."""


def issue_with_provider(
    manager: AuthenticationManager,
    provider_name: str,
    *,
    cookie_name: str,
    credential: str = "session_id",
    secure: bool = True,
    max_age: int | None = None,
    path: str = "/",
) -> IssueLogin:
    """An :data:`IssueLogin` that logs the user in with one of the app's own providers.

    The provider registered as ``provider_name`` (a session or JWT provider) issues
    credentials for the app user, and ``result.<credential>`` (``session_id`` or
    ``access_token``) is set as an HttpOnly, SameSite=Lax cookie named ``cookie_name``.
    The OAuth provider and subject travel in the login metadata.
    """

    async def issue(user_id: UserId, oauth: AuthenticationResult, response: Response) -> None:
        user_info = oauth.metadata.get("user_info") or {}
        login = {
            "user_id": user_id,
            "metadata": {"oauth_provider": oauth.provider, "oauth_subject": user_info.get("id")},
        }
        result = await manager.get_provider(provider_name).authenticate(login)
        value = getattr(result, credential, None) if result.success else None
        if not isinstance(value, str) or not value:
            raise OAuthFlowError(
                401, "Login succeeded but no session could be started", provider=oauth.provider
            )
        response.set_cookie(
            cookie_name,
            value,
            max_age=max_age,
            path=path,
            secure=secure,
            httponly=True,
            samesite="lax",
        )

    return issue


class OAuthFlow:
    """The authorization code flow with state, PKCE and nonce, for one provider.

    ``login_redirect`` sends the browser to the provider; ``callback`` checks what comes
    back and returns the provider's :class:`~fastsecure.AuthenticationResult`;
    ``complete_login`` goes further and logs the user into the app.

    Args:
        provider: the OAuth provider (its ``redirect_uri`` must be the callback route).
        secret: at least 32 bytes, kept secret: signs the flow cookie.
        max_age: seconds a login may take between redirect and callback.
        cookie_secure: the cookie's ``Secure`` flag; turn off only for local ``http://``.
        cookie_name: defaults to ``__Host-fastsecure_oauth_<provider name>`` (without the
            ``__Host-`` prefix when ``cookie_secure`` is off or the path is not ``/``).
        cookie_path: where the browser sends the cookie back.
        default_next: where to go after login when no ``next`` was given.
        allowed_origins: absolute ``next`` URLs may point here (plus the request's origin),
            e.g. the public origin when the app runs behind a proxy.
    """

    def __init__(
        self,
        provider: OAuth2Provider,
        *,
        secret: str | bytes,
        max_age: int = 600,
        cookie_secure: bool = True,
        cookie_name: str | None = None,
        cookie_path: str = "/",
        default_next: str = "/",
        allowed_origins: Iterable[str] = (),
    ) -> None:
        raw = secret.encode() if isinstance(secret, str) else bytes(secret)
        if len(raw) < MIN_SECRET_BYTES:
            raise OAuthConfigurationError(
                f"the flow secret must be at least {MIN_SECRET_BYTES} bytes"
            )
        self.provider = provider
        self._key = hmac.new(raw, _KEY_LABEL, hashlib.sha256).digest()
        self.max_age = max_age
        self.cookie_secure = cookie_secure
        self._cookie_name = cookie_name
        self.cookie_path = cookie_path
        self.allowed_origins = tuple(o.rstrip("/") for o in allowed_origins)
        self.default_next = safe_next(default_next)

    @property
    def cookie_name(self) -> str:
        """The flow cookie's name (per provider, so two logins can run side by side).

        With ``Secure`` and ``Path=/`` the default carries the ``__Host-`` prefix, which
        browsers only accept from this exact host over https: a sibling subdomain cannot
        plant a login state of its own (cookie tossing).
        """
        if self._cookie_name:
            return self._cookie_name
        host_only = "__Host-" if self.cookie_secure and self.cookie_path == "/" else ""
        return host_only + COOKIE_PREFIX + self.provider.provider_name

    # --- the signed cookie ------------------------------------------------------------

    def _sign(self, payload: str) -> str:
        return _b64(hmac.new(self._key, payload.encode("ascii"), hashlib.sha256).digest())

    def _dump(self, data: Mapping[str, Any]) -> str:
        payload = _b64(json.dumps(data, separators=(",", ":")).encode())
        return f"{payload}.{self._sign(payload)}"

    def _load(self, value: str) -> dict[str, Any]:
        payload, _, signature = value.partition(".")
        # Starlette decodes cookies as Latin-1: anything beyond ASCII is not ours.
        if (
            not payload
            or not value.isascii()
            or not hmac.compare_digest(signature.encode(), self._sign(payload).encode())
        ):
            raise self._error(400, "The login state cookie is invalid; start the login again")
        try:
            data = json.loads(_unb64(payload))
        except ValueError:
            raise self._error(
                400, "The login state cookie is invalid; start the login again"
            ) from None
        if (
            not isinstance(data, dict)
            or not isinstance(data.get("e"), int)
            or data["e"] < time.time()
        ):
            raise self._error(400, "The login took too long; start it again")
        if data.get("p") != self.provider.provider_name:
            raise self._error(400, "The login state belongs to another provider")
        return data

    def clear_cookie(self, response: Response) -> None:
        """Delete the flow cookie (it is single-use)."""
        response.delete_cookie(
            self.cookie_name,
            path=self.cookie_path,
            secure=self.cookie_secure,
            httponly=True,
            samesite="lax",
        )

    def _error(self, status_code: int, detail: str) -> OAuthFlowError:
        return OAuthFlowError(status_code, detail, provider=self.provider.provider_name)

    def _origins(self, request: Request) -> tuple[str, ...]:
        own = f"{request.url.scheme}://{request.url.netloc}"
        return (own, *self.allowed_origins)

    def safe_next(self, request: Request, target: str | None) -> str:
        """``target`` reduced to a path inside the app; raises 400 for anything else."""
        try:
            return safe_next(target, own_origins=self._origins(request), default=self.default_next)
        except ValueError as exc:
            raise self._error(400, f"Invalid next URL: {exc}") from None

    # --- the two legs -----------------------------------------------------------------

    async def login_redirect(self, request: Request, next: str | None = None) -> RedirectResponse:
        """Redirect to the provider's login page, remembering state, verifier and nonce.

        Raises:
            OAuthFlowError: 400 for an unsafe ``next`` (or one too long to keep); 503 when
                an OIDC issuer's metadata cannot be fetched.
        """
        target = self.safe_next(request, next)
        try:
            await self.provider.discover()
        except OAuthError as exc:
            raise self._error(503, f"The identity provider is unavailable: {exc}") from None
        state = secrets.token_urlsafe(32)
        verifier, challenge = pkce_pair()
        nonce = secrets.token_urlsafe(32) if self.provider.uses_nonce else None
        url = self.provider.get_authorization_url(
            state=state, code_challenge=challenge, nonce=nonce
        )
        cookie = self._dump(
            {
                "p": self.provider.provider_name,
                "s": state,
                "c": verifier,
                "n": nonce,
                "x": target,
                "e": int(time.time()) + self.max_age,
            }
        )
        if len(self.cookie_name) + len(cookie) > MAX_COOKIE_BYTES:
            # A browser would drop the cookie and the callback fail as "no login in progress".
            raise self._error(400, "Invalid next URL: too long")
        response = RedirectResponse(url, status_code=302)
        response.headers["Cache-Control"] = "no-store"
        response.set_cookie(
            self.cookie_name,
            cookie,
            max_age=self.max_age,
            path=self.cookie_path,
            secure=self.cookie_secure,
            httponly=True,
            samesite="lax",
        )
        return response

    async def callback(
        self, request: Request, response: Response | None = None
    ) -> AuthenticationResult:
        """Check the provider's redirect and exchange its code; the login's result.

        ``result.metadata["next"]`` holds the validated ``next`` path. Pass the endpoint's
        ``response`` to have the single-use flow cookie deleted on it.

        Raises:
            OAuthFlowError: 400 when the state is missing, mismatched, expired or its cookie
                absent, forged or sent twice; 401 when the provider refused the login or the
                exchange failed (bad, replayed or PKCE-mismatched code, ID token rejected).
        """
        if response is not None:
            self.clear_cookie(response)
        query = request.query_params
        for name in ("state", "code", "error"):
            if len(query.getlist(name)) > 1:
                raise self._error(400, f"Repeated {name} parameter")
        try:
            cookie = single_cookie(request, self.cookie_name)
        except AmbiguousCredentialsError:
            # Two login states: a sibling subdomain may have tossed in its own.
            raise self._error(
                400, "The login state cookie is sent twice; start the login again"
            ) from None
        if not cookie:
            raise self._error(
                400, "No login in progress (state cookie missing or expired); start the login again"
            )
        saved = self._load(cookie)
        state = query.get("state")
        if not state:
            raise self._error(400, "The provider's answer carries no state")
        if not hmac.compare_digest(state.encode(), str(saved.get("s")).encode()):
            raise self._error(
                400, "State mismatch: this answer is not for the login this browser started"
            )
        error = query.get("error")
        if error:
            code = "".join(ch for ch in error if ch.isalnum() or ch == "_")[:64]
            raise self._error(401, f"The identity provider refused the login ({code})")
        auth_code = query.get("code")
        if not auth_code:
            raise self._error(400, "The provider's answer carries no authorization code")
        result = await self.provider.authenticate(
            {
                "code": auth_code,
                "code_verifier": saved.get("c"),
                "nonce": saved.get("n"),
                "redirect_uri": self.provider.redirect_uri,
            }
        )
        if not result.success:
            raise self._error(401, f"Login failed: {result.metadata.get('error', 'unknown error')}")
        result.metadata["next"] = saved.get("x") or self.default_next
        return result

    async def complete_login(
        self,
        request: Request,
        *,
        accounts: AccountStore,
        issue: IssueLogin,
        link_by_verified_email: bool = False,
    ) -> RedirectResponse:
        """The callback route in one call: check, link the account, log in, redirect.

        Args:
            request: the callback request.
            accounts: resolves ``(provider, subject)`` to the app's user
                (see :func:`resolve_account`).
            issue: puts the app's own session cookie or JWT on the redirect
                (see :func:`issue_with_provider`).
            link_by_verified_email: let a first login attach to the existing user with the
                same, provider-verified email. Off by default.

        Raises:
            OAuthFlowError: as :meth:`callback`; 403 when ``accounts`` refuses sign-up.
            OAuthFlowUnavailableError: ``accounts`` or ``issue`` failed with
                :class:`~fastsecure.StoreUnavailableError` or any other error that is not an
                HTTP answer (a raw driver error): 503 with ``Retry-After``, and itself a
                ``StoreUnavailableError``, never a 500.
        """
        result = await self.callback(request)
        user_info = result.metadata["user_info"]
        try:
            user_id = await resolve_account(
                accounts,
                self.provider.provider_name,
                user_info,
                link_by_verified_email=link_by_verified_email,
            )
            if user_id is None:
                raise self._error(403, "No account for this login, and sign-up is closed")
            response = RedirectResponse(result.metadata["next"], status_code=303)
            response.headers["Cache-Control"] = "no-store"
            self.clear_cookie(response)
            await issue(user_id, result, response)
        except HTTPException:
            raise  # an answer already (403 above, or one the app's ``issue`` chose)
        except Exception as exc:
            # A store outage, or a raw driver error from the app's account store: never a
            # 500 and never a half-finished login. The type only: driver text can quote data.
            logger.warning(
                "fastsecure-oauth: %s: login could not be completed: %s.%s",
                self.provider.provider_name,
                type(exc).__module__,
                type(exc).__qualname__,
            )
            raise OAuthFlowUnavailableError(
                "The login cannot be completed right now; try again later",
                provider=self.provider.provider_name,
            ) from exc
        return response


__all__ = [
    "AccountStore",
    "IssueLogin",
    "MemoryAccountStore",
    "OAuthFlow",
    "issue_with_provider",
    "pkce_pair",
    "resolve_account",
    "safe_next",
]
