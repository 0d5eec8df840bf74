"""CSRF defence for cookie-authenticated requests.

A browser attaches the session cookie to cross-site requests, so an unsafe method
(anything but GET, HEAD, OPTIONS and TRACE) is accepted only when the request proves it came from an
allowed page: by its ``Origin`` header (else ``Referer``), checked against the allowed
origins (the request's own origin plus configured trusted ones), or, in token mode, by
a header carrying :func:`csrf_token` of the session id (a session-bound double submit).
OWASP's CSRF cheat sheet recommends both; the origin check needs no client changes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable
from typing import Literal
from urllib.parse import urlsplit

from starlette.requests import HTTPConnection

from fastsecure import ForbiddenError
from fastsecure.credentials import single_header

CsrfMode = Literal["origin", "double_submit"]
# An allow-list of the safe methods (RFC 9110 section 9.2.1): every other method is checked,
# including PURGE, WebDAV's and any a route invents.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
_DEFAULT_PORTS = {"http": 80, "https": 443}
_WS_SCHEMES = {"ws": "http", "wss": "https"}
_CSRF_CONTEXT = b"fastsecure-session csrf v1"


def normalize_origin(value: str) -> str | None:
    """``scheme://host[:port]`` of a URL or origin, lower-cased, default port dropped.

    Returns None for anything that is not an http(s) origin, including the opaque
    ``null`` origin sandboxed frames send.
    """
    try:
        parts = urlsplit(value.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    host = parts.hostname
    if scheme not in _DEFAULT_PORTS or not host:
        return None
    if ":" in host:
        host = f"[{host}]"
    if port is None or port == _DEFAULT_PORTS[scheme]:
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


def csrf_token(session_id: str) -> str:
    """The CSRF token bound to a session id, for the double-submit mode.

    An HMAC keyed by the session id: a page that cannot read the HttpOnly session
    cookie cannot compute it, a cookie planted from a sibling domain does not match the
    victim's session, and the token reveals nothing about the id.
    """
    digest = hmac.new(session_id.encode("utf-8", "surrogatepass"), _CSRF_CONTEXT, hashlib.sha256)
    return base64.urlsafe_b64encode(digest.digest()).rstrip(b"=").decode("ascii")


class CsrfGuard:
    """Checks one request; built once per provider so per-request work is minimal.

    Args:
        mode: ``"origin"`` checks Origin/Referer; ``"double_submit"`` checks the header
            ``header_name`` against :func:`csrf_token` of the session id.
        trusted_origins: origins allowed besides the request's own, such as a separate
            front-end (``"https://app.example.com"``).
        header_name: the request header carrying the token in double-submit mode.
    """

    def __init__(
        self,
        *,
        mode: CsrfMode = "origin",
        trusted_origins: Iterable[str] = (),
        header_name: str = "X-CSRF-Token",
    ) -> None:
        if mode not in ("origin", "double_submit"):
            raise ValueError(f"csrf mode must be 'origin' or 'double_submit', not {mode!r}")
        trusted = set()
        for origin in trusted_origins:
            normalized = normalize_origin(origin)
            if normalized is None:
                raise ValueError(f"not an http(s) origin: {origin!r}")
            trusted.add(normalized)
        self.mode = mode
        self.trusted_origins = frozenset(trusted)
        self.header_name = header_name

    @staticmethod
    def own_origin(connection: HTTPConnection) -> str | None:
        """The origin the request was sent to, from its scheme and Host header.

        Behind a TLS-terminating proxy the scheme is the proxy's unless the server trusts
        forwarded headers (``uvicorn --proxy-headers``); otherwise list the public origin
        in ``trusted_origins``.
        """
        host = single_header(connection, "host")
        if not host:
            return None
        scheme = connection.url.scheme
        return normalize_origin(f"{_WS_SCHEMES.get(scheme, scheme)}://{host}")

    def origin_allowed(self, connection: HTTPConnection, origin: str) -> bool:
        """Whether a normalized origin may send cookie-authenticated requests."""
        return origin in self.trusted_origins or origin == self.own_origin(connection)

    def check(self, connection: HTTPConnection, session_id: str) -> None:
        """Raise :class:`~fastsecure.ForbiddenError` unless the request passes.

        Every HTTP method but GET, HEAD, OPTIONS and TRACE is checked, plus WebSocket
        handshakes that carry an ``Origin`` (browsers always send one, so a foreign one is
        cross-site hijacking). A header the check reads that is sent twice raises
        :class:`~fastsecure.AmbiguousCredentialsError` (400): never a guess at which copy
        counts.
        """
        if connection.scope["type"] == "websocket":
            origin = single_header(connection, "origin")
            if origin is not None:
                normalized = normalize_origin(origin)
                if normalized is None or not self.origin_allowed(connection, normalized):
                    raise ForbiddenError("CSRF check failed")
            return
        if connection.scope.get("method", "GET").upper() in SAFE_METHODS:
            return
        if self.mode == "double_submit":
            presented = single_header(connection, self.header_name) or ""
            if not presented or not hmac.compare_digest(
                presented.encode("utf-8", "surrogateescape"), csrf_token(session_id).encode()
            ):
                raise ForbiddenError("CSRF check failed")
            return
        source = single_header(connection, "origin") or single_header(connection, "referer")
        normalized = normalize_origin(source) if source else None
        if normalized is None or not self.origin_allowed(connection, normalized):
            raise ForbiddenError("CSRF check failed")
