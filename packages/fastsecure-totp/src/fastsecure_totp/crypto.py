"""TOTP secrets encrypted at rest: AES-256-GCM, bound to their user, with key rotation.

A TOTP secret is a password the server must be able to read back (the verifier recomputes
codes from it), so it cannot be hashed. Encrypting it with a key the application holds
outside the database means a leaked table or backup does not hand out second factors.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import secrets
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .exceptions import SecretDecryptionError

KEY_BYTES = 32
_NONCE_BYTES = 12
_VERSION = "v1"

KeyMaterial = bytes | str


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _parse_key(key: KeyMaterial) -> bytes:
    """32 raw bytes, or their URL-safe base64 (what :meth:`SecretCipher.generate_key` gives)."""
    if isinstance(key, str):
        try:
            raw = _b64decode(key.strip())
        except (binascii.Error, ValueError):
            raise ValueError("a TOTP encryption key string must be URL-safe base64") from None
    elif isinstance(key, bytes):
        raw = key
    else:
        raise TypeError("a TOTP encryption key must be bytes or a base64 str")
    if len(raw) != KEY_BYTES:
        raise ValueError(f"a TOTP encryption key must be {KEY_BYTES} bytes (AES-256)")
    if len(set(raw)) < 8:
        # bytes(32), b"a" * 32 and friends: a placeholder, not a key.
        raise ValueError("the TOTP encryption key is not random: use SecretCipher.generate_key()")
    return raw


def _key_id(raw: bytes) -> str:
    """A short fingerprint naming the key that encrypted a value, so old keys still decrypt."""
    return hashlib.sha256(b"fastsecure-totp-key-id:" + raw).hexdigest()[:8]


class SecretCipher:
    """Encrypts TOTP secrets before they reach a store, and decrypts them to verify codes.

    Each value is ``v1.<key id>.<nonce + ciphertext>``; the user it belongs to is the
    associated data, so a value copied onto another user's row does not decrypt.

    Args:
        keys: the key, or several: the first encrypts, all decrypt. To rotate, put a new
            key first, re-encrypt what :meth:`needs_rotation` flags, then drop the old one.
    """

    def __init__(self, keys: KeyMaterial | Sequence[KeyMaterial]) -> None:
        items = [keys] if isinstance(keys, bytes | str) else list(keys)
        if not items:
            raise ValueError("SecretCipher needs at least one key")
        self._keys: dict[str, AESGCM] = {}
        for item in items:
            raw = _parse_key(item)
            self._keys.setdefault(_key_id(raw), AESGCM(raw))
        self._primary = next(iter(self._keys))

    @staticmethod
    def generate_key() -> str:
        """A new random key as URL-safe base64, for an environment variable or a vault."""
        return _b64encode(secrets.token_bytes(KEY_BYTES))

    def encrypt(self, plaintext: str, *, context: str) -> str:
        """Encrypt ``plaintext`` for ``context`` (the user it belongs to)."""
        nonce = secrets.token_bytes(_NONCE_BYTES)
        sealed = self._keys[self._primary].encrypt(
            nonce, plaintext.encode("utf-8"), context.encode("utf-8", "surrogatepass")
        )
        return f"{_VERSION}.{self._primary}.{_b64encode(nonce + sealed)}"

    def decrypt(self, token: str, *, context: str) -> str:
        """Decrypt a value :meth:`encrypt` made for the same ``context``.

        Raises:
            SecretDecryptionError: unknown key, another user's value, or tampering.
        """
        try:
            version, key_id, body = token.split(".")
            aead = self._keys[key_id]
            if version != _VERSION:
                raise ValueError(version)
            blob = _b64decode(body)
            plain = aead.decrypt(
                blob[:_NONCE_BYTES],
                blob[_NONCE_BYTES:],
                context.encode("utf-8", "surrogatepass"),
            )
        except (ValueError, KeyError, InvalidTag, binascii.Error, AttributeError):
            raise SecretDecryptionError("the stored TOTP secret could not be decrypted") from None
        return plain.decode("utf-8")

    def needs_rotation(self, token: str) -> bool:
        """Whether ``token`` was encrypted with a key other than the first."""
        parts = token.split(".")
        return len(parts) != 3 or parts[1] != self._primary
