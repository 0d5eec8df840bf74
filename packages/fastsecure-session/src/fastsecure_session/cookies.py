"""Setting and clearing the session cookie with secure defaults."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from starlette.responses import Response

from fastsecure import AuthenticationResult
from fastsecure.stores import as_utc, utcnow

from .csrf import csrf_token

SameSite = Literal["lax", "strict", "none"]
BASE_COOKIE_NAME = "session_id"


def default_cookie_name(*, secure: bool, path: str = "/", domain: str | None = None) -> str:
    """The session cookie's name when the app names none: as strong a prefix as fits.

    ``__Host-session_id`` for a Secure cookie on ``Path=/`` without ``Domain``: browsers
    accept it only from this very host over https, so a sibling subdomain or a plain-http
    page cannot plant or overwrite it (cookie tossing). ``__Secure-session_id`` when a
    ``Domain`` or another path rules ``__Host-`` out; plain ``session_id`` without Secure
    (local http development), where browsers would refuse either prefix.
    """
    if not secure:
        return BASE_COOKIE_NAME
    if path == "/" and domain is None:
        return "__Host-" + BASE_COOKIE_NAME
    return "__Secure-" + BASE_COOKIE_NAME


def check_cookie_name(
    name: str, *, secure: bool, path: str = "/", domain: str | None = None
) -> None:
    """Refuse a prefixed name whose attributes browsers would reject (the cookie never set).

    Raises:
        ValueError: ``__Secure-`` without Secure, or ``__Host-`` without Secure, with a
            ``Domain`` or on a path other than ``/`` (RFC 6265bis section 4.1.3).
    """
    lowered = name.lower()
    if lowered.startswith("__host-") and not (secure and path == "/" and domain is None):
        raise ValueError("a __Host- cookie must be Secure, on Path=/ and without Domain")
    if lowered.startswith("__secure-") and not secure:
        raise ValueError("a __Secure- cookie must be Secure")


def _max_age(expires_at: datetime | None) -> int | None:
    if expires_at is None:
        return None
    return max(0, int((as_utc(expires_at) - utcnow()).total_seconds()))


def set_session_cookie(
    response: Response,
    result: AuthenticationResult,
    *,
    cookie_name: str | None = None,
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
        cookie_name: the cookie's name; the provider reads the same name. Default:
            :func:`default_cookie_name` (``__Host-session_id`` with the defaults).
        secure: send the cookie over https only.
        samesite: ``"lax"`` (default), ``"strict"`` or ``"none"`` (needs ``secure``).
        domain: share the cookie with subdomains (default: this host only).
        path: the cookie's path.
        csrf_cookie_name: also set the double-submit CSRF token in this cookie, readable by
            the page's JavaScript, which sends it back in a header.

    Raises:
        ValueError: the result carries no session id, SameSite=None without Secure, or a
            ``__Host-``/``__Secure-`` name with attributes browsers would refuse.
    """
    if not result.success or not result.session_id:
        raise ValueError("set_session_cookie needs a successful result with a session_id")
    if samesite == "none" and not secure:
        raise ValueError("SameSite=None cookies must be Secure")
    if cookie_name is None:
        cookie_name = default_cookie_name(secure=secure, path=path, domain=domain)
    check_cookie_name(cookie_name, secure=secure, path=path, domain=domain)
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
    cookie_name: str | None = None,
    secure: bool = True,
    samesite: SameSite = "lax",
    domain: str | None = None,
    path: str = "/",
    csrf_cookie_name: str | None = None,
) -> None:
    """Expire the session cookie (and the CSRF cookie when named) in the browser.

    Use the same ``cookie_name``, ``secure``, ``domain`` and ``path`` as when setting it
    (the default name depends on them), or the browser keeps it. Clearing the cookie
    does not end the session: revoke it on the provider too.
    """
    if cookie_name is None:
        cookie_name = default_cookie_name(secure=secure, path=path, domain=domain)
    response.delete_cookie(
        cookie_name, path=path, domain=domain, secure=secure, httponly=True, samesite=samesite
    )
    if csrf_cookie_name:
        response.delete_cookie(
            csrf_cookie_name, path=path, domain=domain, secure=secure, samesite=samesite
        )
