"""Test helpers: an in-memory issuer that signs access tokens for a configured provider.

::

    issuer = LocalIssuer("https://login.example.com/")
    provider = ResourceServerProvider(issuer=issuer.issuer, audience="https://api")
    issuer.attach(provider)       # its metadata and keys are served to this provider
    token = issuer.token_for(provider, sub="alice", scopes=["read"])

The issuer's metadata document and key set are answered through an ``httpx`` transport,
so the provider runs its real discovery, caching and key selection; nothing listens on
a socket. ``issuer.requests`` counts what the provider fetched, ``issuer.available =
False`` makes every fetch fail as an unreachable host would.
"""

from __future__ import annotations

import secrets
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import get_default_algorithms

from .provider import ResourceServerProvider

_CURVES: dict[str, Callable[[], ec.EllipticCurve]] = {
    "ES256": ec.SECP256R1,
    "ES384": ec.SECP384R1,
    "ES512": ec.SECP521R1,
}
_ALGORITHMS = get_default_algorithms()


def generate_key(algorithm: str) -> Any:
    """A fresh private key for an asymmetric JWS algorithm."""
    if algorithm.startswith(("RS", "PS")):
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if algorithm in _CURVES:
        return ec.generate_private_key(_CURVES[algorithm]())
    if algorithm == "EdDSA":
        return ed25519.Ed25519PrivateKey.generate()
    raise ValueError(f"no test key for {algorithm!r}")


def public_jwk(private_key: Any, algorithm: str, kid: str) -> dict[str, Any]:
    """The public JWK of a private key, with ``kid``, ``alg`` and ``use``."""
    jwk = dict(_ALGORITHMS[algorithm].to_jwk(private_key.public_key(), as_dict=True))
    return {**jwk, "kid": kid, "alg": algorithm, "use": "sig"}


@dataclass
class SigningKey:
    """One of the issuer's keys."""

    kid: str
    algorithm: str
    private_key: Any
    published: bool = True


class LocalIssuer:
    """An authorization server's signing half, for tests.

    Args:
        issuer: the issuer identifier (its metadata is served at the OIDC well-known URL).
        algorithm: the signing algorithm of the first key.
        typ: the ``typ`` header of minted tokens (RFC 9068's ``at+jwt``).
        cache_control: the ``Cache-Control`` header the key set is served with.
    """

    def __init__(
        self,
        issuer: str = "https://issuer.example.test/",
        *,
        algorithm: str = "ES256",
        typ: str | None = "at+jwt",
        cache_control: str | None = "public, max-age=300",
    ) -> None:
        self.issuer = issuer
        self.typ = typ
        self.cache_control = cache_control
        self.available = True
        self.requests: Counter[str] = Counter()
        base = issuer.rstrip("/")
        self.jwks_uri = f"{base}/jwks"
        self.introspection_endpoint = f"{base}/introspect"
        self.keys: list[SigningKey] = []
        self.opaque: dict[str, dict[str, Any]] = {}
        self.rotate(algorithm)

    # --- keys ----------------------------------------------------------------------------

    @property
    def signing_key(self) -> SigningKey:
        """The key new tokens are signed with (the newest)."""
        return self.keys[-1]

    def rotate(self, algorithm: str | None = None) -> str:
        """Add a new signing key (the old ones stay published); returns its kid."""
        algorithm = algorithm or self.signing_key.algorithm
        kid = secrets.token_urlsafe(8)
        self.keys.append(SigningKey(kid, algorithm, generate_key(algorithm)))
        return kid

    def retire(self, kid: str) -> None:
        """Stop publishing a key (tokens it signed stop verifying at the next fetch)."""
        for key in self.keys:
            if key.kid == kid:
                key.published = False

    def jwks(self) -> dict[str, Any]:
        """The published key set."""
        return {
            "keys": [
                public_jwk(k.private_key, k.algorithm, k.kid) for k in self.keys if k.published
            ]
        }

    def metadata(self) -> dict[str, Any]:
        """The metadata document (OIDC Discovery / RFC 8414 fields a resource server uses)."""
        base = self.issuer.rstrip("/")
        return {
            "issuer": self.issuer,
            "jwks_uri": self.jwks_uri,
            "authorization_endpoint": f"{base}/authorize",
            "token_endpoint": f"{base}/token",
            "introspection_endpoint": self.introspection_endpoint,
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": [self.signing_key.algorithm],
        }

    # --- tokens --------------------------------------------------------------------------

    def token(
        self,
        *,
        sub: str = "user",
        audience: str | list[str] = "https://api.example.test",
        scope: str | None = None,
        client_id: str = "test-client",
        lifetime: float = 300,
        claims: Mapping[str, Any] | None = None,
        headers: Mapping[str, Any] | None = None,
        key: SigningKey | None = None,
    ) -> str:
        """A signed access token (RFC 9068 shape); ``claims`` and ``headers`` override."""
        key = key or self.signing_key
        now = int(time.time())
        payload: dict[str, Any] = {
            "iss": self.issuer,
            "sub": sub,
            "aud": audience,
            "client_id": client_id,
            "iat": now,
            "exp": now + int(lifetime),
            "jti": secrets.token_urlsafe(12),
        }
        if scope is not None:
            payload["scope"] = scope
        payload.update(claims or {})
        header: dict[str, Any] = {"kid": key.kid}
        if self.typ is not None:
            header["typ"] = self.typ
        header.update(headers or {})
        return jwt.encode(
            {k: v for k, v in payload.items() if v is not None},
            key.private_key,
            algorithm=key.algorithm,
            headers={k: v for k, v in header.items() if v is not None},
        )

    def token_for(
        self,
        provider: ResourceServerProvider,
        *,
        sub: str = "user",
        scopes: Iterable[str] = (),
        claims: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> str:
        """A token ``provider`` accepts: its audience, scopes where it reads them first."""
        scope_list = sorted(set(scopes))
        extra: dict[str, Any] = {}
        path = provider.scope_claims[0] if provider.scope_claims else ("scope",)
        value: Any = " ".join(scope_list) if path == ("scope",) else scope_list
        for step in reversed(path):
            value = {step: value}
        extra.update(value)
        audience = provider.audiences[0]
        if provider.audience_claim != "aud":
            extra[provider.audience_claim] = audience
            options.setdefault("audience", None)
        else:
            options.setdefault("audience", audience)
        extra.update(claims or {})
        return self.token(sub=sub, claims=extra, **options)

    def opaque_token(self, claims: Mapping[str, Any], *, active: bool = True) -> str:
        """An opaque token the introspection endpoint answers for with ``claims``."""
        token = secrets.token_urlsafe(24)
        self.opaque[token] = {"active": active, **claims}
        return token

    # --- HTTP ----------------------------------------------------------------------------

    def handle(self, request: httpx.Request) -> httpx.Response:
        """Answer one request to the issuer (metadata, key set, introspection)."""
        path = request.url.path
        self.requests[path] += 1
        if not self.available:
            raise httpx.ConnectError("issuer unreachable (LocalIssuer.available is False)")
        if request.url.host != urlsplit(self.issuer).hostname:
            return httpx.Response(404)
        if path.endswith("/.well-known/openid-configuration") or path.startswith(
            "/.well-known/oauth-authorization-server"
        ):
            return httpx.Response(200, json=self.metadata())
        if str(request.url) == self.jwks_uri:
            headers = {"Cache-Control": self.cache_control} if self.cache_control else {}
            return httpx.Response(200, json=self.jwks(), headers=headers)
        if str(request.url) == self.introspection_endpoint and request.method == "POST":
            form = dict(httpx.QueryParams(request.content.decode()))
            return httpx.Response(
                200, json=self.opaque.get(form.get("token", ""), {"active": False})
            )
        return httpx.Response(404)

    def transport(self) -> httpx.MockTransport:
        """An ``httpx`` transport answering as this issuer."""
        return httpx.MockTransport(self.handle)

    def client(self) -> httpx.AsyncClient:
        """An ``httpx.AsyncClient`` whose requests this issuer answers."""
        return httpx.AsyncClient(transport=self.transport())

    def attach(self, provider: ResourceServerProvider) -> ResourceServerProvider:
        """Route ``provider``'s requests to this issuer; returns the provider."""
        provider._http.use(self.client())
        return provider

    def provider(
        self, audience: str | list[str] = "https://api.example.test", **options: Any
    ) -> ResourceServerProvider:
        """A provider for this issuer, already attached."""
        return self.attach(ResourceServerProvider(issuer=self.issuer, audience=audience, **options))


__all__ = ["LocalIssuer", "SigningKey", "generate_key", "public_jwk"]
