"""Reading credentials from a request so that nobody upstream could read them differently.

Every provider reads its header or cookie through these functions. A credential sent twice
(two ``Authorization`` headers, one header with two credentials, two cookies of the same
name in one or several ``Cookie`` headers) raises :class:`AmbiguousCredentialsError`, which
the engine answers with 400: a proxy, a WAF and the app must never disagree on who is
calling, and a sibling subdomain must not be able to add a cookie that wins.
"""

from __future__ import annotations

from http.cookies import _unquote  # the stdlib's reading, as Starlette's cookie_parser
from typing import TYPE_CHECKING

from .exceptions import AmbiguousCredentialsError

if TYPE_CHECKING:
    from starlette.requests import HTTPConnection


TOKEN68_SCHEMES = frozenset({"bearer", "basic", "token", "dpop", "apikey"})
"""Schemes whose credential is one token: anything after it is a second credential."""


def single_header(connection: HTTPConnection, name: str) -> str | None:
    """The one value of header ``name``; ``None`` when absent; ambiguous when repeated.

    Header names in an ASGI scope are lowercase (the ASGI spec; Starlette relies on it too).
    """
    key = name.lower().encode("latin-1")
    found: bytes | None = None
    for header, value in connection.scope["headers"]:
        if header == key:
            if found is not None:
                raise AmbiguousCredentialsError(f"the {name} header is sent more than once")
            found = value
    return None if found is None else found.decode("latin-1")


def authorization(connection: HTTPConnection) -> tuple[str, str] | None:
    """``(scheme lowercased, parameter)`` of the one ``Authorization`` header, or ``None``.

    A token68 credential (``Bearer``, ``Basic``...) followed by another (``Bearer a, Bearer
    b`` or ``Bearer a b``) is ambiguous: RFC 9110 allows one credential per field. Schemes
    whose parameters are a comma-separated list (``Digest``) are returned as they are.
    """
    header = single_header(connection, "authorization")
    if header is None:
        return None
    scheme, _, param = header.strip().partition(" ")
    scheme = scheme.lower()
    param = param.strip()
    if scheme in TOKEN68_SCHEMES and ("," in param or " " in param or "\t" in param):
        raise AmbiguousCredentialsError("the Authorization header holds more than one credential")
    return scheme, param


def bearer_token(connection: HTTPConnection) -> str | None:
    """The token of ``Authorization: Bearer <token>``; ``None`` for no header or another scheme.

    An empty Bearer token comes back as ``""`` so that it is rejected (401), not ignored.
    Two ``Authorization`` headers, or two credentials in one, are ambiguous.
    """
    found: bytes | None = None
    for header, value in connection.scope["headers"]:  # single_header, inlined: per request
        if header == b"authorization":
            if found is not None:
                raise AmbiguousCredentialsError("the authorization header is sent more than once")
            found = value
    if found is None:
        return None
    scheme, _, param = found.decode("latin-1").strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    param = param.strip()
    if "," in param or " " in param or "\t" in param:
        raise AmbiguousCredentialsError("the Authorization header holds more than one credential")
    return param


def single_cookie(connection: HTTPConnection, name: str) -> str | None:
    """The value of cookie ``name`` across every ``Cookie`` header; ambiguous when repeated.

    Starlette's ``request.cookies`` keeps the last of two same-named cookies silently; a
    browser sends both when a sibling subdomain set one with ``Domain=``, and the order is
    the attacker's to choose.
    """
    found: str | None = None
    for header, value in connection.scope["headers"]:
        if header != b"cookie":
            continue
        for chunk in value.decode("latin-1").split(";"):
            key, sep, val = chunk.partition("=")
            if not sep:
                key, val = "", chunk  # Starlette reads a bare value as a nameless cookie
            if key.strip() != name:
                continue
            if found is not None:
                raise AmbiguousCredentialsError(f"the {name} cookie is sent more than once")
            found = _unquote(val.strip())
    return found


__all__ = ["authorization", "bearer_token", "single_cookie", "single_header"]
