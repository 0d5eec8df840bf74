"""Asymmetric key material, parsed once at start-up into the objects PyJWT verifies with.

Every configured public key becomes one :class:`jwt.PyJWK` per algorithm of the allow-list
it fits, in a table keyed by ``(kid, alg)``. A PyJWK binds its algorithm, so PyJWT refuses
a token whose header names another one; and the table only pairs HMAC algorithms with the
HMAC secret (:mod:`fastsecure_jwt._jws`), so a public key can never be used as an HMAC
secret (RFC 8725 section 2.1).

This module imports PyJWT and ``cryptography``; the provider imports it only when a
public or private key is configured, so an HMAC-only app never loads them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any, TypeAlias, cast

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from jwt import PyJWK
from jwt.algorithms import Algorithm, get_default_algorithms
from jwt.exceptions import InvalidKeyError, PyJWKError

from fastsecure import ConfigurationError

from ._jws import HMAC_ALGORITHMS as HMAC_ALGORITHMS
from ._jws import HMAC_MIN_BYTES as HMAC_MIN_BYTES
from ._jws import Rejected, b64url_decode
from ._jws import SigningKey as SigningKey
from ._jws import b64url as b64url

PublicKey: TypeAlias = (
    rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | ed448.Ed448PublicKey
)
PrivateKey: TypeAlias = (
    rsa.RSAPrivateKey
    | ec.EllipticCurvePrivateKey
    | ed25519.Ed25519PrivateKey
    | ed448.Ed448PrivateKey
)
KeyInput: TypeAlias = str | bytes | PublicKey | PrivateKey | Mapping[str, Any]
"""A key as configuration may give it: PEM text (public key, private key or certificate),
an OpenSSH public key line, a ``cryptography`` key object, or a JWK dict."""

_ALGORITHMS = get_default_algorithms()
SUPPORTED_ALGORITHMS = frozenset(name for name in _ALGORITHMS if name != "none")

_THUMBPRINT_MEMBERS = {
    "RSA": ("e", "kty", "n"),
    "EC": ("crv", "kty", "x", "y"),
    "OKP": ("crv", "kty", "x"),
}


class _PreparedKeyAlgorithm(Algorithm):
    """Wraps a PyJWT algorithm whose key was prepared (validated and parsed) at start-up.

    PyJWT prepares the key on every ``decode``; for an HMAC secret that means several
    parse attempts per request. The key in the PyJWK is already prepared, so this wrapper
    hands it through and delegates the cryptography to the real algorithm.
    """

    def __init__(self, inner: Algorithm) -> None:
        self._inner = inner

    def prepare_key(self, key: Any) -> Any:
        return key

    def sign(self, msg: bytes, key: Any) -> bytes:
        return self._inner.sign(msg, key)

    def verify(self, msg: bytes, key: Any, sig: bytes) -> bool:
        return self._inner.verify(msg, key, sig)

    @staticmethod
    def to_jwk(key_obj: Any, as_dict: bool = False) -> Any:
        raise NotImplementedError  # the JWKS is built from the real algorithm

    @staticmethod
    def from_jwk(jwk: Any) -> Any:
        raise NotImplementedError


def thumbprint(jwk: Mapping[str, Any]) -> str:
    """The RFC 7638 JWK thumbprint (SHA-256), our default ``kid`` for a key given without one."""
    members = _THUMBPRINT_MEMBERS[str(jwk["kty"])]
    canonical = json.dumps({m: jwk[m] for m in members}, separators=(",", ":"), sort_keys=True)
    return b64url(hashlib.sha256(canonical.encode("utf-8")).digest())


def _load_pem(data: bytes) -> PublicKey | PrivateKey:
    loaded: Any
    if data.startswith((b"ssh-", b"ecdsa-sha2-")):
        loaded = serialization.load_ssh_public_key(data)
    elif b"-----BEGIN CERTIFICATE-----" in data:
        loaded = x509.load_pem_x509_certificate(data).public_key()
    elif b"PRIVATE KEY-----" in data:
        loaded = serialization.load_pem_private_key(data, password=None)
    else:
        loaded = serialization.load_pem_public_key(data)
    return cast("PublicKey | PrivateKey", loaded)


def _load(value: KeyInput, what: str) -> tuple[PublicKey | PrivateKey, str | None]:
    """A cryptography key object and the ``kid`` a JWK carried, from any :data:`KeyInput`."""
    kid: str | None = None
    loaded: Any = value
    try:
        if isinstance(value, Mapping):
            jwk = dict(value)
            kid = jwk.get("kid")
            loaded = PyJWK(jwk).key
        elif isinstance(value, str | bytes):
            loaded = _load_pem(value.encode("utf-8") if isinstance(value, str) else value)
    except (ValueError, TypeError, PyJWKError, InvalidKeyError) as exc:
        # The message of a parse error may quote key material: report the type only.
        raise ConfigurationError(f"{what}: not a usable key ({type(exc).__name__})") from None
    if not isinstance(loaded, PublicKey | PrivateKey):
        raise ConfigurationError(
            f"{what}: unsupported key type {type(loaded).__name__}; "
            "use an RSA, EC (P-256/P-384/P-521/secp256k1), Ed25519 or Ed448 key"
        )
    return loaded, kid


def load_public_key(value: KeyInput, what: str) -> tuple[PublicKey, str | None]:
    """The public key (a private key or certificate gives its public half) and a JWK's kid."""
    key, kid = _load(value, what)
    if isinstance(key, PrivateKey):
        return key.public_key(), kid
    return key, kid


def load_private_key(value: KeyInput, what: str) -> PrivateKey:
    """A signing key; a public key here is a configuration error."""
    key, _ = _load(value, what)
    if not isinstance(key, PrivateKey):
        raise ConfigurationError(f"{what}: a private key is needed to sign")
    return key


def public_jwk(key: PublicKey) -> dict[str, Any]:
    """The public JWK of a key, through PyJWT's own ``to_jwk``."""
    for name in ("RS256", "ES256", "ES256K", "ES384", "ES512", "EdDSA"):
        algorithm = _ALGORITHMS.get(name)
        if algorithm is None:
            continue
        try:
            algorithm.prepare_key(key)
        except (InvalidKeyError, TypeError, ValueError):
            continue
        return dict(algorithm.to_jwk(key, as_dict=True))
    raise ConfigurationError(f"cannot express a {type(key).__name__} as a JWK")


def fitting_algorithms(key: PublicKey, allowed: Iterable[str]) -> list[str]:
    """The allowed asymmetric algorithms this key works with.

    PyJWT's own algorithm objects decide, by key family and curve; HMAC algorithms never
    fit a public key.
    """
    fits = []
    for name in allowed:
        if name in HMAC_ALGORITHMS:
            continue
        try:
            _ALGORITHMS[name].prepare_key(key)
        except (InvalidKeyError, TypeError, ValueError):
            continue
        fits.append(name)
    return fits


def prepared_jwk(jwk: Mapping[str, Any], algorithm: str) -> PyJWK:
    """A PyJWK bound to ``algorithm`` whose key needs no preparation per request."""
    try:
        bound = PyJWK(dict(jwk), algorithm)
        real = _ALGORITHMS[algorithm]
        bound.key = real.prepare_key(bound.key)
    except (PyJWKError, InvalidKeyError, TypeError, ValueError) as exc:
        raise ConfigurationError(f"key unusable with {algorithm} ({type(exc).__name__})") from None
    bound.Algorithm = _PreparedKeyAlgorithm(real)
    return bound


def verify_signature(signing_input: bytes, signature_segment: str, key: PyJWK, alg: str) -> None:
    """Check a key-pair signature with the PyJWK's own algorithm object; raises Rejected.

    PyJWS's ``decode_complete`` would parse the header and every segment again (its
    per-character alphabet check alone costs more than the rest of our checks); the
    header is parsed and checked once already (``_jws.read_header``), the key was chosen
    by ``(kid, alg)`` from configuration, and this is the call PyJWS makes after those
    same checks: the bound algorithm verifies, never one the token names.
    """
    if key.algorithm_name != alg:  # the table pairs them; checked again, never trusted
        raise Rejected("algorithm not allowed")
    signature = b64url_decode(signature_segment)
    try:
        valid = key.Algorithm.verify(signing_input, key.key, signature)
    except (ValueError, TypeError, InvalidKeyError):
        valid = False
    if not valid:
        raise Rejected("invalid signature")


def pyjwt_encoder() -> Any:
    """PyJWT's encoder, for tokens signed with a private key."""
    return jwt.PyJWT()
