"""Single-use recovery codes: 80 random bits each, shown once, stored as SHA-256 hashes.

A slow password hash (argon2) exists to make guessing low-entropy secrets expensive; an
80-bit random code cannot be guessed offline from its SHA-256, and a plain hash lets a
store find and delete a used code in one atomic statement.
"""

from __future__ import annotations

import hashlib
import secrets

# No 0/o, 1/l/i: codes are read off paper and typed by hand.
ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
GROUPS = 4
GROUP_LENGTH = 4
CODE_LENGTH = GROUPS * GROUP_LENGTH  # 16 characters of 31: about 79 bits


def generate_recovery_code() -> str:
    """A new code such as ``k7m2-x9qa-3fhe-tw4p``."""
    chars = "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))
    return "-".join(chars[i : i + GROUP_LENGTH] for i in range(0, CODE_LENGTH, GROUP_LENGTH))


def normalize_recovery_code(code: object) -> str | None:
    """The code as stored (lower case, no separators), or None if it cannot be one."""
    if not isinstance(code, str) or len(code) > 64:
        return None
    cleaned = "".join(ch for ch in code.lower() if ch not in "- \t")
    if len(cleaned) != CODE_LENGTH or any(ch not in ALPHABET for ch in cleaned):
        return None
    return cleaned


def hash_recovery_code(normalized: str) -> str:
    """What a store keeps of a code: its SHA-256, hex."""
    return hashlib.sha256(b"fastsecure-totp-recovery:" + normalized.encode("ascii")).hexdigest()
