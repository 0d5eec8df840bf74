"""Typed auth events passed to the ``fastsecure_on_event`` hook, for audit logs and metrics.

Events never carry credentials: no tokens, session ids or secrets, only who, what and why.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar

from .results import UserId


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class AuthEvent:
    """Base class: ``name`` is a stable dotted identifier such as ``"login.succeeded"``."""

    name: ClassVar[str] = "event"
    provider: str | None = None
    user_id: UserId | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    timestamp: datetime = field(default_factory=_now)


@dataclass(frozen=True)
class LoginSucceeded(AuthEvent):
    """Credentials were issued (``AuthenticationManager.authenticate`` succeeded)."""

    name: ClassVar[str] = "login.succeeded"


@dataclass(frozen=True)
class LoginFailed(AuthEvent):
    """A login or a request was refused; ``detail["reason"]`` says why."""

    name: ClassVar[str] = "login.failed"


@dataclass(frozen=True)
class TokenRefreshed(AuthEvent):
    """A refresh credential was exchanged for new credentials."""

    name: ClassVar[str] = "token.refreshed"


@dataclass(frozen=True)
class TokenRevoked(AuthEvent):
    """A token (or a whole refresh-token family) was revoked."""

    name: ClassVar[str] = "token.revoked"


@dataclass(frozen=True)
class RefreshTokenReused(AuthEvent):
    """An already-used refresh token came back: its family was revoked (RFC 9700 4.14.2)."""

    name: ClassVar[str] = "token.reuse_detected"


@dataclass(frozen=True)
class SessionCreated(AuthEvent):
    """A server-side session was created."""

    name: ClassVar[str] = "session.created"


@dataclass(frozen=True)
class SessionRevoked(AuthEvent):
    """A session was ended by logout or by the user from a device list."""

    name: ClassVar[str] = "session.revoked"


@dataclass(frozen=True)
class SessionRefused(AuthEvent):
    """A login was refused because the user is at ``max_sessions_per_user`` (refuse policy)."""

    name: ClassVar[str] = "session.refused"


@dataclass(frozen=True)
class SessionEvicted(AuthEvent):
    """A session was removed to respect ``max_sessions_per_user``."""

    name: ClassVar[str] = "session.evicted"


@dataclass(frozen=True)
class SessionRotated(AuthEvent):
    """A live session received a new id (fixation defence)."""

    name: ClassVar[str] = "session.rotated"


__all__ = [
    "AuthEvent",
    "LoginFailed",
    "LoginSucceeded",
    "RefreshTokenReused",
    "SessionCreated",
    "SessionEvicted",
    "SessionRefused",
    "SessionRevoked",
    "SessionRotated",
    "TokenRefreshed",
    "TokenRevoked",
]
