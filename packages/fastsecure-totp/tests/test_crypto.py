from __future__ import annotations

import base64

import pytest

from fastsecure_totp import SecretCipher, SecretDecryptionError


def test_round_trip_is_bound_to_its_context() -> None:
    cipher = SecretCipher(SecretCipher.generate_key())
    sealed = cipher.encrypt("JBSWY3DPEHPK3PXP", context="user:42")
    assert "JBSWY3DPEHPK3PXP" not in sealed and sealed.startswith("v1.")
    assert cipher.decrypt(sealed, context="user:42") == "JBSWY3DPEHPK3PXP"
    assert sealed != cipher.encrypt("JBSWY3DPEHPK3PXP", context="user:42")  # fresh nonce
    with pytest.raises(SecretDecryptionError):
        cipher.decrypt(sealed, context="user:7")


@pytest.mark.parametrize(
    "mangle",
    [
        lambda s: s[:-2] + ("AA" if not s.endswith("AA") else "BB"),
        lambda s: "v2" + s[2:],
        lambda s: s.replace(".", "", 1),
        lambda s: "",
        lambda s: "v1.deadbeef.AAAA",
        lambda s: s + ".x",
    ],
)
def test_tampering_is_detected(mangle: object) -> None:
    cipher = SecretCipher(SecretCipher.generate_key())
    sealed = cipher.encrypt("secret", context="c")
    assert callable(mangle)
    with pytest.raises(SecretDecryptionError):
        cipher.decrypt(mangle(sealed), context="c")


def test_rotation() -> None:
    old, new = SecretCipher.generate_key(), SecretCipher.generate_key()
    sealed = SecretCipher(old).encrypt("s", context="c")
    both = SecretCipher([new, old])
    assert both.decrypt(sealed, context="c") == "s"
    assert both.needs_rotation(sealed)
    assert not both.needs_rotation(both.encrypt("s", context="c"))
    with pytest.raises(SecretDecryptionError):
        SecretCipher(new).decrypt(sealed, context="c")


@pytest.mark.parametrize(
    "key",
    [
        b"short",
        bytes(32),
        b"a" * 32,
        "not base64 !!",
        base64.urlsafe_b64encode(bytes(range(16))).decode(),
        "12345678901234567890123456789012",  # digits: decodes to 24 bytes, not a key
        [],
    ],
)
def test_weak_or_malformed_keys_are_refused(key: object) -> None:
    with pytest.raises((ValueError, TypeError)):
        SecretCipher(key)  # type: ignore[arg-type]


def test_raw_bytes_key() -> None:
    raw = bytes(range(32))
    assert (
        SecretCipher(raw).decrypt(SecretCipher(raw).encrypt("x", context="c"), context="c") == "x"
    )
