"""Compact JWS with an HMAC secret on the standard library, and the claim checks of every token.

Importing PyJWT imports ``cryptography`` (about 90 ms, more than the rest of FastSecure),
and an app that signs its tokens with an HMAC secret needs none of it: HS256/384/512 are
``hmac``, ``hashlib``, ``base64`` and ``json``. So tokens whose key is an HMAC secret are
signed and verified here, and PyJWT (with ``cryptography``) is imported only for
asymmetric keys (:mod:`fastsecure_jwt.keys`). The claim checks below serve both paths,
so the rules are one piece of code; they are PyJWT's (a property test holds the two in
agreement on generated and mutated tokens), stricter in three places: base64url segments
without padding, no ``crit`` and no ``b64`` header (RFC 7515 section 4.1.11, RFC 7797:
we implement no extension), and the signature compared in its encoded form, so exactly
one string carries a given signature.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

HMAC_HASHES = {"HS256": "sha256", "HS384": "sha384", "HS512": "sha512"}
HMAC_ALGORITHMS = frozenset(HMAC_HASHES)
# RFC 7518 section 3.2: an HMAC key must be at least as long as the hash output.
HMAC_MIN_BYTES = {"HS256": 32, "HS384": 48, "HS512": 64}
ASYMMETRIC_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}
    | {"ES256", "ES256K", "ES384", "ES512", "ES521", "EdDSA"}
)
SUPPORTED_ALGORITHMS = HMAC_ALGORITHMS | ASYMMETRIC_ALGORITHMS
"""Every algorithm the provider can be configured with (PyJWT's, without ``none``)."""

_SEGMENT = re.compile(r"[A-Za-z0-9_-]*")
_REFUSED_HEADERS = ("crit", "b64")


class Rejected(Exception):
    """A presented token failed verification; the message is ours and safe to show."""


def b64url(data: bytes) -> str:
    """Unpadded base64url (RFC 7515 section 2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(segment: str) -> bytes:
    """Strict unpadded base64url; anything else is a malformed token."""
    if len(segment) % 4 == 1 or _SEGMENT.fullmatch(segment) is None:
        raise Rejected("malformed token")
    try:
        return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (binascii.Error, ValueError):
        raise Rejected("malformed token") from None


def json_object(data: bytes) -> dict[str, Any]:
    """A JSON object (a JOSE header or a claims set); anything else is malformed."""
    try:
        value = json.loads(data)
    except (ValueError, RecursionError):
        raise Rejected("malformed token") from None
    if not isinstance(value, dict):
        raise Rejected("malformed token")
    return value


def json_segment(segment: str) -> dict[str, Any]:
    """A base64url-encoded JSON object."""
    return json_object(b64url_decode(segment))


def looks_asymmetric(secret: bytes) -> bool:
    """PEM or OpenSSH text, which must never serve as an HMAC secret (RFC 8725 section 2.1)."""
    return b"-----BEGIN " in secret or secret.startswith((b"ssh-", b"ecdsa-sha2-"))


class HmacKey:
    """An HMAC secret bound to one algorithm; its ``repr`` never shows the secret."""

    __slots__ = ("_digest", "_secret", "algorithm")

    def __init__(self, secret: bytes, algorithm: str) -> None:
        self._secret = secret
        self._digest = HMAC_HASHES[algorithm]
        self.algorithm = algorithm

    def signature(self, signing_input: bytes) -> str:
        """The encoded signature segment of ``signing_input``."""
        return b64url(hmac.digest(self._secret, signing_input, self._digest))

    def __repr__(self) -> str:
        return f"HmacKey(algorithm={self.algorithm!r})"


def split(token: str) -> tuple[str, str, str]:
    """The three segments of a compact JWS; anything else is malformed."""
    if not token.isascii():
        raise Rejected("malformed token")
    parts = token.split(".")
    if len(parts) != 3:
        raise Rejected("malformed token")
    return parts[0], parts[1], parts[2]


def read_header(segment: str, algorithms: Sequence[str] | frozenset[str]) -> tuple[str, Any]:
    """The header's ``alg`` (in the allow-list) and ``kid`` (a string or absent)."""
    header = json_segment(segment)
    kid = header.get("kid")
    if kid is not None and not isinstance(kid, str):
        raise Rejected("malformed token")
    for name in _REFUSED_HEADERS:
        if name in header:
            raise Rejected(f"token header parameter not accepted: {name}")
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in algorithms:
        raise Rejected("algorithm not allowed")
    return alg, kid


def verify_hmac(token: str, header_segment: str, payload_segment: str, key: HmacKey) -> None:
    """Check the HMAC signature in constant time; raises :class:`Rejected`."""
    signing_input = token[: len(header_segment) + 1 + len(payload_segment)].encode("ascii")
    presented = token[len(signing_input) + 1 :].encode("ascii")
    if not hmac.compare_digest(key.signature(signing_input).encode("ascii"), presented):
        raise Rejected("invalid signature")


def sign_hmac(payload: Mapping[str, Any], key: HmacKey, kid: str | None) -> str:
    """A compact JWS as PyJWT writes it: sorted header, compact JSON, unpadded base64url."""
    header: dict[str, Any] = {"alg": key.algorithm, "typ": "JWT"}
    if kid is not None:
        header["kid"] = kid
    head = b64url(json.dumps(header, separators=(",", ":"), sort_keys=True).encode("utf-8"))
    body = b64url(json.dumps(payload, separators=(",", ":")).encode("utf-8"))
    signing_input = f"{head}.{body}"
    return f"{signing_input}.{key.signature(signing_input.encode('ascii'))}"


class HmacEncoder:
    """Issues HMAC tokens with the call shape of ``jwt.PyJWT.encode``, without PyJWT."""

    def __init__(self, keys: Mapping[str, HmacKey]) -> None:
        self._keys = dict(keys)

    def encode(
        self,
        payload: Mapping[str, Any],
        key: Any,
        algorithm: str,
        headers: Mapping[str, Any] | None = None,
    ) -> str:
        """Sign ``payload``; ``key`` must be the configured secret (it is not re-read)."""
        bound = self._keys[algorithm]
        if not hmac.compare_digest(bound._secret, key):
            raise ValueError("not the configured HMAC secret")
        return sign_hmac(payload, bound, (headers or {}).get("kid"))


@dataclass(frozen=True)
class SigningKey:
    """What ``encode`` signs with: the algorithm, the key object or secret, and the kid."""

    algorithm: str
    key: Any
    kid: str | None

    def __repr__(self) -> str:
        return f"SigningKey(algorithm={self.algorithm!r}, kid={self.kid!r})"


@dataclass(frozen=True, slots=True)
class ClaimRules:
    """What every token of one provider must satisfy, fixed at start-up."""

    required: tuple[str, ...]
    issuer: str | None
    audience: tuple[str, ...] | None
    leeway: float


def _as_int(value: Any, error: str) -> int:
    """PyJWT's reading of a NumericDate: ``int()`` of whatever JSON gave."""
    try:
        return int(value)
    except (ValueError, TypeError, OverflowError):
        raise Rejected(error) from None


def check_times(
    exp: int | None, nbf: int | None, iat: int | None, now: float, leeway: float
) -> None:
    """``iat`` and ``nbf`` not in the future, ``exp`` not reached (``None``: not checked).

    The one place these comparisons are written: a cached token is re-checked here with
    the values its first verification read, so a hit expires at exactly the second a
    full verification would.
    """
    if iat is not None and iat > now + leeway:
        raise Rejected("token not yet valid")
    if nbf is not None and nbf > now + leeway:
        raise Rejected("token not yet valid")
    if exp is not None and exp <= now - leeway:
        raise Rejected("token expired")


def check_claims(
    claims: Mapping[str, Any], rules: ClaimRules, now: float, *, check_expiry: bool = True
) -> tuple[int, int | None, int | None]:
    """PyJWT's claim validation for our options; returns (exp, nbf, iat) as read.

    Order and reading follow PyJWT 2.x ``_validate_claims``: required claims (``None``
    counts as missing), ``iat``, ``nbf``, ``exp``, ``iss``, ``aud``, ``sub``, ``jti``.
    """
    for claim in rules.required:
        if claims.get(claim) is None:
            raise Rejected(f"missing required claim: {claim}")
    exp_value = claims.get("exp")
    if type(exp_value) not in (int, float):
        raise Rejected("invalid exp claim")
    iat = _as_int(claims["iat"], "invalid iat claim") if "iat" in claims else None
    nbf = _as_int(claims["nbf"], "malformed token") if "nbf" in claims else None
    exp = _as_int(exp_value, "malformed token")
    check_times(exp if check_expiry else None, nbf, iat, now, rules.leeway)
    if rules.issuer is not None:
        iss = claims.get("iss")
        if not isinstance(iss, str) or iss != rules.issuer:
            raise Rejected("invalid issuer")
    aud = claims.get("aud")
    if rules.audience is None:
        if aud:
            raise Rejected("invalid audience")
    else:
        if not aud:
            raise Rejected("missing required claim: aud")
        audiences = [aud] if isinstance(aud, str) else aud
        if not isinstance(audiences, list) or not all(isinstance(a, str) for a in audiences):
            raise Rejected("invalid audience")
        if all(a not in audiences for a in rules.audience):
            raise Rejected("invalid audience")
    if "sub" in claims and not isinstance(claims["sub"], str):
        raise Rejected("invalid sub claim")
    if "jti" in claims and not isinstance(claims["jti"], str):
        raise Rejected("invalid jti claim")
    return exp, nbf, iat


__all__ = [
    "ASYMMETRIC_ALGORITHMS",
    "HMAC_ALGORITHMS",
    "HMAC_HASHES",
    "HMAC_MIN_BYTES",
    "SUPPORTED_ALGORITHMS",
    "ClaimRules",
    "HmacEncoder",
    "HmacKey",
    "Rejected",
    "SigningKey",
    "b64url",
    "b64url_decode",
    "check_claims",
    "check_times",
    "json_object",
    "json_segment",
    "looks_asymmetric",
    "read_header",
    "sign_hmac",
    "split",
    "verify_hmac",
]
