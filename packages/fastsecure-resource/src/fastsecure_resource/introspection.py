"""Opaque access tokens: OAuth 2.0 Token Introspection (RFC 7662) with a short cache.

For issuers that hand out opaque tokens (or when a JWT's revocation must be seen sooner
than its expiry), the resource server asks the issuer about each token, authenticating
as a client of its own. Answers are cached by the token's SHA-256 for ``cache_ttl``
seconds (never past the token's ``exp``), so a busy API asks once per token per window;
a revoked token is therefore honoured within ``cache_ttl``. Concurrent requests with the
same token share one call. An unreachable endpoint is a 503, never a pass.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx

from ._http import fetch_json
from .exceptions import IssuerUnavailableError


@dataclass(frozen=True)
class Introspection:
    """How to introspect opaque tokens.

    Args:
        client_id, client_secret: the resource server's own client registration at the
            issuer (sent with HTTP Basic, RFC 6749 section 2.3.1).
        endpoint: the introspection endpoint; discovered (``introspection_endpoint``)
            when not given.
        cache_ttl: seconds an answer is reused (capped at the token's ``exp``).
        max_entries: bound on the cache's size (least recently used entries go first).
        require_audience: refuse an active token whose ``aud`` does not name us (a token
            for another API of the same issuer); set False only for issuers that omit it.
    """

    client_id: str
    client_secret: str
    endpoint: str | None = None
    cache_ttl: float = 30.0
    max_entries: int = 10_000
    require_audience: bool = True

    def __repr__(self) -> str:
        return f"Introspection(client_id={self.client_id!r}, endpoint={self.endpoint!r})"


class Introspector:
    """Calls the introspection endpoint and caches its answers."""

    def __init__(
        self,
        config: Introspection,
        endpoint: Callable[[], Awaitable[str]],
        *,
        client: Callable[[], httpx.AsyncClient],
        timeout: float,
        failure_backoff: float = 5.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self._endpoint = endpoint
        self._client = client
        self.timeout = timeout
        self.failure_backoff = failure_backoff
        self._failed_at: float | None = None
        self._clock = clock
        self._cache: OrderedDict[bytes, tuple[float, dict[str, Any] | None]] = OrderedDict()
        self._inflight: dict[bytes, asyncio.Task[dict[str, Any] | None]] = {}
        self.calls = 0

    async def introspect(self, token: str) -> dict[str, Any] | None:
        """The claims of an active token, ``None`` for an inactive one.

        Raises:
            IssuerUnavailableError: the endpoint could not answer.
        """
        digest = hashlib.sha256(token.encode("utf-8")).digest()
        now = self._clock()
        cached = self._cache.get(digest)
        if cached is not None:
            if cached[0] > now:
                self._cache.move_to_end(digest)
                return cached[1]
            del self._cache[digest]
        loop = asyncio.get_running_loop()
        task = self._inflight.get(digest)
        if task is None or task.get_loop() is not loop:
            if self._failed_at is not None and now - self._failed_at < self.failure_backoff:
                # A down endpoint is not asked once per request.
                raise IssuerUnavailableError(
                    "introspection: the issuer was unreachable moments ago"
                )
            # One task per token, awaited through shield: a caller that goes away does not
            # cancel the call the others wait for.
            task = loop.create_task(self._call(token))
            task.add_done_callback(lambda done: self._settle(digest, done))
            self._inflight[digest] = task
        return await asyncio.shield(task)

    def _settle(self, digest: bytes, task: asyncio.Task[dict[str, Any] | None]) -> None:
        if self._inflight.get(digest) is task:
            del self._inflight[digest]
        if task.cancelled():
            return
        if task.exception() is not None:
            self._failed_at = self._clock()  # not cached per token: asked again after backoff
            return
        self._failed_at = None
        self._remember(digest, task.result())

    async def _call(self, token: str) -> dict[str, Any] | None:
        self.calls += 1
        endpoint = self.config.endpoint or await self._endpoint()
        document = await fetch_json(
            self._client(),
            "POST",
            endpoint,
            "introspection",
            deadline=self.timeout,
            data={"token": token, "token_type_hint": "access_token"},
            auth=(self.config.client_id, self.config.client_secret),
        )
        # RFC 7662 section 2.2: only a literal true makes a token active.
        return document.data if document.data.get("active") is True else None

    def _remember(self, digest: bytes, answer: dict[str, Any] | None) -> None:
        now = self._clock()
        until = now + self.config.cache_ttl
        exp = answer.get("exp") if answer is not None else None
        if isinstance(exp, int | float) and not isinstance(exp, bool):
            until = min(until, float(exp))
        if until <= now:
            return
        self._cache[digest] = (until, answer)
        while len(self._cache) > self.config.max_entries:
            self._cache.popitem(last=False)


__all__ = ["Introspection", "Introspector"]
