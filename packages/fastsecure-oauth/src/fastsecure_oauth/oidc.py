"""OpenID Connect: discovery and ID token verification on top of the OAuth 2.0 provider.

The ID token is verified with PyJWT against the issuer's JWKS (fetched once, cached,
refetched when a token names an unknown key, at most once per
``jwks_min_refresh_interval``): signature, ``iss``, ``aud``, ``azp``, ``exp``, ``iat`` and
``nonce`` whenever the authorization request carried one. Only asymmetric algorithms are
accepted: ``alg: none`` and HMAC-signed tokens (which anyone holding the client secret
could forge) are refused.
"""

from __future__ import annotations

import asyncio
import hmac
import time
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

import jwt

from fastsecure import AuthenticationResult

from .exceptions import IDTokenError, OAuthConfigurationError, OAuthError, ProviderError
from .provider import OAuth2Provider, TokenEndpointAuthMethod

DISCOVERY_PATH = "/.well-known/openid-configuration"
ASYMMETRIC_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
_SIGNING_KEY_TYPES = frozenset({"RSA", "EC", "OKP"})


class OpenIDConnectProvider(OAuth2Provider):
    """Any OpenID Connect issuer (Keycloak, Auth0, Okta, Azure AD...), self-configuring.

    The endpoints come from ``<issuer>/.well-known/openid-configuration``, fetched once on
    first use (or by ``await provider.discover()``); any endpoint given explicitly wins
    over the discovered one. With ``discovery=False`` every endpoint must be given.

    Args:
        client_id, client_secret, redirect_uri: as registered with the issuer.
        issuer: the issuer identifier; ID tokens must carry it as ``iss`` exactly.
        discovery: fetch the issuer's metadata document.
        jwks_uri: the issuer's key set (else discovered).
        accepted_issuers: further ``iss`` values to accept (Google sends two spellings).
        id_token_algorithms: accepted signing algorithms (asymmetric ones only).
        leeway: seconds of clock skew allowed on ``exp`` and ``iat``.
        jwks_min_refresh_interval: seconds between two JWKS fetches triggered by unknown keys.
        **kwargs: endpoints and options of :class:`~fastsecure_oauth.OAuth2Provider`.
    """

    provider_type: ClassVar[str] = "oidc"
    default_scopes: ClassVar[tuple[str, ...]] = ("openid", "email", "profile")
    default_token_endpoint_auth_method: ClassVar[TokenEndpointAuthMethod] = "client_secret_basic"  # noqa: S105
    uses_nonce: ClassVar[bool] = True

    def __init__(
        self,
        client_id: str,
        client_secret: str | None = None,
        redirect_uri: str | None = None,
        *,
        issuer: str,
        discovery: bool = True,
        jwks_uri: str | None = None,
        accepted_issuers: Iterable[str] = (),
        id_token_algorithms: Iterable[str] | None = None,
        leeway: float = 60.0,
        jwks_min_refresh_interval: float = 60.0,
        **kwargs: Any,
    ) -> None:
        if not issuer:
            raise OAuthConfigurationError("issuer is required")
        self.issuer = issuer
        self.discovery = discovery
        self.jwks_uri = jwks_uri
        self.accepted_issuers: tuple[str, ...] = (issuer, *accepted_issuers)
        algorithms = set(id_token_algorithms or ASYMMETRIC_ALGORITHMS)
        unsafe = algorithms - ASYMMETRIC_ALGORITHMS
        if unsafe:
            raise OAuthConfigurationError(f"ID token algorithms {sorted(unsafe)} are not accepted")
        self.id_token_algorithms = frozenset(algorithms)
        self.leeway = leeway
        self.jwks_min_refresh_interval = jwks_min_refresh_interval
        self.metadata: dict[str, Any] | None = None
        self._explicit = {
            k: v for k, v in kwargs.items() if k.endswith("_endpoint") and v is not None
        }
        self._discovery_lock = asyncio.Lock()
        self._jwks_lock = asyncio.Lock()
        self._jwks: list[dict[str, Any]] | None = None
        self._jwks_fetched_at = 0.0
        self._keys: dict[tuple[str | None, str], jwt.PyJWK] = {}
        super().__init__(client_id, client_secret, redirect_uri, **kwargs)

    def _check_endpoints(self) -> None:
        if not self.discovery and not (
            self.authorize_endpoint and self.access_token_endpoint and self.jwks_uri
        ):
            raise OAuthConfigurationError(
                f"{type(self).__name__} without discovery needs authorize_endpoint, "
                "access_token_endpoint and jwks_uri"
            )

    # --- discovery --------------------------------------------------------------------

    @property
    def discovery_url(self) -> str:
        """Where the issuer's metadata document lives (OIDC Discovery 4)."""
        return self.issuer.rstrip("/") + DISCOVERY_PATH

    def _discovered(self) -> bool:
        return self.metadata is not None

    async def discover(self) -> None:
        """Fetch the issuer's metadata once; later calls return at once.

        A failure is not cached: the next login tries again.

        Raises:
            ProviderError: unreachable, malformed, or naming another issuer.
        """
        if self.metadata is not None or not self.discovery:
            return
        async with self._discovery_lock:
            if self._discovered():
                return  # another task discovered while this one waited
            response = await self._send(
                "GET", self.discovery_url, "discovery", headers={"Accept": "application/json"}
            )
            if response.is_error:
                raise ProviderError(
                    f"discovery: the issuer answered HTTP {response.status_code}",
                    provider=self.provider_name,
                    status_code=response.status_code,
                )
            metadata = self._decode_json(response, "discovery")
            # OIDC Discovery 4.3: the document must name the issuer it was fetched for.
            if str(metadata.get("issuer", "")).rstrip("/") != self.issuer.rstrip("/"):
                raise ProviderError(
                    "discovery: the metadata names another issuer", provider=self.provider_name
                )
            for field, attribute in (
                ("authorization_endpoint", "authorize_endpoint"),
                ("token_endpoint", "access_token_endpoint"),
                ("userinfo_endpoint", "userinfo_endpoint"),
                ("revocation_endpoint", "revocation_endpoint"),
                ("introspection_endpoint", "introspection_endpoint"),
            ):
                value = metadata.get(field)
                if attribute not in self._explicit and isinstance(value, str) and value:
                    setattr(self, attribute, value)
            if self.jwks_uri is None and isinstance(metadata.get("jwks_uri"), str):
                self.jwks_uri = metadata["jwks_uri"]
            if metadata["issuer"] not in self.accepted_issuers:
                self.accepted_issuers = (*self.accepted_issuers, str(metadata["issuer"]))
            if not (self.authorize_endpoint and self.access_token_endpoint and self.jwks_uri):
                raise ProviderError(
                    "discovery: the metadata lacks the authorization, token or JWKS endpoint",
                    provider=self.provider_name,
                )
            self.metadata = metadata

    async def _login(self, code: str, credentials: Mapping[str, Any]) -> AuthenticationResult:
        await self.discover()
        return await super()._login(code, credentials)

    async def _verify_access_token(
        self, token: str, credentials: Mapping[str, Any]
    ) -> AuthenticationResult:
        await self.discover()
        return await super()._verify_access_token(token, credentials)

    async def validate_authentication(self, auth_data: dict[str, Any]) -> bool:
        """See :meth:`OAuth2Provider.validate_authentication`; discovers first."""
        try:
            await self.discover()
        except OAuthError:
            return False
        return await super().validate_authentication(auth_data)

    async def refresh_authentication(self, auth_data: dict[str, Any]) -> AuthenticationResult:
        """See :meth:`OAuth2Provider.refresh_authentication`; discovers first."""
        try:
            await self.discover()
        except OAuthError as exc:
            return self._failure(str(exc))
        return await super().refresh_authentication(auth_data)

    async def revoke_authentication(self, auth_data: dict[str, Any]) -> bool:
        """See :meth:`OAuth2Provider.revoke_authentication`; discovers first."""
        try:
            await self.discover()
        except OAuthError:
            return False
        return await super().revoke_authentication(auth_data)

    # --- JWKS -------------------------------------------------------------------------

    async def _fetch_jwks(self) -> None:
        response = await self._send(
            "GET", self.jwks_uri, "JWKS", headers={"Accept": "application/json"}
        )
        if response.is_error:
            raise ProviderError(
                f"JWKS: the issuer answered HTTP {response.status_code}",
                provider=self.provider_name,
            )
        keys = self._decode_json(response, "JWKS").get("keys")
        if not isinstance(keys, list):
            raise ProviderError("JWKS: the key set has no keys", provider=self.provider_name)
        self._jwks = [key for key in keys if isinstance(key, dict)]
        self._keys.clear()
        self._jwks_fetched_at = time.monotonic()

    def _find_jwk(self, kid: str | None, alg: str) -> dict[str, Any] | None:
        candidates = [
            key
            for key in self._jwks or ()
            if key.get("kty") in _SIGNING_KEY_TYPES
            and key.get("use", "sig") == "sig"
            and key.get("alg", alg) == alg
        ]
        if kid is not None:
            return next((key for key in candidates if key.get("kid") == kid), None)
        # No kid: acceptable only when the issuer has exactly one signing key.
        return candidates[0] if len(candidates) == 1 else None

    async def _signing_key(self, kid: str | None, alg: str) -> jwt.PyJWK:
        cached = self._keys.get((kid, alg))
        if cached is not None:
            return cached
        async with self._jwks_lock:
            if self._jwks is None:
                await self._fetch_jwks()
            jwk = self._find_jwk(kid, alg)
            if (
                jwk is None
                and time.monotonic() - self._jwks_fetched_at >= self.jwks_min_refresh_interval
            ):
                # An attempt counts even if it fails: a down issuer is not asked once per token.
                self._jwks_fetched_at = time.monotonic()
                await self._fetch_jwks()  # the issuer may have rotated its keys
                jwk = self._find_jwk(kid, alg)
        if jwk is None:
            raise IDTokenError(
                "no key in the issuer's JWKS matches the ID token", provider=self.provider_name
            )
        try:
            key = jwt.PyJWK(jwk, algorithm=alg)
        except jwt.PyJWTError:
            raise IDTokenError(
                "the issuer's key does not fit the ID token algorithm", provider=self.provider_name
            ) from None
        self._keys[(kid, alg)] = key
        return key

    # --- ID tokens --------------------------------------------------------------------

    async def verify_id_token(self, id_token: str, *, nonce: str | None = None) -> dict[str, Any]:
        """Verify an ID token and return its claims.

        Args:
            id_token: the compact JWS from the token response.
            nonce: the nonce the authorization request carried; the token must echo it.

        Raises:
            IDTokenError: any check failed.
            ProviderError: the issuer's keys could not be fetched.
        """
        await self.discover()
        try:
            header = jwt.get_unverified_header(id_token)
        except jwt.PyJWTError:
            raise IDTokenError("the ID token is malformed", provider=self.provider_name) from None
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self.id_token_algorithms:
            raise IDTokenError(
                f"the ID token algorithm {str(alg)[:20]!r} is not accepted",
                provider=self.provider_name,
            )
        kid = header.get("kid")
        key = await self._signing_key(kid if isinstance(kid, str) else None, alg)
        try:
            claims: dict[str, Any] = jwt.decode(
                id_token,
                key=key,
                algorithms=[alg],
                audience=self.client_id,
                issuer=self.accepted_issuers,
                leeway=self.leeway,
                options={"require": ["iss", "sub", "aud", "exp", "iat"]},
            )
        except jwt.ExpiredSignatureError:
            raise IDTokenError("the ID token has expired", provider=self.provider_name) from None
        except jwt.InvalidAudienceError:
            raise IDTokenError(
                "the ID token is for another audience", provider=self.provider_name
            ) from None
        except jwt.InvalidIssuerError:
            raise IDTokenError(
                "the ID token is from another issuer", provider=self.provider_name
            ) from None
        except jwt.ImmatureSignatureError:
            raise IDTokenError(
                "the ID token is issued in the future", provider=self.provider_name
            ) from None
        except jwt.InvalidSignatureError:
            raise IDTokenError(
                "the ID token signature is invalid", provider=self.provider_name
            ) from None
        except jwt.PyJWTError as exc:
            raise IDTokenError(
                f"the ID token is invalid ({type(exc).__name__})", provider=self.provider_name
            ) from None
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        azp = claims.get("azp")
        # OIDC Core 3.1.3.7 (4, 5): several audiences need azp, and azp must be us.
        if (len(audiences) > 1 and azp is None) or (azp is not None and azp != self.client_id):
            raise IDTokenError(
                "the ID token was issued to another party (azp)", provider=self.provider_name
            )
        if nonce is not None:
            token_nonce = claims.get("nonce")
            if not isinstance(token_nonce, str) or not hmac.compare_digest(
                token_nonce.encode(), nonce.encode()
            ):
                raise IDTokenError(
                    "the ID token nonce does not match the login request",
                    provider=self.provider_name,
                )
        self.check_claims(claims)
        return claims

    def check_claims(self, claims: Mapping[str, Any]) -> None:
        """Provider-specific claim checks after the standard ones (Google: ``hd``)."""

    async def verify_token_response(
        self, tokens: Mapping[str, Any], *, nonce: str | None, refresh: bool = False
    ) -> dict[str, Any] | None:
        """Verify the ID token; a login that requested ``openid`` must carry one."""
        id_token = tokens.get("id_token")
        if id_token is None:
            if refresh or "openid" not in self.scopes:
                return None  # OIDC Core 12.2: a refresh may omit it
            raise IDTokenError(
                "the token response carries no ID token", provider=self.provider_name
            )
        if not isinstance(id_token, str):
            raise IDTokenError("the ID token is malformed", provider=self.provider_name)
        return await self.verify_id_token(id_token, nonce=nonce)

    def security_schemes(self) -> list[Any]:
        """OAuth2 authorization code with known endpoints, else OpenID Connect discovery."""
        if not self.accept_bearer_tokens:
            return []
        if self.authorize_endpoint and self.access_token_endpoint:
            return super().security_schemes()
        from fastapi.security import OpenIdConnect

        return [
            OpenIdConnect(
                openIdConnectUrl=self.discovery_url,
                scheme_name=self.provider_name,
                auto_error=False,
            )
        ]


__all__ = ["ASYMMETRIC_ALGORITHMS", "DISCOVERY_PATH", "OpenIDConnectProvider"]
