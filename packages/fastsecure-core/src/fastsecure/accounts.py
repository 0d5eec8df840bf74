"""The user-store contract: password accounts, looked up by a login identifier.

Apps keep their own user table and ORM: a :class:`UserStore` is a small async adapter
(``fastsecure-password`` ships one in memory, ``fastsecure-sqlalchemy`` a table and an
adapter over an app's own model). The login identifier is whatever the app chooses
(e-mail, user name); callers normalize it, the store compares it exactly.

The ``credential_version`` is the account's "generation": it goes up whenever the
password or the e-mail address changes, and every account token (e-mail verification,
password reset) remembers the version it was issued under, so a change kills them all.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

from .exceptions import FastSecureError
from .results import UserId


class UserExistsError(FastSecureError):
    """``create_user`` found the login identifier taken (callers must not reveal this)."""


@dataclass(frozen=True)
class UserRecord:
    """One account as the store holds it.

    Attributes:
        user_id: the store's id for the account (an ``int`` stays an ``int``).
        login: the normalized login identifier.
        password_hash: a PHC-format hash (argon2id, bcrypt), or ``None`` for an account
            without a password (one that signs in with OAuth only).
        email: where account mail goes (often equal to ``login``).
        verified: whether ``email`` was proven by a verification link.
        credential_version: bumped by every password or e-mail change.
        data: the app's own fields (scopes, display name); JSON values.
    """

    user_id: UserId
    login: str
    password_hash: str | None = field(default=None, repr=False)
    email: str | None = None
    verified: bool = False
    credential_version: int = 0
    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AccountToken:
    """A one-use account token as stored: only its SHA-256 is kept, never the token.

    Attributes:
        token_hash: SHA-256 hex of the token the user received.
        purpose: ``"verify"`` or ``"reset"`` (a token for one is useless for the other).
        user_id: whose token it is.
        credential_version: the account's version at issue; a mismatch at use kills it.
        expires_at: timezone-aware UTC.
    """

    token_hash: str
    purpose: str
    user_id: UserId
    credential_version: int
    expires_at: datetime


class UserStore(ABC):
    """Where password accounts live; every method may raise ``StoreUnavailableError``.

    ``create_user`` must be atomic on the login (two parallel registrations of one login
    create one account), and ``consume_token`` must hand a token out at most once, even to
    parallel callers; the conformance suite in
    :mod:`fastsecure.testing.conformance_accounts` checks both.
    """

    user_store_type: ClassVar[str] = "custom"

    @abstractmethod
    async def get_user(self, user_id: UserId) -> UserRecord | None:
        """The account with this id, or ``None``."""

    @abstractmethod
    async def get_by_login(self, login: str) -> UserRecord | None:
        """The account with this (normalized) login identifier, or ``None``."""

    @abstractmethod
    async def create_user(
        self,
        login: str,
        password_hash: str | None,
        *,
        email: str | None = None,
        verified: bool = False,
        data: Mapping[str, Any] | None = None,
    ) -> UserRecord:
        """Create an account; raises :class:`UserExistsError` when the login is taken."""

    @abstractmethod
    async def set_password_hash(
        self, user_id: UserId, password_hash: str, *, bump_version: bool
    ) -> UserRecord | None:
        """Store a new hash; ``bump_version`` for a new password (not for a rehash).

        Returns the updated account, or ``None`` when it does not exist.
        """

    @abstractmethod
    async def set_email(self, user_id: UserId, email: str | None) -> UserRecord | None:
        """Change the address: unverified again, and the credential version goes up."""

    @abstractmethod
    async def mark_verified(self, user_id: UserId, credential_version: int) -> bool:
        """Mark the e-mail verified, only while the version is still ``credential_version``."""

    @abstractmethod
    async def bump_credential_version(self, user_id: UserId) -> int | None:
        """Raise the version (kills outstanding account tokens); the new one, or ``None``."""

    @abstractmethod
    async def save_token(self, token: AccountToken) -> None:
        """Store an account token (by its hash)."""

    @abstractmethod
    async def consume_token(self, token_hash: str) -> AccountToken | None:
        """Remove and return the token: at most one caller ever gets it back.

        Expired tokens may be returned; callers check ``expires_at`` and the version.
        """

    async def aclose(self) -> None:  # noqa: B027 - optional hook, empty by design
        """Release connections; called on application shutdown."""


__all__ = ["AccountToken", "UserExistsError", "UserRecord", "UserStore"]
