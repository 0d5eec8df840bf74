"""Algorithms, key formats, kid rotation, JWKS and configuration errors."""

from __future__ import annotations

import json
import secrets
import warnings
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from fastapi import FastAPI

from fastsecure import ConfigurationError
from fastsecure_jwt import JWKS_PATH, JWTAuthenticationProvider, jwks_router

PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}


def pem(key: Any, private: bool = False) -> str:
    if private:
        data = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    else:
        data = key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    return str(data.decode())


@pytest.fixture(params=["RS256", "PS256", "ES256", "ES384", "EdDSA"])
def signer(
    request: pytest.FixtureRequest, rsa_key: Any, ec_key: Any, ed_key: Any
) -> tuple[str, Any]:
    alg: str = request.param
    keys = {
        "RS256": rsa_key,
        "PS256": rsa_key,
        "ES256": ec_key,
        "ES384": ec.generate_private_key(ec.SECP384R1()),
        "EdDSA": ed_key,
    }
    return alg, keys[alg]


async def test_asymmetric_round_trip(signer: tuple[str, Any]) -> None:
    alg, key = signer
    provider = JWTAuthenticationProvider(algorithm=alg, private_key=key)
    assert provider.secret_key is None and provider.algorithm == alg
    issued = await provider.authenticate(
        {"user_id": 9, "scopes": ["read"], "metadata": {"plan": "pro"}}
    )
    assert issued.success
    header = jwt.get_unverified_header(issued.access_token)  # type: ignore[arg-type]
    assert header["alg"] == alg and header["kid"] == provider.jwks()["keys"][0]["kid"]
    verified = await provider.authenticate({"access_token": issued.access_token})
    assert verified.success and verified.user_id == 9 and verified.metadata["plan"] == "pro"
    refreshed = await provider.refresh_authentication({"refresh_token": issued.refresh_token})
    assert refreshed.success
    # An independent verifier with only the published JWKS accepts the token.
    jwk_set = jwt.PyJWKSet.from_dict(provider.jwks())
    public = jwk_set[header["kid"]]
    decoded = jwt.decode(refreshed.access_token, public, algorithms=[alg])  # type: ignore[arg-type]
    assert decoded["sub"] == "9"


@pytest.mark.parametrize("form", ["pem", "pem-bytes", "jwk", "object"])
async def test_key_formats(rsa_key: rsa.RSAPrivateKey, form: str) -> None:
    private: Any
    public: Any
    if form == "pem":
        private, public = pem(rsa_key, private=True), pem(rsa_key)
    elif form == "pem-bytes":
        private, public = pem(rsa_key, private=True).encode(), pem(rsa_key).encode()
    elif form == "jwk":
        private = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(rsa_key))
        public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(rsa_key.public_key()))
    else:
        private, public = rsa_key, rsa_key.public_key()
    signer = JWTAuthenticationProvider(algorithm="RS256", private_key=private)
    verifier = JWTAuthenticationProvider(
        algorithm="RS256", public_keys=[public], token_store=signer.token_store
    )
    issued = await signer.authenticate({"user_id": "u"})
    assert (await verifier.authenticate({"access_token": issued.access_token})).success


async def test_a_verify_only_provider(ec_key: ec.EllipticCurvePrivateKey) -> None:
    signer = JWTAuthenticationProvider(algorithm="ES256", private_key=ec_key, signing_kid="2024-01")
    verifier = JWTAuthenticationProvider(
        algorithm="ES256", public_keys={"2024-01": pem(ec_key)}, token_store=signer.token_store
    )
    assert signer.can_issue and not verifier.can_issue
    issued = await signer.authenticate({"user_id": 1})
    assert (await verifier.authenticate({"access_token": issued.access_token})).success
    refused = await verifier.authenticate({"user_id": 1})
    assert not refused.success and "only verifies" in refused.metadata["error"]


async def test_a_jwk_set_as_public_keys(ec_key: ec.EllipticCurvePrivateKey, rsa_key: Any) -> None:
    signer = JWTAuthenticationProvider(
        algorithm="ES256",
        algorithms=["ES256", "RS256"],
        private_key=ec_key,
        public_keys={"r": rsa_key},
    )
    verifier = JWTAuthenticationProvider(
        algorithm="ES256",
        algorithms=["ES256", "RS256"],
        public_keys=signer.jwks(),
        token_store=signer.token_store,
    )
    assert verifier.jwks() == signer.jwks()
    issued = await signer.authenticate({"user_id": 1})
    assert (await verifier.authenticate({"access_token": issued.access_token})).success


async def test_hmac_with_a_kid(secret: str, claims: Any, gen_of: Any) -> None:
    provider = JWTAuthenticationProvider(secret_key=secret, signing_kid="hmac-1")
    issued = await provider.authenticate({"user_id": 1})
    assert jwt.get_unverified_header(issued.access_token)["kid"] == "hmac-1"  # type: ignore[arg-type]
    assert (await provider.authenticate({"access_token": issued.access_token})).success
    # The only key, so a token without a kid is its too; another kid is not.
    gen = await gen_of(provider)
    assert (
        await provider.authenticate({"access_token": jwt.encode(claims(gen=gen), secret, "HS256")})
    ).success
    other = jwt.encode(claims(gen=gen), secret, "HS256", headers={"kid": "hmac-2"})
    assert not (await provider.authenticate({"access_token": other})).success


async def test_kid_rotation_keeps_everyone_logged_in(
    rsa_key: rsa.RSAPrivateKey, rsa_key_2: rsa.RSAPrivateKey
) -> None:
    before = JWTAuthenticationProvider(algorithm="RS256", private_key=rsa_key, signing_kid="2024")
    old = await before.authenticate({"user_id": 1})
    # Rotation: sign with the new key, keep verifying with the old one.
    after = JWTAuthenticationProvider(
        algorithm="RS256",
        private_key=rsa_key_2,
        signing_kid="2025",
        public_keys={"2024": rsa_key.public_key()},
        token_store=before.token_store,
    )
    new = await after.authenticate({"user_id": 1})
    assert jwt.get_unverified_header(new.access_token)["kid"] == "2025"  # type: ignore[arg-type]
    assert (await after.authenticate({"access_token": old.access_token})).success
    assert (await after.authenticate({"access_token": new.access_token})).success
    # An old refresh token rotates into a new-key pair.
    rotated = await after.refresh_authentication({"refresh_token": old.refresh_token})
    assert rotated.success and jwt.get_unverified_header(rotated.access_token)["kid"] == "2025"  # type: ignore[arg-type]
    assert {k["kid"] for k in after.jwks()["keys"]} == {"2024", "2025"}
    # A service that knows only the old key refuses new tokens, by kid.
    result = await before.authenticate({"access_token": new.access_token})
    assert not result.success
    # Retiring the old key logs out its tokens.
    retired = JWTAuthenticationProvider(
        algorithm="RS256", private_key=rsa_key_2, signing_kid="2025"
    )
    assert not (await retired.authenticate({"access_token": old.access_token})).success


async def test_signing_kid_defaults_to_the_matching_public_key_entry(
    rsa_key: rsa.RSAPrivateKey,
) -> None:
    provider = JWTAuthenticationProvider(
        algorithm="RS256", private_key=rsa_key, public_keys={"main": rsa_key.public_key()}
    )
    issued = await provider.authenticate({"user_id": 1})
    assert jwt.get_unverified_header(issued.access_token)["kid"] == "main"  # type: ignore[arg-type]
    assert [k["kid"] for k in provider.jwks()["keys"]] == ["main"]


def test_default_kid_is_the_rfc7638_thumbprint() -> None:
    # RFC 7638 section 3.1's example key and thumbprint.
    jwk = {
        "kty": "RSA",
        "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKR"
        "XjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8"
        "KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xB"
        "niIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
        "e": "AQAB",
        "alg": "RS256",
    }
    provider = JWTAuthenticationProvider(algorithm="RS256", public_keys=[jwk])
    assert provider.jwks()["keys"][0]["kid"] == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


def test_jwks_output(rsa_key: rsa.RSAPrivateKey, ec_key: Any, ed_key: Any) -> None:
    provider = JWTAuthenticationProvider(
        algorithm="RS256",
        algorithms=["RS256", "ES256", "EdDSA"],
        private_key=rsa_key,
        signing_kid="rsa",
        public_keys={"ec": ec_key.public_key(), "ed": ed_key.public_key()},
    )
    keys = {k["kid"]: k for k in provider.jwks()["keys"]}
    assert set(keys) == {"rsa", "ec", "ed"}
    assert keys["rsa"]["kty"] == "RSA" and keys["rsa"]["alg"] == "RS256"
    assert (
        keys["ec"]["kty"] == "EC" and keys["ec"]["crv"] == "P-256" and keys["ec"]["alg"] == "ES256"
    )
    assert (
        keys["ed"]["kty"] == "OKP"
        and keys["ed"]["crv"] == "Ed25519"
        and keys["ed"]["alg"] == "EdDSA"
    )
    for key in keys.values():
        assert key["use"] == "sig"
        assert not PRIVATE_MEMBERS & set(key)
    # A copy: callers cannot change what is served.
    provider.jwks()["keys"].clear()
    assert len(provider.jwks()["keys"]) == 3


def test_hmac_secrets_never_appear_in_the_jwks(secret: str, rsa_key: rsa.RSAPrivateKey) -> None:
    assert JWTAuthenticationProvider(secret_key=secret).jwks() == {"keys": []}
    mixed = JWTAuthenticationProvider(
        secret_key=secret, algorithm="RS256", algorithms=["RS256", "HS256"], private_key=rsa_key
    )
    text = json.dumps(mixed.jwks())
    assert '"oct"' not in text and len(mixed.jwks()["keys"]) == 1


async def test_jwks_router_serves_the_set(ec_key: ec.EllipticCurvePrivateKey) -> None:
    provider = JWTAuthenticationProvider(algorithm="ES256", private_key=ec_key)
    app = FastAPI()
    app.include_router(jwks_router(provider))
    app.get("/one-liner.json")(provider.jwks)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://t"
    ) as client:
        response = await client.get(JWKS_PATH)
        assert response.status_code == 200
        assert response.json() == provider.jwks()
        assert "max-age" in response.headers["cache-control"]
        assert (await client.get("/one-liner.json")).json() == provider.jwks()
    issued = await provider.authenticate({"user_id": 1})
    client_side = jwt.PyJWKSet.from_dict(response.json())
    kid = jwt.get_unverified_header(issued.access_token)["kid"]  # type: ignore[arg-type]
    assert jwt.decode(issued.access_token, client_side[kid], algorithms=["ES256"])["sub"] == "1"  # type: ignore[arg-type]


# --- configuration ---------------------------------------------------------------------


def test_short_hmac_secret_warns_citing_rfc_7518() -> None:
    with pytest.warns(UserWarning, match=r"RFC 7518 section 3\.2") as caught:
        JWTAuthenticationProvider(secret_key="your-secret-key")
    assert all("your-secret-key" not in str(w.message) for w in caught)
    assert caught[0].filename == __file__  # points at the caller's line


def test_long_enough_secret_does_not_warn() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        JWTAuthenticationProvider(secret_key=secrets.token_bytes(32))


def test_hs512_needs_64_bytes() -> None:
    with pytest.warns(UserWarning, match="64"):
        JWTAuthenticationProvider(secret_key=secrets.token_bytes(32), algorithm="HS512")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "secret_key"),
        ({"secret_key": ""}, "empty"),
        ({"secret_key": "k" * 40, "algorithms": ["HS512"]}, "must be in algorithms"),
        ({"secret_key": "k" * 40, "algorithms": []}, "empty"),
        ({"secret_key": "k" * 40, "algorithm": "HS999"}, "not allowed"),
        ({"algorithm": "RS256"}, "no key"),
        ({"secret_key": "k" * 40, "access_token_expire_minutes": -1}, "negative"),
        (
            {
                "algorithm": "RS256",
                "private_key": "-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----",
            },
            "usable",
        ),
    ],
)
def test_configuration_errors(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        JWTAuthenticationProvider(**kwargs)


def test_a_key_of_the_wrong_family_is_refused(ec_key: Any, rsa_key: Any) -> None:
    with pytest.raises(ConfigurationError, match="does not fit"):
        JWTAuthenticationProvider(algorithm="RS256", private_key=ec_key)
    with pytest.raises(ConfigurationError, match="fits none"):
        JWTAuthenticationProvider(
            algorithm="RS256", private_key=rsa_key, public_keys={"x": ec_key.public_key()}
        )
    with pytest.raises(ConfigurationError, match="fits none"):
        JWTAuthenticationProvider(
            algorithm="ES256", public_keys=[ec.generate_private_key(ec.SECP384R1()).public_key()]
        )


def test_a_public_key_cannot_sign(rsa_key: rsa.RSAPrivateKey) -> None:
    with pytest.raises(ConfigurationError, match="private key"):
        JWTAuthenticationProvider(algorithm="RS256", private_key=pem(rsa_key))


def test_duplicate_kids_are_refused(rsa_key: Any, rsa_key_2: Any) -> None:
    with pytest.raises(ConfigurationError, match="kid"):
        JWTAuthenticationProvider(
            algorithm="RS256",
            private_key=rsa_key_2,
            signing_kid="a",
            public_keys={"a": rsa_key.public_key()},
        )


def test_key_errors_do_not_quote_key_material(rsa_key: rsa.RSAPrivateKey) -> None:
    broken = pem(rsa_key, private=True)[:200] + "\n-----END PRIVATE KEY-----\n"
    with pytest.raises(ConfigurationError) as caught:
        JWTAuthenticationProvider(algorithm="RS256", private_key=broken)
    assert broken[40:80] not in str(caught.value)


def test_ed448_is_supported() -> None:
    key = ed448.Ed448PrivateKey.generate()
    provider = JWTAuthenticationProvider(algorithm="EdDSA", private_key=key)
    assert provider.jwks()["keys"][0]["crv"] == "Ed448"


def test_repr_shows_no_secret(secret: str) -> None:
    provider = JWTAuthenticationProvider(secret_key=secret)
    assert secret not in repr(provider) and "HS256" in repr(provider)


def test_ed25519_key_object(ed_key: ed25519.Ed25519PrivateKey) -> None:
    provider = JWTAuthenticationProvider(algorithm="EdDSA", private_key=ed_key)
    assert provider.can_issue


@pytest.mark.parametrize("secret", [64, 3.5, True, ["k"], {"k": "v"}])
def test_a_secret_that_is_not_text_or_bytes_is_refused(secret: object) -> None:
    # bytes(64) is 64 zero bytes: a digits-only secret parsed from JSON must not become one.
    with pytest.raises(ConfigurationError, match="secret_key must be str or bytes"):
        JWTAuthenticationProvider(secret_key=secret)  # type: ignore[arg-type]


def test_a_digits_only_secret_from_the_environment_is_refused() -> None:
    from fastsecure import AuthenticationManager

    env = {"FASTSECURE__PROVIDERS__JWT__SECRET_KEY": "64"}
    with pytest.raises(ConfigurationError, match="secret_key must be str or bytes"):
        AuthenticationManager.from_env(env)
