"""A software passkey authenticator, so apps test passkey routes without a browser or device.

It answers the options :class:`~fastsecure_webauthn.WebAuthnProvider` makes the way a
browser and an authenticator would (``none`` attestation, ES256 keys), and can misbehave on
purpose: no user verification, a cloned counter, another origin. For tests only: its keys
live in memory unprotected.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import struct
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from webauthn.helpers import encode_cbor

_UP, _UV, _BE, _BS, _AT = 0x01, 0x04, 0x08, 0x10, 0x40


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class SoftCredential:
    """One key the authenticator holds."""

    credential_id: bytes
    private_key: ec.EllipticCurvePrivateKey
    rp_id: str
    user_handle: bytes
    sign_count: int = 0


class SoftAuthenticator:
    """A platform authenticator in software.

    Args:
        origin: the page origin the "browser" reports (``http://localhost:8000``).
        user_verified: whether it reports user verification (PIN, biometrics).
        backup_eligible, backed_up: the BE/BS flags (a synced passkey sets both).
        counter: whether it keeps a signature counter (many passkeys send 0 always).
    """

    def __init__(
        self,
        origin: str,
        *,
        user_verified: bool = True,
        backup_eligible: bool = False,
        backed_up: bool = False,
        counter: bool = True,
    ) -> None:
        self.origin = origin
        self.user_verified = user_verified
        self.backup_eligible = backup_eligible
        self.backed_up = backed_up
        self.counter = counter
        self.credentials: dict[bytes, SoftCredential] = {}

    def _flags(self, extra: int = 0) -> int:
        flags = _UP | extra
        if self.user_verified:
            flags |= _UV
        if self.backup_eligible:
            flags |= _BE
        if self.backed_up:
            flags |= _BS
        return flags

    def _client_data(self, kind: str, challenge: str) -> bytes:
        return json.dumps(
            {"type": kind, "challenge": challenge, "origin": self.origin, "crossOrigin": False}
        ).encode()

    def create(
        self, options: dict[str, Any], *, credential_id: bytes | None = None
    ) -> dict[str, Any]:
        """Answer ``navigator.credentials.create()`` options with a registration response.

        ``credential_id`` forces the new credential's id (to test a duplicate).
        """
        rp_id = options["rp"]["id"]
        key = ec.generate_private_key(ec.SECP256R1())
        numbers = key.public_key().public_numbers()
        cose = encode_cbor(
            {
                1: 2,  # kty: EC2
                3: -7,  # alg: ES256
                -1: 1,  # crv: P-256
                -2: numbers.x.to_bytes(32, "big"),
                -3: numbers.y.to_bytes(32, "big"),
            }
        )
        credential_id = credential_id or secrets.token_bytes(32)
        auth_data = (
            hashlib.sha256(rp_id.encode()).digest()
            + bytes([self._flags(_AT)])
            + struct.pack(">I", 0)
            + bytes(16)  # AAGUID: none
            + struct.pack(">H", len(credential_id))
            + credential_id
            + cose
        )
        self.credentials[credential_id] = SoftCredential(
            credential_id, key, rp_id, _unb64(options["user"]["id"])
        )
        attestation = encode_cbor({"fmt": "none", "attStmt": {}, "authData": auth_data})
        return {
            "id": _b64(credential_id),
            "rawId": _b64(credential_id),
            "type": "public-key",
            "response": {
                "clientDataJSON": _b64(self._client_data("webauthn.create", options["challenge"])),
                "attestationObject": _b64(attestation),
                "transports": ["internal"],
            },
            "clientExtensionResults": {},
        }

    def get(self, options: dict[str, Any], credential_id: bytes | None = None) -> dict[str, Any]:
        """Answer ``navigator.credentials.get()`` options with an assertion.

        Uses ``credential_id``, else the first allowed credential it holds, else (a
        discoverable login) any credential it holds for the options' RP id.
        """
        if credential_id is None:
            allowed = [_unb64(c["id"]) for c in options.get("allowCredentials") or []]
            held = [c for c in allowed if c in self.credentials] or [
                c.credential_id
                for c in self.credentials.values()
                if c.rp_id == options["rpId"] and not allowed
            ]
            if not held:
                raise LookupError("no credential for these options")
            credential_id = held[0]
        credential = self.credentials[credential_id]
        if self.counter:
            credential.sign_count += 1
        auth_data = (
            hashlib.sha256(options["rpId"].encode()).digest()
            + bytes([self._flags()])
            + struct.pack(">I", credential.sign_count)
        )
        client_data = self._client_data("webauthn.get", options["challenge"])
        signature = credential.private_key.sign(
            auth_data + hashlib.sha256(client_data).digest(), ec.ECDSA(hashes.SHA256())
        )
        return {
            "id": _b64(credential_id),
            "rawId": _b64(credential_id),
            "type": "public-key",
            "response": {
                "clientDataJSON": _b64(client_data),
                "authenticatorData": _b64(auth_data),
                "signature": _b64(signature),
                "userHandle": _b64(credential.user_handle),
            },
            "clientExtensionResults": {},
        }
