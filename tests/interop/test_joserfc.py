"""Our tokens against an independent JOSE implementation (joserfc), both ways, every algorithm.

- fastsecure-jwt issues, joserfc verifies (signature and claims) with the key material
  our provider publishes (its JWKS for asymmetric keys, the shared secret for HMAC).
- joserfc issues a token carrying exactly the claims docs/jwt.md calls required
  (``exp, iat, jti, sub, token_type``), fastsecure-jwt verifies it: nothing undocumented
  may be needed.
- joserfc issues RFC 9068 access tokens and publishes its own JWK Set; the resource server
  (fastsecure-resource) verifies them through its real JWKS fetch.
"""

from __future__ import annotations

import secrets
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from joserfc import jwt as jose_jwt
from joserfc.jwk import ECKey, KeySet, OctKey, OKPKey, RSAKey

from fastsecure_jwt import JWTAuthenticationProvider
from fastsecure_resource import ResourceServerProvider
from fastsecure_resource.testing import generate_key

HMAC = ["HS256", "HS384", "HS512"]
ASYMMETRIC = [
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "ES256",
    "ES384",
    "ES512",
    "EdDSA",
]
ALGORITHMS = HMAC + ASYMMETRIC
ISSUER = "https://issuer.interop.test"
# joserfc follows RFC 9864, which deprecates "EdDSA" for "Ed25519"; PyJWT knows only "EdDSA".
pytestmark = pytest.mark.filterwarnings("ignore:EdDSA is deprecated:Warning")
AUDIENCE = "https://api.interop.test"


def private_pem(key: Any) -> bytes:
    return key.private_bytes(  # type: ignore[no-any-return]
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def jose_key(algorithm: str, material: Any) -> Any:
    """The same key as joserfc sees it (imported from PEM or raw secret, not shared objects)."""
    if algorithm in HMAC:
        return OctKey.import_key(material)
    kind = (
        RSAKey if algorithm[:2] in ("RS", "PS") else ECKey if algorithm.startswith("ES") else OKPKey
    )
    return kind.import_key(private_pem(material))


def our_provider(algorithm: str, **options: Any) -> tuple[JWTAuthenticationProvider, Any]:
    if algorithm in HMAC:
        secret = secrets.token_bytes(64)
        return JWTAuthenticationProvider(secret_key=secret, algorithm=algorithm, **options), secret
    key = generate_key(algorithm)
    return JWTAuthenticationProvider(
        private_key=private_pem(key).decode(), algorithm=algorithm, **options
    ), key


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("with_iss_aud", [False, True], ids=["plain", "iss-aud"])
async def test_our_tokens_verify_in_joserfc(algorithm: str, with_iss_aud: bool) -> None:
    options = {"issuer": ISSUER, "audience": AUDIENCE} if with_iss_aud else {}
    provider, material = our_provider(algorithm, **options)
    issued = await provider.authenticate({"user_id": "alice", "scopes": ["read", "write"]})
    assert issued.success and issued.access_token
    if algorithm in HMAC:
        verifying: Any = OctKey.import_key(material)
    else:
        # Verify with the JWK Set our provider publishes, parsed by joserfc.
        verifying = KeySet.import_key_set(provider.jwks())
    token = jose_jwt.decode(issued.access_token, verifying, algorithms=[algorithm])
    assert token.header["alg"] == algorithm
    claims = token.claims
    registry = jose_jwt.JWTClaimsRegistry(
        sub={"essential": True, "value": "alice"},
        exp={"essential": True},
        iat={"essential": True},
        jti={"essential": True},
        **(
            {
                "iss": {"essential": True, "value": ISSUER},
                "aud": {"essential": True, "value": AUDIENCE},
            }
            if with_iss_aud
            else {}
        ),
    )
    registry.validate(claims)
    assert claims["token_type"] == "access"
    # A tampered payload fails in joserfc too.
    head, body, signature = issued.access_token.split(".")
    with pytest.raises(Exception):
        jose_jwt.decode(f"{head}.{body[:-2]}AA.{signature}", verifying, algorithms=[algorithm])


async def store_generation(provider: Any) -> str:
    """The ``gen`` a cooperating issuer gets by recording the login in the shared store."""
    expires = datetime.now(UTC) + timedelta(hours=1)
    return str(await provider.token_store.start_family("interop-family", "interop-r", expires))


def documented_claims(**extra: Any) -> dict[str, Any]:
    """Exactly what docs/jwt.md lists as required (``gen`` passed in), and nothing else."""
    now = int(time.time())
    return {
        "sub": "bob",
        "exp": now + 300,
        "iat": now,
        "jti": secrets.token_urlsafe(12),
        "token_type": "access",
        **extra,
    }


@pytest.mark.parametrize("algorithm", ALGORITHMS)
async def test_joserfc_tokens_with_the_documented_claims_verify_in_fastsecure_jwt(
    algorithm: str,
) -> None:
    provider, material = our_provider(algorithm)
    header: dict[str, Any] = {"alg": algorithm}
    if algorithm not in HMAC:
        header["kid"] = provider.jwks()["keys"][0]["kid"]
    gen = await store_generation(provider)
    token = jose_jwt.encode(
        header, documented_claims(gen=gen), jose_key(algorithm, material), algorithms=[algorithm]
    )
    result = await provider.authenticate({"access_token": token})
    assert result.success, result.metadata.get("error")
    assert result.user_id == "bob"
    assert result.scopes == frozenset()  # no scopes claim: no scopes


@pytest.mark.parametrize("algorithm", ["HS256", "RS256", "ES256", "EdDSA"])
async def test_joserfc_tokens_with_iss_aud_and_scopes_verify_and_bad_ones_do_not(
    algorithm: str,
) -> None:
    provider, material = our_provider(algorithm, issuer=ISSUER, audience=AUDIENCE)
    key = jose_key(algorithm, material)
    header = {"alg": algorithm}

    gen = await store_generation(provider)

    def mint(**extra: Any) -> str:
        claims = {**documented_claims(iss=ISSUER, aud=AUDIENCE, gen=gen), **extra}
        return jose_jwt.encode(
            header, {k: v for k, v in claims.items() if v is not None}, key, algorithms=[algorithm]
        )

    good = await provider.authenticate({"access_token": mint(scopes=["read"])})
    assert good.success and good.scopes == {"read"}
    for bad in (
        {"aud": "https://other"},
        {"iss": "https://other"},
        {"exp": int(time.time()) - 60},
        {"token_type": "refresh"},
        {"sub": None},
        {"gen": None},  # no store generation: refused (issue 20)
        {"gen": "another"},
    ):
        assert not (await provider.authenticate({"access_token": mint(**bad)})).success, bad
    _, other_material = our_provider(algorithm)
    foreign = jose_jwt.encode(
        header,
        documented_claims(gen=gen),
        jose_key(algorithm, other_material),
        algorithms=[algorithm],
    )
    assert not (await provider.authenticate({"access_token": foreign})).success


@pytest.mark.parametrize("algorithm", ASYMMETRIC)
async def test_joserfc_rfc9068_tokens_verify_in_the_resource_server(algorithm: str) -> None:
    key = jose_key(algorithm, generate_key(algorithm))
    kid = secrets.token_urlsafe(6)
    published = KeySet([key]).as_dict(private=False)
    published["keys"][0].update(kid=kid, alg=algorithm, use="sig")
    fetched: list[str] = []

    def handle(request: httpx.Request) -> httpx.Response:
        fetched.append(request.url.path)
        return httpx.Response(200, json=published)

    provider = ResourceServerProvider(
        issuer=ISSUER,
        audience=AUDIENCE,
        jwks_uri=f"{ISSUER}/jwks",
        http_client=httpx.AsyncClient(transport=httpx.MockTransport(handle)),
    )
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "carol",
        "client_id": "svc",
        "iat": now,
        "exp": now + 300,
        "jti": secrets.token_urlsafe(8),
        "scope": "read write",
    }
    token = jose_jwt.encode(
        {"alg": algorithm, "kid": kid, "typ": "at+jwt"}, claims, key, algorithms=[algorithm]
    )
    result = await provider.authenticate({"access_token": token})
    assert result.success, result.metadata.get("error")
    assert result.user_id == "carol" and result.scopes == {"read", "write"}
    untyped = jose_jwt.encode({"alg": algorithm, "kid": kid}, claims, key, algorithms=[algorithm])
    assert not (
        await provider.authenticate({"access_token": untyped})
    ).success  # typ JWT, not at+jwt
    assert fetched == ["/jwks"]
