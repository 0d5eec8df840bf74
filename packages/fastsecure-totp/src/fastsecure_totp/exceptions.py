"""The exceptions of fastsecure-totp; all derive from :class:`TotpError`."""

from __future__ import annotations

from fastsecure import FastSecureError


class TotpError(FastSecureError):
    """Base class of every fastsecure-totp exception."""


class SecretDecryptionError(TotpError):
    """A stored secret could not be decrypted: wrong or missing key, or a tampered value."""


class NotEnrolledError(TotpError):
    """The user has no confirmed TOTP enrolment (recovery codes need one)."""
