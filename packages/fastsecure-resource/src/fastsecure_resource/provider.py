"""The resource server: verify access tokens that an external authorization server issued.

A JWT access token (RFC 9068) is verified locally against the issuer's published keys:
the header may not point at keys of its own (``jku``, ``x5u``, ``jwk``, ``x5c``), may not
carry ``crit``, and its ``alg`` only has to match what the key itself allows; then ``iss``
(exact), ``aud`` (contains ours), ``exp``/``nbf``/``iat`` (with ``leeway``) and the required
claims. An opaque token goes to the issuer's introspection endpoint (RFC 7662) when that
is configured. Nothing in a token ever makes this provider fetch anything.

A JWT that verified is remembered, by its exact string, in a bounded cache
(``verified_cache_size``): presented again, its signature, decoding and claim checks are
not redone, but ``exp``/``nbf``/``iat`` are compared with the clock again, the ``checks``
run again, and the key that verified it must still be in the issuer's current key set
(a set due a refresh, or a key gone from it, means a full verification). Introspected
tokens are never cached: asking the issuer is the check.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar, TypeGuard

import httpx
import jwt

from fastsecure import (
    AuthenticationProvider,
    AuthenticationResult,
    ConfigurationError,
    FailureReason,
)
from fastsecure.credentials import bearer_token
from fastsecure.verified_cache import DEFAULT_SIZE, VerifiedTokenCache

from ._http import ClientHolder, check_url
from .claims import SCOPE, ClaimPath, as_path, scopes_from, strings
from .exceptions import IssuerUnavailableError, TokenRejectedError
from .introspection import Introspection, Introspector
from .jwks import ASYMMETRIC_ALGORITHMS, JWKSCache, UnknownKeyError
from .metadata import Discovery, IssuerMetadata, metadata_urls

if TYPE_CHECKING:
    from fastapi.security.base import SecurityBase
    from starlette.requests import HTTPConnection

logger = logging.getLogger("fastsecure.resource")

ClaimCheck = Callable[[Mapping[str, Any]], str | None]
"""An extra check on verified claims: returns why the token is refused, or ``None``."""

RFC9068_CLAIMS = ("iss", "exp", "aud", "sub", "client_id", "iat", "jti")
"""The claims RFC 9068 section 2.2 makes mandatory in a JWT access token."""
AT_JWT_TYPES = frozenset({"at+jwt", "application/at+jwt"})
_PLAIN_JWT_TYPES = frozenset({"jwt", "application/jwt"})
REFUSED_HEADERS = frozenset({"jku", "x5u", "jwk", "x5c", "crit", "b64", "enc", "zip"})
"""Header parameters that would name keys of the token's choosing or change how it is read."""
MAX_TOKEN_LENGTH = 16 * 1024
# 9999-12-31T23:59:59Z: the latest expiry a datetime holds (a signed exp past it is refused).
_LATEST_EXP = 253_402_300_799

_ERRORS: tuple[tuple[type[jwt.PyJWTError], str], ...] = (
    (jwt.ExpiredSignatureError, "token expired"),
    (jwt.ImmatureSignatureError, "token not yet valid"),
    (jwt.InvalidAudienceError, "invalid audience"),
    (jwt.InvalidIssuerError, "invalid issuer"),
    (jwt.InvalidSignatureError, "invalid signature"),
    (jwt.InvalidAlgorithmError, "algorithm not allowed"),
    (jwt.DecodeError, "malformed token"),
)


def _describe(exc: jwt.PyJWTError) -> str:
    # Our own wording only: PyJWT's messages may quote the token's content.
    if isinstance(exc, jwt.MissingRequiredClaimError):
        return f"missing required claim: {exc.claim}"
    for kind, message in _ERRORS:
        if isinstance(exc, kind):
            return message
    return "invalid token"


def _segment(token: str, index: int) -> dict[str, Any]:
    """One JSON segment of a compact JWS, unverified: only to pick a key or refuse early."""
    try:
        value = json.loads(jwt.utils.base64url_decode(token.split(".")[index]))
    except (ValueError, TypeError, RecursionError, IndexError):
        raise TokenRejectedError("malformed token") from None
    if not isinstance(value, dict):
        raise TokenRejectedError("malformed token")
    return value


def _number(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _as_tuple(value: str | Sequence[str], what: str) -> tuple[str, ...]:
    items = (value,) if isinstance(value, str) else tuple(value)
    if not items or not all(isinstance(item, str) and item for item in items):
        raise ConfigurationError(f"{what} is required (a non-empty string or list of them)")
    return items


def _int_or_none(claims: Mapping[str, Any], name: str) -> int | None:
    """A time claim as PyJWT compares it (``int()``), once verification accepted it."""
    value = claims.get(name)
    return None if value is None else int(value)


@dataclass(frozen=True, slots=True)
class _Verified:
    """What one full verification of a JWT found, for the hits that follow."""

    claims: dict[str, Any]
    key: Any  # the PyJWK that verified it: a hit needs the same object in the current set
    kid: str | None
    alg: str
    exp: int
    nbf: int | None
    iat: int | None
    iat_raw: int | float | None
    subject: Any
    scopes: list[str]
    client_id: str | None
    issuer: Any
    expires_at: datetime | None


class ResourceServerProvider(AuthenticationProvider):
    """Access tokens from any OAuth 2.0 / OpenID Connect authorization server.

    ``ResourceServerProvider(issuer="https://login.example.com/", audience="https://api")``
    discovers the issuer's keys on first use and verifies ``Authorization: Bearer`` tokens.

    Args:
        issuer: the exact ``iss`` accepted; several for multi-tenant issuers (then give
            ``jwks_uri``: there is no single metadata document).
        audience: our identifier(s); the token's ``aud`` must contain one. Required.
        jwks_uri: the key set's URL; discovered from the metadata when not given.
        metadata_url: the metadata document's URL, when not at a well-known place.
        discovery: ``"oidc"`` (``/.well-known/openid-configuration``), ``"oauth"``
            (RFC 8414) or ``"auto"`` (the first, then the second).
        algorithms: the signature algorithms keys may be used with (asymmetric only).
        require_at_jwt: require ``typ: at+jwt`` (RFC 9068); presets for issuers that do
            not set it turn this off, and then only ``JWT``/no ``typ`` is accepted.
        leeway: seconds of clock skew tolerated on ``exp``, ``nbf`` and ``iat``.
        required_claims: claims that must be present (RFC 9068's by default).
        audience_claim: where our audience is (``client_id`` for Cognito access tokens).
        scope_claims: where the granted scopes are (see :mod:`fastsecure_resource.claims`).
        client_id_claims: where the client's id is, first found wins (into metadata).
        checks: further checks on the verified claims (tenant allow-lists, ``token_use``).
        introspection: how to introspect opaque tokens (RFC 7662); off when ``None``.
        authorization_url, token_url: for OpenAPI's OAuth2 scheme (Swagger's Authorize);
            without them an OpenID Connect scheme pointing at the discovery document.
        openapi_scopes: scope -> description, shown by Swagger's Authorize dialog.
        http_client: an ``httpx.AsyncClient`` to use (else one of ours, closed by aclose).
        timeout: seconds one call to the issuer may take in all.
        unknown_kid_interval: least seconds between JWKS refetches caused by unknown kids.
        jwks_default_ttl, jwks_min_ttl, jwks_max_ttl: JWKS cache time without
            ``Cache-Control`` and its bounds.
        jwks_max_stale: seconds past expiry the last good key set serves while the issuer
            is unreachable (``None``: no limit).
        failure_backoff: seconds before a failed fetch is tried again.
        allow_http: accept plain-http issuer URLs off loopback (never in production).
        verified_cache_size: verified JWTs remembered, by exact string (least recently
            used go first); ``0`` turns the cache off. See the module docs for what a hit
            still checks.
    """

    provider_type: ClassVar[str] = "resource_server"

    def __init__(
        self,
        issuer: str | Sequence[str],
        audience: str | Sequence[str],
        *,
        jwks_uri: str | None = None,
        metadata_url: str | None = None,
        discovery: Discovery = "auto",
        algorithms: Iterable[str] = ASYMMETRIC_ALGORITHMS,
        require_at_jwt: bool = True,
        leeway: float = 30.0,
        required_claims: Iterable[str] = RFC9068_CLAIMS,
        audience_claim: str = "aud",
        scope_claims: Iterable[ClaimPath] = SCOPE,
        client_id_claims: Iterable[str] = ("client_id", "azp", "cid", "appid"),
        checks: Iterable[ClaimCheck] = (),
        introspection: Introspection | None = None,
        authorization_url: str | None = None,
        token_url: str | None = None,
        openapi_scopes: Mapping[str, str] | None = None,
        http_client: httpx.AsyncClient | None = None,
        timeout: float = 5.0,
        unknown_kid_interval: float = 60.0,
        jwks_default_ttl: float = 300.0,
        jwks_min_ttl: float = 60.0,
        jwks_max_ttl: float = 86400.0,
        jwks_max_stale: float | None = 86400.0,
        failure_backoff: float = 5.0,
        allow_http: bool = False,
        verified_cache_size: int = DEFAULT_SIZE,
    ) -> None:
        try:
            self._cache: VerifiedTokenCache[_Verified] = VerifiedTokenCache(verified_cache_size)
        except ValueError as exc:
            raise ConfigurationError(str(exc)) from None
        self.issuers = _as_tuple(issuer, "issuer")
        self.audiences = _as_tuple(audience, "audience")
        if discovery not in ("oidc", "oauth", "auto"):
            raise ConfigurationError("discovery must be 'oidc', 'oauth' or 'auto'")
        algorithms = frozenset(algorithms)
        unsafe = algorithms - ASYMMETRIC_ALGORITHMS
        if unsafe or not algorithms:
            raise ConfigurationError(
                f"algorithms {sorted(unsafe)} cannot be used with an issuer's published keys; "
                f"choose from {sorted(ASYMMETRIC_ALGORITHMS)}"
            )
        if leeway < 0:
            raise ConfigurationError("leeway cannot be negative")
        self.algorithms = algorithms
        self.require_at_jwt = require_at_jwt
        self.leeway = leeway
        self.audience_claim = audience_claim
        self.required_claims = tuple(dict.fromkeys(required_claims))
        self.scope_claims = tuple(as_path(path) for path in scope_claims)
        self.client_id_claims = tuple(client_id_claims)
        self.checks = tuple(checks)
        self.authorization_url = authorization_url
        self.token_url = token_url
        self.openapi_scopes = dict(openapi_scopes or {})
        self.allow_http = allow_http
        self._http = ClientHolder(http_client, timeout=timeout)

        if metadata_url is not None:
            urls = [metadata_url]
        elif len(self.issuers) == 1:
            urls = metadata_urls(self.issuers[0], discovery)
        else:
            urls = []
        self.metadata: IssuerMetadata | None = (
            IssuerMetadata(
                self.issuers[0],
                urls,
                client=self._http.get,
                timeout=timeout,
                failure_backoff=failure_backoff,
                allow_http=allow_http,
            )
            if urls
            else None
        )
        if jwks_uri is not None:
            check_url(jwks_uri, "jwks_uri", allow_http=allow_http)
        elif self.metadata is None:
            raise ConfigurationError("several issuers need jwks_uri (there is no one metadata URL)")
        self.jwks_uri = jwks_uri
        self.jwks = JWKSCache(
            jwks_uri if jwks_uri is not None else self._discovered_jwks_uri,
            client=self._http.get,
            algorithms=algorithms,
            default_ttl=jwks_default_ttl,
            min_ttl=jwks_min_ttl,
            max_ttl=jwks_max_ttl,
            unknown_kid_interval=unknown_kid_interval,
            failure_backoff=failure_backoff,
            max_stale=jwks_max_stale,
            timeout=timeout,
        )
        self.introspection = introspection
        self._introspector: Introspector | None = None
        if introspection is not None:
            if introspection.endpoint is not None:
                check_url(introspection.endpoint, "introspection endpoint", allow_http=allow_http)
            elif self.metadata is None:
                raise ConfigurationError("introspection needs an endpoint or a metadata URL")
            self._introspector = Introspector(
                introspection,
                self._discovered_introspection_endpoint,
                client=self._http.get,
                timeout=timeout,
                failure_backoff=failure_backoff,
            )

        self._jwt = jwt.PyJWT(
            options={
                "verify_signature": True,
                "verify_aud": audience_claim == "aud",
                "require": list(self.required_claims),
            }
        )

    def __repr__(self) -> str:
        name = type(self).__name__
        return f"{name}(issuer={list(self.issuers)!r}, audience={list(self.audiences)!r})"

    async def _discovered_jwks_uri(self) -> str:
        assert self.metadata is not None
        return await self.metadata.endpoint("jwks_uri")

    async def _discovered_introspection_endpoint(self) -> str:
        assert self.metadata is not None
        return await self.metadata.endpoint("introspection_endpoint")

    # --- the provider contract -----------------------------------------------------------

    def get_required_credentials(self) -> set[str]:
        return {"access_token"}

    async def authenticate(self, credentials: dict[str, Any]) -> AuthenticationResult:
        """Verify ``access_token``; this provider never issues tokens (the issuer does).

        Raises:
            IssuerUnavailableError: the issuer's keys or introspection endpoint cannot be
                used, so the token cannot be judged (HTTP 503).
        """
        token = credentials.get("access_token")
        if token is None:
            return AuthenticationResult.failure(
                "missing credentials: access_token"
                if "user_id" not in credentials
                else "this provider only verifies tokens; the issuer issues them",
                provider=self.provider_name,
                reason=FailureReason.MISSING_CREDENTIALS,
            )
        try:
            if type(token) is str and len(token) <= MAX_TOKEN_LENGTH:
                hit = self._cached(token)
                if hit is not None:
                    return self._result_of(hit)
            claims = await self._verify(token)
        except TokenRejectedError as exc:
            return AuthenticationResult.failure(str(exc), provider=self.provider_name)
        return self._result(claims)

    async def validate_authentication(self, auth_data: dict[str, Any]) -> bool:
        """Whether ``access_token`` verifies now (an unreachable issuer still raises)."""
        token = auth_data.get("access_token")
        if token is None:
            return False
        try:
            await self.verify(token)
        except TokenRejectedError:
            return False
        return True

    async def verify(self, token: Any) -> dict[str, Any]:
        """The verified claims of an access token.

        Raises:
            TokenRejectedError: the token is refused (the message says why, safely).
            IssuerUnavailableError: the token cannot be judged now.
        """
        if type(token) is str and len(token) <= MAX_TOKEN_LENGTH:
            hit = self._cached(token)
            if hit is not None:
                return dict(hit.claims)
        return await self._verify(token)

    async def _verify(self, token: Any) -> dict[str, Any]:
        """:meth:`verify` without the cache lookup."""
        if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_LENGTH:
            raise TokenRejectedError("malformed token")
        if token.count(".") != 2:
            if self._introspector is None:
                raise TokenRejectedError("malformed token")
            return await self._introspect(token)
        return await self._verify_jwt(token)

    # --- JWT access tokens ---------------------------------------------------------------

    async def _verify_jwt(self, token: str) -> dict[str, Any]:
        header = _segment(token, 0)
        refused = REFUSED_HEADERS.intersection(header)
        if refused:
            raise TokenRejectedError(f"token header parameter not accepted: {sorted(refused)[0]}")
        alg, kid, typ = header.get("alg"), header.get("kid"), header.get("typ")
        if not isinstance(alg, str) or alg not in self.algorithms:
            raise TokenRejectedError("algorithm not allowed")
        if kid is not None and not isinstance(kid, str):
            raise TokenRejectedError("malformed token")
        self._check_type(typ)
        # Refused before any key lookup: a token of another issuer never makes us fetch keys.
        if _segment(token, 1).get("iss") not in self.issuers:
            raise TokenRejectedError("invalid issuer")
        try:
            key = await self.jwks.get_key(kid, alg)
        except UnknownKeyError as exc:
            raise TokenRejectedError(str(exc)) from None
        try:
            claims: dict[str, Any] = self._jwt.decode(
                token,
                key,
                algorithms=[alg],
                audience=list(self.audiences) if self.audience_claim == "aud" else None,
                issuer=list(self.issuers),
                leeway=self.leeway,
            )
        except jwt.PyJWTError as exc:
            raise TokenRejectedError(_describe(exc)) from None
        except (ValueError, TypeError, OverflowError):
            raise TokenRejectedError("malformed token") from None
        self._check_claims(claims)
        if self._cache.maxsize:
            self._remember(token, claims, key, kid, alg)
        return claims

    # --- the verified-token cache --------------------------------------------------------

    def _remember(
        self, token: str, claims: dict[str, Any], key: Any, kid: str | None, alg: str
    ) -> None:
        exp, iat = claims.get("exp"), claims.get("iat")
        try:
            entry = _Verified(
                claims=claims,
                key=key,
                kid=kid,
                alg=alg,
                exp=int(exp),  # type: ignore[arg-type]  # a number: _check_claims held it
                nbf=_int_or_none(claims, "nbf"),
                iat=_int_or_none(claims, "iat"),
                iat_raw=iat,
                subject=claims.get("sub"),
                scopes=scopes_from(claims, self.scope_claims),
                client_id=self._client_id(claims),
                issuer=claims.get("iss"),
                expires_at=datetime.fromtimestamp(exp, tz=UTC) if _number(exp) else None,
            )
        except (TypeError, ValueError, OverflowError, OSError):
            return  # anything odd is simply verified in full next time
        # Only if the key is still the current one: a refresh during this verification
        # must not let a token of a removed key into the cache.
        if self.jwks.fresh_key(kid, alg) is key:
            self._cache.put(token, entry)

    def _cached(self, token: str) -> _Verified | None:
        """The cache entry for ``token`` if it still holds now; ``None``: verify in full.

        Raises:
            TokenRejectedError: the token verified before but fails now (expired, a check).
        """
        entry = self._cache.get(token)
        if entry is None:
            return None
        if self.jwks.fresh_key(entry.kid, entry.alg) is not entry.key:
            self._cache.invalidate(token)  # key removed, or the set is due a refresh
            return None
        now = time.time()
        leeway = self.leeway
        try:
            # The comparisons a full verification makes (PyJWT's, then _check_claims').
            if entry.iat is not None and entry.iat > now + leeway:
                raise TokenRejectedError("token not yet valid")
            if entry.nbf is not None and entry.nbf > now + leeway:
                raise TokenRejectedError("token not yet valid")
            if entry.exp <= now - leeway:
                raise TokenRejectedError("token expired")
            if entry.iat_raw is not None and entry.iat_raw > now + leeway:
                raise TokenRejectedError("invalid iat claim")
            for check in self.checks:
                problem = check(entry.claims)
                if problem:
                    raise TokenRejectedError(problem)
        except TokenRejectedError:
            self._cache.discard(token)
            raise
        return entry

    @property
    def verified_cache(self) -> VerifiedTokenCache[_Verified]:
        """The cache of verified JWTs (its ``hits``, ``misses`` and size, for operators)."""
        return self._cache

    def _result_of(self, entry: _Verified) -> AuthenticationResult:
        # Fresh containers per request: strategies and apps may change the result.
        return AuthenticationResult.granted(
            entry.subject,
            self.provider_name,
            {
                "scopes": list(entry.scopes),
                "client_id": entry.client_id,
                "issuer": entry.issuer,
                "claims": dict(entry.claims),
            },
            entry.expires_at,
        )

    def _check_type(self, typ: Any) -> None:
        if typ is not None and not isinstance(typ, str):
            raise TokenRejectedError("malformed token")
        kind = typ.lower() if typ is not None else None
        if self.require_at_jwt:
            if kind not in AT_JWT_TYPES:
                raise TokenRejectedError("not an access token (typ must be at+jwt)")
        elif kind is not None and kind not in AT_JWT_TYPES | _PLAIN_JWT_TYPES:
            # An ID token, logout token or DPoP proof is never an access token.
            raise TokenRejectedError("not an access token")

    def _check_claims(self, claims: Mapping[str, Any]) -> None:
        now = time.time()
        for claim in self.required_claims:
            if claim not in claims:
                raise TokenRejectedError(f"missing required claim: {claim}")
        exp = claims.get("exp")
        if not _number(exp) or exp > _LATEST_EXP:
            raise TokenRejectedError("invalid exp claim")
        iat = claims.get("iat")
        if iat is not None and (not _number(iat) or iat > now + self.leeway):
            raise TokenRejectedError("invalid iat claim")
        sub = claims.get("sub")
        if "sub" in claims and (not isinstance(sub, str) or not sub):
            raise TokenRejectedError("invalid sub claim")
        for claim in ("client_id", "jti"):
            if claim in claims and not isinstance(claims[claim], str):
                raise TokenRejectedError(f"invalid {claim} claim")
        if self.audience_claim != "aud" and not set(
            strings(claims.get(self.audience_claim))
        ).intersection(self.audiences):
            raise TokenRejectedError("invalid audience")
        for check in self.checks:
            problem = check(claims)
            if problem:
                raise TokenRejectedError(problem)

    # --- opaque tokens -------------------------------------------------------------------

    async def _introspect(self, token: str) -> dict[str, Any]:
        assert self._introspector is not None
        claims = await self._introspector.introspect(token)
        if claims is None:
            raise TokenRejectedError("token not active")
        now = time.time()
        exp = claims.get("exp")
        if exp is not None and (not _number(exp) or exp > _LATEST_EXP):
            raise TokenRejectedError("invalid exp claim")
        if exp is not None and exp + self.leeway <= now:
            raise TokenRejectedError("token expired")
        nbf = claims.get("nbf")
        if nbf is not None and (not _number(nbf) or nbf - self.leeway > now):
            raise TokenRejectedError("token not yet valid")
        iss = claims.get("iss")
        if iss is not None and iss not in self.issuers:
            raise TokenRejectedError("invalid issuer")
        assert self.introspection is not None
        if self.introspection.require_audience and not set(strings(claims.get("aud"))).intersection(
            self.audiences
        ):
            raise TokenRejectedError("invalid audience")
        if str(claims.get("token_type", "access_token")).lower() in ("refresh_token", "id_token"):
            raise TokenRejectedError("not an access token")
        subject = claims.get("sub") or claims.get("client_id") or claims.get("username")
        if not isinstance(subject, str) or not subject:
            raise TokenRejectedError("the token names no subject")
        for check in self.checks:
            problem = check(claims)
            if problem:
                raise TokenRejectedError(problem)
        return {**claims, "sub": subject}

    # --- results -------------------------------------------------------------------------

    def _client_id(self, claims: Mapping[str, Any]) -> str | None:
        return next(
            (claims[c] for c in self.client_id_claims if isinstance(claims.get(c), str)), None
        )

    def _result(self, claims: dict[str, Any]) -> AuthenticationResult:
        client_id = self._client_id(claims)
        exp = claims.get("exp")
        # Claims verified above: no per-request re-validation of our own values.
        return AuthenticationResult.granted(
            claims["sub"],
            self.provider_name,
            {
                "scopes": scopes_from(claims, self.scope_claims),
                "client_id": client_id,
                "issuer": claims.get("iss"),
                "claims": claims,
            },
            datetime.fromtimestamp(exp, tz=UTC) if _number(exp) else None,
        )

    # --- request integration -------------------------------------------------------------

    async def extract_credentials(self, connection: HTTPConnection) -> dict[str, Any] | None:
        """``Authorization: Bearer <token>`` (RFC 6750 section 2.1), read unambiguously.

        On WebSocket connections also the ``access_token`` query parameter (RFC 6750
        section 2.3), since browsers cannot set headers there.
        """
        token = bearer_token(connection)
        if token is not None:
            return {"access_token": token}
        if connection.scope["type"] == "websocket":
            values = connection.query_params.getlist("access_token")
            if len(values) == 1 and values[0]:
                return {"access_token": values[0]}
        return None

    def security_schemes(self) -> list[SecurityBase]:
        """OAuth2 with the issuer's endpoints, else OpenID Connect discovery, else Bearer."""
        from fastapi.openapi.models import OAuthFlowAuthorizationCode, OAuthFlowClientCredentials
        from fastapi.openapi.models import OAuthFlows as OAuthFlowsModel
        from fastapi.security import HTTPBearer, OAuth2, OpenIdConnect

        if self.token_url:
            flows = OAuthFlowsModel(
                authorizationCode=OAuthFlowAuthorizationCode(
                    authorizationUrl=self.authorization_url,
                    tokenUrl=self.token_url,
                    scopes=self.openapi_scopes,
                )
                if self.authorization_url
                else None,
                clientCredentials=None
                if self.authorization_url
                else OAuthFlowClientCredentials(
                    tokenUrl=self.token_url, scopes=self.openapi_scopes
                ),
            )
            return [OAuth2(flows=flows, scheme_name=self.provider_name, auto_error=False)]
        if self.metadata is not None and self.metadata.urls[0].endswith("/openid-configuration"):
            return [
                OpenIdConnect(
                    openIdConnectUrl=self.metadata.urls[0],
                    scheme_name=self.provider_name,
                    auto_error=False,
                )
            ]
        return [HTTPBearer(bearerFormat="JWT", scheme_name=self.provider_name, auto_error=False)]

    def challenge(self) -> str:
        return "Bearer"

    async def aclose(self) -> None:
        """Stop a background key refresh and close our HTTP client."""
        await self.jwks.aclose()
        await self._http.aclose()


__all__ = [
    "AT_JWT_TYPES",
    "MAX_TOKEN_LENGTH",
    "REFUSED_HEADERS",
    "RFC9068_CLAIMS",
    "ClaimCheck",
    "IssuerUnavailableError",
    "ResourceServerProvider",
    "TokenRejectedError",
]
