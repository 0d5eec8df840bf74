"""Events of password accounts, delivered to ``fastsecure_on_event`` like core's own.

They carry who and why, never a password, a token or an address typed into a form; a
refusal names the limited key's kind (``"account"``, ``"address"``), not its value.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from fastsecure.events import AuthEvent


@dataclass(frozen=True)
class PasswordLoginFailed(AuthEvent):
    """A password login was refused.

    ``detail["reason"]``: ``invalid_credentials``, ``unverified`` or ``unknown_account``
    (server side only: clients see one answer for the first and the last).
    """

    name: ClassVar[str] = "password.login_failed"


@dataclass(frozen=True)
class RateLimited(AuthEvent):
    """An attempt was refused by a rate limit.

    ``detail``: ``flow`` (``login``, ``register``...), ``key`` (its kind) and ``retry_after``.
    """

    name: ClassVar[str] = "ratelimit.refused"


@dataclass(frozen=True)
class AccountRegistered(AuthEvent):
    """An account was created (its e-mail not yet verified)."""

    name: ClassVar[str] = "account.registered"


@dataclass(frozen=True)
class RegistrationRefused(AuthEvent):
    """A registration was refused: ``detail["reason"]`` is ``exists`` or a policy code."""

    name: ClassVar[str] = "account.registration_refused"


@dataclass(frozen=True)
class EmailVerified(AuthEvent):
    """A verification link was used."""

    name: ClassVar[str] = "account.email_verified"


@dataclass(frozen=True)
class AccountTokenRefused(AuthEvent):
    """A verification or reset token was unknown, used, expired or outdated."""

    name: ClassVar[str] = "account.token_refused"


@dataclass(frozen=True)
class PasswordResetRequested(AuthEvent):
    """Someone asked for a reset link (``user_id`` is None when no account matched)."""

    name: ClassVar[str] = "password.reset_requested"


@dataclass(frozen=True)
class PasswordChanged(AuthEvent):
    """The password was changed or reset; ``detail["how"]``, ``detail["ended"]`` counts."""

    name: ClassVar[str] = "password.changed"


@dataclass(frozen=True)
class PasswordRejected(AuthEvent):
    """A new password failed the policy; ``detail["reason"]`` is its code."""

    name: ClassVar[str] = "password.rejected"


__all__ = [
    "AccountRegistered",
    "AccountTokenRefused",
    "EmailVerified",
    "PasswordChanged",
    "PasswordLoginFailed",
    "PasswordRejected",
    "PasswordResetRequested",
    "RateLimited",
    "RegistrationRefused",
]
