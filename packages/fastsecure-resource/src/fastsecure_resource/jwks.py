"""An issuer's JSON Web Key Set, cached the way production needs it.

- Fetched once and cached for the ``Cache-Control: max-age`` the issuer sends (less any
  ``Age``), clamped to ``[min_ttl, max_ttl]``; ``default_ttl`` without one.
- Refreshed in the background once ``refresh_ahead`` of that time has passed: requests keep
  using the cached set and never wait for the refresh.
- A token naming an unknown ``kid`` triggers a refetch at most once per
  ``unknown_kid_interval``: a flood of forged ``kid`` values costs the issuer one request.
- Concurrent callers share one fetch (one task, awaited by all).
- The last good set keeps serving while the issuer is unreachable, up to ``max_stale``
  past its expiry; a failed fetch is not retried before ``failure_backoff``.
- With no key set at all the answer is :class:`IssuerUnavailableError` (HTTP 503), never a
  rejection and never a pass.

Only asymmetric signing keys are kept: ``oct`` (HMAC) keys in a published set would let
anyone who can read the set forge tokens, so they are ignored, as are keys marked for
encryption. Each key's algorithm comes from the key (its ``alg``, else its type and curve),
never from a token.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
from jwt import PyJWK
from jwt.exceptions import PyJWKError, PyJWTError

from ._http import fetch_json
from .exceptions import IssuerUnavailableError

logger = logging.getLogger("fastsecure.resource")

RSA_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512")
ASYMMETRIC_ALGORITHMS = frozenset({*RSA_ALGORITHMS, "ES256", "ES384", "ES512", "ES256K", "EdDSA"})
"""Every algorithm a published key may be used with; HMAC and ``none`` are never among them."""
_CURVE_ALGORITHM = {
    ("EC", "P-256"): "ES256",
    ("EC", "P-384"): "ES384",
    ("EC", "P-521"): "ES512",
    ("EC", "secp256k1"): "ES256K",
    ("OKP", "Ed25519"): "EdDSA",
    ("OKP", "Ed448"): "EdDSA",
}


class UnknownKeyError(Exception):
    """No key of the issuer's set matches the token's ``kid`` and algorithm."""


def _max_age(headers: httpx.Headers) -> float | None:
    """Seconds the response may be cached (``Cache-Control``), ``0`` for no-store/no-cache."""
    value = headers.get("cache-control")
    if value is None:
        return None
    max_age: float | None = None
    for directive in value.lower().split(","):
        name, _, argument = directive.strip().partition("=")
        if name in ("no-store", "no-cache"):
            return 0.0
        if name in ("max-age", "s-maxage") and max_age is None:
            with contextlib.suppress(ValueError):
                max_age = float(int(argument.strip().strip('"')))
    if max_age is None:
        return None
    with contextlib.suppress(ValueError, TypeError):
        max_age -= float(int(headers.get("age", "0")))
    return max(max_age, 0.0)


def key_algorithms(jwk: Mapping[str, Any], allowed: Iterable[str]) -> tuple[str, ...]:
    """The algorithms a published key verifies, by the key alone; empty when unusable.

    The key's ``alg`` when it has one; else one algorithm per EC curve or OKP key, and for
    an RSA key without ``alg`` the allowed RSA algorithms (the key type bounds what the
    token header may pick).
    """
    allowed = frozenset(allowed) & ASYMMETRIC_ALGORITHMS
    kty = jwk.get("kty")
    if kty not in ("RSA", "EC", "OKP"):
        return ()  # "oct" and unknown types: never a verification key from a published set
    if jwk.get("use", "sig") != "sig":
        return ()
    ops = jwk.get("key_ops")
    if ops is not None and (not isinstance(ops, list) or "verify" not in ops):
        return ()
    alg = jwk.get("alg")
    if alg is not None:
        if not isinstance(alg, str):
            return ()
        return (alg,) if alg in allowed else ()
    if kty == "RSA":
        return tuple(a for a in RSA_ALGORITHMS if a in allowed)
    fitting = _CURVE_ALGORITHM.get((str(kty), str(jwk.get("crv"))))
    return (fitting,) if fitting in allowed else ()


@dataclass(frozen=True)
class KeySet:
    """A parsed key set: ``(kid, alg) -> key``, and when it should be refreshed."""

    keys: Mapping[tuple[str | None, str], PyJWK]
    kids: frozenset[str | None]
    fetched_at: float
    refresh_at: float
    expires_at: float

    def find(self, kid: str | None, alg: str) -> PyJWK | None:
        """The key for a token's ``kid`` and ``alg``; a token without kid needs a sole key."""
        return self.keys.get((kid, alg))


def parse_key_set(
    document: Mapping[str, Any], allowed: Iterable[str]
) -> dict[tuple[str | None, str], PyJWK]:
    """Every usable signing key of a JWK Set, one PyJWK per ``(kid, alg)``."""
    raw = document.get("keys")
    if not isinstance(raw, list):
        return {}
    allowed = frozenset(allowed)
    keys: dict[tuple[str | None, str], PyJWK] = {}
    per_algorithm: dict[str, list[PyJWK]] = {}
    for jwk in raw:
        if not isinstance(jwk, dict):
            continue
        kid = jwk.get("kid")
        if kid is not None and not isinstance(kid, str):
            continue
        for alg in key_algorithms(jwk, allowed):
            try:
                key = PyJWK(jwk, alg)
            except (PyJWKError, PyJWTError, ValueError, TypeError, KeyError):
                continue  # a malformed key is skipped; its siblings still serve
            if kid is not None:
                keys.setdefault((kid, alg), key)
            per_algorithm.setdefault(alg, []).append(key)
    for alg, candidates in per_algorithm.items():
        # A token without kid is accepted only when a single key could have signed it.
        if len(candidates) == 1:
            keys.setdefault((None, alg), candidates[0])
    return keys


@dataclass
class JWKSStats:
    """Counters for operators and tests: how often the issuer was asked, and why."""

    fetches: int = 0
    failures: int = 0
    unknown_kid_fetches: int = 0
    background_refreshes: int = 0
    unknown_kid_rejections: int = 0
    stale_serves: int = 0
    by_reason: dict[str, int] = field(default_factory=dict)


class JWKSCache:
    """The key set of one issuer; see the module docstring for the rules.

    Args:
        jwks_uri: the key set's URL, or an async callable giving it (after discovery).
        client: a callable giving the HTTP client for the running loop.
        algorithms: the algorithms keys may be used with (asymmetric ones only).
        default_ttl: seconds to cache a set served without ``Cache-Control``.
        min_ttl, max_ttl: bounds on the cache time whatever the issuer says.
        refresh_ahead: fraction of the cache time after which a background refresh starts.
        unknown_kid_interval: least seconds between two fetches caused by unknown kids.
        failure_backoff: least seconds between a failed fetch and the next attempt.
        max_stale: seconds past expiry the last good set keeps serving while fetches
            fail; ``None`` for as long as it takes.
        timeout: seconds one fetch may take in all.
        clock: a monotonic clock (tests pass their own).
    """

    def __init__(
        self,
        jwks_uri: str | Callable[[], Awaitable[str]],
        *,
        client: Callable[[], httpx.AsyncClient],
        algorithms: Iterable[str] = ASYMMETRIC_ALGORITHMS,
        default_ttl: float = 300.0,
        min_ttl: float = 60.0,
        max_ttl: float = 86400.0,
        refresh_ahead: float = 0.8,
        unknown_kid_interval: float = 60.0,
        failure_backoff: float = 5.0,
        max_stale: float | None = 86400.0,
        timeout: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        unsafe = set(algorithms) - ASYMMETRIC_ALGORITHMS
        if unsafe:
            raise ValueError(f"algorithms {sorted(unsafe)} cannot verify with a published key")
        if not 0 < refresh_ahead <= 1:
            raise ValueError("refresh_ahead must be in (0, 1]")
        self._uri = jwks_uri
        self._client = client
        self.algorithms = frozenset(algorithms)
        self.default_ttl = default_ttl
        self.min_ttl = min_ttl
        self.max_ttl = max_ttl
        self.refresh_ahead = refresh_ahead
        self.unknown_kid_interval = unknown_kid_interval
        self.failure_backoff = failure_backoff
        self.max_stale = max_stale
        self.timeout = timeout
        self._clock = clock
        self.stats = JWKSStats()
        self._set: KeySet | None = None
        self._inflight: asyncio.Task[KeySet] | None = None
        self._background: asyncio.Task[None] | None = None
        self._failed_at: float | None = None
        self._unknown_kid_at: float | None = None

    @property
    def key_set(self) -> KeySet | None:
        """The cached set, if any."""
        return self._set

    def fresh_key(self, kid: str | None, alg: str) -> PyJWK | None:
        """The key from the cached set while that set is not due a refresh, else ``None``.

        No I/O and no await: the verified-token cache asks it on every hit, so a token
        whose key was removed, or any token once the set is due a refresh, is verified
        in full again through :meth:`get_key`.
        """
        current = self._set
        if current is None or self._clock() >= current.refresh_at:
            return None
        return current.find(kid, alg)

    async def get_key(self, kid: str | None, alg: str) -> PyJWK:
        """The verification key for a token's header values.

        Raises:
            UnknownKeyError: the issuer has no such key, even after a permitted refetch.
            IssuerUnavailableError: there is no usable key set at all.
        """
        now = self._clock()
        current = self._set
        if current is None or (
            self.max_stale is not None and now >= current.expires_at + self.max_stale
        ):
            current = await self._fetch_now("initial" if current is None else "expired")
        elif now >= current.refresh_at:
            self._refresh_in_background()
            if now >= current.expires_at:
                self.stats.stale_serves += 1
        key = current.find(kid, alg)
        if key is not None:
            return key
        if alg not in self.algorithms:
            raise UnknownKeyError("algorithm not allowed")
        # The issuer may have rotated: refetch, but at most once per interval, so forged kids
        # cost one request per interval whatever their number.
        inflight = self._inflight
        if inflight is not None and not inflight.done() and _same_loop(inflight):
            current = await self._join(inflight)
        elif (
            self._unknown_kid_at is None or now - self._unknown_kid_at >= self.unknown_kid_interval
        ):
            self._unknown_kid_at = now
            self.stats.unknown_kid_fetches += 1
            try:
                current = await self._fetch_now("unknown kid")
            except IssuerUnavailableError:
                self.stats.unknown_kid_rejections += 1
                raise UnknownKeyError("unknown key id") from None
        key = current.find(kid, alg)
        if key is None:
            self.stats.unknown_kid_rejections += 1
            raise UnknownKeyError("unknown key id")
        return key

    async def refresh(self) -> KeySet:
        """Fetch the set now (shared with any fetch already running)."""
        return await self._fetch_now("explicit")

    async def aclose(self) -> None:
        """Cancel a background refresh still running."""
        for task in (self._background, self._inflight):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        self._background = self._inflight = None

    # --- internals -------------------------------------------------------------------

    async def _fetch_now(self, reason: str) -> KeySet:
        inflight = self._inflight
        if inflight is not None and not inflight.done() and _same_loop(inflight):
            return await self._join(inflight)
        if self._failed_at is not None and self._clock() - self._failed_at < self.failure_backoff:
            if self._set is not None and not self._too_stale(self._set):
                return self._set
            raise IssuerUnavailableError("JWKS: the issuer was unreachable moments ago")
        task = asyncio.get_running_loop().create_task(self._fetch(reason))
        task.add_done_callback(_retrieve)
        self._inflight = task
        return await self._join(task)

    async def _join(self, task: asyncio.Task[KeySet]) -> KeySet:
        # shield: a caller that is cancelled (client went away) must not cancel the shared
        # fetch the other callers wait for.
        try:
            return await asyncio.shield(task)
        except IssuerUnavailableError:
            if self._set is not None and not self._too_stale(self._set):
                self.stats.stale_serves += 1
                return self._set
            raise

    def _too_stale(self, key_set: KeySet) -> bool:
        return self.max_stale is not None and self._clock() >= key_set.expires_at + self.max_stale

    def _refresh_in_background(self) -> None:
        if self._background is not None and not self._background.done():
            return
        if self._inflight is not None and not self._inflight.done():
            return
        if self._failed_at is not None and self._clock() - self._failed_at < self.failure_backoff:
            return
        self.stats.background_refreshes += 1

        async def refresh() -> None:
            with contextlib.suppress(IssuerUnavailableError):
                await self._fetch_now("background")

        self._background = asyncio.get_running_loop().create_task(refresh())

    async def _fetch(self, reason: str) -> KeySet:
        self.stats.fetches += 1
        self.stats.by_reason[reason] = self.stats.by_reason.get(reason, 0) + 1
        try:
            uri = self._uri if isinstance(self._uri, str) else await self._uri()
            document = await fetch_json(self._client(), "GET", uri, "JWKS", deadline=self.timeout)
            keys = parse_key_set(document.data, self.algorithms)
            if not keys:
                raise IssuerUnavailableError("JWKS: the key set holds no usable signing key")
        except IssuerUnavailableError as exc:
            self.stats.failures += 1
            self._failed_at = self._clock()
            logger.warning("fastsecure-resource: %s", exc)
            raise
        now = self._clock()
        ttl = _max_age(document.headers)
        ttl = self.default_ttl if ttl is None else ttl
        ttl = min(max(ttl, self.min_ttl), self.max_ttl)
        self._failed_at = None
        self._set = KeySet(
            keys=keys,
            kids=frozenset(kid for kid, _ in keys),
            fetched_at=now,
            refresh_at=now + ttl * self.refresh_ahead,
            expires_at=now + ttl,
        )
        logger.debug(
            "fastsecure-resource: JWKS fetched (%s), %d keys, ttl %gs", reason, len(keys), ttl
        )
        return self._set


def _same_loop(task: asyncio.Task[Any]) -> bool:
    try:
        return task.get_loop() is asyncio.get_running_loop()
    except RuntimeError:
        return False


def _retrieve(task: asyncio.Task[Any]) -> None:
    # Mark the exception as seen: a fetch whose every waiter was cancelled must not log
    # "Task exception was never retrieved".
    if not task.cancelled():
        task.exception()


__all__ = [
    "ASYMMETRIC_ALGORITHMS",
    "JWKSCache",
    "JWKSStats",
    "KeySet",
    "UnknownKeyError",
    "key_algorithms",
    "parse_key_set",
]
