"""Audit events of the TOTP factor, emitted through the manager's ``fastsecure_on_event``.

They carry who and why, never a code, a secret or a recovery code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from fastsecure.events import AuthEvent


@dataclass(frozen=True)
class TotpEnrolled(AuthEvent):
    """A TOTP enrolment was confirmed with a first valid code."""

    name: ClassVar[str] = "totp.enrolled"


@dataclass(frozen=True)
class TotpDisabled(AuthEvent):
    """The user's TOTP enrolment and recovery codes were removed."""

    name: ClassVar[str] = "totp.disabled"


@dataclass(frozen=True)
class TotpVerified(AuthEvent):
    """A TOTP code was accepted as a factor."""

    name: ClassVar[str] = "totp.verified"


@dataclass(frozen=True)
class TotpFailed(AuthEvent):
    """A TOTP code or recovery code was refused; ``detail["reason"]`` says why.

    Reasons: ``invalid_code``, ``replayed``, ``not_enrolled``,
    ``invalid_recovery_code``, ``undecryptable``, ``rate_limited``,
    ``no_pending_enrolment``, ``enrolment_replaced``.
    """

    name: ClassVar[str] = "totp.failed"


@dataclass(frozen=True)
class RecoveryCodeUsed(AuthEvent):
    """A recovery code stood in for a TOTP code; ``detail["remaining"]`` counts the rest."""

    name: ClassVar[str] = "totp.recovery_code_used"


@dataclass(frozen=True)
class RecoveryCodesGenerated(AuthEvent):
    """A new set of recovery codes replaced the old one; ``detail["count"]``."""

    name: ClassVar[str] = "totp.recovery_codes_generated"


__all__ = [
    "RecoveryCodeUsed",
    "RecoveryCodesGenerated",
    "TotpDisabled",
    "TotpEnrolled",
    "TotpFailed",
    "TotpVerified",
]
