"""The security rules of issue 3, one test each."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import warnings
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from fastsecure import ConfigurationError
from fastsecure_jwt import JWTAuthenticationProvider


def b64(data: bytes | dict[str, Any]) -> str:
    if isinstance(data, dict):
        data = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hs256(header: dict[str, Any], payload: dict[str, Any], key: bytes) -> str:
    """Sign by hand, as an attacker would: PyJWT itself refuses a PEM as an HMAC secret."""
    signing_input = f"{b64(header)}.{b64(payload)}"
    signature = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(signature)}"


def public_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


async def rejected(provider: JWTAuthenticationProvider, token: str) -> str:
    result = await provider.authenticate({"access_token": token})
    assert not result.success, "the token was accepted"
    assert result.access_token is None and result.user_id is None
    return str(result.metadata["error"])


# --- algorithms ------------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE", ""])
async def test_alg_none_is_rejected(
    provider: JWTAuthenticationProvider, claims: Any, alg: str
) -> None:
    unsigned = f"{b64({'alg': alg, 'typ': 'JWT'})}.{b64(claims())}."
    await rejected(provider, unsigned)
    await rejected(provider, unsigned[:-1])


def test_none_cannot_be_configured(secret: str) -> None:
    with pytest.raises(ConfigurationError):
        JWTAuthenticationProvider(secret_key=secret, algorithms=["HS256", "none"])


async def test_header_alg_outside_the_allow_list_is_rejected(secret: str, claims: Any) -> None:
    provider = JWTAuthenticationProvider(secret_key=secret)
    with warnings.catch_warnings():  # PyJWT warns that 43 bytes is short for HS512
        warnings.simplefilter("ignore")
        token = jwt.encode(claims(), secret, algorithm="HS512")  # our secret, but not our algorithm
    assert await rejected(provider, token) in {
        "algorithm not allowed",
        "unknown key id or algorithm not allowed",
    }


async def test_alg_confusion_public_key_as_hmac_secret(
    rsa_key: rsa.RSAPrivateKey, secret: str, claims: Any
) -> None:
    provider = JWTAuthenticationProvider(
        secret_key=secret, algorithm="RS256", algorithms=["RS256", "HS256"], private_key=rsa_key
    )
    kid = provider.jwks()["keys"][0]["kid"]
    for header in ({"alg": "HS256", "typ": "JWT"}, {"alg": "HS256", "typ": "JWT", "kid": kid}):
        for pem in (public_pem(rsa_key), public_pem(rsa_key).strip()):
            await rejected(provider, hs256(header, claims(), pem))
    # The same attack on an RS256-only provider.
    rs_only = JWTAuthenticationProvider(algorithm="RS256", private_key=rsa_key)
    await rejected(rs_only, hs256({"alg": "HS256", "typ": "JWT"}, claims(), public_pem(rsa_key)))


async def test_alg_confusion_is_a_clean_401_through_an_app(
    rsa_key: rsa.RSAPrivateKey, secret: str, claims: Any, make_app: Any
) -> None:
    provider = JWTAuthenticationProvider(
        secret_key=secret, algorithm="RS256", algorithms=["RS256", "HS256"], private_key=rsa_key
    )
    app, _ = make_app(provider)
    forged = hs256({"alg": "HS256", "typ": "JWT"}, claims(), public_pem(rsa_key))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://t"
    ) as client:
        response = await client.get(
            "/api/protected/data", headers={"Authorization": f"Bearer {forged}"}
        )
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"'
        token = (await client.post("/auth/login", params={"user_id": 3})).json()["access_token"]
        ok = await client.get("/api/protected/data", headers={"Authorization": f"Bearer {token}"})
        assert ok.status_code == 200


def test_a_public_key_can_never_be_the_hmac_secret(rsa_key: rsa.RSAPrivateKey) -> None:
    for value in (public_pem(rsa_key), public_pem(rsa_key).decode()):
        with pytest.raises(ConfigurationError):
            JWTAuthenticationProvider(secret_key=value)


async def test_embedded_jwk_jku_x5u_headers_are_ignored(
    rsa_key: rsa.RSAPrivateKey, rsa_key_2: rsa.RSAPrivateKey, claims: Any, gen_of: Any
) -> None:
    provider = JWTAuthenticationProvider(algorithm="RS256", private_key=rsa_key)
    kid = provider.jwks()["keys"][0]["kid"]
    attacker_jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(rsa_key_2.public_key()))
    hostile = {
        "jwk": attacker_jwk,
        "jku": "https://attacker.example/jwks.json",
        "x5u": "https://attacker.example/cert.pem",
        "x5c": ["MIIB"],
    }
    for header in (
        hostile,
        {**hostile, "kid": kid},
        {"jwk": attacker_jwk},
        {"jku": hostile["jku"], "kid": kid},
    ):
        forged = jwt.encode(claims(), rsa_key_2, algorithm="RS256", headers=header)
        await rejected(provider, forged)
    # Our own token carrying those headers still verifies with our key: they are not consulted.
    gen = await gen_of(provider)
    ours = jwt.encode(claims(gen=gen), rsa_key, algorithm="RS256", headers={**hostile, "kid": kid})
    assert (await provider.authenticate({"access_token": ours})).success


async def test_unknown_kid_fails(
    rsa_key: rsa.RSAPrivateKey, rsa_key_2: rsa.RSAPrivateKey, claims: Any, gen_of: Any
) -> None:
    provider = JWTAuthenticationProvider(algorithm="RS256", private_key=rsa_key, signing_kid="k1")
    gen = await gen_of(provider)
    assert (
        await provider.authenticate(
            {"access_token": jwt.encode(claims(gen=gen), rsa_key, "RS256", {"kid": "k1"})}
        )
    ).success
    assert "unknown key id" in await rejected(
        provider, jwt.encode(claims(), rsa_key, "RS256", {"kid": "k2"})
    )
    # With one key the signature is checked first; either way the token is refused.
    assert await rejected(provider, jwt.encode(claims(), rsa_key_2, "RS256", {"kid": "nope"})) in {
        "unknown key id",
        "invalid signature",
    }


async def test_unknown_kid_fails_with_several_keys(
    rsa_key: rsa.RSAPrivateKey, rsa_key_2: rsa.RSAPrivateKey, claims: Any, gen_of: Any
) -> None:
    provider = JWTAuthenticationProvider(
        algorithm="RS256",
        private_key=rsa_key,
        signing_kid="k1",
        public_keys={"k0": rsa_key_2.public_key()},
    )
    gen = await gen_of(provider)
    assert (
        await provider.authenticate(
            {"access_token": jwt.encode(claims(gen=gen), rsa_key_2, "RS256", {"kid": "k0"})}
        )
    ).success
    for signer in (rsa_key, rsa_key_2):
        error = await rejected(provider, jwt.encode(claims(), signer, "RS256", {"kid": "k2"}))
        assert "unknown key id" in error
    # Without a kid and with two keys, nothing says which one: refused.
    assert "unknown key id" in await rejected(provider, jwt.encode(claims(), rsa_key, "RS256"))


async def test_unknown_kid_fails_for_hmac(secret: str, claims: Any) -> None:
    provider = JWTAuthenticationProvider(secret_key=secret)
    assert "unknown key id" in await rejected(
        provider, jwt.encode(claims(), secret, "HS256", {"kid": "k9"})
    )


@pytest.mark.parametrize("kid", [["k1"], {"a": 1}, 7, None])
async def test_non_string_kid_is_rejected(
    rsa_key: rsa.RSAPrivateKey, ec_key: Any, claims: Any, kid: Any
) -> None:
    provider = JWTAuthenticationProvider(
        algorithm="RS256",
        algorithms=["RS256", "ES256"],
        private_key=rsa_key,
        public_keys={"ec": ec_key.public_key()},
    )
    header = f"{b64({'alg': 'RS256', 'kid': kid})}"
    token = f"{header}.{b64(claims())}.{b64(b'sig')}"
    await rejected(provider, token)


# --- token types -----------------------------------------------------------------------


async def test_a_refresh_token_is_not_an_access_token(provider: JWTAuthenticationProvider) -> None:
    issued = await provider.authenticate({"user_id": 1})
    assert "not an access token" in await rejected(provider, issued.refresh_token)  # type: ignore[arg-type]
    refresh_only = await provider.authenticate({"refresh_token": issued.refresh_token})
    assert not refresh_only.success


async def test_an_access_token_is_not_a_refresh_token(provider: JWTAuthenticationProvider) -> None:
    issued = await provider.authenticate({"user_id": 1})
    result = await provider.refresh_authentication({"refresh_token": issued.access_token})
    assert not result.success and "not a refresh token" in result.metadata["error"]
    # And trying did not burn anything: the real refresh token still works.
    assert (await provider.refresh_authentication({"refresh_token": issued.refresh_token})).success


@pytest.mark.parametrize("token_type", [None, "ACCESS", "id", ["access"]])
async def test_token_type_must_be_exactly_access(
    provider: JWTAuthenticationProvider, claims: Any, token_type: Any
) -> None:
    token = jwt.encode(claims(token_type=token_type), provider.secret_key, algorithm="HS256")  # type: ignore[arg-type]
    await rejected(provider, token)


# --- time and audience -----------------------------------------------------------------


async def test_expired_is_rejected(provider: JWTAuthenticationProvider, claims: Any) -> None:
    now = int(time.time())
    token = jwt.encode(claims(iat=now - 100, exp=now - 1), provider.secret_key, algorithm="HS256")  # type: ignore[arg-type]
    assert "expired" in await rejected(provider, token)


async def test_not_yet_valid_is_rejected(provider: JWTAuthenticationProvider, claims: Any) -> None:
    token = jwt.encode(claims(nbf=int(time.time()) + 300), provider.secret_key, algorithm="HS256")  # type: ignore[arg-type]
    assert "not yet valid" in await rejected(provider, token)


async def test_issued_in_the_future_is_rejected(
    provider: JWTAuthenticationProvider, claims: Any
) -> None:
    token = jwt.encode(claims(iat=int(time.time()) + 300), provider.secret_key, algorithm="HS256")  # type: ignore[arg-type]
    assert "not yet valid" in await rejected(provider, token)


@pytest.mark.parametrize("claim", ["exp", "iat", "jti", "sub", "token_type"])
async def test_required_claims(
    provider: JWTAuthenticationProvider, claims: Any, claim: str
) -> None:
    token = jwt.encode(claims(**{claim: None}), provider.secret_key, algorithm="HS256")  # type: ignore[arg-type]
    error = await rejected(provider, token)
    if claim != "token_type":
        assert error == f"missing required claim: {claim}"


async def test_missing_exp_is_rejected(provider: JWTAuthenticationProvider, claims: Any) -> None:
    token = jwt.encode(claims(exp=None), provider.secret_key, algorithm="HS256")  # type: ignore[arg-type]
    assert await rejected(provider, token) == "missing required claim: exp"


@pytest.mark.parametrize("exp", ["9999999999", 1e400, True, None])
async def test_non_numeric_exp_is_rejected(
    provider: JWTAuthenticationProvider, claims: Any, exp: Any
) -> None:
    payload = claims()
    payload["exp"] = exp
    token = hs256({"alg": "HS256", "typ": "JWT"}, payload, provider.secret_key.encode())  # type: ignore[union-attr]
    await rejected(provider, token)


ISSUER = "https://auth.example.com"
AUDIENCE = "orders-api"


@pytest.fixture
def strict(secret: str) -> JWTAuthenticationProvider:
    return JWTAuthenticationProvider(secret_key=secret, issuer=ISSUER, audience=AUDIENCE)


async def test_issuer_and_audience_are_set_and_checked(strict: JWTAuthenticationProvider) -> None:
    issued = await strict.authenticate({"user_id": 1})
    decoded = jwt.decode(
        issued.access_token, strict.secret_key, algorithms=["HS256"], audience=AUDIENCE
    )  # type: ignore[arg-type]
    assert decoded["iss"] == ISSUER and decoded["aud"] == AUDIENCE
    assert (await strict.authenticate({"access_token": issued.access_token})).success


@pytest.mark.parametrize(
    "iss",
    [
        "https://auth.example.com.evil.io",
        "https://auth.example.co",
        "https://auth.example.com/",
        "auth.example.com",
        "https://AUTH.example.com",
        " https://auth.example.com",
        ["https://auth.example.com"],
        "",
        None,
    ],
)
async def test_wrong_issuer_is_rejected(
    strict: JWTAuthenticationProvider, claims: Any, iss: Any
) -> None:
    token = (
        jwt.encode(claims(iss=iss, aud=AUDIENCE), strict.secret_key, algorithm="HS256")
        if isinstance(iss, str | type(None))
        else hs256({"alg": "HS256"}, claims(iss=iss, aud=AUDIENCE), strict.secret_key.encode())
    )  # type: ignore[arg-type,union-attr]
    await rejected(strict, token)


@pytest.mark.parametrize(
    "aud",
    [
        "orders-api-v2",
        "orders",
        "rders-api",
        "ORDERS-API",
        ["orders"],
        ["orders-api-x", "x"],
        "",
        [],
        None,
        ["o", "r"],
    ],
)
async def test_wrong_audience_is_rejected(
    strict: JWTAuthenticationProvider, claims: Any, aud: Any
) -> None:
    token = jwt.encode(claims(iss=ISSUER, aud=aud), strict.secret_key, algorithm="HS256")  # type: ignore[arg-type]
    await rejected(strict, token)


async def test_audience_in_a_list_matches_exactly(
    strict: JWTAuthenticationProvider, claims: Any, gen_of: Any
) -> None:
    gen = await gen_of(strict)
    token = jwt.encode(
        claims(iss=ISSUER, aud=["billing", AUDIENCE], gen=gen),
        strict.secret_key,  # type: ignore[arg-type]
        algorithm="HS256",
    )
    assert (await strict.authenticate({"access_token": token})).success


async def test_an_audience_is_refused_when_none_is_configured(
    provider: JWTAuthenticationProvider, claims: Any
) -> None:
    token = jwt.encode(claims(aud="someone-else"), provider.secret_key, algorithm="HS256")  # type: ignore[arg-type]
    await rejected(provider, token)


# --- signatures ------------------------------------------------------------------------


async def test_tampered_payload_is_rejected(provider: JWTAuthenticationProvider) -> None:
    issued = await provider.authenticate({"user_id": 1, "scopes": ["read"]})
    header, payload, signature = issued.access_token.split(".")  # type: ignore[union-attr]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["scopes"] = ["read", "admin"]
    assert await rejected(provider, f"{header}.{b64(claims)}.{signature}") == "invalid signature"


async def test_tampered_signature_is_rejected(provider: JWTAuthenticationProvider) -> None:
    issued = await provider.authenticate({"user_id": 1})
    head, _, signature = issued.access_token.rpartition(".")  # type: ignore[union-attr]
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
    await rejected(provider, f"{head}.{flipped}")


async def test_stripped_signature_is_rejected(provider: JWTAuthenticationProvider) -> None:
    issued = await provider.authenticate({"user_id": 1})
    head, _, _ = issued.access_token.rpartition(".")  # type: ignore[union-attr]
    await rejected(provider, f"{head}.")
    await rejected(provider, head)


async def test_token_signed_with_another_secret_is_rejected(
    provider: JWTAuthenticationProvider, claims: Any
) -> None:
    token = jwt.encode(
        claims(), "another-secret-of-sufficient-length-0123456789", algorithm="HS256"
    )
    assert await rejected(provider, token) == "invalid signature"


async def test_a_re_encoded_signature_is_refused(
    provider: JWTAuthenticationProvider, ec_key: ec.EllipticCurvePrivateKey
) -> None:
    """Tokens are read strictly (fastsecure_jwt._jws): one string per signature.

    PyJWT accepts a padded signature segment; so a revocation keyed on the token string
    would miss that variant. Ours is keyed on the jti, and the variant is refused anyway.
    """
    pair = JWTAuthenticationProvider(algorithm="ES256", private_key=ec_key)
    for issuer in (provider, pair):
        token: str = (await issuer.authenticate({"user_id": 1})).access_token  # type: ignore[assignment]
        head, _, signature = token.rpartition(".")
        padded = f"{head}.{signature}{'=' * (-len(signature) % 4)}"
        assert padded != token
        assert (await issuer.authenticate({"access_token": token})).success
        assert await rejected(issuer, padded) in ("invalid signature", "malformed token")


async def test_a_fresh_signature_of_a_revoked_token_stays_revoked(
    ec_key: ec.EllipticCurvePrivateKey,
) -> None:
    provider = JWTAuthenticationProvider(algorithm="ES256", private_key=ec_key)
    issued = await provider.authenticate({"user_id": 1})
    decoded = jwt.decode_complete(issued.access_token, ec_key.public_key(), algorithms=["ES256"])  # type: ignore[arg-type]
    # ECDSA signatures are randomised: signing the same header and claims gives another string.
    again = jwt.encode(
        decoded["payload"], ec_key, algorithm="ES256", headers={"kid": decoded["header"]["kid"]}
    )
    assert again != issued.access_token
    await provider.revoke_authentication({"access_token": issued.access_token})
    assert await rejected(provider, again) == "token revoked"


async def test_crit_header_with_unknown_extension_is_rejected(
    provider: JWTAuthenticationProvider, claims: Any
) -> None:
    token = hs256(
        {"alg": "HS256", "crit": ["exp-policy"], "exp-policy": 1},
        claims(),
        provider.secret_key.encode(),
    )  # type: ignore[union-attr]
    await rejected(provider, token)


@pytest.mark.parametrize(
    "scopes",
    ["read", [1, 2], None, {"read": True}],
)
async def test_malformed_scopes_claim_is_rejected(
    provider: JWTAuthenticationProvider, claims: Any, scopes: Any
) -> None:
    payload = claims()
    payload["scopes"] = scopes
    token = jwt.encode(payload, provider.secret_key, algorithm="HS256")  # type: ignore[arg-type]
    await rejected(provider, token)


async def test_deeply_nested_header_is_a_clean_failure(
    rsa_key: rsa.RSAPrivateKey, ec_key: Any, claims: Any
) -> None:
    provider = JWTAuthenticationProvider(
        algorithm="RS256",
        algorithms=["RS256", "ES256"],
        private_key=rsa_key,
        public_keys=[ec_key.public_key()],
    )
    header = base64.urlsafe_b64encode(b"[" * 5000 + b"]" * 5000).rstrip(b"=").decode()
    assert await rejected(provider, f"{header}.{b64(claims())}.{b64(b'sig')}") == "malformed token"


@pytest.mark.parametrize("empty", ["", []])
async def test_an_empty_issuer_or_audience_means_none(secret: str, empty: Any) -> None:
    provider = JWTAuthenticationProvider(
        secret_key=secret, issuer="" if empty == "" else None, audience=empty
    )
    issued = await provider.authenticate({"user_id": 1})
    assert (await provider.authenticate({"access_token": issued.access_token})).success
