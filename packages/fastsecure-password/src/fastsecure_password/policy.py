"""The password policy of NIST SP 800-63B (rev. 3 section 5.1.1.2, rev. 4 section 3.1.1.2).

Length is what makes a password strong: at least 8 characters, at least 64 accepted, every
printable character and space allowed, no composition rules ("one digit, one symbol"),
no periodic expiry, and a check against passwords known from breaches, which the app
supplies (a local list, or the k-anonymity range API of Have I Been Pwned).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

from fastsecure import ConfigurationError

BreachedCheck = Callable[[str], Awaitable[bool]]
"""``async def is_breached(password) -> bool``: True when the password is known from a breach."""


class PasswordRejectedError(ValueError):
    """A new password does not meet the policy; ``reason`` is a stable code for the UI.

    Reasons: ``too_short``, ``too_long``, ``breached``, ``same_as_login``, ``not_text``.
    """

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        super().__init__(message)


@dataclass(frozen=True)
class PasswordPolicy:
    """What a new password must satisfy (checked at registration, reset and change).

    Length counts Unicode code points after NFKC normalization, as 800-63B asks; the
    password itself is hashed as typed, so hashes made elsewhere keep verifying.

    Args:
        min_length: at least 8 (NIST's floor for user-chosen passwords; 15 when a password
            is the only factor, in rev. 4).
        max_length: at least 64; the cap exists only to bound hashing work.
        breached_check: the app's breach lookup; ``None`` skips it (say so in your docs).
        context_words: words a password may not equal (the app's or service's name); the
            account's own login identifier is always refused.
    """

    min_length: int = 8
    max_length: int = 128
    breached_check: BreachedCheck | None = field(default=None, compare=False)
    context_words: Iterable[str] = ()

    def __post_init__(self) -> None:
        if self.min_length < 8:
            raise ConfigurationError("NIST SP 800-63B: min_length must be at least 8")
        if self.max_length < 64:
            raise ConfigurationError("NIST SP 800-63B: max_length must be at least 64")
        if self.max_length < self.min_length:
            raise ConfigurationError("max_length must be at least min_length")

    async def check(self, password: object, *, login: str | None = None) -> str:
        """Return the password when acceptable; raise :class:`PasswordRejectedError` if not."""
        if not isinstance(password, str):
            raise PasswordRejectedError("not_text", "The password must be text.")
        length = len(unicodedata.normalize("NFKC", password))
        if length < self.min_length:
            raise PasswordRejectedError("too_short", f"Use at least {self.min_length} characters.")
        if length > self.max_length:
            raise PasswordRejectedError("too_long", f"Use at most {self.max_length} characters.")
        folded = password.casefold().strip()
        forbidden = {w.casefold().strip() for w in self.context_words}
        if login:
            forbidden.add(login.casefold().strip())
        if folded in forbidden:
            raise PasswordRejectedError("same_as_login", "Choose a password unlike your login.")
        if self.breached_check is not None and await self.breached_check(password):
            raise PasswordRejectedError(
                "breached",
                "This password appears in a list of breached passwords; choose another.",
            )
        return password


__all__ = ["BreachedCheck", "PasswordPolicy", "PasswordRejectedError"]
