"""Authorization server metadata: OpenID Connect Discovery and RFC 8414.

The document is fetched once, on first use, and must name exactly the configured issuer
(OIDC Discovery 4.3, RFC 8414 section 3.3): a document that names another one could hand
us another issuer's keys. A failure is not cached beyond ``failure_backoff``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

import httpx

from fastsecure import ConfigurationError

from ._http import check_url, fetch_json
from .exceptions import IssuerUnavailableError

OIDC_PATH = "/.well-known/openid-configuration"
OAUTH_PATH = "/.well-known/oauth-authorization-server"
Discovery = Literal["oidc", "oauth", "auto"]


def oidc_metadata_url(issuer: str) -> str:
    """OIDC Discovery 4: the well-known path appended to the issuer."""
    return issuer.rstrip("/") + OIDC_PATH


def oauth_metadata_url(issuer: str) -> str:
    """RFC 8414 section 3.1: the well-known path inserted between host and issuer path."""
    parts = urlsplit(issuer)
    path = parts.path.rstrip("/")
    return urlunsplit((parts.scheme, parts.netloc, OAUTH_PATH + path, "", ""))


def metadata_urls(issuer: str, discovery: Discovery) -> list[str]:
    """Where to look for the issuer's metadata, in order."""
    if discovery == "oidc":
        return [oidc_metadata_url(issuer)]
    if discovery == "oauth":
        return [oauth_metadata_url(issuer)]
    return [oidc_metadata_url(issuer), oauth_metadata_url(issuer)]


class IssuerMetadata:
    """The metadata document of one issuer, fetched once and shared by concurrent callers.

    Args:
        issuer: the exact issuer identifier the document must carry.
        urls: where to fetch it, tried in order until one answers.
        client: a callable giving the HTTP client for the running loop.
        timeout: seconds one fetch may take.
        failure_backoff: seconds before a failed discovery is tried again.
        allow_http: accept http endpoints off loopback (tests only).
    """

    def __init__(
        self,
        issuer: str,
        urls: list[str],
        *,
        client: Callable[[], httpx.AsyncClient],
        timeout: float = 5.0,
        failure_backoff: float = 5.0,
        allow_http: bool = False,
    ) -> None:
        self.issuer = issuer
        self.urls = [check_url(url, "metadata URL", allow_http=allow_http) for url in urls]
        self._client = client
        self.timeout = timeout
        self.failure_backoff = failure_backoff
        self.allow_http = allow_http
        self.document: dict[str, Any] | None = None
        self.fetches = 0
        self._lock: asyncio.Lock | None = None
        self._lock_loop: asyncio.AbstractEventLoop | None = None
        self._failed_at: float | None = None

    async def get(self) -> dict[str, Any]:
        """The metadata document; raises :class:`IssuerUnavailableError` when unavailable."""
        if self.document is not None:
            return self.document
        loop = asyncio.get_running_loop()
        if self._lock is None or self._lock_loop is not loop:
            self._lock, self._lock_loop = asyncio.Lock(), loop
        async with self._lock:
            found = self._current()
            if found is not None:
                return found  # another caller discovered while this one waited
            if (
                self._failed_at is not None
                and time.monotonic() - self._failed_at < self.failure_backoff
            ):
                raise IssuerUnavailableError("discovery: the issuer was unreachable moments ago")
            try:
                self.document = await self._discover()
            except IssuerUnavailableError:
                self._failed_at = time.monotonic()
                raise
            return self.document

    def _current(self) -> dict[str, Any] | None:
        return self.document

    async def endpoint(self, name: str) -> str:
        """A URL of the metadata (``jwks_uri``, ``introspection_endpoint``...), checked."""
        value = (await self.get()).get(name)
        if not isinstance(value, str) or not value:
            raise IssuerUnavailableError(f"discovery: the metadata has no {name}")
        try:
            return check_url(value, name, allow_http=self.allow_http)
        except ConfigurationError:
            raise IssuerUnavailableError(f"discovery: {name} is not an https URL") from None

    async def _discover(self) -> dict[str, Any]:
        error: IssuerUnavailableError | None = None
        for url in self.urls:
            self.fetches += 1
            try:
                document = await fetch_json(
                    self._client(), "GET", url, "discovery", deadline=self.timeout
                )
            except IssuerUnavailableError as exc:
                error = exc
                continue
            if document.data.get("issuer") != self.issuer:
                error = IssuerUnavailableError("discovery: the metadata names another issuer")
                continue
            return document.data
        assert error is not None
        raise error


__all__ = [
    "OAUTH_PATH",
    "OIDC_PATH",
    "IssuerMetadata",
    "metadata_urls",
    "oauth_metadata_url",
    "oidc_metadata_url",
]
