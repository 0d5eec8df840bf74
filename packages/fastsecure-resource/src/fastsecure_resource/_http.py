"""The one way this package talks to an issuer: GET or POST, bounded in time and size.

Every failure (connect, TLS, timeout, HTTP error status, oversized or malformed body)
becomes :class:`IssuerUnavailableError` with our own wording; response bodies and URLs
with query strings are never logged.
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from fastsecure import ConfigurationError

from .exceptions import IssuerUnavailableError

MAX_DOCUMENT_BYTES = 1024 * 1024
"""Larger than any real metadata document or key set; a larger answer is refused unread."""


@dataclass(frozen=True)
class Document:
    """A JSON object an issuer answered with, and the response headers that matter."""

    data: dict[str, Any]
    headers: httpx.Headers


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine (RFC 8252 8.3: plain HTTP is acceptable there)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_url(url: str, what: str, *, allow_http: bool = False) -> str:
    """An issuer URL we are willing to fetch: https, or http on loopback (or when allowed)."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return url
    if parts.scheme == "http" and parts.hostname and (allow_http or is_loopback(parts.hostname)):
        return url
    raise ConfigurationError(f"{what} must be an https URL (http only on loopback): {url!r}")


async def fetch_json(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    what: str,
    *,
    deadline: float,
    data: Mapping[str, str] | None = None,
    auth: tuple[str, str] | None = None,
) -> Document:
    """One bounded request whose answer must be a JSON object.

    Raises:
        IssuerUnavailableError: anything but a 200 with a JSON object of sane size in time.
    """
    headers = {"Accept": "application/json"}
    if auth is not None:
        # RFC 6749 section 2.3.1: both halves are form-encoded before the Basic encoding.
        pair = f"{quote(auth[0], safe='')}:{quote(auth[1], safe='')}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(pair).decode("ascii")
    try:
        # httpx times connect and each read apart; an issuer dripping bytes would never trip
        # them, so the whole exchange also gets one deadline.
        async with asyncio.timeout(deadline):
            request = client.build_request(method, url, data=data, headers=headers)
            response = await client.send(request, stream=True, follow_redirects=False)
            try:
                if response.status_code != 200:
                    raise IssuerUnavailableError(
                        f"{what}: the issuer answered HTTP {response.status_code}"
                    )
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > MAX_DOCUMENT_BYTES:
                        raise IssuerUnavailableError(f"{what}: the answer is too large")
            finally:
                await response.aclose()
    except (TimeoutError, httpx.TimeoutException):
        raise IssuerUnavailableError(f"{what}: no answer within {deadline:g}s") from None
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        raise IssuerUnavailableError(f"{what}: request failed ({type(exc).__name__})") from None
    try:
        parsed = json.loads(bytes(body))
    except (ValueError, RecursionError):
        raise IssuerUnavailableError(f"{what}: the answer is not JSON") from None
    if not isinstance(parsed, dict):
        raise IssuerUnavailableError(f"{what}: the answer is not a JSON object")
    return Document(parsed, response.headers)


class ClientHolder:
    """The HTTP client: the one given, else one of ours per event loop.

    An ``httpx.AsyncClient`` keeps connections bound to the loop that opened them; a
    provider outliving one loop (a test client per test, a worker restart) gets a new one.
    """

    def __init__(self, client: httpx.AsyncClient | None, *, timeout: float) -> None:
        self._given = client
        self._timeout = timeout
        self._client: httpx.AsyncClient | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def timeout(self) -> float:
        """Seconds an exchange may take (for clients this holder creates)."""
        return self._timeout

    def use(self, client: httpx.AsyncClient) -> None:
        """Use ``client`` from now on (tests route requests to a local issuer this way)."""
        self._given = client

    def get(self) -> httpx.AsyncClient:
        """The client to use on the running loop."""
        if self._given is not None:
            return self._given
        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop:
            self._client = httpx.AsyncClient(
                timeout=httpx.Timeout(self._timeout),
                follow_redirects=False,
                headers={"User-Agent": "fastsecure-resource"},
            )
            self._loop = loop
        return self._client

    async def aclose(self) -> None:
        """Close our own client (never one the application gave)."""
        client, self._client = self._client, None
        if client is not None and self._loop is asyncio.get_running_loop():
            await client.aclose()
