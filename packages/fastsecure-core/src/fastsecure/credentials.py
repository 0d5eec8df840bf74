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


def single_header(connection: HTTPConnection, name: str) -> str | None:
    """The one value of header ``name``; ``None`` when absent; ambiguous when repeated."""
    key = name.lower().encode("latin-1")
    found: bytes | None = None
    for header, value in connection.scope["headers"]:
        if header.lower() == key:
            if found is not None:
                raise AmbiguousCredentialsError(f"the {name} header is sent more than once")
            found = value
    return None if found is None else found.decode("latin-1")


def authorization(connection: HTTPConnection) -> tuple[str, str] | None:
    """``(scheme lowercased, parameter)`` of the one ``Authorization`` header, or ``None``.

    A header holding two credentials (``Bearer a, Bearer b`` or ``Bearer a b``) is ambiguous:
    RFC 9110 allows one credential per ``Authorization`` field.
    """
    header = single_header(connection, "authorization")
    if header is None:
        return None
    scheme, _, param = header.strip().partition(" ")
    param = param.strip()
    if "," in param or " " in param or "\t" in param:
        raise AmbiguousCredentialsError("the Authorization header holds more than one credential")
    return scheme.lower(), param


def bearer_token(connection: HTTPConnection) -> str | None:
    """The token of ``Authorization: Bearer <token>``; ``None`` for no header or another scheme.

    An empty Bearer token comes back as ``""`` so that it is rejected (401), not ignored.
    """
    found = authorization(connection)
    if found is None or found[0] != "bearer":
        return None
    return found[1]


def single_cookie(connection: HTTPConnection, name: str) -> str | None:
    """The value of cookie ``name`` across every ``Cookie`` header; ambiguous when repeated.

    Starlette's ``request.cookies`` keeps the last of two same-named cookies silently; a
    browser sends both when a sibling subdomain set one with ``Domain=``, and the order is
    the attacker's to choose.
    """
    found: str | None = None
    for header, value in connection.scope["headers"]:
        if header.lower() != b"cookie":
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
