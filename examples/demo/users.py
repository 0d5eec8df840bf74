"""The demo's user directory: password accounts (fastsecure-password) and OAuth-linked users.

Password accounts live in a :class:`fastsecure_password.MemoryUserStore` whose user ids
are the login names (``alice``, or the e-mail address someone registered with); hashing,
verification, rehashing and the equal work for unknown names are fastsecure-password's.
The directory also links OAuth identities to users (``fastsecure_oauth.AccountStore``).
Everything is in memory: the demo users are seeded at every start, registered accounts
last until the demo stops.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fastsecure.accounts import UserRecord
from fastsecure.results import UserId
from fastsecure_password import MemoryUserStore, PasswordHasher


@dataclass
class User:
    """What a page shows about an account; ``scopes`` go into every credential issued."""

    user_id: str
    name: str
    scopes: list[str]
    email: str | None = None


DEMO_USERS: tuple[tuple[str, str, str, list[str]], ...] = (
    ("alice", "alice-password", "Alice (admin)", ["admin", "user"]),
    ("bob", "bob-password", "Bob (user)", ["user"]),
)
"""Seeded at start and printed by ``python -m demo``: user id, password, name, scopes."""


def _user(record: UserRecord) -> User:
    return User(
        str(record.user_id),
        str(record.data.get("name") or record.login),
        sorted(record.data.get("scopes") or ["user"]),
        record.email,
    )


class UserDirectory:
    """Who is who: password accounts (``accounts``, a user store) and OAuth-linked users.

    Pages render synchronously, so the directory keeps the :class:`User` of everyone it
    has seen (seeded, logged in with a password, signed in with OAuth).
    """

    def __init__(self) -> None:
        self.accounts = MemoryUserStore(id_factory=lambda login: login)
        self._known: dict[str, User] = {}
        self._identities: dict[tuple[str, str], str] = {}

    async def seed(self, hasher: PasswordHasher) -> None:
        """Create the demo users (hashing takes a few tens of milliseconds each)."""
        for user_id, password, name, scopes in DEMO_USERS:
            record = await self.accounts.get_by_login(user_id)
            if record is None:
                record = await self.accounts.create_user(
                    user_id,
                    await hasher.hash(password),
                    verified=True,
                    data={"name": name, "scopes": scopes},
                )
            self.remember(record)

    def remember(self, record: UserRecord) -> User:
        """Note a password account (after its password was checked); returns its :class:`User`."""
        user = _user(record)
        self._known[user.user_id] = user
        return user

    def get(self, user_id: UserId | None) -> User | None:
        """The user, or None."""
        return None if user_id is None else self._known.get(str(user_id))

    # --- fastsecure_oauth.AccountStore --------------------------------------------------

    async def get_user_by_identity(self, provider: str, subject: str) -> UserId | None:
        return self._identities.get((provider, subject))

    async def get_user_by_email(self, email: str) -> UserId | None:
        # Linking by email is off in the demo (link_by_verified_email=False): never asked.
        return None

    async def link_identity(
        self, user_id: UserId, provider: str, subject: str, user_info: Mapping[str, Any]
    ) -> None:
        self._identities[(provider, subject)] = str(user_id)

    async def create_user(self, provider: str, user_info: Mapping[str, Any]) -> UserId | None:
        user_id = f"{provider}:{user_info['id']}"
        email = user_info.get("email")
        name = str(user_info.get("name") or email or user_info["id"])
        self._known[user_id] = User(
            user_id, name, ["user"], email if isinstance(email, str) else None
        )
        return user_id
