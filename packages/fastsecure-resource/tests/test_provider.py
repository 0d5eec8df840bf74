"""The provider's checks, against tokens minted by the in-memory issuer."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from fastapi import Depends, FastAPI

from fastsecure import AuthenticationManager, AuthenticationResult, ConfigurationError
from fastsecure_resource import (
    Introspection,
    IssuerUnavailableError,
    ResourceServerProvider,
    TokenRejectedError,
    claims,
)
from fastsecure_resource.testing import LocalIssuer, generate_key

API = "https://api.example.test"


async def verify(provider: ResourceServerProvider, token: str) -> AuthenticationResult:
    return await provider.authenticate({"access_token": token})


async def rejected(provider: ResourceServerProvider, token: str) -> str:
    result = await verify(provider, token)
    assert not result.success
    return str(result.metadata["error"])


def b64(value: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


@pytest.mark.parametrize("algorithm", ["RS256", "PS384", "ES256", "ES384", "ES512", "EdDSA"])
async def test_every_asymmetric_algorithm_verifies(algorithm: str) -> None:
    issuer = LocalIssuer(algorithm=algorithm)
    provider = issuer.provider(API)
    result = await verify(provider, issuer.token_for(provider, sub="alice", scopes=["read"]))
    assert result.success, result.metadata
    assert result.user_id == "alice"
    assert result.scopes == {"read"}
    assert result.metadata["client_id"] == "test-client"
    assert result.metadata["claims"]["iss"] == issuer.issuer
    assert result.expires_at is not None


async def test_issuer_audience_and_time_claims(local_issuer: LocalIssuer) -> None:
    provider = local_issuer.provider(API, leeway=5)
    assert (
        await rejected(provider, local_issuer.token(audience="https://other")) == "invalid audience"
    )
    assert (await verify(provider, local_issuer.token(audience=["https://other", API]))).success
    now = int(time.time())
    assert await rejected(provider, local_issuer.token(claims={"exp": now - 10})) == "token expired"
    assert (await verify(provider, local_issuer.token(claims={"exp": now - 2}))).success  # leeway
    assert (
        await rejected(provider, local_issuer.token(claims={"nbf": now + 60}))
        == "token not yet valid"
    )
    assert (
        await rejected(provider, local_issuer.token(claims={"iat": now + 60}))
        == "token not yet valid"
    )
    # Another issuer's token is refused before any key lookup: nothing is fetched for it.
    other = LocalIssuer("https://evil.example.test/")
    assert await rejected(provider, other.token(audience=API)) == "invalid issuer"
    assert (
        await rejected(provider, local_issuer.token(claims={"iss": "https://login.example.test"}))
        == "invalid issuer"
    )
    assert local_issuer.requests["/jwks"] == 1


@pytest.mark.parametrize("claim", ["iss", "exp", "aud", "sub", "client_id", "iat", "jti"])
async def test_rfc9068_claims_are_required(local_issuer: LocalIssuer, claim: str) -> None:
    provider = local_issuer.provider(API)
    token = local_issuer.token(claims={claim: None})
    assert claim in await rejected(provider, token) or "issuer" in await rejected(provider, token)


async def test_claim_types_are_checked(local_issuer: LocalIssuer) -> None:
    provider = local_issuer.provider(API)
    for bad in ({"sub": ""}, {"sub": 42}, {"client_id": 7}, {"exp": "soon"}, {"jti": []}):
        assert not (await verify(provider, local_issuer.token(claims=bad))).success, bad


async def test_typ_at_jwt_is_required_by_default(local_issuer: LocalIssuer) -> None:
    provider = local_issuer.provider(API)
    for typ in (None, "JWT", "id_token+jwt", "dpop+jwt"):
        token = local_issuer.token(headers={"typ": typ})
        assert "access token" in await rejected(provider, token), typ
    assert (
        await verify(provider, local_issuer.token(headers={"typ": "application/at+JWT"}))
    ).success
    relaxed = local_issuer.provider(API, require_at_jwt=False)
    assert (await verify(relaxed, local_issuer.token(headers={"typ": None}))).success
    assert (await verify(relaxed, local_issuer.token(headers={"typ": "JWT"}))).success
    assert not (await verify(relaxed, local_issuer.token(headers={"typ": "logout+jwt"}))).success


@pytest.mark.parametrize("header", ["jku", "x5u", "jwk", "x5c", "crit"])
async def test_headers_naming_keys_are_refused_without_any_fetch(header: str) -> None:
    issuer = LocalIssuer()
    provider = issuer.provider(API)
    value: Any = (
        {"kty": "EC"}
        if header == "jwk"
        else ["exp"]
        if header in ("crit", "x5c")
        else "https://attacker.example/keys"
    )
    seen: list[str] = []
    issuer.handle = _recording(issuer.handle, seen)  # type: ignore[method-assign]
    issuer.attach(provider)
    assert "not accepted" in await rejected(provider, issuer.token(headers={header: value}))
    assert seen == []  # not even the issuer's own keys were fetched


def _recording(handle: Any, seen: list[str]) -> Any:
    def wrapped(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return handle(request)  # type: ignore[no-any-return]

    return wrapped


async def test_algorithm_confusion_and_none_are_refused(local_issuer: LocalIssuer) -> None:
    rsa_issuer = LocalIssuer(algorithm="RS256")
    provider = rsa_issuer.provider(API)
    assert (await verify(provider, rsa_issuer.token_for(provider))).success
    public_pem = rsa_issuer.signing_key.private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = {"alg": "HS256", "typ": "at+jwt", "kid": rsa_issuer.signing_key.kid}
    payload = jwt.decode(rsa_issuer.token_for(provider), options={"verify_signature": False})
    signing_input = f"{b64(header)}.{b64(payload)}".encode()
    import hashlib
    import hmac

    mac = hmac.new(public_pem, signing_input, hashlib.sha256).digest()
    confused = signing_input.decode() + "." + base64.urlsafe_b64encode(mac).rstrip(b"=").decode()
    assert await rejected(provider, confused) == "algorithm not allowed"
    unsigned = f"{b64({'alg': 'none', 'typ': 'at+jwt'})}.{b64(payload)}."
    assert await rejected(provider, unsigned) == "algorithm not allowed"
    # The key decides: an RS256 key never verifies a PS256 token, even with the same kid.
    ps = jwt.encode(
        payload,
        rsa_issuer.signing_key.private_key,
        algorithm="PS256",
        headers={"kid": rsa_issuer.signing_key.kid, "typ": "at+jwt"},
    )
    assert await rejected(provider, ps) == "unknown key id"


async def test_symmetric_keys_in_a_key_set_are_never_used() -> None:
    issuer = LocalIssuer()
    secret = b"k" * 32
    original = issuer.jwks

    def with_oct() -> dict[str, Any]:
        keys = original()["keys"]
        oct_key = {
            "kty": "oct",
            "k": base64.urlsafe_b64encode(secret).rstrip(b"=").decode(),
            "kid": "hmac",
            "alg": "HS256",
        }
        return {"keys": [*keys, oct_key]}

    issuer.jwks = with_oct  # type: ignore[method-assign]
    provider = issuer.provider(API)
    payload = {
        "iss": issuer.issuer,
        "aud": API,
        "sub": "x",
        "client_id": "c",
        "iat": int(time.time()),
        "exp": int(time.time()) + 60,
        "jti": "j",
    }
    forged = jwt.encode(
        payload, secret, algorithm="HS256", headers={"kid": "hmac", "typ": "at+jwt"}
    )
    assert await rejected(provider, forged) == "algorithm not allowed"
    with pytest.raises(ConfigurationError):
        ResourceServerProvider(issuer=issuer.issuer, audience=API, algorithms=["HS256"])


async def test_malformed_tokens_are_401_never_500(local_issuer: LocalIssuer) -> None:
    provider = local_issuer.provider(API)
    for token in (
        "",
        "a.b",
        "a.b.c",
        "x" * 20000,
        "....",
        f"{b64({'alg': 'ES256'})}.e30.",
        "Bearer",
    ):
        assert not (await verify(provider, token)).success
    assert not (await provider.authenticate({"access_token": 123})).success
    result = await provider.authenticate({"user_id": "alice"})
    assert not result.success and "only verifies" in result.metadata["error"]


async def test_scope_claim_mappings() -> None:
    issuer = LocalIssuer()
    cases: list[tuple[Any, dict[str, Any], set[str]]] = [
        (claims.SCOPE, {"scope": "a b"}, {"a", "b"}),
        (claims.ENTRA_ID, {"scp": "user.read", "roles": ["Admin"]}, {"user.read", "Admin"}),
        (
            claims.AUTH0,
            {"scope": "openid", "permissions": ["read:items"]},
            {"openid", "read:items"},
        ),
        (
            claims.keycloak("my.api"),
            {
                "realm_access": {"roles": ["user"]},
                "resource_access": {"my.api": {"roles": ["editor"]}},
            },
            {"user", "editor"},
        ),
        (claims.COGNITO, {"scope": "x", "cognito:groups": ["admins"]}, {"x", "admins"}),
        (("scp",), {"scp": ["okta.read"]}, {"okta.read"}),
        (claims.SCOPE, {"scope": ["not", 3]}, set()),
        (claims.keycloak(), {"realm_access": "user"}, set()),
    ]
    for paths, extra, expected in cases:
        provider = issuer.provider(API, scope_claims=paths)
        result = await verify(provider, issuer.token(claims=extra))
        assert result.success and result.scopes == expected, (paths, extra)


async def test_checks_and_audience_claim(local_issuer: LocalIssuer) -> None:
    provider = local_issuer.provider(
        API,
        audience_claim="client_id",
        required_claims=("iss", "exp", "sub", "client_id"),
        checks=[lambda c: None if c.get("token_use") == "access" else "not an access token"],
    )
    good = local_issuer.token(audience=None, client_id=API, claims={"token_use": "access"})
    assert (await verify(provider, good)).success
    id_token = local_issuer.token(audience=None, client_id=API, claims={"token_use": "id"})
    assert await rejected(provider, id_token) == "not an access token"
    other_client = local_issuer.token(
        audience=None, client_id="other", claims={"token_use": "access"}
    )
    assert await rejected(provider, other_client) == "invalid audience"


async def test_configuration_errors() -> None:
    with pytest.raises(ConfigurationError):
        ResourceServerProvider(issuer="https://i.example/", audience="")
    with pytest.raises(ConfigurationError):
        ResourceServerProvider(issuer="", audience="a")
    with pytest.raises(ConfigurationError):
        ResourceServerProvider(issuer="http://i.example/", audience="a")  # http off loopback
    with pytest.raises(ConfigurationError):
        ResourceServerProvider(issuer=["https://a/", "https://b/"], audience="a")  # needs jwks_uri
    with pytest.raises(ConfigurationError):
        ResourceServerProvider(issuer="https://i.example/", audience="a", jwks_uri="ftp://x/keys")
    ResourceServerProvider(issuer="http://127.0.0.1:9/", audience="a")  # loopback http is fine


async def test_discovery_names_exactly_our_issuer() -> None:
    issuer = LocalIssuer("https://login.example.test/tenant")
    original = issuer.metadata
    issuer.metadata = lambda: {**original(), "issuer": "https://login.example.test/other"}  # type: ignore[method-assign]
    provider = issuer.provider(API)
    with pytest.raises(IssuerUnavailableError):
        await verify(provider, issuer.token_for(provider))
    # RFC 8414's path-inserted well-known URL is tried after the OIDC one.
    assert issuer.requests["/.well-known/openid-configuration"] == 0
    assert issuer.requests["/tenant/.well-known/openid-configuration"] == 1
    assert issuer.requests["/.well-known/oauth-authorization-server/tenant"] == 1


async def test_no_keys_at_all_is_503_and_the_issuer_is_not_hammered() -> None:
    issuer = LocalIssuer()
    issuer.available = False
    provider = issuer.provider(API)
    app = _app(provider)
    async with _client(app) as http:
        for _ in range(20):
            response = await http.get(
                "/api/me", headers={"Authorization": f"Bearer {issuer.token_for(provider)}"}
            )
            assert response.status_code == 503
    # One discovery attempt per URL, then the failure backoff holds further attempts.
    assert sum(issuer.requests.values()) == 2


async def test_introspection_with_the_local_issuer() -> None:
    issuer = LocalIssuer()
    provider = issuer.provider(API, introspection=Introspection("api", "secret", cache_ttl=60))
    now = int(time.time())
    good = issuer.opaque_token(
        {"sub": "alice", "aud": API, "scope": "read", "exp": now + 60, "iss": issuer.issuer}
    )
    result = await verify(provider, good)
    assert result.success and result.user_id == "alice" and result.scopes == {"read"}
    assert (await verify(provider, good)).success
    assert issuer.requests["/introspect"] == 1  # cached
    for claims_, error in (
        ({"sub": "a", "aud": "https://other", "exp": now + 60}, "invalid audience"),
        ({"sub": "a", "aud": API, "exp": now - 100}, "token expired"),
        ({"sub": "a", "aud": API, "iss": "https://evil/"}, "invalid issuer"),
        ({"sub": "a", "aud": API, "token_type": "refresh_token"}, "not an access token"),
        ({"aud": API}, "the token names no subject"),
    ):
        assert await rejected(provider, issuer.opaque_token(claims_)) == error
    assert (
        await rejected(provider, issuer.opaque_token({"sub": "a", "aud": API}, active=False))
        == "token not active"
    )
    assert await rejected(provider, "unknown-opaque-token") == "token not active"
    issuer.available = False
    with pytest.raises(IssuerUnavailableError):
        await verify(provider, issuer.opaque_token({"sub": "b", "aud": API}))


def _app(provider: ResourceServerProvider) -> FastAPI:
    manager = AuthenticationManager()
    manager.register_provider("issuer", provider)
    manager.add_requirement("/api/**", providers=["issuer"], scopes=["read"])
    app = FastAPI()

    @app.get("/api/me")
    async def me(result: AuthenticationResult = Depends(manager.requires_auth)) -> dict[str, Any]:
        return {"sub": result.user_id}

    return app


def _client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api")


async def test_requests_through_fastapi(local_issuer: LocalIssuer) -> None:
    provider = local_issuer.provider(API)
    app = _app(provider)
    async with _client(app) as http:
        token = local_issuer.token_for(provider, sub="bob", scopes=["read"])
        response = await http.get("/api/me", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 200 and response.json() == {"sub": "bob"}
        no_scope = local_issuer.token_for(provider, scopes=["write"])
        response = await http.get("/api/me", headers={"Authorization": f"Bearer {no_scope}"})
        assert response.status_code == 403
        assert 'error="insufficient_scope"' in response.headers["www-authenticate"]
        assert 'scope="read"' in response.headers["www-authenticate"]
        response = await http.get("/api/me", headers={"Authorization": "Bearer nope"})
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"'
        response = await http.get("/api/me")
        assert response.status_code == 401 and response.headers["www-authenticate"] == "Bearer"
        twice = [("authorization", f"Bearer {token}"), ("authorization", f"Bearer {token}")]
        assert (await http.get("/api/me", headers=twice)).status_code == 400


async def test_openapi_schemes() -> None:
    issuer = LocalIssuer()
    oidc = issuer.provider(API)
    oauth = issuer.provider(
        API,
        authorization_url="https://i/authorize",
        token_url="https://i/token",
        openapi_scopes={"read": "Read"},
    )
    machine = issuer.provider(API, token_url="https://i/token")
    bare = issuer.provider(API, jwks_uri="https://issuer.example.test/jwks", discovery="oauth")
    assert oidc.security_schemes()[0].model.model_dump(
        mode="json", exclude_none=True, by_alias=True
    ) == {
        "type": "openIdConnect",
        "openIdConnectUrl": "https://issuer.example.test/.well-known/openid-configuration",
    }
    flows = oauth.security_schemes()[0].model.model_dump(
        mode="json", exclude_none=True, by_alias=True
    )["flows"]
    assert flows == {
        "authorizationCode": {
            "authorizationUrl": "https://i/authorize",
            "tokenUrl": "https://i/token",
            "scopes": {"read": "Read"},
        }
    }
    assert (
        "clientCredentials"
        in machine.security_schemes()[0].model.model_dump(
            mode="json", exclude_none=True, by_alias=True
        )["flows"]
    )
    assert (
        bare.security_schemes()[0].model.model_dump(mode="json", exclude_none=True, by_alias=True)[
            "scheme"
        ]
        == "bearer"
    )
    app = _app(oidc)
    schema = app.openapi()
    assert schema["components"]["securitySchemes"]["issuer"]["type"] == "openIdConnect"


async def test_verify_raises_a_typed_rejection(local_issuer: LocalIssuer) -> None:
    provider = local_issuer.provider(API)
    assert (await provider.verify(local_issuer.token_for(provider)))["sub"] == "user"
    with pytest.raises(TokenRejectedError):
        await provider.verify(local_issuer.token(audience="nope"))
    assert await provider.validate_authentication(
        {"access_token": local_issuer.token_for(provider)}
    )
    assert not await provider.validate_authentication({"access_token": "x.y.z"})
    assert not await provider.validate_authentication({})


async def test_test_helper_key_generation() -> None:
    with pytest.raises(ValueError):
        generate_key("HS256")
