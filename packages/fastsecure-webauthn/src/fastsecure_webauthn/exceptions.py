"""The exceptions of fastsecure-webauthn; all derive from :class:`WebAuthnError`."""

from __future__ import annotations

from fastsecure import InvalidCredentialsError


class WebAuthnError(InvalidCredentialsError):
    """Base class: a ceremony response was refused (``requires_auth`` answers 401)."""

    def __init__(self, message: str, *, reason: str) -> None:
        self.reason = reason
        super().__init__(message)


class RegistrationError(WebAuthnError):
    """A passkey registration was refused; ``reason`` says why (for logs, not the client)."""
