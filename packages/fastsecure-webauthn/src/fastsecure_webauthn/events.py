"""Audit events of the passkey factor, emitted through the manager's ``fastsecure_on_event``.

They carry who and why, never a challenge, a signature or a public key.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from fastsecure.events import AuthEvent


@dataclass(frozen=True)
class PasskeyRegistered(AuthEvent):
    """A passkey was registered; ``detail`` has its AAGUID and backup state."""

    name: ClassVar[str] = "webauthn.registered"


@dataclass(frozen=True)
class PasskeyVerified(AuthEvent):
    """A passkey assertion was accepted as a factor."""

    name: ClassVar[str] = "webauthn.verified"


@dataclass(frozen=True)
class PasskeyFailed(AuthEvent):
    """A registration or assertion was refused; ``detail["reason"]`` says why.

    ``sign_count_regressed`` deserves attention: the authenticator may have been cloned.
    """

    name: ClassVar[str] = "webauthn.failed"


@dataclass(frozen=True)
class PasskeyRemoved(AuthEvent):
    """The user removed one of their passkeys."""

    name: ClassVar[str] = "webauthn.removed"


__all__ = ["PasskeyFailed", "PasskeyRegistered", "PasskeyRemoved", "PasskeyVerified"]
