"""Setting and clearing the session cookie with secure defaults."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from starlette.responses import Response

from fastsecure import AuthenticationResult
from fastsecure.stores import as_utc, utcnow

from .csrf import csrf_token

SameSite = Literal["lax", "strict", "none"]


def _max_age(expires_at: datetime | None) -> int | None:
    if expires_at is None:
        return None
    return max(0, int((as_utc(expires_at) - utcnow()).total_seconds()))


def set_session_cookie(
    response: Response,
    result: AuthenticationResult,
    *,
    cookie_name: str = "session_id",
    secure: bool = True,
    samesite: SameSite = "lax",
    domain: str | None = None,
    path: str = "/",
    csrf_cookie_name: str | None = None,
) -> None:
    """Put a login result's session id in an HttpOnly cookie that expires with the session.

    Defaults: HttpOnly, Secure, SameSite=Lax, Path=/, Max-Age (and Expires) matching the
    session's absolute expiry. Pass ``secure=False`` only for local http development:
    browsers do not send Secure cookies over plain http (except to localhost).

    Args:
        response: the response to add ``Set-Cookie`` to.
        result: a successful login result carrying ``session_id``.
        cookie_name: the cookie's name; the provider reads the same name.
        secure: send the cookie over https only.
        samesite: ``"lax"`` (default), ``"strict"`` or ``"none"`` (needs ``secure``).
        domain: share the cookie with subdomains (default: this host only).
        path: the cookie's path.
        csrf_cookie_name: also set the double-submit CSRF token in this cookie, readable by
            the page's JavaScript, which sends it back in a header.

    Raises:
        ValueError: the result carries no session id, or SameSite=None without Secure.
    """
    if not result.success or not result.session_id:
        raise ValueError("set_session_cookie needs a successful result with a session_id")
    if samesite == "none" and not secure:
        raise ValueError("SameSite=None cookies must be Secure")
    max_age = _max_age(result.expires_at)
    response.set_cookie(
        cookie_name,
        result.session_id,
        max_age=max_age,
        expires=max_age,
        path=path,
        domain=domain,
        secure=secure,
        httponly=True,
        samesite=samesite,
    )
    if csrf_cookie_name:
        response.set_cookie(
            csrf_cookie_name,
            csrf_token(result.session_id),
            max_age=max_age,
            expires=max_age,
            path=path,
            domain=domain,
            secure=secure,
            httponly=False,  # the page must read it to echo it in a header
            samesite=samesite,
        )


def clear_session_cookie(
    response: Response,
    *,
    cookie_name: str = "session_id",
    secure: bool = True,
    samesite: SameSite = "lax",
    domain: str | None = None,
    path: str = "/",
    csrf_cookie_name: str | None = None,
) -> None:
    """Expire the session cookie (and the CSRF cookie when named) in the browser.

    Use the same ``domain`` and ``path`` as when setting it, or the browser keeps it.
    Clearing the cookie does not end the session: revoke it on the provider too.
    """
    response.delete_cookie(
        cookie_name, path=path, domain=domain, secure=secure, httponly=True, samesite=samesite
    )
    if csrf_cookie_name:
        response.delete_cookie(
            csrf_cookie_name, path=path, domain=domain, secure=secure, samesite=samesite
        )
